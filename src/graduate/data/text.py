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


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value
