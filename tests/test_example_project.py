"""The example project on the real shared data (../shared beside the checkout, as in CI)."""

from pathlib import Path

import pytest
import yaml

from graduate import Project

EXAMPLE = Path(__file__).parents[1] / "examples" / "toxicity" / "graduate.yaml"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "jigsaw"


def example_copy(tmp_path: Path) -> Path:
    """The example spec with its paths made absolute, so its store and artifacts go to tmp."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    base = EXAMPLE.parent
    for d in raw["data"]:
        d["path"] = str((base / d["path"]).resolve())
    for log in raw["teacher_logs"]:
        log["input"] = str((base / log["input"]).resolve())
        log["output"] = str((base / log["output"]).resolve())
    # The raw pool and one fast student: the published figures. The example's ensemble, its prior
    # weights and counterfactual copies (make demo: ~8 minutes) are benchmarks/bench_demo.py's.
    raw["students"] = [{"kind": "tfidf-logreg"}]
    raw.pop("clean", None)
    raw.pop("augment", None)
    (tmp_path / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp_path


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not beside this checkout")
def test_example_reproduces_published_teacher_figures(tmp_path):
    summary = Project.load(example_copy(tmp_path)).run()
    tb, ti = summary["test_sets"]["test.balanced"], summary["test_sets"]["test.indist"]
    # From the raw recorded GPT-4 answers, against gold (shared/data/README.md).
    assert (tb["n"], ti["n"]) == (400, 440)
    assert tb["teacher"]["accuracy"] == pytest.approx(0.8875, abs=1e-3)
    assert ti["teacher"]["accuracy"] == pytest.approx(0.909, abs=1e-3)
    assert summary["imports"][2]["failed_calls"] == 5 and summary["imports"][3]["failed_calls"] == 1
    assert 7500 < summary["dataset"]["size"] < 8300
    student = tb["students"]["tfidf-logreg"]
    assert student["accuracy"] > 0.85
    assert ti["students"]["tfidf-logreg"]["accuracy"] > 0.9
    # the student is orders of magnitude cheaper than the teacher
    assert student["cost_per_1k_usd"] < summary["teacher"]["cost_per_1k_usd"] / 1000
