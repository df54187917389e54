"""Choosing the MFRC encoder student's multi-label head on the pool only: one fold of the pool
(fold 0 of bench_multilabel_heads.py's 5-fold split) held out, micro-F1 against the teacher's
labels there, never on `test`.

    .venv/bin/python benchmarks/bench_multilabel_encoder_head.py [--configs NAME ...]   # ~8 minutes per MPNet encoder on 2 cores
    .venv/bin/python benchmarks/bench_multilabel_encoder_head.py --blend A B            # also graduate's ensemble of A and B (equal weights)

Each student trains on the other four folds exactly as graduate trains it (its own thresholds,
tuned on its own validation share of those folds) and decides the held-out fold; the reference is
the frozen-embedding rung bench_multilabel.py ships (mpnet-minilm-softmax). Results are appended to
benchmarks/results/multilabel_encoder_head.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_multilabel_heads import LABELS, pool  # noqa: E402
from common import table  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "multilabel_encoder_head.jsonl"
MPNET_RECIPE = {"base_model": "mpnet", "epochs": 3, "learning_rate": 3e-5, "batch_size": 16, "max_length": 128}  # bench_multilabel's mpnet-encoder
CONFIGS = {
    "mpnet-minilm-softmax (reference)": ("embed-logreg", {"base_model": "mpnet", "more_base_models": ["minilm"], "tfidf": True, "C": 4, "head": "softmax"}),
    "mpnet-encoder softmax": ("encoder", {**MPNET_RECIPE, "head": "softmax"}),
    "mpnet-encoder per_label": ("encoder", {**MPNET_RECIPE, "head": "per_label"}),
    "minilm-encoder softmax": ("encoder", {"head": "softmax"}),
    "minilm-encoder per_label": ("encoder", {"head": "per_label"}),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--blend", nargs=2, choices=list(CONFIGS), help="train these two and score the ensemble student of them (equal weights, each member's margin past its own thresholds)")
    args = parser.parse_args()
    if args.blend:
        args.configs = list(dict.fromkeys(args.blend))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.model_selection import KFold

    from graduate.formats import labelset
    from graduate.students.registry import make_student
    from graduate.students.thresholds import indicators, micro_f1

    texts, y = pool()
    train, held = next(iter(KFold(5, shuffle=True, random_state=0).split(texts)))
    sets = [labelset.encode([lab for lab, on in zip(LABELS, row) if on], LABELS) for row in y]
    rows = []
    trained = {}
    RESULTS.parent.mkdir(exist_ok=True)
    for name in args.configs + (["blend"] if args.blend else []):
        t0 = time.perf_counter()
        if name == "blend":
            from graduate.students.ensemble import EnsembleStudent

            members = [{"kind": CONFIGS[n][0], "params": CONFIGS[n][1]} for n in args.blend]
            kind, params = "ensemble", {"members": members}
            student = EnsembleStudent.from_members(LABELS, {**params, "multi_label": True}, [trained[n] for n in args.blend])
            name = "blend: " + " + ".join(args.blend)
        else:
            kind, params = CONFIGS[name]
            student = make_student(kind, LABELS, {**params, "multi_label": True})
            student.fit([texts[i] for i in train], [sets[i] for i in train])
            trained[name] = student
        seconds = time.perf_counter() - t0
        decided = indicators(student.decide(student.predict_proba([texts[i] for i in held])), LABELS, "bench")
        score = micro_f1(y[held], decided)
        exact = float((decided == y[held]).all(axis=1).mean())
        r = {"config": name, "kind": kind, "params": params, "held_out": len(held), "micro_f1": score, "exact": exact, "seconds": seconds,
             "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
        with RESULTS.open("a") as f:
            f.write(json.dumps(r) + "\n")
        rows.append([name, f"{score:.4f}", f"{exact:.3f}", f"{seconds:.0f}"])
        print(rows[-1], flush=True)
    table(f"MFRC pool fold 0 ({len(held)} held out of {len(texts)}): micro-F1 against the teacher", ["student", "micro-F1", "exact", "train s"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
