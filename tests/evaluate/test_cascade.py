"""The cascade plan: a pure function over predictions with a known answer, and `graduate
serve-plan` on the tiny project's stored predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.evaluate.cascade import cascade_curve, plan_cascade, suggest_threshold
from graduate.pipeline.project import Project


def test_curve_on_a_known_case():
    # four items: the two least confident are the student's mistakes
    conf = [0.55, 0.6, 0.9, 0.95]
    student = ["bad", "ok", "ok", "bad"]
    teacher = ["ok", "bad", "ok", "bad"]
    gold = ["ok", "bad", "ok", "bad"]
    points = cascade_curve(conf, student, teacher, gold, metric="agreement", teacher_cost_per_1k=10.0, student_cost_per_1k=0.01)
    assert [p.threshold for p in points] == [0.55, 0.6, 0.9, 0.95, None]
    assert [p.teacher_share for p in points] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [p.agreement for p in points] == [0.5, 0.75, 1.0, 1.0, 1.0]
    assert points[2].cost_per_1k_usd == pytest.approx(0.5 * 10.0 + 0.01)
    best = suggest_threshold(points, 1.0)
    assert best is not None and best.threshold == 0.9 and best.teacher_share == 0.5
    assert suggest_threshold(points, 0.7).threshold == 0.6
    rel = cascade_curve(conf, student, teacher, gold, metric="relative_accuracy")
    assert [p.quality for p in rel] == [0.5, 0.75, 1.0, 1.0, 1.0]


def test_missing_teacher_answers_stay_with_the_student():
    points = cascade_curve([0.5, 0.9], ["ok", "bad"], [None, "bad"], None, metric="agreement")
    assert points[-1].agreement == 1.0 and points[0].accuracy is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 1.0) | st.just(float("nan")), st.sampled_from(["a", "b"]), st.sampled_from(["a", "b", None])), min_size=1, max_size=40))
def test_curve_matches_a_direct_count(items):
    # a NaN confidence is never >= a threshold: the server sends it to the teacher (the curve kept
    # it with the student and offered NaN as a threshold)
    conf = [c for c, _, _ in items]
    student = [s for _, s, _ in items]
    teacher = [t for _, _, t in items]
    points = cascade_curve(conf, student, teacher, None, metric="agreement")
    for p in points:
        answers = [s if (p.threshold is not None and c >= p.threshold) or t is None else t for c, s, t in items]
        compared = [(a, t) for a, (_, _, t) in zip(answers, items) if t is not None]
        expected = sum(a == t for a, t in compared) / len(compared) if compared else None
        assert p.agreement == (pytest.approx(expected) if expected is not None else None)
        assert p.teacher_share == sum(1 for c in conf if p.threshold is None or not c >= p.threshold) / len(conf)
        assert p.threshold is None or p.threshold == p.threshold
    assert [p.teacher_share for p in points] == sorted(p.teacher_share for p in points)


def test_plan_from_stored_predictions_and_the_cli(trained_copy):
    proj = Project.load(trained_copy)
    plans = plan_cascade(proj, metric="agreement", target=0.95)
    assert [p.test_set for p in plans] == ["test.balanced"] and plans[0].student == "tfidf-logreg"
    plan = plans[0]
    assert plan.n == 41 and plan.points[-1].teacher_share == 1.0 and plan.points[-1].agreement == 1.0
    assert plan.suggested is not None and plan.suggested.agreement >= 0.95
    assert plan.teacher_cost_per_1k_usd > 0 and plan.cost_estimated
    saved = json.loads((trained_copy / ".graduate" / "cascade_plan.json").read_text())
    assert saved["plans"][0]["suggested"]["threshold"] == plan.suggested.threshold

    out = subprocess.run(
        [sys.executable, "-m", "graduate", "serve-plan", str(trained_copy), "--metric", "agreement", "--target", "0.95"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"},
    )
    assert out.returncode == 0, out.stderr
    assert f"suggested cascade_threshold: {plan.suggested.threshold:.4f}" in out.stdout
    assert f"{plan.suggested.teacher_share:.1%} of traffic to the teacher" in out.stdout


SET_LABELS = ["a", "b", "c"]
_sets = st.lists(st.sampled_from(SET_LABELS), unique=True).map(lambda x: ";".join(sorted(x)) or "(none)")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), _sets, st.one_of(st.none(), _sets), _sets), min_size=1, max_size=25))
def test_label_set_cascade_matches_a_brute_force_micro_f1(items):
    """Multi-label: at every threshold the cascade's micro-F1 is the one scikit-learn computes on
    the answers the cascade would give (teacher below the threshold, the student otherwise)."""
    import numpy as np
    from sklearn.metrics import f1_score

    from graduate.evaluate.cascade import cascade_curve_sets
    from graduate.formats import labelset

    conf, student, teacher, gold = (list(x) for x in zip(*items))
    points = cascade_curve_sets(conf, student, teacher, gold, SET_LABELS, metric="agreement")
    assert points[-1].threshold is None and points[-1].teacher_share == 1.0
    answered = [t is not None for t in teacher]
    for p in points:
        routed = [(t if (p.threshold is None or c < p.threshold) and t is not None else s) for c, s, t in zip(conf, student, teacher)]
        keep = [i for i, a in enumerate(answered) if a]
        if not keep:
            assert p.accuracy is None and p.agreement is None
            continue
        g = np.array([labelset.indicator(gold[i], SET_LABELS) for i in keep])
        r = np.array([labelset.indicator(routed[i], SET_LABELS) for i in keep])
        if g.sum() + r.sum() == 0:
            assert p.accuracy is None
        else:
            assert p.accuracy == pytest.approx(f1_score(g, r, average="micro", zero_division=0))
        assert p.agreement == pytest.approx(np.mean([routed[i] == teacher[i] for i in keep]))


def test_serve_plan_for_a_student_only_all_teacher_rescues_and_its_bad_flags(trained_copy):
    """A weak student (majority): only all-teacher reaches the target. That crashed formatting a
    threshold of None; the notes the plan carries were never printed; --metric foo, --target 0
    (silently 0.99), nan or 2 were taken."""

    def plan(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "graduate", "serve-plan", str(trained_copy), *flags], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"}
        )

    out = plan("--student", "majority")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    flat = " ".join(out.stdout.split())
    assert "suggested: send every item to the teacher on test.balanced: no student threshold reaches relative_accuracy 0.99" in flat, flat
    assert "note: the threshold is picked on this test set: declare a calibration set" in flat
    for flags, message in (
        (["--metric", "foo"], "--metric: Input should be 'relative_accuracy' or 'agreement'"),
        (["--target", "0"], "--target: give a finite number above 0 and at most 1 (got 0)"),
        (["--target", "nan"], "--target:"),
        (["--target", "2"], "--target: give a finite number above 0 and at most 1 (got 2)"),
        (["--student", "nosuch"], "no student 'nosuch' in the last evaluation; students with stored probabilities: ["),
    ):
        out = plan(*flags)
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, (flags, out.stderr)


def test_serve_plan_plans_on_the_quality_sets_not_the_bias_ones(evaluated_project):
    # The bias pair is not traffic to route: the teacher was asked about a handful of its comments,
    # so a plan there suggested thresholds from a few items ("relative_accuracy 1.0000 on 4 items").
    project, _ = evaluated_project
    proj = Project.load(project)
    assert {t.name for t in proj.spec.test_sets if t.purpose == "bias"} == {"bias.original", "bias.fuzzed"}
    plans = plan_cascade(proj, write=False)
    assert [p.test_set for p in plans] == ["test.balanced"]
