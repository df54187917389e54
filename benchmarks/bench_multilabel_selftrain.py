"""Self-training the best CPU multi-label student on MFRC's `unlabelled` comments, chosen on the
pool only: 5-fold cross-validation against the teacher's labels for `pool`, never on `test`.

    .venv/bin/python benchmarks/bench_multilabel_selftrain.py            # ~15 minutes on 2 cores to embed 14k comments the first time (cached), then the fits
    .venv/bin/python benchmarks/bench_multilabel_selftrain.py --test     # also: the pool-chosen variant against gold on `test` (reporting only)

The student is the shipped rung ``mpnet-minilm-softmax`` (MPNet + MiniLM embeddings beside word
TF-IDF, softmax head, C 4). In each fold, the student trained on the four training folds labels
every `unlabelled` comment; the comments it is sure of (its most likely label's probability at least
``min_p``) join the four folds as rows of weight ``weight``, and the student is trained again and
predicts the held-out fold. Per-label thresholds are tuned (graduate's ``thresholds.tune``) on the
pooled out-of-fold probabilities, the same way for every variant. The unlabelled comments' gold
is never read. Embeddings are cached under ~/.cache/graduate/bench/. Results are appended to
benchmarks/results/multilabel_selftrain.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_multilabel_heads import LABELS, MFRC, pool  # noqa: E402
from common import table  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "multilabel_selftrain.jsonl"
CACHE = Path.home() / ".cache" / "graduate" / "bench"
VARIANTS = [(None, 0.0), (0.6, 0.25), (0.8, 0.5), (0.9, 0.5), (0.9, 1.0)]  # (min_p, weight); None: pool only


def subset_texts(name: str) -> tuple[list[str], list[str]]:
    with (MFRC / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["subsets"] == name]
    return [r["text"] for r in rows], [r["labels"] for r in rows]


def embeddings(name: str, texts: list[str]) -> np.ndarray:
    """MPNet and MiniLM embeddings side by side (as embed-logreg makes them), cached per subset."""
    from graduate.students.registry import make_student

    path = CACHE / f"mfrc-{name}-mpnet-minilm.npy"
    if path.exists():
        cached = np.load(path)
        if len(cached) == len(texts):
            return cached
    t0 = time.perf_counter()
    emb = make_student("embed-logreg", LABELS, {"base_model": "mpnet", "more_base_models": ["minilm"]})._embed(texts)
    print(f"{name}: {len(texts)} comments embedded in {time.perf_counter() - t0:.0f} s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb


def fit_predict(dense_train: np.ndarray, texts_train: list[str], y_train: np.ndarray, weights: np.ndarray, outs: list[tuple[np.ndarray, list[str]]]) -> list[np.ndarray]:
    """As embed-logreg with tfidf: true and head softmax builds and fits its features."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    from graduate.students.label_heads import label_head

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode")
    x = hstack([csr_matrix(dense_train), vec.fit_transform(texts_train)]).tocsr()
    model = label_head("softmax", C=4, class_weight=None, max_iter=2000, random_state=0).fit(x, y_train, sample_weight=weights)
    return [model.predict_proba(hstack([csr_matrix(d), vec.transform(t)]).tocsr()) for d, t in outs]


_LABELLER: dict[tuple[int, ...], np.ndarray] = {}  # the training folds -> their student's probabilities on the unlabelled comments


def with_pseudo(dense, texts, y, train, extra_dense, extra_texts, min_p, weight, outs):
    """Train on ``train``; add the unlabelled comments it is sure of; train again; predict ``outs``."""
    base = [dense[train], [texts[i] for i in train], y[train], np.ones(len(train))]
    if min_p is None:
        return fit_predict(*base, outs), 0
    key = tuple(int(i) for i in train)
    if key not in _LABELLER:
        _LABELLER[key] = fit_predict(*base, [(extra_dense, extra_texts)])[0]
    probs = _LABELLER[key]
    full = np.hstack([probs, 1 - probs.sum(axis=1, keepdims=True)])  # the labels and "none"
    sure = np.flatnonzero(full.max(axis=1) >= min_p)
    sets = np.zeros((len(sure), len(LABELS)), dtype=int)
    top = full[sure].argmax(axis=1)
    for r, j in enumerate(top):
        if j < len(LABELS):
            sets[r, j] = 1
    d = np.vstack([base[0], extra_dense[sure]])
    t = base[1] + [extra_texts[i] for i in sure]
    yy = np.vstack([base[2], sets])
    w = np.concatenate([base[3], np.full(len(sure), weight)])
    return fit_predict(d, t, yy, w, outs), len(sure)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--test", action="store_true", help="also score the variant the pool CV chose against gold on test")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.model_selection import KFold

    from graduate.students.thresholds import decide_sets, indicators, micro_f1, tune

    texts, y = pool()
    dense = embeddings("pool", texts)
    un_texts, _ = subset_texts("unlabelled")  # their gold is never read
    un_dense = embeddings("unlabelled", un_texts)
    folds = list(KFold(5, shuffle=True, random_state=0).split(texts))
    rows, scored = [], []
    RESULTS.parent.mkdir(exist_ok=True)
    for min_p, weight in VARIANTS:
        t0 = time.perf_counter()
        oof = np.zeros(y.shape)
        added = []
        for train, held in folds:
            (oof[held],), n = with_pseudo(dense, texts, y, train, un_dense, un_texts, min_p, weight, [(dense[held], [texts[i] for i in held])])
            added.append(n)
        cut = tune(y, oof)
        score = micro_f1(y, indicators(decide_sets(oof, LABELS, cut, True), LABELS, "bench"))
        r = {"min_p": min_p, "weight": weight, "cv_micro_f1": score, "added_per_fold": float(np.mean(added)), "seconds": time.perf_counter() - t0}
        with RESULTS.open("a") as f:
            f.write(json.dumps(r) + "\n")
        scored.append(r)
        rows.append(["pool only" if min_p is None else f"p >= {min_p}", f"{weight:g}", f"{np.mean(added):.0f}", f"{score:.4f}", f"{r['seconds']:.0f}"])
        print(rows[-1], flush=True)
    best = max(scored, key=lambda r: r["cv_micro_f1"])
    table(f"MFRC pool, 5-fold CV micro-F1 against the teacher ({len(texts)} comments + {len(un_texts)} unlabelled)",
          ["self-training", "weight", "added per fold", "CV micro-F1", "s"], rows)
    if args.test:
        from graduate.formats import labelset

        te_texts, te_gold = subset_texts("test")
        te_dense = embeddings("test", te_texts)
        gold = indicators([labelset.encode(g.split(";") if g else [], LABELS) for g in te_gold], LABELS, "bench")
        out = []
        for variant in ([(None, 0.0)] + ([(best["min_p"], best["weight"])] if best["min_p"] is not None else [])):
            # thresholds as the student tunes them: out-of-fold over the whole pool, then the whole pool trains
            oof = np.zeros(y.shape)
            for train, held in folds:
                (oof[held],), _ = with_pseudo(dense, texts, y, train, un_dense, un_texts, *variant, [(dense[held], [texts[i] for i in held])])
            (probs,), n = with_pseudo(dense, texts, y, np.arange(len(texts)), un_dense, un_texts, *variant, [(te_dense, te_texts)])
            pred = indicators(decide_sets(probs, LABELS, tune(y, oof), True), LABELS, "bench")
            out.append(["pool only" if variant[0] is None else f"p >= {variant[0]}, weight {variant[1]:g} ({n} added)", f"{micro_f1(gold, pred):.4f}"])
        table("MFRC test (564 comments): micro-F1 against gold", ["student", "micro-F1"], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
