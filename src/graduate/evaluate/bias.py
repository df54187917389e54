"""The identity-term bias pair: the same items twice, identity terms swapped in the second copy
(e.g. the conversationai fuzzed/non-fuzzed toxicity sets). A fair model gives both copies the
same answer and score, and flags non-toxic comments as toxic equally often whichever identity
they mention.

Per predictor: the false-positive rate per identity term on each copy, the largest gap between a
term's FPR and the copy's overall FPR, and over the pairs whose text differs, the shift of the
positive label's probability (perturbed - original) and the share of answers that flipped.

A term's FPR on the perturbed copy mixes two things: the term, and the comments it happened to be
swapped into. Per term, the same non-positive items are also scored before the swap
(``fpr_same_items_original``); ``fpr_change`` is what the swap itself did to them (items it made
false positives minus items it cleared, over the items), with an exact McNemar p-value on those
flips. ``fpr_change`` (the largest over terms) is the bias; ``worst_term_fpr`` is also the sample.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.stats import binomtest

from graduate.evaluate.slices import identity_pattern
from graduate.evaluate.testsets import TestSet


def _fpr(gold: Sequence[str], pred: Sequence[str], positive: str) -> tuple[float | None, int]:
    from sklearn.metrics import confusion_matrix

    neg = [(g, p) for g, p in zip(gold, pred) if g != positive]
    if not neg:
        return None, 0
    # All gold labels here are negative: the FPR is the share predicted positive.
    y = [0] * len(neg)
    yhat = [int(p == positive) for _, p in neg]
    tn, fp, _, _ = confusion_matrix(y, yhat, labels=[0, 1]).ravel()
    return float(fp / (fp + tn)), len(neg)


def bias_pair_metrics(
    original: TestSet,
    perturbed: TestSet,
    pred_original: dict[int, tuple[str | None, float | None]],
    pred_perturbed: dict[int, tuple[str | None, float | None]],
    *,
    positive: str,
    identity_terms: list[str],
    min_size: int = 10,
) -> dict[str, Any] | None:
    """``pred_*`` map example id -> (label, probability of the positive label or None).

    Returns None when the predictor answered no pair (e.g. the teacher was never asked).
    """
    orig_by_ext = {ex.external_id: (ex, g) for ex, g in zip(original.examples, original.gold)}
    pairs = []
    for ex, g in zip(perturbed.examples, perturbed.gold):
        o = orig_by_ext.get(ex.external_id)
        if o is None:
            continue
        po, pp = pred_original.get(o[0].id), pred_perturbed.get(ex.id)
        if po is None or pp is None or po[0] is None or pp[0] is None:
            continue
        pairs.append((o[0], o[1], po, ex, g, pp))
    if not pairs:
        return None
    changed = [p for p in pairs if p[0].text != p[3].text]
    shifts = np.array([pp[1] - po[1] for _, _, po, _, _, pp in changed if po[1] is not None and pp[1] is not None])
    flips = [po[0] != pp[0] for _, _, po, _, _, pp in changed]

    out: dict[str, Any] = {
        "pairs": len(pairs),
        "changed_pairs": len(changed),
        "mean_shift": float(shifts.mean()) if shifts.size else None,
        "mean_abs_shift": float(np.abs(shifts).mean()) if shifts.size else None,
        "max_abs_shift": float(np.abs(shifts).max()) if shifts.size else None,
        "flip_rate": float(np.mean(flips)) if flips else None,
        "flipped": int(sum(flips)),
    }
    for side, idx in (("original", (1, 2)), ("perturbed", (4, 5))):
        gold = [p[idx[0]] for p in pairs]
        pred = [p[idx[1]][0] for p in pairs]
        out[f"fpr_{side}"], out[f"negatives_{side}"] = _fpr(gold, pred, positive)  # type: ignore[arg-type]

    terms = []
    for term in identity_terms:
        pat = identity_pattern(term)
        row: dict[str, Any] = {"term": term}
        for side, ex_i, g_i, p_i in (("original", 0, 1, 2), ("perturbed", 3, 4, 5)):
            members = [p for p in pairs if pat.search(p[ex_i].text)]
            row[f"n_{side}"] = len(members)
            row[f"fpr_{side}"], row[f"negatives_{side}"] = _fpr([p[g_i] for p in members], [p[p_i][0] for p in members], positive)
        # The same items before the swap: how much of the term's FPR the term itself causes (a
        # comment flagged with and without the term was flagged for something else).
        same = [p for p in pairs if pat.search(p[3].text) and p[4] != positive]
        if same:
            before = [p[2][0] == positive for p in same]
            after = [p[5][0] == positive for p in same]
            became = sum(a and not b for a, b in zip(after, before))
            stopped = sum(b and not a for a, b in zip(after, before))
            row["fpr_same_items_original"] = float(np.mean(before))
            row["became_fp"], row["stopped_fp"] = became, stopped
            row["fpr_change"] = (became - stopped) / len(same)
            # exact McNemar test on the discordant pairs: could the swap's flips be chance?
            row["fpr_change_p"] = float(binomtest(became, became + stopped, 0.5).pvalue) if became + stopped else 1.0
        swapped_in = [
            pp[1] - po[1]
            for o, _, po, e, _, pp in changed
            if pat.search(e.text) and not pat.search(o.text) and po[1] is not None and pp[1] is not None
        ]
        row["swapped_in"] = len(swapped_in)
        row["mean_shift_swapped_in"] = float(np.mean(swapped_in)) if swapped_in else None
        terms.append(row)
    out["terms"] = terms
    base = out["fpr_perturbed"]
    gaps = [abs(t["fpr_perturbed"] - base) for t in terms if t["fpr_perturbed"] is not None and t["negatives_perturbed"] >= min_size and base is not None]
    out["fpr_gap"] = float(max(gaps)) if gaps else None
    worst = max(
        (t for t in terms if t["fpr_perturbed"] is not None and t["negatives_perturbed"] >= min_size and base is not None and t["fpr_perturbed"] > base),
        key=lambda t: t["fpr_perturbed"],
        default=None,
    )
    out["worst_term"] = worst["term"] if worst else None
    out["worst_term_fpr"] = worst["fpr_perturbed"] if worst else None
    sized = [t for t in terms if t.get("fpr_change") is not None and t["negatives_perturbed"] >= min_size]
    rise = max(sized, key=lambda t: t["fpr_change"], default=None)
    out["fpr_change"] = rise["fpr_change"] if rise else None
    out["fpr_change_term"] = rise["term"] if rise and rise["fpr_change"] > 0 else None  # no term when the swap raised none
    return out


# The figures a bias gate may name; for label sets each is the worst (largest) over the labels.
GATE_FIGURES = ("mean_abs_shift", "max_abs_shift", "flip_rate", "fpr_gap", "worst_term_fpr", "fpr_change")
_ABSENT = "\x00absent"  # a label's "no": never a task label (labels are non-empty printable names)


def multi_label_bias_pair_metrics(
    original: TestSet,
    perturbed: TestSet,
    pred_original: dict[int, tuple[str | None, dict[str, float] | None]],
    pred_perturbed: dict[int, tuple[str | None, dict[str, float] | None]],
    *,
    labels: list[str],
    identity_terms: list[str],
    min_size: int = 10,
) -> dict[str, Any] | None:
    """The bias pair for label sets: each label in turn is the positive class (a false positive: the
    predicted set holds a label the gold set lacks; the score: that label's probability).

    ``pred_*`` map example id -> (canonical label set or None, per-label probabilities or None);
    gold are canonical label sets. Returns the figures of the label whose false-positive rate the
    swap raised most (``label``; else the one with the highest worst-term FPR) at the top level,
    every label's under ``per_label``, the worst value of each gate figure over the labels under
    ``max_over_labels`` (``worst_label_of`` names its label), and set-level flips (an answer flipped
    when its set changed). None when the predictor answered no pair.
    """
    from dataclasses import replace

    from graduate.formats import labelset

    # every set decoded once; per label, a set becomes that label or its "no" (None stays: no answer)
    gold_o = [labelset.decode(g, labels) or frozenset() for g in original.gold]
    gold_p = [labelset.decode(g, labels) or frozenset() for g in perturbed.gold]
    ans_o = {i: (labelset.decode(v, labels), pr or {}) for i, (v, pr) in pred_original.items()}
    ans_p = {i: (labelset.decode(v, labels), pr or {}) for i, (v, pr) in pred_perturbed.items()}

    def holds(found: frozenset[str] | None, lab: str) -> str | None:
        return None if found is None else (lab if lab in found else _ABSENT)

    per_label: dict[str, dict[str, Any]] = {}
    for lab in labels:
        o = replace(original, gold=[holds(g, lab) for g in gold_o])
        p = replace(perturbed, gold=[holds(g, lab) for g in gold_p])
        po = {i: (holds(found, lab), pr.get(lab)) for i, (found, pr) in ans_o.items()}
        pp = {i: (holds(found, lab), pr.get(lab)) for i, (found, pr) in ans_p.items()}
        m = bias_pair_metrics(o, p, po, pp, positive=lab, identity_terms=identity_terms, min_size=min_size)
        if m is not None:
            per_label[lab] = m
    if not per_label:
        return None

    def rank(lab: str) -> tuple[float, float]:
        m = per_label[lab]
        return (m["fpr_change"] if m.get("fpr_change") is not None else -2.0, m["worst_term_fpr"] if m.get("worst_term_fpr") is not None else -1.0)

    headline = max(per_label, key=rank)
    out = dict(per_label[headline])
    out["label"] = headline
    out["per_label"] = per_label
    worst: dict[str, float | None] = {}
    worst_of: dict[str, str | None] = {}
    for key in GATE_FIGURES:
        found = [(m[key], lab) for lab, m in per_label.items() if m.get(key) is not None]
        value, lab = max(found, key=lambda t: t[0]) if found else (None, None)
        worst[key], worst_of[key] = value, lab
    # flips of whole sets: a swap that changed any label of the answer
    by_ext = {ex.external_id: ex.id for ex in original.examples}
    texts = {ex.id: ex.text for ex in original.examples}
    flips = []
    for ex in perturbed.examples:
        oid = by_ext.get(ex.external_id)
        a, b = ans_o.get(oid) if oid is not None else None, ans_p.get(ex.id)
        if a is None or b is None or a[0] is None or b[0] is None or texts[oid] == ex.text:
            continue
        flips.append(a[0] != b[0])
    out["flipped"], out["flip_rate"] = int(sum(flips)), (float(np.mean(flips)) if flips else None)
    worst["flip_rate"], worst_of["flip_rate"] = out["flip_rate"], None
    out["max_over_labels"], out["worst_label_of"] = worst, worst_of
    return out
