"""Label shares and their population stability index (PSI): training labels vs what a student
predicts on traffic (graduate.monitor), and a candidate's answers vs the answers served during a
promotion (graduate.serve.promotion).

PSI is the symmetrised Kullback-Leibler divergence, sum((a - e) * ln(a / e)), computed with
``scipy.special.rel_entr``; empty bins get a small floor so that it stays finite. Conventional
reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift. With no label the task
knows on one side (every answer names a renamed or dropped label) the PSI is None, not a figure made
of floors. Multi-label: per label, the
PSI of the share of items carrying it vs not; the worst label's is the figure a threshold judges.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

PSI_FLOOR = 1e-4


def psi_from_shares(expected: Sequence[float], actual: Sequence[float]) -> float:
    from scipy.special import rel_entr

    e = np.clip(np.asarray(expected, dtype=float), PSI_FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=float), PSI_FLOOR, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum(rel_entr(a, e)) + np.sum(rel_entr(e, a)))


def label_shift(reference: Sequence[str], current: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Shares of each label in the training set and in the traffic's predicted labels, and their PSI."""
    ref = {lab: 0 for lab in labels}
    cur = {lab: 0 for lab in labels}
    for x in reference:
        if x in ref:
            ref[x] += 1
    for x in current:
        if x in cur:
            cur[x] += 1
    nr, nc = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
    ref_share = {k: v / nr for k, v in ref.items()}
    cur_share = {k: v / nc for k, v in cur.items()}
    return {
        "training": ref_share,
        "traffic": cur_share,
        # no label the task knows on one side: no shares to compare (the floors would make up a PSI)
        "psi": psi_from_shares([ref_share[k] for k in labels], [cur_share[k] for k in labels]) if sum(ref.values()) and sum(cur.values()) else None,
        "training_n": sum(ref.values()),
        "traffic_n": sum(cur.values()),
        # labels the task no longer has (renamed or dropped since): left out of the shares, counted
        "training_unknown": len(reference) - sum(ref.values()),
        "traffic_unknown": len(current) - sum(cur.values()),
    }


def label_set_shift(reference: Sequence[str], current: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Multi-label (label sets as canonical strings): each label's share of items in the training
    set and in the traffic's predictions, the PSI of each label's carries/does-not split, and
    ``psi``: the largest (``worst_label`` names it). Sets that name a label the task does not have are
    left out of the shares and counted (``training_unknown``, ``traffic_unknown``)."""
    from graduate.formats import labelset

    order = list(labels)

    def shares(values: Sequence[str]) -> tuple[dict[str, float], int]:
        sets = []
        for v in values:
            try:
                got = labelset.decode(v, order)
            except ValueError:
                continue
            if got is not None:
                sets.append(got)
        n = max(len(sets), 1)
        return {lab: sum(lab in s for s in sets) / n for lab in order}, len(sets)

    ref, nr = shares(reference)
    cur, nc = shares(current)
    per = {lab: psi_from_shares([ref[lab], 1 - ref[lab]], [cur[lab], 1 - cur[lab]]) for lab in order} if nr and nc else {}
    worst = max(per, key=lambda lab: per[lab]) if per else None
    return {
        "training": ref,
        "traffic": cur,
        "per_label_psi": per,
        "psi": per[worst] if worst is not None else None,
        "worst_label": worst,
        "training_n": nr,
        "traffic_n": nc,
        "training_unknown": len(reference) - nr,
        "traffic_unknown": len(current) - nc,
    }
