"""The teacher protocol: a backend turns one chat request into one completion. Nothing else.

Caching, budgets, rate limits and the call log live in ``graduate.teacher.labeling`` and work the
same for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"model": self.model, "messages": self.messages, **self.params}


@dataclass
class Completion:
    content: str | None
    response: dict[str, Any]
    input_tokens: int | None = None
    output_tokens: int | None = None
    attempts: int = 1
    # Wall time of the attempt that answered (set by graduate.teacher.sending; limiter waits and
    # earlier failed attempts are not in it), in milliseconds.
    latency_ms: float | None = None


class TeacherBackend(Protocol):
    async def complete(self, request: ChatRequest) -> Completion:
        """Send one request; raise ``TeacherError`` once retries are exhausted."""
        ...

    async def aclose(self) -> None: ...
