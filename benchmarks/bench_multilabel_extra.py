"""Extra training data for the multi-label student on MFRC, each reported separately beside the
baseline (tfidf-logreg, balanced class weights, trained on the recorded teacher's sets for `pool`,
scored against gold on `test`):

- ``+ few-shot rows``: the older few-shot teacher's sets (label_imports) as extra half-weight rows;
- ``+ self-training``: the baseline's own sets for the `unlabelled` comments where its least sure
  per-label decision is at least 0.8 (0.9), as half-weight rows.

    .venv/bin/python benchmarks/bench_multilabel_extra.py

These are measurements, not a selection: no variant is chosen on `test`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, example_copy, table  # noqa: E402

EXAMPLE = ROOT / "examples" / "mfrc" / "graduate.yaml"
PARAMS = {"class_weight": "balanced", "multi_label": True}


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from graduate.cli.console import quiet_libraries
    from graduate.data.examples import select_examples
    from graduate.data.import_labels import stored_labels
    from graduate.evaluate.evaluation import set_metrics
    from graduate.formats import labelset
    from graduate.pipeline.ingest import load_label_imports
    from graduate.pipeline.project import Project
    from graduate.students.registry import make_student

    quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        proj = Project.load(example_copy(Path(tmp) / "mfrc", EXAMPLE))
        proj.import_logs()
        proj.load_data()
        load_label_imports(proj)
        ds = proj.build_training_set()
        test = proj.load_test_sets()[0]
        labels = proj.spec.task.labels
        unlabelled = select_examples(proj.engine, source="mfrc", tags=["unlabelled"])
        older = stored_labels(proj.engine, ["import:gpt-3.5-turbo-0301.few-shot"], [ex.id for ex in ds.examples])["import:gpt-3.5-turbo-0301.few-shot"]
    rows = []

    def score(name: str, texts: list[str], sets: list[str], weights: list[float]) -> object:
        student = make_student("tfidf-logreg", labels, PARAMS)
        student.fit(texts, sets, sample_weight=weights)
        m = set_metrics(proj.spec.task, test.gold, student.decide(student.predict_proba([ex.text for ex in test.examples])))
        lo, hi = m["ci"]["micro_f1"]
        rows.append([name, len(texts), f"{m['micro_f1']:.3f} [{lo:.3f}, {hi:.3f}]", f"{m['macro_f1']:.3f}", f"{m['exact_match']:.3f}"])
        return student

    base_t, base_y = ds.texts, list(ds.labels)
    base = score("teacher's sets (baseline)", base_t, base_y, [1.0] * len(base_t))
    extra = [(ex.text, older[ex.id]) for ex in ds.examples if older.get(ex.id)]
    score("+ older few-shot teacher's sets (w 0.5)", base_t + [t for t, _ in extra], base_y + [y for _, y in extra], [1.0] * len(base_t) + [0.5] * len(extra))
    texts_u = [ex.text for ex in unlabelled]
    probs = base.predict_proba(texts_u)
    sets_u = base.decide(probs)
    conf = np.array([labelset.confidence(s, p, labels) for s, p in zip(sets_u, probs)])
    for cut in (0.8, 0.9):
        keep = [i for i in range(len(texts_u)) if conf[i] >= cut]
        score(f"+ self-training, confidence >= {cut} ({len(keep)} items, w 0.5)", base_t + [texts_u[i] for i in keep], base_y + [sets_u[i] for i in keep], [1.0] * len(base_t) + [0.5] * len(keep))
    table("MFRC: extra training data for tfidf-logreg (balanced), vs gold on test (564)", ["training data", "items", "micro-F1 [95% CI]", "macro-F1", "exact match"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
