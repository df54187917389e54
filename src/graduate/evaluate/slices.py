"""Slices of a test set: by gold label, by text length, by identity term; quality on each."""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any, Sequence

from graduate.spec.terms import TermPattern, fold, term_pattern


@dataclass
class Slice:
    kind: str  # label | length | identity
    name: str
    members: list[int]  # indices into the test set


def identity_pattern(term: str) -> TermPattern:
    """A whole-word, case-insensitive match: 'gay' matches 'Gay' and 'anti-gay', not 'gayety'
    ('café' matches a decomposed 'cafe\\u0301', 'gay man' a 'gay\\u00a0man'); as the counterfactual
    swaps and synth's targets match it."""
    return term_pattern([term])


def length_bucket_names(bounds: list[int]) -> list[str]:
    names = [f"<{bounds[0]} chars"] if bounds else ["all lengths"]
    names += [f"{a}-{b - 1} chars" for a, b in zip(bounds, bounds[1:])]
    if bounds:
        names.append(f">={bounds[-1]} chars")
    return names


def length_bucket(n_chars: int, bounds: list[int]) -> int:
    return sum(1 for b in bounds if n_chars >= b)


def parse_slice_name(name: str, *, labels: list[str], length_buckets: list[int]) -> tuple[str, str | int] | None:
    """The slice a name ``make_slices`` gives stands for, as (kind, what): ("label", LABEL),
    ("length", bucket index) or ("identity", TERM); None when it names no slice. Lets a weak
    slice `graduate errors` prints be the target of targeted additions as printed."""
    name = name.strip()
    gold = re.fullmatch(r"gold\s*=\s*(.+)", name)  # as printed ("gold = bad"), or typed without its spaces
    if gold is not None and gold.group(1) in labels:
        return "label", gold.group(1)
    if name.startswith("mentions '") and name.endswith("'") and len(name) > len("mentions ''"):
        return "identity", name[len("mentions '") : -1]
    names = length_bucket_names(length_buckets)
    if name in names:
        return "length", names.index(name)
    return None


def make_slices(texts: Sequence[str], gold: Sequence[str], *, labels: list[str], length_buckets: list[int], identity_terms: list[str]) -> list[Slice]:
    out = [Slice("label", f"gold = {lab}", [i for i, g in enumerate(gold) if g == lab]) for lab in labels]
    names = length_bucket_names(length_buckets)
    buckets: list[list[int]] = [[] for _ in names]
    for i, t in enumerate(texts):
        buckets[length_bucket(len(t), length_buckets)].append(i)
    out += [Slice("length", name, members) for name, members in zip(names, buckets)]
    folded = [fold(t) for t in texts] if identity_terms else []  # once, not once per term
    for term in identity_terms:
        pat = identity_pattern(term)
        out.append(Slice("identity", f"mentions '{term}'", [i for i, t in enumerate(folded) if pat.regex.search(t)]))
    return out


def slice_metrics(
    slices: list[Slice], gold: Sequence[str], pred: Sequence[str | None], *, labels: list[str], positive: str
) -> list[dict[str, Any]]:
    """Per slice: items, items with a prediction, accuracy, and (binary) FPR and FNR with the
    answered gold-negative items the FPR is over (``negatives``).

    ``pred`` may hold None (no answer, e.g. the teacher on items it was never asked about);
    those items are left out of the slice's figures.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix

    binary = len(labels) == 2
    negative = next((lab for lab in labels if lab != positive), None)
    rows = []
    for s in slices:
        idx = [i for i in s.members if pred[i] is not None]
        row: dict[str, Any] = {"kind": s.kind, "name": s.name, "n": len(s.members), "answered": len(idx), "accuracy": None, "fpr": None, "fnr": None, "negatives": 0}
        if idx:
            g = [gold[i] for i in idx]
            p = [pred[i] for i in idx]
            row["accuracy"] = float(accuracy_score(g, p))
            if binary:
                tn, fp, fn, tp = confusion_matrix(g, p, labels=[negative, positive]).ravel()
                row["fpr"] = float(fp / (fp + tn)) if fp + tn else None
                row["negatives"] = int(fp + tn)
                row["fnr"] = float(fn / (fn + tp)) if fn + tp else None
        rows.append(row)
    return rows


def worst_slices(rows: list[dict[str, Any]], *, min_size: int, baseline: float | None, limit: int = 5) -> list[dict[str, Any]]:
    """Length and identity slices with at least ``min_size`` answered items, lowest accuracy
    first, with the gap to the whole set's accuracy. (A gold-label slice's accuracy is that
    label's recall, reported on its own.)"""
    ranked = [
        dict(r, gap=(r["accuracy"] - baseline) if baseline is not None else None)
        for r in rows
        if r["kind"] != "label" and r["answered"] >= min_size and r["accuracy"] is not None
    ]
    ranked.sort(key=lambda r: (r["accuracy"], -r["answered"]))
    return ranked[:limit]


def worst_identity_fpr(rows: list[dict[str, Any]], *, min_size: int) -> dict[str, Any] | None:
    """The identity-term slice with the highest false-positive rate among those with at least
    ``min_size`` answered gold-negative items (binary tasks): how often a non-toxic text that names
    that term is flagged. None when no term slice is that large."""
    ranked = [r for r in rows if r["kind"] == "identity" and r.get("fpr") is not None and r.get("negatives", 0) >= min_size]
    if not ranked:
        return None
    worst = max(ranked, key=lambda r: (r["fpr"], r["negatives"]))
    term = worst["name"].removeprefix("mentions '").removesuffix("'")
    return {"term": term, "fpr": worst["fpr"], "negatives": worst["negatives"], "false_positives": round(worst["fpr"] * worst["negatives"])}
