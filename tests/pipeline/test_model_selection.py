"""model_selection: the best student is picked on a validation split carved from the training set
(scored against its training labels), or named in the spec; the test sets never pick."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.data.augment import SOURCE as MADE
from graduate.data.validation import carve_validation, unit_hash
from graduate.errors import SpecError
from graduate.evaluate.cascade import VALIDATION_SET, plan_cascade
from graduate.pipeline import run as run_step
from graduate.pipeline.project import Project
from graduate.pipeline.select import pick
from graduate.spec import parse_spec
from graduate.store.lineage import parents
from graduate.store.runs import get_runs
from teacher.live_teacher import cli_env


def _edit(project: Path, **sections) -> Project:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.update(sections)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Project.load(project)


SMALL = {"validation_share": 0.3, "min_items": 10}


def test_run_holds_out_a_validation_split_and_picks_on_it(tiny_project: Path) -> None:
    proj = _edit(tiny_project, model_selection=SMALL)
    result = run_step.run(proj)
    full = proj.build_training_set()
    split = carve_validation(proj.engine, proj.spec, full)
    assert split.validation is not None and split.report["held_out"] == len(split.validation.examples) > 0
    held = {ex.text_hash for ex in split.validation.examples}
    assert not held & {ex.text_hash for ex in split.train.examples}  # no held-out text is trained on
    assert len(split.train.examples) + len(split.validation.examples) == len(full.examples)

    sel = result.summary["model_selection"]
    assert sel["split"]["held_out"] == len(held) and sel["split"]["trained_on"] == len(split.train.examples)
    runs = {r.id: r for r in get_runs(proj.engine, kind="train", status="finished")}
    scores = {}
    for tr in result.trained:
        run = runs[tr.run_id]
        assert run.metrics["train_size"] == len(split.train.examples)
        v = run.metrics["validation"]
        # the recorded score is the student's agreement with the held-out items' training labels
        pred = tr.student.decide(tr.student.predict_proba(split.validation.texts))
        assert v["n"] == len(held) and v["score"] == pytest.approx(sum(p == g for p, g in zip(pred, split.validation.labels)) / len(held))
        assert v["ci"][0] <= v["score"] <= v["ci"][1]
        scores[tr.name] = v["score"]
    best = max(scores, key=lambda n: (scores[n], -list(scores).index(n)))
    assert result.summary["best_student"] == best == sel["best_student"] == proj.best_student()[1].name
    assert "validation split" in sel["why"] and sel["validation"][best]["score"] == scores[best]
    assert json.loads((proj.workdir / "evaluation.json").read_text())["model_selection"]["best_student"] == best

    # the report shows each student's validation score and why the best was picked
    html = (proj.workdir / "report.html").read_text()
    assert f"{scores[best]:.3f}" in html and "★ best student: highest accuracy on the validation split" in html

    # with no calibration set, serve-plan chooses the guaranteed threshold on the held-out split:
    # the best student's stored predictions there, against the teacher's labels
    plans = plan_cascade(proj, write=False)
    assert plans and all(p.test_set != VALIDATION_SET for p in plans)
    g = plans[0].guarantee
    assert g is not None and g.calibration_set == VALIDATION_SET and g.n == sum(w == proj.spec.teacher.labeller for w in split.validation.producers)
    assert any("validation split held out of training" in n for n in plans[0].notes)
    assert all(ts in g.held_out for ts in ("test.balanced",))

    # `graduate evaluate` (no training) picks the same student from the stored validation scores
    assert proj.evaluate()["best_student"] == best
    # and serve-plan after it still chooses on the held-out split the run stored for that student
    # (it fell back to picking on the test sets, without a guarantee)
    again = plan_cascade(proj, write=False)
    assert again[0].guarantee is not None and again[0].guarantee.calibration_set == VALIDATION_SET
    assert (again[0].guarantee.threshold, again[0].guarantee.n) == (g.threshold, g.n)
    assert any("validation split held out of training" in n for n in again[0].notes)
    # the command says which threshold to serve: the test-set pick printed beside the guarantee is
    # only for comparison (it stood there with no word on which to trust)
    proj.engine.dispose()
    cli = subprocess.run([sys.executable, "-m", "graduate", "serve-plan", str(tiny_project)], capture_output=True, text=True, env={**cli_env(), "COLUMNS": "300"}, timeout=300)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    flat = " ".join(cli.stdout.split())
    if g.threshold is not None:
        assert f"(this suggestion is picked on test.balanced itself, for comparison; serve the guaranteed {g.threshold:.4f})" in flat, flat
    else:
        assert "the guarantee found no threshold, so this one carries no guarantee" in flat, flat


def test_pick_follows_the_validation_scores_never_anything_else() -> None:
    spec = parse_spec(yaml.safe_load((Path(__file__).parents[1] / "fixtures/tiny/graduate.yaml").read_text()), path="graduate.yaml")
    v = lambda s: {"metric": "accuracy", "n": 100, "score": s}  # noqa: E731
    assert pick(spec, {"majority": v(0.8), "tfidf-logreg": v(0.7)})[0] == "majority"
    assert pick(spec, {"majority": v(0.7), "tfidf-logreg": v(0.8)})[0] == "tfidf-logreg"
    assert pick(spec, {"majority": v(0.8), "tfidf-logreg": v(0.8)})[0] == "majority"  # ties: the first listed (the smaller)
    assert pick(spec, {"majority": None, "tfidf-logreg": v(0.1)})[0] == "tfidf-logreg"  # a score beats none
    name, why = pick(spec, {"majority": None, "tfidf-logreg": None})
    assert name == "tfidf-logreg" and "no validation split" in why
    assert pick(spec, {"majority": v(0.9)}) == ("majority", "the only student")
    assert pick(spec, {}) == (None, "no trained student")


def test_pick_compares_scores_only_on_the_same_split_and_names_the_others() -> None:
    raw = yaml.safe_load((Path(__file__).parents[1] / "fixtures/tiny/graduate.yaml").read_text())
    raw["students"] = [*raw["students"], {"kind": "tfidf-logreg", "name": "tfidf2", "params": {"C": 2.0}}]
    spec = parse_spec(raw, path="graduate.yaml")
    assert [s.label for s in spec.students] == ["majority", "tfidf-logreg", "tfidf2"]
    v = lambda s, h: {"metric": "accuracy", "n": 100, "score": s, "dataset_hash": h}  # noqa: E731
    # two students on split A, one (higher, but on other items) on split B: B's score is not compared
    name, why = pick(spec, {"majority": v(0.7, "A"), "tfidf-logreg": v(0.95, "B"), "tfidf2": v(0.8, "A")})
    assert name == "tfidf2" and "tfidf-logreg scored on another split" in why
    # one each: the first listed student's split
    name, why = pick(spec, {"majority": v(0.7, "A"), "tfidf-logreg": v(0.95, "B"), "tfidf2": v(0.8, "C")})
    assert name == "majority" and "tfidf-logreg, tfidf2 scored on another split" in why
    # a student trained without a split (trained on the held-out items too) is named, never compared
    name, why = pick(spec, {"majority": v(0.7, "A"), "tfidf-logreg": None, "tfidf2": v(0.8, "A")})
    assert name == "tfidf2" and "tfidf-logreg not scored on one" in why
    # all on one split: nothing named
    name, why = pick(spec, {"majority": v(0.7, "A"), "tfidf-logreg": v(0.95, "A"), "tfidf2": v(0.8, "A")})
    assert name == "tfidf-logreg" and "not compared" not in why


def test_a_named_student_is_used_and_nothing_is_held_out(tiny_project: Path) -> None:
    proj = _edit(tiny_project, model_selection={**SMALL, "student": "majority"})
    summary = proj.run()
    assert summary["best_student"] == "majority" == proj.best_student()[1].name
    assert summary["model_selection"]["split"]["held_out"] == 0
    assert all(r.metrics["train_size"] == summary["dataset"]["size"] for r in get_runs(proj.engine, kind="train", status="finished"))
    assert all("validation" not in r.metrics for r in get_runs(proj.engine, kind="train", status="finished"))


def test_a_training_set_too_small_to_split_uses_the_last_listed_student_and_says_why(trained_copy: Path) -> None:
    proj = Project.load(trained_copy)  # defaults: min_items 50, the tiny pool is under 200 items
    summary = json.loads((proj.workdir / "summary.json").read_text())
    assert summary["model_selection"]["split"]["held_out"] == 0 and "min_items" in summary["model_selection"]["split"]["reason"]
    assert summary["best_student"] == proj.spec.students[-1].label == proj.best_student()[1].name


def test_items_made_from_a_held_out_item_are_held_out_with_it(tiny_project: Path) -> None:
    proj = _edit(tiny_project, model_selection=SMALL, augment={"term_lists": {"identity": ["you", "they", "we", "people"]}, "counterfactual": {"per_item": 3}})
    proj.run()
    proj.augment()
    full = proj.build_training_set()
    made = [ex for ex in full.examples if ex.source == MADE]
    assert made
    split = carve_validation(proj.engine, proj.spec, full)
    assert split.validation is not None and all(ex.source != MADE for ex in split.validation.examples)
    held_ids = {ex.id for ex in split.validation.examples}
    parent_of = parents(proj.engine, [ex.id for ex in made])
    trained_made = [ex for ex in split.train.examples if ex.source == MADE]
    assert all(parent_of[ex.id] not in held_ids for ex in trained_made)
    left_out = len(made) - len(trained_made)
    assert left_out == split.report["made_items_held_out"] == sum(parent_of[ex.id] in held_ids for ex in made) > 0


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=300), seed=st.integers(-(2**63), 2**63))
def test_the_split_hash_is_a_number_in_the_unit_interval_for_any_key(key: str, seed: int) -> None:
    u = unit_hash(key, seed)
    assert 0 <= u < 1 and u == unit_hash(key, seed)


def test_a_larger_pool_only_moves_items_into_training(tiny_project: Path) -> None:
    """The share shrinks under max_items as the pool grows: items leave the validation split, none
    that trained before is held out later."""
    proj = _edit(tiny_project, model_selection={"validation_share": 0.5, "min_items": 10, "max_items": 40})
    proj.run()
    full = proj.build_training_set()
    small = full.take(list(range(0, len(full.examples), 2)), name="half", step={"step": "test"})
    a, b = carve_validation(proj.engine, proj.spec, small), carve_validation(proj.engine, proj.spec, full)
    assert a.validation is not None and b.validation is not None
    trained_before = {ex.id for ex in a.train.examples}
    assert not trained_before & {ex.id for ex in b.validation.examples}


@pytest.mark.parametrize(
    "section, message",
    [
        ({"student": "nope"}, "model_selection.student: 'nope' is not one of students"),
        ({"min_items": 100, "max_items": 50}, "model_selection.max_items (50) must be at least min_items (100)"),
        ({"validation_share": 0.9}, "model_selection.validation_share"),
    ],
)
def test_a_bad_model_selection_is_one_line_naming_the_field(tiny_project: Path, section: dict, message: str) -> None:
    path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["model_selection"] = section
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(SpecError, match="model_selection"):
        Project.load(tiny_project)
    out = subprocess.run([sys.executable, "-m", "graduate", "check", str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in out.stderr
