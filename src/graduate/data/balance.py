"""Class balance: counts, and class weights or undersampling when asked. Reported always,
changed only by config: a perfectly balanced set is not always better (it shifts the student's
prior away from the rates it will see)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Sequence


def class_counts(labels: Sequence[str], order: Sequence[str]) -> dict[str, int]:
    c = Counter(labels)
    return {lab: c.get(lab, 0) for lab in order}


def per_label_counts(label_sets: Sequence[str], order: Sequence[str]) -> dict[str, int]:
    """Multi-label: how many items carry each label (sets as canonical strings)."""
    from graduate.formats import labelset

    c: Counter[str] = Counter()
    for value in label_sets:
        c.update(labelset.decode(value, list(order)) or ())
    return {lab: c.get(lab, 0) for lab in order}


def class_weights(labels: Sequence[str], order: Sequence[str]) -> dict[str, float]:
    """scikit-learn's 'balanced' weights, n / (classes x count), for the classes present."""
    from sklearn.utils.class_weight import compute_class_weight
    import numpy as np

    present = [lab for lab in order if lab in set(labels)]
    if not present:  # no training item (an empty pool): nothing to weigh
        return {}
    w = compute_class_weight("balanced", classes=np.array(present), y=np.array(list(labels)))
    return {lab: float(x) for lab, x in zip(present, w)}


def label_set_weights(label_sets: Sequence[str], order: Sequence[str]) -> tuple[list[float], dict[str, float]]:
    """Multi-label class weights: scikit-learn's 'balanced' weight of each label over all label
    occurrences (the empty set counted as one more class), and each item weighs its rarest
    label's weight (max), rescaled so the weights still sum to n. Returns (item weights, label weights)."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    from graduate.formats import labelset

    order = list(order)
    sets = [sorted(labelset.decode(v, order) or [labelset.NONE]) for v in label_sets]
    flat = [lab for s in sets for lab in s]
    if not flat:
        return [], {}
    present = [lab for lab in [*order, labelset.NONE] if lab in set(flat)]
    w = dict(zip(present, (float(x) for x in compute_class_weight("balanced", classes=np.array(present), y=np.array(flat)))))
    raw = [max(w[lab] for lab in s) for s in sets]
    scale = len(raw) / sum(raw)
    return [x * scale for x in raw], w


def prior_weights(labels: Sequence[str], prior: dict[str, float]) -> dict[str, float]:
    """Weights that make each class count in its production share (label-shift importance
    weights): share x n / count, normalised so the weights still sum to n."""
    c = Counter(labels)
    present = {lab: share for lab, share in prior.items() if c.get(lab)}
    total = sum(present.values())
    return {lab: share / total * len(labels) / c[lab] for lab, share in present.items()}


def undersample(labels: Sequence[str], *, seed: int) -> list[int]:
    """Positions to drop so every class keeps as many items as the smallest one (seeded, stable)."""
    by: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by.setdefault(lab, []).append(i)
    if not by:
        return []
    smallest = min(len(v) for v in by.values())
    rng = random.Random(seed)
    dropped: list[int] = []
    for lab in sorted(by):
        idx = by[lab]
        if len(idx) > smallest:
            keep = set(rng.sample(idx, smallest))
            dropped += [i for i in idx if i not in keep]
    return sorted(dropped)


def label_set_prior_weights(label_sets: Sequence[str], order: Sequence[str], prior: dict[str, float], *, tol: float = 1e-4, max_rounds: int = 200) -> tuple[list[float], dict[str, float]]:
    """Multi-label prior: item weights under which each named label is carried by its production
    share of the items (``prior``: label -> share of items that carry it, each in (0, 1)), found by
    raking (iterative proportional fitting on each label's in/out margin); the weights sum to n.
    A label no item carries, or every item carries, cannot be moved and is left as it is.
    Returns (item weights, the weighted share each named label reaches)."""
    import numpy as np

    from graduate.formats import labelset

    order = list(order)
    sets = [labelset.decode(v, order) or frozenset() for v in label_sets]
    n = len(sets)
    if not n:
        return [], {}
    w = np.ones(n)
    has = {lab: np.array([lab in s for s in sets]) for lab in prior}
    movable = [lab for lab in prior if 0 < has[lab].sum() < n]
    for _ in range(max_rounds):
        worst = 0.0
        for lab in movable:
            share = w[has[lab]].sum() / w.sum()
            worst = max(worst, abs(share - prior[lab]))
            w[has[lab]] *= prior[lab] / share
            w[~has[lab]] *= (1 - prior[lab]) / (1 - share)
        if worst < tol:
            break
    w *= n / w.sum()
    return [float(x) for x in w], {lab: float(w[has[lab]].sum() / n) for lab in prior}


def undersample_label_sets(label_sets: Sequence[str], order: Sequence[str], *, seed: int) -> list[int]:
    """Multi-label undersampling: positions to drop, visiting the items in a seeded random order and
    dropping one when every label it carries (the empty set counting as a label of its own) is
    still carried by more items than the rarest label: no label falls below the rarest one's count."""
    from graduate.formats import labelset

    order = list(order)
    sets = [sorted(labelset.decode(v, order) or [labelset.NONE]) for v in label_sets]
    counts = Counter(lab for s in sets for lab in s)
    if not counts:
        return []
    floor = min(counts.values())
    visit = list(range(len(sets)))
    random.Random(seed).shuffle(visit)
    dropped: list[int] = []
    for i in visit:
        if all(counts[lab] > floor for lab in sets[i]):
            dropped.append(i)
            counts.subtract(sets[i])
    return sorted(dropped)
