"""The ladder on the tiny project: climbs smallest first and stops once the gates hold."""

import pytest

from graduate.errors import SpecError
from graduate.experiments.ladder import DEFAULT_GATE, climb_ladder, ladder_rungs
from graduate.pipeline.project import Project
from graduate.store.runs import get_runs


def test_ladder_stops_at_the_first_rung_that_meets_the_gates(tiny_project):
    proj = Project.load(tiny_project)
    gate = "student.accuracy >= 0.6 on test.balanced"
    result = climb_ladder(proj, kinds=["tfidf-logreg", "majority", "embed-logreg"], gates=[gate])
    # majority (0.49) fails, tfidf-logreg (0.63) passes, embed-logreg is never trained.
    assert [r.kind for r in result.rungs] == ["majority", "tfidf-logreg"]
    assert [r.met for r in result.rungs] == [False, True]
    assert result.stopped_at == "tfidf-logreg" and result.gates == [gate]
    top = result.rungs[-1]
    assert top.size_bytes > 0 and top.fit_seconds > 0 and top.cost_per_1k() > 0 and top.latency_ms() > 0
    assert top.gates[0].passed and top.gates[0].left == top.tests["test.balanced"]["accuracy"]
    trained = {r.name for r in get_runs(proj.engine, kind="train", status="finished")}
    assert trained == {"majority", "tfidf-logreg"}
    # The ladder's students are scored like `graduate run`'s: `graduate predict` can pick the best.
    _, best = proj.best_student()
    assert best.name == "tfidf-logreg"
    again = climb_ladder(proj, kinds=["majority", "tfidf-logreg"], gates=[gate])
    assert all(r.reused for r in again.rungs)  # resumable: finished rungs are not retrained


def test_ladder_without_gates_climbs_to_the_teachers_level_and_leaves_llms_out_on_cpu(tiny_project):
    # Issue 17: without gates it climbed every kind up to lora-llm (an LLM fine-tune on CPU).
    proj = Project.load(tiny_project)
    result = climb_ladder(proj, kinds=["majority", "tfidf-logreg"])
    assert result.default_gate and result.gates == [DEFAULT_GATE]
    assert len(result.rungs) == 2 and result.stopped_at is None  # neither reaches 98% of the teacher here
    assert [g.passed for g in result.rungs[0].gates] == [False]
    rungs, left_out = ladder_rungs(proj, None)
    assert left_out == ["lora-llm"] and "lora-llm" not in [r.kind for r in rungs]  # no GPU in CI
    assert ladder_rungs(proj, ["lora-llm"])[1] == []  # named explicitly: trained anyway
    easy = climb_ladder(proj, kinds=["majority", "tfidf-logreg"], gates=["student.accuracy >= 0.5 * teacher.accuracy"])
    assert easy.stopped_at == "majority" and len(easy.rungs) == 1


def test_a_kind_named_twice_is_one_rung(tiny_project):
    result = climb_ladder(Project.load(tiny_project), kinds=["majority", "majority"], gates=["student.accuracy >= 0.99"])
    assert [r.kind for r in result.rungs] == ["majority"]


def test_bad_gate_and_unknown_kind_are_clear(tiny_project):
    proj = Project.load(tiny_project)
    with pytest.raises(SpecError, match="--until: .*unknown test set 'test.nope'"):
        climb_ladder(proj, kinds=["majority"], gates=["student.accuracy >= 0.9 on test.nope"])
    with pytest.raises(SpecError, match=r"unknown student kinds \['bert'\]"):
        climb_ladder(proj, kinds=["bert"])
    # `--rungs ,` gives no kinds: it climbed every kind, lora-llm on a CPU included
    with pytest.raises(SpecError, match=r"--rungs: no student kinds given"):
        climb_ladder(proj, kinds=[])


def test_an_until_gate_on_the_bias_pair_is_left_out_not_refused(tiny_project):
    """The spec has a bias pair; `--until student.bias_fpr_change <= 0.05` was refused as needing
    one. It is checked as the spec's gates are, and left out like them (the ladder cannot judge it)."""
    from eval_project import add_evaluation
    from graduate.experiments.ladder import ladder_gates

    proj = Project.load(add_evaluation(tiny_project, gates=[]))
    usable, skipped = ladder_gates(proj, ["student.bias_fpr_change <= 0.05", "student.accuracy >= 0.5"])
    assert [g.text for g in usable] == ["student.accuracy >= 0.5"] and skipped == ["student.bias_fpr_change <= 0.05"]
    with pytest.raises(SpecError, match="--until: .*unknown metric 'bias_nope'"):
        ladder_gates(proj, ["student.bias_nope <= 0.05"])


