"""Offline token estimates for calls whose logs carry no usage.

The exact tokenizers of closed models are not available offline, so graduate uses OpenAI's
published rule of thumb: about 4 characters of English per token, plus the chat format's
overhead of 3 tokens per message and 3 to prime the reply (OpenAI cookbook, "How to count tokens
with tiktoken"). The rule holds for ASCII only: a character of another script (Chinese, Japanese,
Cyrillic, emoji) is about a token of its own, so each non-ASCII character counts as one (English
is estimated as before; a Chinese text is no longer a quarter of its tokens, which let the
tokens_per_minute limiter send about 4 times the provider's limit). Figures built on these counts
are marked *estimated*.
"""

from __future__ import annotations

import math
from typing import Any

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3
MAX_TOKENS = 2**31  # far above any context window; the store keeps counts as 64-bit integers


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    other = sum(1 for c in text if ord(c) > 127)
    return max(1, math.ceil((len(text) - other) / CHARS_PER_TOKEN) + other)


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = REPLY_PRIMING
    for m in messages:
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(str(m.get("content") or ""))
    return total


def most_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The most tokens a prompt can be: a byte-level BPE token is at least one UTF-8 byte, so no
    tokenizer makes more tokens than bytes. What a budget reserves: the estimate is a typical
    count, and a rare word or script can take a token a byte."""
    total = REPLY_PRIMING
    for m in messages:
        total += TOKENS_PER_MESSAGE + len(str(m.get("content") or "").encode("utf-8", "surrogatepass"))
    return total


def reported_tokens(value: object) -> int | None:
    """A token count from a server's ``usage``, or None (estimate it instead) when it is no count:
    not a whole number, negative (a negative cost would free budget) or past any context window."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_TOKENS else None
