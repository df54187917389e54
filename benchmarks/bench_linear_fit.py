"""How long the linear students take to fit with BLAS threaded as the machine gives it, and with
graduate's one BLAS thread during a fit (``graduate.students.blas``).

    .venv/bin/python benchmarks/bench_linear_fit.py      # ~3 minutes on 2 cores

Each case fits the same student twice on the same data; the probabilities must agree (printed: the
largest difference), so only time changes. CPU seconds are the process's own (every thread).
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_multilabel_heads import LABELS, pool  # noqa: E402
from common import JIGSAW, table  # noqa: E402


def cases() -> list[tuple[str, str, list[str], dict, list[str], list[str]]]:
    """(name, kind, labels, params, texts, training labels): MFRC's pool with the teacher's sets,
    and Jigsaw's training comments with gold."""
    from graduate.formats import labelset

    texts, y = pool()
    sets = [labelset.encode([lab for lab, v in zip(LABELS, row) if v], LABELS) for row in y]
    with JIGSAW.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["subsets"].startswith("train")]
    jig = [r["comment_text"] for r in rows]
    gold = ["bad" if r["is_bad"] == "1" else "ok" for r in rows]
    return [
        (f"tfidf-logreg, MFRC pool, multi-label ({len(texts)} comments, 5 threshold folds)", "tfidf-logreg", LABELS, {"multi_label": True}, texts, sets),
        (f"tfidf-logreg, MFRC pool, softmax head ({len(texts)})", "tfidf-logreg", LABELS, {"multi_label": True, "head": "softmax"}, texts, sets),
        (f"tfidf-logreg, Jigsaw train, single-label ({len(jig)})", "tfidf-logreg", ["ok", "bad"], {}, jig, gold),
    ]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from threadpoolctl import threadpool_info

    from graduate.students import blas
    from graduate.students.registry import make_student

    threads = sorted({d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"})
    rows = []
    for name, kind, labels, params, texts, y in cases():
        times, probs = {}, {}
        for setting in (None, 1):
            blas.FIT_BLAS_THREADS = setting
            student = make_student(kind, labels, params)
            t0, c0 = time.perf_counter(), time.process_time()
            student.fit(texts, y)
            times[setting] = (time.perf_counter() - t0, time.process_time() - c0)
            probs[setting] = student.predict_proba(texts[:500])
        diff = float(np.abs(probs[None] - probs[1]).max())
        rows.append([name, f"{times[None][0]:.1f} / {times[None][1]:.1f}", f"{times[1][0]:.1f} / {times[1][1]:.1f}", f"{times[None][0] / times[1][0]:.2f}x", f"{diff:.1e}"])
        print(rows[-1], flush=True)
    table(
        f"Fit time, wall / CPU seconds ({os.cpu_count()} cores; BLAS as given: {threads} threads)",
        ["case", "BLAS as given", "one BLAS thread (graduate)", "speed-up", "max |Δp|"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
