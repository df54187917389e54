"""Counterfactual augmentation on the toxicity example (issue 14): the pool's non-toxic items that
name an identity term get copies with the other terms swapped in (labels kept), and the bias pair
is measured before and after, with both test sets, for a student trained on each pool.

    .venv/bin/python benchmarks/bench_augment.py [--student tfidf-logreg] [--per-item 3,12] [--target homosexual]
    .venv/bin/python benchmarks/bench_augment.py --student ensemble --prior bad=0.1,ok=0.9 --per-item 12   # the example's best student
    .venv/bin/python benchmarks/bench_augment.py --student ensemble --prior bad=0.1,ok=0.9 --per-item 12 \
        --params '{"members": [{"kind": "encoder", "params": {"max_length": 96}}, {"kind": "tfidf-logreg", "use_weights": false}]}'

With --target, two more rows: targeted additions only (copies that put that term in), and the
largest --per-item followed by them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import example_copy, table  # noqa: E402


def figures(project, student: str) -> dict:
    from scipy.stats import binomtest

    e = json.loads((project.workdir / "evaluation.json").read_text())
    b = e["bias"]["students"][student]
    eligible = [t for t in b["terms"] if t["negatives_perturbed"] >= 20]
    worst = max(eligible, key=lambda t: t["fpr_perturbed"])
    homo = next(t for t in b["terms"] if t["term"] == "homosexual")
    k = round(homo["fpr_perturbed"] * homo["negatives_perturbed"])
    ci = binomtest(k, homo["negatives_perturbed"]).proportion_ci(method="wilson")
    acc = {n: e["test_sets"][n]["students"][student]["accuracy"] for n in ("test.balanced", "test.indist")}
    st = e["test_sets"].get("identity.statements")
    statements = "–"
    if st is not None:  # the example's templated identity statements: worst of the 13 terms, and every term's non-toxic ones
        s = st["students"][student]
        w = s["worst_identity"]
        statements = f"{w['term']} {w['false_positives']}/{w['negatives']}; all {s['fpr']:.3f}; TPR {s['tpr']:.2f}"
    return {
        "test.balanced": f"{acc['test.balanced']:.4f}",
        "test.indist": f"{acc['test.indist']:.4f}",
        "FPR 'homosexual' (fuzzed) [95% CI]": f"{homo['fpr_perturbed']:.3f} [{ci.low:.2f}, {ci.high:.2f}] of {homo['negatives_perturbed']}",
        "worst term FPR": f"{worst['term']} {worst['fpr_perturbed']:.3f}",
        "FPR all (fuzzed)": f"{b['fpr_perturbed']:.4f}",
        "mean |shift|": f"{b['mean_abs_shift']:.4f}",
        "identity statements: worst term; FPR all; TPR": statements,
    }


def review_identity_slice(proj) -> dict:
    """The teacher-labelled pool items naming an identity term, reviewed: the data's gold label goes
    in as a human label (graduate's review-queue import), as a reviewer checking that slice would."""
    import csv

    from graduate.data.review import import_review
    from graduate.evaluate.slices import identity_pattern

    src = next(d for d in proj.spec.data if d.name == proj.spec.train.source)
    with open(src.path, newline="", encoding="utf-8") as f:
        gold = {r[src.id_column]: src.gold_values[r[src.gold_column]] for r in csv.DictReader(f)}
    dataset = proj.build_training_set(name="bench.review-base")
    pats = [identity_pattern(t) for t in proj.spec.evaluation.identity_terms]
    path = proj.workdir / "identity-review.csv"
    rows = [ex for ex in dataset.examples if ex.source == src.name and any(p.search(ex.text) for p in pats)]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["example_id", "source", "external_id", "corrected_label", "reviewer"])
        for ex in rows:
            w.writerow([ex.id, ex.source, ex.external_id, gold[ex.external_id], "gold"])
    imported = import_review(proj.engine, path, proj.spec.task.labels)
    return {"reviewed": len(rows), "corrected": imported.overrides_teacher}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="tfidf-logreg")
    ap.add_argument("--per-item", default="3,12")
    ap.add_argument("--target", default=None, help="also: targeted additions for this term's slice (graduate augment --target)")
    ap.add_argument("--prior", help="train with clean.balance strategy prior, e.g. bad=0.1,ok=0.9 (the example's best student)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", default=None, help='the student\'s params as JSON, e.g. \'{"members": [{"kind": "encoder", "params": {"max_length": 96}}, {"kind": "tfidf-logreg", "use_weights": false}]}\'')
    ap.add_argument("--no-baseline", action="store_true", help="skip the row without added items")
    ap.add_argument("--labels", default="ok", help="swap only in items with these labels (comma-separated; 'all': every label)")
    ap.add_argument("--review-identity", action="store_true",
                    help="first, a simulated reviewer (the data's gold) corrects the teacher's labels of the pool items that name an identity term")
    ap.add_argument("--also", default=None, help="a second pass, LABEL:K: K swaps per item of that label (e.g. bad:12 evens out the terms in toxic items too)")
    args = ap.parse_args()
    from graduate.cli.console import quiet_libraries
    from graduate.pipeline.project import Project

    quiet_libraries()
    rows = []
    sizes = [int(x) for x in args.per_item.split(",")]
    variants = [(n, None) for n in dict.fromkeys(([] if args.no_baseline else [0]) + sizes)] + ([(0, args.target), (max(sizes), args.target)] if args.target else [])
    for per_item, target in variants:
        project = example_copy(Path(tempfile.mkdtemp(prefix="bench-augment-")) / "toxicity")
        raw = yaml.safe_load((project / "graduate.yaml").read_text())
        raw["students"], raw["gates"] = [{"kind": args.student, **({"params": json.loads(args.params)} if args.params else {})}], []
        raw["augment"] = {"counterfactual": {"per_item": max(per_item, 1), "labels": [] if args.labels == "all" else args.labels.split(",")}}
        raw["seed"] = args.seed
        if args.prior:
            prior = {k.strip(): float(v) for k, v in (part.split("=") for part in args.prior.split(","))}
            raw.setdefault("clean", {})["balance"] = {"strategy": "prior", "prior": prior}
        (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        proj = Project.load(project)
        added = 0
        if per_item or target or args.review_identity:
            proj.import_logs()
            proj.load_data()
        reviewed = review_identity_slice(proj) if args.review_identity else None
        if per_item:
            added = proj.augment().added
        if per_item and args.also:
            lab, k = args.also.split(":")
            raw["augment"]["counterfactual"] = {"per_item": int(k), "labels": [lab]}
            (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            proj = Project.load(project)
            added += proj.augment().added
        if target:
            added += proj.augment(target=target).added
        summary = Project.load(project).run()
        f = figures(Project.load(project), args.student)
        label = ("reviewed identity slice + " if reviewed else "") + (str(per_item) if per_item else ("none" if not target else "0")) + (f" + {args.also}" if per_item and args.also else "") + (f" + targeted '{target}'" if target else "")
        rows.append([label, added, summary["dataset"]["size"], *f.values()])
    table(
        f"counterfactual augmentation (identity terms, items labelled {args.labels}), {args.student} on examples/toxicity",
        ["copies per item", "items added", "train size", "test.balanced", "test.indist", "FPR 'homosexual' (fuzzed) [95% CI]", "worst term FPR", "FPR all (fuzzed)", "mean |shift|", "identity statements: worst term; FPR all; TPR"],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
