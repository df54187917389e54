"""Multi-label figures: scikit-learn's, on small hand-checked matrices, with intervals that hold
the point estimate; a label that never occurs in gold is named, not a crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from graduate.evaluate.multi_label import indicator_matrix, multi_label_metrics

LABELS = ["a", "b", "c"]


def test_hand_checked_figures():
    gold = indicator_matrix([frozenset("a"), frozenset("ab"), frozenset(), frozenset("c")], LABELS)
    pred = indicator_matrix([frozenset("a"), frozenset("a"), frozenset("b"), frozenset("c")], LABELS)
    m = multi_label_metrics(gold, pred, labels=LABELS, resamples=200)
    # tp = a, a, c = 3; gold positives 4; predicted positives 4
    assert m["micro_precision"] == pytest.approx(0.75) and m["micro_recall"] == pytest.approx(0.75) and m["micro_f1"] == pytest.approx(0.75)
    assert m["exact_match"] == pytest.approx(0.5)  # items 1 and 4
    assert m["hamming_loss"] == pytest.approx(2 / 12)  # item 2 misses b, item 3 adds b
    assert m["cardinality"] == {"gold": 1.0, "predicted": 1.0}
    assert m["per_label"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1}
    assert m["macro_f1"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    lo, hi = m["ci"]["micro_f1"]
    assert lo <= m["micro_f1"] <= hi
    assert (m["micro_f1_ci_low"], m["micro_f1_ci_high"]) == (lo, hi)  # the figure a gate names


def test_scores_give_per_label_auc_and_calibration_and_absent_labels_are_named():
    gold = indicator_matrix([frozenset("a"), frozenset(), frozenset("a"), frozenset()], LABELS)
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.1], [0.7, 0.2, 0.0], [0.4, 0.6, 0.2]])
    m = multi_label_metrics(gold, (scores >= 0.5).astype(int), labels=LABELS, scores=scores, resamples=0)
    assert m["per_label"]["a"]["roc_auc"] == 1.0 and m["per_label"]["a"]["ece"] is not None
    assert m["per_label"]["b"]["roc_auc"] is None  # never in gold: undefined, not an error
    assert m["labels_never_in_gold"] == ["b", "c"]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_matrices_give_figures_in_range(data):
    n = data.draw(st.integers(1, 30))
    gold = data.draw(arrays(np.int8, (n, 3), elements=st.integers(0, 1)))
    pred = data.draw(arrays(np.int8, (n, 3), elements=st.integers(0, 1)))
    m = multi_label_metrics(gold, pred, labels=LABELS, resamples=50)
    for k in ("micro_f1", "macro_f1", "exact_match", "hamming_loss"):
        assert 0.0 <= m[k] <= 1.0
    assert m["exact_match"] == pytest.approx(float((gold == pred).all(axis=1).mean()))
    for k in ("micro_f1", "exact_match"):
        if n > 1:
            assert 0.0 <= m["ci"][k][0] <= m["ci"][k][1] <= 1.0
    if n > 1 and (gold == pred).all() and gold.any():
        assert m["ci"]["micro_f1"] == [1.0, 1.0]


def test_a_perfect_students_micro_f1_interval_on_a_sparse_set_is_not_dragged_to_zero():
    # 3 labelled items in 60: one plain resample in 20 drew none of them and scored 0/0 = 0, so the
    # interval was [0, 1]; the labelled and unlabelled items are resampled apart.
    gold = np.zeros((60, 3), dtype=int)
    gold[:3, 0] = 1
    m = multi_label_metrics(gold, gold.copy(), labels=LABELS, resamples=1000)
    assert m["micro_f1"] == 1.0 and m["ci"]["micro_f1"] == [1.0, 1.0]


def test_label_sets_take_the_specs_bootstrap_resamples_confidence_level_and_bins():
    # evaluation.confidence_level, bootstrap_resamples and calibration_bins were accepted and ignored
    # for label sets: 1,000 resamples at 95% and 10 bins whatever the spec said.
    from graduate.evaluate.evaluation import set_metrics
    from graduate.formats import labelset
    from graduate.spec import EvaluationSpec, TaskSpec

    task = TaskSpec.model_validate({"name": "t", "kind": "multi_label", "labels": LABELS, "parse": {"kind": "label_list"}})
    rng = np.random.default_rng(0)
    gold = [labelset.encode([lab for lab in LABELS if rng.random() < 0.4], LABELS) for _ in range(80)]
    pred = [g if rng.random() < 0.7 else labelset.encode(["a"], LABELS) for g in gold]
    scores = rng.random((80, 3))
    wide = set_metrics(task, gold, pred, scores=scores, evaluation=EvaluationSpec(confidence_level=0.99, calibration_bins=2))
    narrow = set_metrics(task, gold, pred, scores=scores, evaluation=EvaluationSpec(confidence_level=0.5, calibration_bins=2))
    assert wide["ci_level"] == 0.99 and narrow["ci_level"] == 0.5
    (wl, wh), (nl, nh) = wide["ci"]["micro_f1"], narrow["ci"]["micro_f1"]
    assert wl < nl <= nh < wh
    direct = multi_label_metrics(*(np.array([labelset.indicator(v, LABELS) for v in x]) for x in (gold, pred)), labels=LABELS, scores=scores, bins=2, resamples=0)
    assert wide["per_label"]["a"]["ece"] == pytest.approx(direct["per_label"]["a"]["ece"])
    assert set_metrics(task, gold, pred, evaluation=EvaluationSpec(bootstrap_resamples=0))["ci"] == {}


def test_label_set_intervals_are_drawn_from_the_projects_seed():
    # Single-label intervals follow `seed`; label-set ones always drew from seed 0.
    from graduate.data.examples import Example
    from graduate.data.teacher_labels import TeacherLabel
    from graduate.evaluate.evaluation import StudentPredictions, labeller_metrics, set_metrics, student_metrics, test_set_entry
    from graduate.evaluate.testsets import TestSet
    from graduate.formats import labelset
    from graduate.spec.load import parse_spec

    rng = np.random.default_rng(1)
    gold = [labelset.encode([lab for lab in LABELS if rng.random() < 0.4], LABELS) for _ in range(60)]
    pred = [g if rng.random() < 0.6 else labelset.encode(["b"], LABELS) for g in gold]
    test = TestSet("t", [Example(i, "s", str(i), f"text {i}", str(i), []) for i in range(60)], gold, "h", 0)
    answers = {i: TeacherLabel(p, None) for i, p in enumerate(pred)}
    preds = StudentPredictions(pred, rng.random((60, 3)), 0.1, 0.1)

    def spec(seed):
        return parse_spec(
            {"seed": seed, "task": {"name": "t", "kind": "multi_label", "labels": LABELS, "parse": {"kind": "label_list"}}, "teacher": {"model": "m", "prompt": "Tag: {text}"}}
        )

    for seed in (0, 7):
        s = spec(seed)
        want = set_metrics(s.task, gold, pred, evaluation=s.evaluation, seed=seed)["ci"]
        assert test_set_entry(s, test, answers)["teacher"]["ci"] == want
        assert student_metrics(s.task, test, preds, answers, 0.1, evaluation=s.evaluation, seed=seed)["ci"] == want
        assert labeller_metrics(s.task, test, dict(enumerate(pred)), evaluation=s.evaluation, seed=seed)["ci"] == want
    assert set_metrics(spec(0).task, gold, pred, seed=0)["ci"] != set_metrics(spec(0).task, gold, pred, seed=7)["ci"]
