"""`graduate run` on the example project as shipped (what `make demo` runs): wall time of a first run
(fresh store: import, counterfactual copies, training the ensemble) and a second run (nothing
re-imported or added, students reused), the figures it reports and its gates (target: first run
at most 10 minutes on 2 cores).

    .venv/bin/python benchmarks/bench_demo.py [--seed N] [--once] [--max-length N] [--encoder KEY=VALUE ...]

``--seed`` sets the example's ``seed:`` (the split, the encoder's initialisation and batches);
``--once`` skips the second run; ``--max-length`` sets the ensemble's encoder's token limit;
``--no-reviews`` leaves out the example's review files (``reviews:``); ``--encoder KEY=VALUE`` (repeatable, VALUE read as YAML) sets any other param of that encoder, e.g.
``--encoder pairing_weight=1 --encoder pairing_terms=identity`` (``identity``: the spec's
``evaluation.identity_terms``, or the 13 terms of the TF-IDF member's ``masked_terms``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import example_copy, table  # noqa: E402


def run(project: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "graduate", "run", str(project)], check=True, capture_output=True)
    return time.perf_counter() - t0, json.loads((project / ".graduate" / "summary.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument("--encoder", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--no-reviews", action="store_true", help="leave out the example's review files (reviews: in graduate.yaml), to measure what they add")
    args = ap.parse_args()
    encoder_params = {}
    for kv in args.encoder:
        key, sep, value = kv.partition("=")
        if not sep:
            ap.error(f"--encoder {kv!r}: give KEY=VALUE")
        encoder_params[key] = yaml.safe_load(value)
    with tempfile.TemporaryDirectory() as d:
        project = example_copy(Path(d) / "toxicity", as_shipped=True)
        if args.seed is not None or args.max_length is not None or encoder_params or args.no_reviews:
            spec = project / "graduate.yaml"
            raw = yaml.safe_load(spec.read_text())
            if args.seed is not None:
                raw["seed"] = args.seed
            if args.no_reviews:
                raw.pop("reviews", None)
            ensemble = next(s for s in raw["students"] if s["kind"] == "ensemble")
            encoder = next(m for m in ensemble["params"]["members"] if m["kind"] == "encoder")["params"]
            if args.max_length is not None:
                encoder["max_length"] = args.max_length
            if encoder_params.get("pairing_terms") == "identity":
                masked = [m["params"].get("masked_terms") for m in ensemble["params"]["members"] if m["kind"] == "tfidf-logreg"]
                encoder_params["pairing_terms"] = raw.get("evaluation", {}).get("identity_terms") or next(t for t in masked if t)
            encoder.update(encoder_params)
            spec.write_text(yaml.safe_dump(raw, sort_keys=False))
        first, s1 = run(project)
        rows = [["first (fresh store)", f"{first:.1f}", f"{s1['timings']['import_logs_s']:.1f}", f"{s1['timings']['train_s']:.1f}", sum(i["added"] for i in s1["imports"]), any(s["reused"] for s in s1["students"].values())]]
        if not args.once:
            second, s2 = run(project)
            rows.append(["second", f"{second:.1f}", f"{s2['timings']['import_logs_s']:.2f}", f"{s2['timings']['train_s']:.1f}", sum(i["added"] for i in s2["imports"]), all(s["reused"] for s in s2["students"].values())])
        e = json.loads((project / ".graduate" / "evaluation.json").read_text())
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        seed = args.seed if args.seed is not None else 0
        tag = f"demo-seed{seed}" + ("-noreviews" if args.no_reviews else "") + (f"-len{args.max_length}" if args.max_length else "") + "".join(f"-{k}{v}" for k, v in encoder_params.items() if k != "pairing_terms")
        (out / f"{tag}-summary.json").write_text(json.dumps(s1, indent=2))
        (out / f"{tag}-evaluation.json").write_text(json.dumps(e, indent=2))
    table(f"graduate run examples/toxicity (2 cores, seed {args.seed if args.seed is not None else 0})", ["run", "wall s", "import s", "train s", "calls added", "students reused"], rows)
    rows = []
    for name, entry in s1["test_sets"].items():
        if "accuracy" not in entry["teacher"]:  # the bias pair: the teacher has no answers there
            continue
        t = entry["teacher"]
        rows.append([f"{name} teacher ({s1['teacher']['model']})", f"{t['accuracy']:.3f}", f"{t['f1']:.3f}", f"{t['fpr']:.3f}", f"${s1['teacher']['cost_per_1k_usd']:.3f} (est.)"])
        for st, m in entry["students"].items():
            rows.append([f"{name} {st}", f"{m['accuracy']:.3f}", f"{m['f1']:.3f}", f"{m['fpr']:.3f}", f"${m['cost_per_1k_usd']:.2e}"])
    table("quality against gold", ["test set / predictor", "accuracy", "F1", "FPR", "cost / 1k"], rows)
    sel = s1["model_selection"]
    table(
        f"model selection: {sel['why']} (held out {sel['split']['held_out']}, trained on {sel['split'].get('trained_on')})",
        ["student", "validation score", "interval", "n"],
        [[n, f"{v['score']:.4f}", f"[{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" if v.get("ci") else "", v["n"]] for n, v in sel["validation"].items() if v],
    )
    best = s1["best_student"]
    b = e["bias"]["students"][best]
    terms = sorted((t for t in b["terms"] if t["negatives_perturbed"] >= 20), key=lambda t: -t["fpr_perturbed"])
    st = (e["test_sets"].get("identity.statements") or {}).get("students", {}).get(best)
    statements = "–"
    if st is not None:
        w = st.get("worst_identity") or {}
        statements = f"{w.get('term')} {w.get('false_positives')}/{w.get('negatives')}; all {st['fpr']:.3f}; toxic flagged {st['tpr']:.3f}"
    failed = [g["gate"] for g in e["gates"] if not g["passed"]]
    table(
        f"the best student ({best}): bias pair, identity statements and serving",
        ["worst term FPR (fuzzed)", "FPR all (fuzzed)", "mean |shift|", "identity statements: worst term; FPR all; toxic flagged", "single-item p99 ms", "gates passed"],
        [[f"{terms[0]['term']} {terms[0]['fpr_perturbed']:.3f} of {terms[0]['negatives_perturbed']}", f"{b['fpr_perturbed']:.4f}", f"{b['mean_abs_shift']:.4f}", statements,
          f"{e['serving']['students'][best]['latency_p99_ms']:.1f}", f"{sum(g['passed'] for g in e['gates'])} of {len(e['gates'])}" + (f" (failed: {'; '.join(failed)})" if failed else "")]],
    )


if __name__ == "__main__":
    main()
