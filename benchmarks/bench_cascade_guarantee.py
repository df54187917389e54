"""The guaranteed cascade on the toxicity example (issue 14): a calibration set carved from the
pool (share 0.2, left out of training), the threshold chosen on it so that agreement with the
teacher (GPT-4) is at least the target with probability 1 - delta, and what that threshold gives
on the held-out test sets: teacher share and observed agreement beside the bound.

    .venv/bin/python benchmarks/bench_cascade_guarantee.py [--student tfidf-logreg] [--targets 0.9,0.95]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import example_copy, table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="tfidf-logreg")
    ap.add_argument("--targets", default="0.9,0.95")
    ap.add_argument("--delta", type=float, default=0.05)
    ap.add_argument("--share", type=float, default=0.2)
    ap.add_argument("--overall", action="store_true", help="hold agreement over all items only (serve.guarantee_per_class: false)")
    args = ap.parse_args()
    from graduate.cli.console import quiet_libraries
    from graduate.evaluate.cascade import plan_cascade
    from graduate.pipeline.project import Project

    quiet_libraries()
    project = example_copy(Path(tempfile.mkdtemp(prefix="bench-guarantee-")) / "toxicity")
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    train = raw["train"]
    raw["test_sets"].append({"name": "calibration", "source": train.get("source"), "tags": train["tags"], "share": args.share, "purpose": "calibration"})
    raw["students"], raw["gates"] = [{"kind": args.student}], []
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    summary = Project.load(project).run()
    rows = []
    for target in [float(t) for t in args.targets.split(",")]:
        raw["serve"] = {**(raw.get("serve") or {}), "guarantee_agreement": target, "guarantee_delta": args.delta, "guarantee_per_class": not args.overall}
        (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        plans = {p.test_set: p for p in plan_cascade(Project.load(project), write=False)}
        g = plans["calibration"].guarantee
        assert g is not None
        for name, p in sorted(plans.items()):
            if name == "calibration" or p.guarantee is None or name not in p.guarantee.held_out:
                continue
            h = p.guarantee.held_out[name]
            rows.append(
                [f"{target:g}", f"{args.delta:g}", g.n, "-" if g.threshold is None else f"{g.threshold:.4f}", f"{g.teacher_share:.1%}", f"{g.agreement_bound:.4f}", name, h["n"], f"{h['teacher_share']:.1%}", f"{h['agreement']:.4f}", f"{h['worst_class_agreement']:.4f}" if "worst_class_agreement" in h else "-", "yes" if h["agreement"] >= target else "NO"]
            )
    table(
        f"guaranteed cascade ({'over all items' if args.overall else 'per teacher class'}), {args.student} on examples/toxicity (trained on {summary['dataset']['size']} items; calibration share {args.share} of the pool)",
        ["target", "delta", "calib n", "threshold", "calib to teacher", "bound", "test set", "n", "to teacher", "agreement", "worst class", "holds"],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
