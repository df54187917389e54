import numpy as np
import pytest

from graduate.evaluate.cost import student_cost_per_1k
from graduate.evaluate.metrics import agreement, classification_metrics


def test_binary_metrics_match_hand_counts():
    gold = ["bad", "bad", "bad", "ok", "ok", "ok", "ok", "ok"]
    pred = ["bad", "bad", "ok", "bad", "ok", "ok", "ok", "ok"]
    m = classification_metrics(gold, pred, labels=["ok", "bad"], positive="bad")
    # tp=2 fn=1 fp=1 tn=4
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == m["tpr"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 5)
    scores = np.array([[0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.95, 0.05]])
    m2 = classification_metrics(gold, pred, labels=["ok", "bad"], positive="bad", scores=scores)
    assert m2["roc_auc"] == pytest.approx(14 / 15)


def test_recall_without_a_positive_item_is_not_measured_as_tpr():
    m = classification_metrics(["ok", "ok", "ok"], ["ok", "bad", "ok"], labels=["ok", "bad"], positive="bad")
    assert m["recall"] is None and m["tpr"] is None and m["fpr"] == pytest.approx(1 / 3)


def test_multiclass_uses_macro():
    m = classification_metrics(["a", "b", "c"], ["a", "b", "b"], labels=["a", "b", "c"], positive="c")
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx((1 + 1 + 0) / 3)


def test_agreement_and_kappa():
    a = agreement(["x", "y", "x", "y"], ["x", "y", "y", "y"])
    assert a["agreement"] == 0.75
    assert 0 < a["kappa"] < 1
    assert agreement([], [])["agreement"] is None


def test_student_cost():
    c = student_cost_per_1k(cpu_seconds=3.6, items=1000, core_hour_usd=1.0)
    assert c.per_1k_usd == pytest.approx(0.001)
