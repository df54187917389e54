"""A reviewer's name: stored as labeller ``human:NAME`` and printed later in maintainers' terminals
(`graduate data show`, build recipes), so it must be one plain line: no control characters (an ESC
sequence would rewrite the terminal, a newline forge a line) and no bidi overrides (U+202E shows a
name backwards). Ordinary Unicode names ("José", "李雷", a Persian name with U+200C) are fine.

The server (``POST /v1/feedback``), review files and ``--reviewer`` all check names here; the spec
sits below data and serve, so this lives with it.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# The store's labels.labeller column is String(300) and holds "human:" + the name.
REVIEWER_MAX = 300 - len("human:")

# Format characters that reorder or isolate text (Unicode bidi controls); other Cf characters
# (U+200C/U+200D joiners) are part of ordinary names in some scripts.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _refused(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in BIDI_CONTROLS


def reviewer_problem(name: str) -> str | None:
    """What is wrong with ``name`` (already stripped) as a reviewer's name, in a few words that
    print safely (the character named by code point), or None when it is fine."""
    if all(c.isspace() or unicodedata.category(c) in ("Cf", "Zs") for c in name):  # "" or zero-width spaces, a BOM
        return "is blank; say who reviewed"
    if len(name) > REVIEWER_MAX:
        return f"is {len(name)} characters long, at most {REVIEWER_MAX}"
    bad = next((c for c in name if _refused(c)), None)
    if bad is not None:
        return f"holds control character U+{ord(bad):04X} (at character {name.index(bad) + 1}); a name is one line of plain text"
    return None


def _check(name: str) -> str:
    name = name.strip()
    problem = reviewer_problem(name)
    if problem is not None:
        raise PydanticCustomError("reviewer_name", "the name {problem}", {"problem": problem})
    return name


ReviewerName = Annotated[str, AfterValidator(_check)]
"""A reviewer's name in a request body or the spec: stripped, refused as :func:`reviewer_problem` says."""