def _hold_out(project, share=0.5, min_items=10):
    import yaml

    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["model_selection"] = {"validation_share": share, "min_items": min_items}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_the_climb_is_judged_on_held_out_training_items_with_gold_never_on_a_test_set(tiny_project):
    from sqlalchemy import select

    from graduate.data.examples import labels_for
    from graduate.store.schema import datasets

    _hold_out(tiny_project)
    proj = Project.load(tiny_project)
    result = climb_ladder(proj, kinds=["majority", "tfidf-logreg"], gates=["student.accuracy >= 0.99 * teacher.accuracy on test.balanced"])
    full = proj.build_training_set()
    assert result.judged_on == "validation" and result.judged_note == ""
    n = result.validation_items
    assert 10 <= n < len(full.examples)
    gold = labels_for(proj.engine, [ex.id for ex in full.examples], kind="gold")
    assert all(gold[ex.id] is not None for ex in full.examples)  # the tiny pool is gold-labelled throughout
    for rung in result.rungs:
        # every gate judged on the held-out items, whichever test set it names; the test sets only report
        assert [g.test_set for g in rung.gates] == ["validation"]
        assert rung.gates[0].left == rung.validation["accuracy"] and rung.validation["n"] == n
        assert rung.gates[0].right == pytest.approx(0.99 * result.validation_teacher["accuracy"])
        assert "test.balanced" in rung.tests  # still reported
    # Every rung trained on the rest: the stored training set is the pool less the held-out items.
    with proj.engine.connect() as conn:
        sizes = [r.size for r in conn.execute(select(datasets.c.size).order_by(datasets.c.id))]
    assert len(full.examples) - n in sizes
    # The evaluate run records what judged the climb.
    from graduate.store.runs import get_runs as runs_of

    ladder_run = next(r for r in runs_of(proj.engine, kind="evaluate") if r.id == result.evaluation_run_id)
    assert ladder_run.metrics["judged_on"] == "validation"
    assert set(ladder_run.metrics["validation"]) == {r.name for r in result.rungs}


def test_a_pool_too_small_to_hold_out_is_judged_on_the_test_sets_and_says_so(tiny_project):
    proj = Project.load(tiny_project)  # 161 comments: under 4 x model_selection.min_items (50)
    result = climb_ladder(proj, kinds=["majority", "tfidf-logreg"], gates=["student.accuracy >= 0.6 on test.balanced"])
    assert result.judged_on == "test sets" and "nothing could be held out" in result.judged_note
    assert "4 x model_selection.min_items" in result.judged_note
    single = climb_ladder(proj, kinds=["tfidf-logreg"])  # one student is not a climb: judged on the test sets, no note
    assert single.judged_on == "test sets" and single.judged_note == ""


def test_a_pool_without_gold_climbs_on_reviewed_held_out_items_once_a_reviewer_labelled_them(tiny_project):
    import csv

    import yaml

    from graduate.data.review import import_review
    from graduate.data.validation import carve_validation

    # The training pool is a source without gold (the comments without their is_bad column), as a
    # pool labelled only by the teacher is; the test set keeps its gold.
    path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["data"].append({"name": "pool", "path": "./comments.csv", "id_column": "id", "tags_column": "subsets"})
    raw["train"]["source"] = "pool"
    raw["model_selection"] = {"validation_share": 0.5, "min_items": 10}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(tiny_project)
    before = climb_ladder(proj, kinds=["majority", "tfidf-logreg"], gates=["student.accuracy >= 0.6 on test.balanced"])
    assert before.judged_on == "test sets"
    assert before.judged_note.startswith("0 of the ") and "carry a gold or reviewed label" in before.judged_note
    assert [g.test_set for g in before.rungs[0].gates] == ["test.balanced"]

    # A reviewer labels the held-out items (here: the data's gold, through the review-queue import).
    held = carve_validation(proj.engine, proj.spec, proj.build_training_set(), compare=True).validation
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        gold = {r["id"]: {"0": "ok", "1": "bad"}[r["is_bad"]] for r in csv.DictReader(f)}
    review = tiny_project / "review.csv"
    with review.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["example_id", "source", "external_id", "corrected_label", "reviewer"])
        for ex in held.examples:
            w.writerow([ex.id, ex.source, ex.external_id, gold[ex.external_id], "ann"])
    import_review(proj.engine, review, proj.spec.task.labels)
    after = climb_ladder(Project.load(tiny_project), kinds=["majority", "tfidf-logreg"], gates=["student.accuracy >= 0.6 on test.balanced"])
    assert after.judged_on == "validation" and after.validation_items == len(held.examples)
    assert [g.test_set for g in after.rungs[0].gates] == ["validation"]
