"""`graduate evaluate` and `graduate report` on the example project (4 test sets: 400 + 440 items
and the 1,492-pair bias set): wall time of an evaluation from the store and of the report, the
report's size, and the figures the gates judge (targets: evaluate < 30 s, report < 10 s, < 2 MB).

    .venv/bin/python benchmarks/bench_evaluate.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import example_copy, table  # noqa: E402


def main() -> None:
    from graduate import Project

    with tempfile.TemporaryDirectory() as d:
        project = example_copy(Path(d) / "toxicity")
        t0 = time.perf_counter()
        summary = Project.load(project).run()
        run_s = time.perf_counter() - t0
        proj = Project.load(project)
        t0 = time.perf_counter()
        a = proj.evaluate()
        evaluate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        path = proj.report()
        report_s = time.perf_counter() - t0
        size = path.stat().st_size
        t0 = time.perf_counter()
        analysis = proj.error_analysis()
        errors_s = time.perf_counter() - t0
    table(
        "evaluation of the example project (2 cores)",
        ["step", "wall s", "note"],
        [
            ["graduate run (fresh store, incl. assessment + report)", f"{run_s:.1f}", f"assessment {summary['timings']['assess_s']:.1f} s"],
            ["graduate evaluate (from the store)", f"{evaluate_s:.1f}", f"{sum(t['n'] for t in a['test_sets'].values())} items, {proj.spec.evaluation.bootstrap_resamples} bootstrap resamples"],
            ["graduate report", f"{report_s:.1f}", f"{size / 1024:.0f} KB, one file"],
            ["graduate errors (analysis)", f"{errors_s:.2f}", f"{len(analysis.rows)} items in the review queue"],
        ],
    )
    rows = []
    for name, s in a["serving"]["students"].items():
        rows.append([name, f"{s['latency_p50_ms']:.3f}", f"{s['latency_p95_ms']:.3f}", f"{s['latency_p99_ms']:.3f}", f"{s['batch_ms_per_item']:.4f}", f"${s['cost_per_1k']:.2e}"])
    t = a["serving"]["teacher"]
    rows.append(["teacher", "–", "–", "–", "–", f"${t['cost_per_1k']:.3f} (est.)"])
    table("latency (single-item, ms) and cost", ["predictor", "p50", "p95", "p99", "batch ms/item", "cost / 1k"], rows)
    table("gates", ["gate", "test set", "figures", "result"], [[g["gate"], g["test_set"] or "–", g["detail"], "PASS" if g["passed"] else "FAIL"] for g in a["gates"]])


if __name__ == "__main__":
    main()
