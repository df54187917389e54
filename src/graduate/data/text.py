"""Text normalisation shared by de-duplication and leakage checks."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, lower case, collapsed whitespace: two texts that differ only so are one item."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()
