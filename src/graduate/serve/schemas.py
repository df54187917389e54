"""Request bodies the server validates (422 names the field that is wrong)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from graduate.data.text import scrub_surrogates
from graduate.spec.names import ReviewerName

# Deeper bodies are refused before anything walks them: a chat request passed to the teacher is
# hashed, logged and sent by code that recurses, and no OpenAI request needs more than a few levels.
MAX_DEPTH = 64


def nesting_depth(value: Any) -> int:
    """Levels of lists and objects in a JSON value (a scalar: 0), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d + 1)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


class _Scrubbed(BaseModel):
    """Lone surrogates (``"\\ud800"`` escapes, or raw bytes ED A0 80 that Starlette's JSON decoder
    lets through) become U+FFFD before validation: every text the server keeps is valid UTF-8. A
    body nested deeper than ``MAX_DEPTH`` is refused first (422)."""

    @model_validator(mode="before")
    @classmethod
    def _scrub(cls, data: Any) -> Any:
        depth = nesting_depth(data)
        if depth > MAX_DEPTH:
            raise PydanticCustomError("too_deep", "the body is nested {depth} levels deep, at most {most}: send a flatter JSON object", {"depth": depth, "most": MAX_DEPTH})
        return scrub_surrogates(data)


class ClassifyBody(_Scrubbed):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, description="The texts to classify.")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatBody(_Scrubbed):
    """An OpenAI chat completion request. ``n`` and ``logprobs`` are honoured; tools are refused
    (a student calls none) unless the request may go to the teacher; sampling parameters
    (temperature, top_p, seed, max_tokens ...) are accepted and have no effect on a student."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    n: int = Field(1, ge=1, le=128, description="Choices to return; a student's are identical.")
    logprobs: bool | None = Field(None, description="Return the answer's log-probabilities (the student's probability of each label).")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="With logprobs: alternatives per token (each label's answer).")
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: Any = None

    def wants_tools(self) -> bool:
        return bool(self.tools or self.functions) and self.tool_choice != "none"


class FeedbackBody(_Scrubbed):
    """A person's answer for an item the server answered: POST /v1/feedback."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64, description="The id the server sent back (response id, x-request-id).")
    item: int = Field(0, ge=0, le=100_000, description="The item's index within its request (0 for chat).")
    label: str | list[str] = Field(description="The correct answer: a task label (multi-label: a list of labels, [] for none; or one string of labels joined by ';', '(none)' for none).")
    reviewer: ReviewerName = Field(description="Who says so (stored as human:REVIEWER): one line of text, no control characters.")
    note: str | None = Field(None, max_length=2000)


class PromoteBody(_Scrubbed):
    """POST /admin/promote: which trained run to promote (default: the served student's newest evaluated run)."""

    model_config = ConfigDict(extra="forbid")
    run_id: str | None = Field(None, min_length=4, max_length=64, description="A training run id (or its first characters).")
    student: str | None = Field(None, min_length=1, max_length=200, description="A student name: its newest evaluated run.")
    project: str | None = Field(None, min_length=1, max_length=200, description="The task.name of the project the caller means; refused (409) when the server serves another.")
