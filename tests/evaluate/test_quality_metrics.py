"""Per-label metrics, PR-AUC, calibration, bootstrap intervals and slices on data with known answers."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from graduate.evaluate.calibration import calibration
from graduate.evaluate.intervals import bootstrap_intervals
from graduate.evaluate.metrics import confusion, label_metrics, pr_auc
from graduate.evaluate.slices import length_bucket_names, make_slices, slice_metrics, worst_identity_fpr, worst_slices

LABELS = ["ok", "bad"]


def test_per_label_and_macro_match_hand_counts():
    gold = ["bad", "bad", "bad", "ok", "ok", "ok", "ok", "ok"]
    pred = ["bad", "bad", "ok", "bad", "ok", "ok", "ok", "ok"]
    m = label_metrics(gold, pred, labels=LABELS)
    # bad: tp=2 fp=1 fn=1 -> P=R=F1=2/3; ok: tp=4 fp=1 fn=1 -> P=R=F1=4/5
    assert m["per_label"]["bad"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_label"]["ok"]["recall"] == pytest.approx(4 / 5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert confusion(gold, pred, labels=LABELS) == [[4, 1], [1, 2]]


def test_pr_auc_is_average_precision_of_the_positive_label():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.clip(0.4 * y + 0.6 * rng.random(200), 0, 1)
    gold = [LABELS[v] for v in y]
    probs = np.column_stack([1 - s, s])
    assert pr_auc(gold, probs, [], labels=LABELS, positive="bad") == pytest.approx(average_precision_score(y, s))
    # without scores (the teacher) the hard labels are the scores
    hard = ["bad" if v > 0.5 else "ok" for v in s]
    assert pr_auc(gold, None, hard, labels=LABELS, positive="bad") == pytest.approx(average_precision_score(y, [h == "bad" for h in hard]))


def test_calibration_of_a_calibrated_and_an_overconfident_predictor():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = rng.random(20000) < p  # calibrated by construction
    gold = ["bad" if v else "ok" for v in y]
    good = calibration(gold, np.column_stack([1 - p, p]), labels=LABELS, positive="bad", bins=10)
    assert good["ece"] < 0.02
    assert sum(b["count"] for b in good["curve"]) == 20000 and len(good["curve"]) == 10
    # always 0.95 sure, right half the time: ECE is the 0.45 gap
    over = np.full(20000, 0.95)
    coin = ["bad" if v else "ok" for v in rng.random(20000) < 0.5]
    bad = calibration(coin, np.column_stack([1 - over, over]), labels=LABELS, positive="bad", bins=10)
    assert bad["ece"] == pytest.approx(0.45, abs=0.02)
    assert bad["brier"] > good["brier"]


def test_bootstrap_intervals_hold_the_estimate_and_shrink_with_more_data():
    rng = np.random.default_rng(2)

    def data(n):
        y = rng.integers(0, 2, n)
        s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
        return [LABELS[v] for v in y], ["bad" if v > 0.5 else "ok" for v in s], np.column_stack([1 - s, s]), y, s

    gold, pred, probs, y, s = data(300)
    ci = bootstrap_intervals(gold, pred, probs, labels=LABELS, positive="bad", resamples=1000, seed=0)
    point = {
        "accuracy": accuracy_score(gold, pred),
        "f1": f1_score(gold, pred, pos_label="bad"),
        "roc_auc": roc_auc_score(y, s),
    }
    for m, v in point.items():
        lo, hi = ci[m]
        assert lo < v < hi, (m, lo, v, hi)
    assert ci == bootstrap_intervals(gold, pred, probs, labels=LABELS, positive="bad", resamples=1000, seed=0)  # seeded
    big = bootstrap_intervals(*data(3000)[:3], labels=LABELS, positive="bad", resamples=1000, seed=0)
    for m in point:
        assert big[m][1] - big[m][0] < (ci[m][1] - ci[m][0]) * 0.6, m
    assert bootstrap_intervals(gold, pred, probs, labels=LABELS, positive="bad", resamples=0) == {"accuracy": None, "f1": None, "roc_auc": None}


def test_multiclass_intervals_use_macro_f1():
    rng = np.random.default_rng(3)
    labs = ["a", "b", "c"]
    gold = list(rng.choice(labs, 400))
    pred = [g if rng.random() < 0.7 else str(rng.choice(labs)) for g in gold]
    ci = bootstrap_intervals(gold, pred, None, labels=labs, positive="c", resamples=500)
    assert ci["f1"][0] < f1_score(gold, pred, average="macro") < ci["f1"][1]
    assert ci["roc_auc"] is None


def test_a_perfect_students_f1_interval_is_not_dragged_down_by_resamples_without_a_rare_label():
    # 3 positives in 60: one plain resample in 20 draws none, scoring F1 0/0 = 0, so the interval
    # was [0, 1]; 2 items of 100 in one label gave macro F1 [0.67, 1]. Resampled within each gold label.
    gold = ["ok"] * 57 + ["bad"] * 3
    assert bootstrap_intervals(gold, gold, None, labels=LABELS, positive="bad", resamples=1000)["f1"] == [1.0, 1.0]
    gold = ["a"] * 49 + ["b"] * 49 + ["c"] * 2
    assert bootstrap_intervals(gold, gold, None, labels=["a", "b", "c"], positive="a", resamples=1000)["f1"] == [1.0, 1.0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "b", "c"])), min_size=2, max_size=40), st.booleans())
def test_f1_intervals_are_ordered_and_inside_what_f1_can_be(pairs, binary):
    labs = ["a", "b"] if binary else ["a", "b", "c"]
    gold = [g if g in labs else "a" for g, _ in pairs]
    pred = [p if p in labs else "b" for _, p in pairs]
    ci = bootstrap_intervals(gold, pred, None, labels=labs, positive="b", resamples=200)["f1"]
    assert ci is not None and 0.0 <= ci[0] <= ci[1] <= 1.0
    point = f1_score(gold, pred, labels=["b"] if binary else labs, average="macro", zero_division=0)
    if all(gold.count(x) < 2 for x in set(gold)):  # nothing to resample: the interval is the point
        assert ci == pytest.approx([point, point])
    if gold == pred and len(set(gold)) == len(labs):
        assert ci == [1.0, 1.0]


def test_slices_by_label_length_and_identity_term():
    texts = ["short", "x" * 150, "Gay rights matter " + "y" * 400, "anti-muslim rant", "gayety is not a term", "MUSLIM and gay"]
    gold = ["ok", "ok", "ok", "bad", "ok", "bad"]
    pred = ["ok", "bad", "bad", "bad", "ok", None]
    slices = make_slices(texts, gold, labels=LABELS, length_buckets=[100, 300], identity_terms=["gay", "muslim"])
    by = {s.name: s.members for s in slices}
    assert length_bucket_names([100, 300]) == ["<100 chars", "100-299 chars", ">=300 chars"]
    assert by["<100 chars"] == [0, 3, 4, 5] and by["100-299 chars"] == [1] and by[">=300 chars"] == [2]
    assert by["mentions 'gay'"] == [2, 5]  # whole words, any case; not 'gayety'
    assert by["mentions 'muslim'"] == [3, 5]
    rows = {r["name"]: r for r in slice_metrics(slices, gold, pred, labels=LABELS, positive="bad")}
    assert rows["gold = ok"]["fpr"] == pytest.approx(2 / 4)
    assert rows["mentions 'gay'"] == {**rows["mentions 'gay'"], "n": 2, "answered": 1, "accuracy": 0.0}
    worst = worst_slices(list(rows.values()), min_size=1, baseline=0.6)
    assert worst[0]["name"] in ("100-299 chars", ">=300 chars", "mentions 'gay'") and worst[0]["accuracy"] == 0.0
    assert all(w["kind"] != "label" for w in worst)


def test_worst_identity_fpr_is_the_term_flagged_most_among_large_enough_slices():
    # 'gay': 12 non-toxic statements, 3 flagged; 'muslim': 12, 1 flagged; 'sikh': 4, all flagged
    # (too few non-toxic items to rank); toxic items never count towards an FPR.
    texts, gold, pred = [], [], []
    for term, n, flagged in (("gay", 12, 3), ("muslim", 12, 1), ("sikh", 4, 4)):
        texts += [f"I am {term} {i}" for i in range(n)] + [f"I hate {term} people {i}" for i in range(5)]
        gold += ["ok"] * n + ["bad"] * 5
        pred += ["bad"] * flagged + ["ok"] * (n - flagged) + ["ok"] * 5  # misses every toxic one
    slices = make_slices(texts, gold, labels=LABELS, length_buckets=[100], identity_terms=["gay", "muslim", "sikh", "jewish"])
    rows = slice_metrics(slices, gold, pred, labels=LABELS, positive="bad")
    by = {r["name"]: r for r in rows}
    assert by["mentions 'gay'"]["negatives"] == 12 and by["mentions 'sikh'"]["negatives"] == 4
    assert by["mentions 'jewish'"]["negatives"] == 0 and by["mentions 'jewish'"]["fpr"] is None
    assert worst_identity_fpr(rows, min_size=10) == {"term": "gay", "fpr": 0.25, "negatives": 12, "false_positives": 3}
    assert worst_identity_fpr(rows, min_size=4)["term"] == "sikh"
    assert worst_identity_fpr(rows, min_size=13) is None



@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["gay", "muslim", "sikh", "jüdisch", "straight"]), st.sampled_from(["ok", "bad"]), st.sampled_from(["ok", "bad", None])),
        max_size=80,
    ),
    st.integers(min_value=1, max_value=20),
)
def test_worst_identity_fpr_is_the_highest_fpr_over_terms_with_enough_negatives(items, min_size):
    # Any mix of terms, gold and (missing) answers: the figure is never over a term under min_size
    # answered negatives, and it is the highest such term's false-positive rate.
    terms = ["gay", "muslim", "sikh", "jüdisch", "straight"]
    texts = [f"text about {t} №{i}" for i, (t, _, _) in enumerate(items)]
    gold = [g for _, g, _ in items]
    pred = [p for _, _, p in items]
    rows = slice_metrics(make_slices(texts, gold, labels=LABELS, length_buckets=[100], identity_terms=terms), gold, pred, labels=LABELS, positive="bad")
    fprs = {}
    for t in terms:
        neg = [p for (term, g, p) in items if term == t and g == "ok" and p is not None]
        if len(neg) >= min_size:
            fprs[t] = sum(p == "bad" for p in neg) / len(neg)
    worst = worst_identity_fpr(rows, min_size=min_size)
    if not fprs:
        assert worst is None
    else:
        assert worst["fpr"] == pytest.approx(max(fprs.values())) and worst["term"] in fprs
        assert fprs[worst["term"]] == pytest.approx(worst["fpr"]) and worst["negatives"] >= min_size
