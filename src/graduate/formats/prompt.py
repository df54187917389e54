"""Turn an item's text into the teacher's chat request, and back."""

from __future__ import annotations

from typing import Any

from graduate.spec import TeacherSpec

PLACEHOLDER = "{text}"


def render_messages(teacher: TeacherSpec, text: str) -> list[dict[str, str]]:
    """The messages sent for one item. ``{text}`` is replaced literally (no str.format), so
    templates may contain JSON braces."""
    messages = []
    if teacher.system:
        messages.append({"role": "system", "content": teacher.system})
    for shot in teacher.few_shot:  # worked examples as earlier turns of the conversation
        messages.append({"role": "user", "content": teacher.prompt.replace(PLACEHOLDER, shot.text)})
        messages.append({"role": "assistant", "content": shot.answer})
    messages.append({"role": "user", "content": teacher.prompt.replace(PLACEHOLDER, text)})
    return messages


def request_params(teacher: TeacherSpec) -> dict[str, Any]:
    """Sampling parameters that change the answer, hence part of the cache key."""
    params: dict[str, Any] = {"temperature": teacher.temperature}
    if teacher.max_tokens is not None:
        params["max_tokens"] = teacher.max_tokens
    # Absent unless asked for, so the cache keys of recorded calls do not change.
    if teacher.logprobs:
        params["logprobs"] = True
        params["top_logprobs"] = teacher.top_logprobs
    if teacher.response_format is not None:
        params["response_format"] = teacher.response_format
    return params


def extract_text(template: str, content: str) -> str | None:
    """Recover the item's text from a user message rendered from ``template``; None if it does not match."""
    head, _, tail = template.partition(PLACEHOLDER)
    if len(content) < len(head) + len(tail) or not content.startswith(head) or not content.endswith(tail):
        return None
    return content[len(head) : len(content) - len(tail)]
