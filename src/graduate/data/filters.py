"""Rule filters on text (length bounds, regular expressions) and a cap per group: pure functions
that return, for every dropped position, the reason."""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from graduate.spec import FilterSpec


def rule_filter(texts: Sequence[str], rules: FilterSpec) -> dict[int, str]:
    """Position -> the first rule that drops it: shorter than min_chars, longer than max_chars,
    or matching a drop pattern."""
    patterns = [(p, re.compile(p)) for p in rules.drop_patterns]
    out: dict[int, str] = {}
    for i, text in enumerate(texts):
        n = len(text.strip())
        if rules.min_chars is not None and n < rules.min_chars:
            out[i] = f"shorter than {rules.min_chars} characters"
        elif rules.max_chars is not None and n > rules.max_chars:
            out[i] = f"longer than {rules.max_chars} characters"
        else:
            for raw, pat in patterns:
                if pat.search(text):
                    out[i] = f"matches {raw!r}"
                    break
    return out


def cap_groups(groups: Sequence[str | None], cap: int) -> list[int]:
    """Positions past the first ``cap`` of their group (items without a group are never capped)."""
    seen: Counter[str] = Counter()
    dropped = []
    for i, g in enumerate(groups):
        if g is None:
            continue
        seen[g] += 1
        if seen[g] > cap:
            dropped.append(i)
    return dropped
