"""The example project on the real shared data (../shared beside the checkout, as in CI)."""

import json
from pathlib import Path

import pytest
import yaml

from graduate import Project
from graduate.spec.evaluation import DEFAULT_IDENTITY_TERMS

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
    for rv in raw["reviews"]:
        rv["path"] = str((base / rv["path"]).resolve())
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
    # The reviewed identity slice (reviews/identity-slice.csv): every row names a pool item, each
    # becomes a human label, and those that differ from GPT-4's win in the training set.
    (rv,) = summary["reviews"]
    assert rv["rows"] == rv["added"] == 224 and rv["skipped_count"] == 0
    human = next(s for s in summary["dataset"]["recipe"]["steps"] if s["step"] == "human_labels")
    assert 20 <= human["changed"] <= 40 and human["changed"] + human["confirmed"] + human["added"] >= 200
    student = tb["students"]["tfidf-logreg"]
    assert student["accuracy"] > 0.85
    assert ti["students"]["tfidf-logreg"]["accuracy"] > 0.9
    # The identity statements (examples/toxicity/identity_statements.csv): 25 terms x 25 non-toxic
    # and 10 toxic templates; the worst of the 13 evaluated terms has 25 non-toxic statements.
    ids = summary["test_sets"]["identity.statements"]
    assert ids["n"] == 875 and ids["label_counts"] == {"ok": 625, "bad": 250}
    figs = json.loads(Path(summary["evaluation"]).read_text())["test_sets"]["identity.statements"]["students"]["tfidf-logreg"]
    worst = figs["worst_identity"]
    assert worst["negatives"] == 25 and worst["term"] in DEFAULT_IDENTITY_TERMS
    assert figs["worst_identity_fpr"] == worst["fpr"] == worst["false_positives"] / 25
    # the student is orders of magnitude cheaper than the teacher
    assert student["cost_per_1k_usd"] < summary["teacher"]["cost_per_1k_usd"] / 1000


def test_identity_statements_csv_is_what_its_generator_writes(tmp_path):
    import importlib.util

    script = EXAMPLE.parent / "identity_statements.py"
    mod_spec = importlib.util.spec_from_file_location("identity_statements", script)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    assert mod.write(tmp_path / "s.csv") == 875
    assert (tmp_path / "s.csv").read_bytes() == (EXAMPLE.parent / "identity_statements.csv").read_bytes()
    assert mod.TERMS[:13] == DEFAULT_IDENTITY_TERMS  # the example's evaluation.identity_terms come first


def test_identity_review_csv_is_what_its_generator_writes():
    import importlib.util

    script = EXAMPLE.parent / "identity_review.py"
    mod_spec = importlib.util.spec_from_file_location("identity_review", script)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    if not SHARED.exists():
        pytest.skip("../shared/data is not beside this checkout")
    rows = mod.slice_rows()
    import csv

    with (EXAMPLE.parent / "reviews" / "identity-slice.csv").open(newline="", encoding="utf-8") as f:
        shipped = list(csv.DictReader(f))
    assert shipped == rows and len(rows) == 224
    assert {r["corrected_label"] for r in rows} == {"ok", "bad"} and all("comment_text" not in r for r in rows)  # ids and labels, no text
