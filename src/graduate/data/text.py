"""Text normalisation shared by de-duplication and leakage checks."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, lower case, collapsed whitespace: two texts that differ only so are one item."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def text_hash(text: str) -> str:
    # surrogatepass: a lone surrogate (from JSON input) hashes instead of raising.
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate in its strings (keys too) replaced by U+FFFD.

    JSON may escape half a surrogate pair (``"\\ud800"``) and Python's JSON decoder lets it
    through, but such a string cannot be encoded as UTF-8: not stored, logged or hashed. This is
    what a UTF-8 decoder does with an invalid sequence, applied where the JSON was read.
    """
    # Every request body passes here: nothing is copied unless something is replaced.
    return _scrub(value) if _has_surrogate(value) else value


# Both walk the value with a stack of their own, not by recursion: a body nested as deep as the JSON
# parser allows (thousands of levels) must not end in a RecursionError before it is validated.
def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _LONE_SURROGATE.search(v) is not None:
                return True
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return False


def _scrub(value: Any) -> Any:
    def leaf(v: Any) -> Any:
        return _LONE_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v

    def copy(v: Any) -> Any:
        """An empty container of ``v``'s kind, queued to be filled; a leaf, scrubbed."""
        if isinstance(v, (list, dict)):
            new: Any = [] if isinstance(v, list) else {}
            stack.append((v, new))
            return new
        return leaf(v)

    stack: list[tuple[Any, Any]] = []
    out = copy(value)
    while stack:
        src, dst = stack.pop()
        if isinstance(src, list):
            dst.extend(copy(v) for v in src)
        else:
            for k, v in src.items():
                dst[leaf(k)] = copy(v)
    return out
