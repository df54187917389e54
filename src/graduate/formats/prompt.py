"""Turn an item's text into the teacher's chat request, and back."""

from __future__ import annotations

from typing import Any, Callable

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
    return teacher.sampling_params()


def extract_text(template: str, content: str) -> str | None:
    """Recover the item's text from a user message rendered from ``template``; None if it does not match."""
    head, _, tail = template.partition(PLACEHOLDER)
    if len(content) < len(head) + len(tail) or not content.startswith(head) or not content.endswith(tail):
        return None
    return content[len(head) : len(content) - len(tail)]


def message_text(content: Any) -> str | None:
    """A message's text: a string, or OpenAI's list of content parts when all are text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    return None


def item_texts(templates: list[str]) -> Callable[[list[dict[str, Any]]], list[str]]:
    """What an item's text may be in a recorded request: each user message whole, and the part
    each of ``templates`` leaves for ``{text}`` (the project's prompts: teacher and audit configs)."""
    templates = list(dict.fromkeys(t for t in templates if PLACEHOLDER in t))

    def texts(messages: list[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for m in messages:
            content = message_text(m.get("content")) if isinstance(m, dict) and m.get("role") == "user" else None
            if content is None:
                continue
            out.append(content)
            out.extend(x for t in templates if (x := extract_text(t, content)) is not None)
        return out

    return texts
