"""Choosing the MFRC student's multi-label head, features and C on the pool only: 5-fold
cross-validation against the teacher's labels for `pool` (micro-F1), never on `test`.

    .venv/bin/python benchmarks/bench_multilabel_heads.py     # ~6 minutes on 2 cores (embedding, then 12 configurations x 5 folds)

Each text is embedded once per encoder (as embed-logreg does: max_length 256); each configuration
is fitted on four folds and predicts the fifth; per-label thresholds are tuned (graduate's own
``thresholds.tune``) on the pooled out-of-fold probabilities, the same way for every configuration,
so the scores are slightly optimistic alike and only their order matters. The winner is a named
rung of benchmarks/bench_multilabel.py, which scores it against gold on `test`.
Results are appended to benchmarks/results/multilabel_heads.jsonl.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, table  # noqa: E402

MFRC = ROOT.parent / "shared" / "data" / "mfrc"
RESULTS = Path(__file__).parent / "results" / "multilabel_heads.jsonl"
LABELS = ["care", "proportionality", "loyalty", "authority", "purity", "equality", "thin morality", "non-moral"]
FEATURES = {"mpnet + tfidf": ["mpnet"], "mpnet + minilm + tfidf": ["mpnet", "minilm"]}
HEADS = {"per_label": "balanced", "softmax": None}  # each head with the class weights it is used with
CS = [4, 16, 64]


def pool() -> tuple[list[str], np.ndarray]:
    """The pool's texts and the teacher's label sets for them (comma-separated label words)."""
    with (MFRC / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["id"]: r["text"] for r in csv.DictReader(f) if r["subsets"] == "pool"}
    texts, sets = [], []
    for line in (MFRC / "teacher_logs" / "ft-gpt-3.5-turbo-0613.batch_output.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        item = r["custom_id"].split("/")[1]
        if item not in rows:
            continue
        words = {w.strip() for w in r["response"]["body"]["choices"][0]["message"]["content"].split(",") if w.strip()}
        unknown = words - set(LABELS)
        if unknown:
            raise SystemExit(f"{r['custom_id']}: unknown label words {sorted(unknown)}")
        texts.append(rows[item])
        sets.append([int(lab in words) for lab in LABELS])
    return texts, np.array(sets)


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import KFold

    from graduate.students.label_heads import label_head
    from graduate.students.registry import make_student
    from graduate.students.thresholds import decide_sets, indicators, micro_f1, tune

    texts, y = pool()
    emb = {}
    for name in ("mpnet", "minilm"):
        t0 = time.perf_counter()
        emb[name] = make_student("embed-logreg", LABELS, {"base_model": name})._embed(texts)
        print(f"{name}: {len(texts)} texts embedded in {time.perf_counter() - t0:.0f} s", flush=True)
    folds = list(KFold(5, shuffle=True, random_state=0).split(texts))
    rows = []
    RESULTS.parent.mkdir(exist_ok=True)
    for feat, encoders in FEATURES.items():
        dense = np.hstack([emb[e] for e in encoders])
        for head, weights in HEADS.items():
            for C in CS:
                t0 = time.perf_counter()
                oof = np.zeros(y.shape)
                for train, held in folds:  # as embed-logreg with tfidf: true builds its features
                    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode")
                    x_train = hstack([csr_matrix(dense[train]), vec.fit_transform([texts[i] for i in train])]).tocsr()
                    x_held = hstack([csr_matrix(dense[held]), vec.transform([texts[i] for i in held])]).tocsr()
                    model = label_head(head, C=C, class_weight=weights, max_iter=2000, random_state=0).fit(x_train, y[train])
                    oof[held] = model.predict_proba(x_held)
                cut = tune(y, oof)
                decided = indicators(decide_sets(oof, LABELS, cut, True), LABELS, "bench")
                score = micro_f1(y, decided)
                r = {"features": feat, "head": head, "class_weight": weights, "C": C, "cv_micro_f1": score, "seconds": time.perf_counter() - t0}
                with RESULTS.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                rows.append([feat, head, str(weights), str(C), f"{score:.4f}", f"{r['seconds']:.0f}"])
                print(rows[-1], flush=True)
    best = max(rows, key=lambda row: float(row[4]))
    table(f"MFRC pool, 5-fold CV micro-F1 against the teacher ({len(texts)} comments); best: {', '.join(best[:4])}", ["features", "head", "class weight", "C", "CV micro-F1", "s"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
