"""The tiny real project with the identity-term bias pair (tests/fixtures/bias) and gates, for the
evaluation tests (tests/evaluate) and the CLI tests (tests/cli)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"

GATES = [
    "student.accuracy >= 0.5 * teacher.accuracy on test.balanced",
    "student.latency_p99_ms <= 1000",
    "student.cost_per_1k <= 0.001 * teacher.cost_per_1k",
    "student[tfidf-logreg].accuracy >= teacher.accuracy + 0.5 on test.balanced",  # fails on purpose
    "student.bias_mean_abs_shift <= 1",
]


def add_evaluation(project: Path, gates: list[str] | None = None) -> Path:
    """Add the bias pair (as two test sets of purpose bias) and gates to a copy of the tiny project."""
    shutil.copy(FIXTURES / "bias" / "original.csv", project / "bias_original.csv")
    shutil.copy(FIXTURES / "bias" / "fuzzed.csv", project / "bias_fuzzed.csv")
    spec_path = project / "graduate.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    for name in ("original", "fuzzed"):
        raw["data"].append(
            {"name": f"bias_{name}", "path": f"bias_{name}.csv", "id_column": "rev_id", "text_column": "comment", "gold_column": "toxic", "gold_values": {"False": "ok", "True": "bad"}}
        )
        raw["test_sets"].append({"name": f"bias.{name}", "source": f"bias_{name}", "purpose": "bias"})
    raw["evaluation"] = {"bias_pair": {"original": "bias.original", "perturbed": "bias.fuzzed"}, "latency_items": 50, "min_slice_size": 3}
    raw["gates"] = GATES if gates is None else gates
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def copy_tiny(dst: Path) -> Path:
    shutil.copytree(FIXTURES / "tiny", dst, ignore=shutil.ignore_patterns(".graduate"))
    return dst
