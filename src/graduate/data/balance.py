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
    w = compute_class_weight("balanced", classes=np.array(present), y=np.array(list(labels)))
    return {lab: float(x) for lab, x in zip(present, w)}


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
