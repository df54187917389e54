"""Active selection vs random at the same budget (issue 14), on the toxicity example: the teacher's
recorded GPT-4 answers for the training pool stand in for live calls. Per seed: a random seed set
of 300 labelled items, a tfidf-logreg student trained on it, then 500 or 1,000 more items chosen
at random or by `graduate select`'s rule (uncertainty of that student + k-means diversity); the
student retrained on seed + chosen is scored against gold on test.balanced and test.indist.

    .venv/bin/python benchmarks/bench_select.py [--seeds 5] [--budgets 500,1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import example_copy, table  # noqa: E402

from graduate.data.active import select_items, text_vectors, uncertainty  # noqa: E402
from graduate.pipeline.project import Project  # noqa: E402
from graduate.students.registry import make_student  # noqa: E402

SEED_SET = 300


def accuracy(student, texts: list[str], gold: list[str]) -> float:
    return float(np.mean([p == g for p, g in zip(student.decide(student.predict_proba(texts)), gold)]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="500,1000")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    project = example_copy(Path(tempfile.mkdtemp(prefix="bench-select-")))
    proj = Project.load(project)
    proj.import_logs()
    proj.load_data()
    ds = proj.build_training_set()
    texts, labels = [ex.text for ex in ds.examples], list(ds.labels)
    tests = {t.name: ([ex.text for ex in t.examples], t.gold) for t in proj.load_test_sets() if t.name in ("test.balanced", "test.indist")}
    task_labels = proj.spec.task.labels

    def train(idx: list[int], prior_from: list[int] | None = None):
        s = make_student("tfidf-logreg", task_labels, {})
        ys = [labels[i] for i in idx]
        weights = None
        if prior_from is not None:  # weight classes back to the prior of a random sample (the seed set)
            want = {c: max(1e-9, np.mean([labels[i] == c for i in prior_from])) for c in task_labels}
            have = {c: max(1e-9, np.mean([y == c for y in ys])) for c in task_labels}
            weights = [want[y] / have[y] for y in ys]
        s.fit([texts[i] for i in idx], ys, sample_weight=weights)
        return s

    results: dict[tuple[str, int, str], list[float]] = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(texts))
        start, pool = list(order[:SEED_SET]), list(order[SEED_SET:])
        first = train(start)
        for name, (tt, gold) in tests.items():
            results.setdefault(("seed set", SEED_SET, name), []).append(accuracy(first, tt, gold))
        pool_texts = [texts[i] for i in pool]
        scores = uncertainty(first.predict_proba(pool_texts))
        vectors = text_vectors(pool_texts, seed=seed)
        for n in budgets:
            chosen = {
                "random": list(rng.choice(len(pool), size=n, replace=False)),
                "uncertainty only": list(np.argsort(-scores, kind="stable")[:n]),
                "select (uncertainty + diversity)": select_items(scores, vectors, n, seed=seed),
            }
            for method, picks in chosen.items():
                student = train(start + [pool[i] for i in picks])
                for name, (tt, gold) in tests.items():
                    results.setdefault((method, n, name), []).append(accuracy(student, tt, gold))
                if method != "random":
                    student = train(start + [pool[i] for i in picks], prior_from=start)
                    for name, (tt, gold) in tests.items():
                        results.setdefault((method + ", prior-weighted", n, name), []).append(accuracy(student, tt, gold))
    rows = []
    for (method, n, name), accs in results.items():
        a = np.array(accs)
        half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0
        rows.append([method, f"{SEED_SET} + {n}" if method != "seed set" else str(SEED_SET), name, f"{a.mean():.3f} ± {half:.3f}", f"{a.min():.3f}–{a.max():.3f}"])
    rows.sort(key=lambda r: (r[2], r[1], r[0]))
    table(
        f"tfidf-logreg accuracy vs gold after choosing items at the same budget ({args.seeds} seeds; mean ± 95% CI of the mean over seeds)",
        ["how chosen", "labelled items", "test set", "accuracy", "range"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
