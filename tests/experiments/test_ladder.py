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


def test_bad_gate_and_unknown_kind_are_clear(tiny_project):
    proj = Project.load(tiny_project)
    with pytest.raises(SpecError, match="--until: .*unknown test set 'test.nope'"):
        climb_ladder(proj, kinds=["majority"], gates=["student.accuracy >= 0.9 on test.nope"])
    with pytest.raises(SpecError, match=r"unknown student kinds \['bert'\]"):
        climb_ladder(proj, kinds=["bert"])
