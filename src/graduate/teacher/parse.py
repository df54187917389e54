"""Turn a teacher's raw answer into a label, never guessing silently.

An answer that cannot be read, or reads as no known label, comes back with ``label=None`` and the
reason; callers store it as unparseable and count it. The reading itself is the task's answer
format (``graduate.formats``); this is the short way to call it.
"""

from __future__ import annotations

from graduate.formats import ParsedAnswer, answer_format
from graduate.spec import ParseSpec

__all__ = ["ParsedAnswer", "parse_answer"]


def parse_answer(content: str | None, spec: ParseSpec, labels: list[str]) -> ParsedAnswer:
    """Read one answer. Never raises on bad answers: the reason is in ``error``."""
    return answer_format(spec, labels).parse(content)
