"""Label quality on the example project: the tfidf-logreg student trained on (a) raw GPT-4 labels,
(b) cleaned labels (near duplicates and cleanlab label issues removed; b2 down-weighted instead),
(c) an ensemble / self-consistency of the recorded teachers, (d) (b) plus 300 gold corrections from
the review queue (a simulated reviewer), each scored against gold; and the teacher audit.

    .venv/bin/python benchmarks/bench_label_quality.py [--review-items 300]

Writes the figures to examples/toxicity/.graduate/label_quality.json and summary.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import EXAMPLE, table  # noqa: E402


def main() -> None:
    from graduate.experiments.label_quality import compare_label_quality

    ap = argparse.ArgumentParser()
    ap.add_argument("--review-items", type=int, default=300)
    args = ap.parse_args()
    result = compare_label_quality(EXAMPLE.parent, review_items=args.review_items)
    tests = list(next(iter(result["variants"].values()))["tests"])
    rows = []
    for key, v in result["variants"].items():
        cells = []
        for n in tests:
            m = v["tests"][n]
            d = m.get("accuracy_vs_raw")
            cells += [f"{m['accuracy']:.4f}", "–" if not d else f"{d['difference']:+.4f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]", f"{m['f1']:.3f}"]
        rows.append([key, v["train_size"], f"{v['train_label_accuracy_vs_gold']:.4f}", *cells])
    table(
        f"{result['student']} on versions of the training labels, against gold ({result['seconds']:.0f} s)",
        ["labels", "items", "labels right", *[c for n in tests for c in (f"{n} acc", "vs a [95% CI]", "F1")]],
        rows,
    )
    audit = Path(result["scratch_store"]) / "audit.json"
    if audit.exists():
        import json

        a = json.loads(audit.read_text())
        table(
            "teacher audit on test.balanced (from the raw recorded answers)",
            ["configuration", "accuracy", "F1", "FPR", "TPR", "cost / 1k (est.)", "flags"],
            [
                [c["name"], f"{c['sets']['test.balanced'].get('accuracy') or 0:.4f}", f"{c['sets']['test.balanced'].get('f1') or 0:.3f}",
                 f"{c['sets']['test.balanced'].get('fpr') or 0:.3f}", f"{c['sets']['test.balanced'].get('tpr') or 0:.3f}",
                 f"${c['sets']['test.balanced'].get('cost_per_1k_usd') or 0:.3f}", ", ".join(sorted({f['flag'] for f in c.get('flags', [])}))]
                for c in a["configs"]
            ],
        )
    for n in result["notes"]:
        print("note:", n)


if __name__ == "__main__":
    main()
