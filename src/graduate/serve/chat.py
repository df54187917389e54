"""Speak the teacher's chat format: recover an item's text from a chat request rendered from the
project's prompt template, and answer a label the way the teacher would (``{"is_bad": 1}``), so an
app switches from the teacher to the student by changing its ``base_url``."""

from __future__ import annotations

import json
import time
from typing import Callable, Any

from graduate.errors import SpecError
from graduate.spec import ProjectSpec, TaskSpec, TeacherSpec
from graduate.formats import answer_format
from graduate.teacher.prompt import extract_text


def message_text(content: Any) -> str | None:
    """A message's text: a string, or OpenAI's list of content parts when all are text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    return None


def recover_text(teacher: TeacherSpec, messages: list[dict[str, Any]]) -> str | None:
    """The item's text if ``messages`` are exactly what the teacher's template renders, else None."""
    expected_roles = ["system", "user"] if teacher.system else ["user"]
    if [m.get("role") for m in messages] != expected_roles:
        return None
    if teacher.system and message_text(messages[0].get("content")) != teacher.system:
        return None
    user = message_text(messages[-1].get("content"))
    return None if user is None else extract_text(teacher.prompt, user)


def build_answers(task: TaskSpec, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The answer text for each label, checked to parse back to that label with ``task.parse``."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(task.labels))
    if unknown:
        raise SpecError(f"labels {unknown} are not task labels {task.labels}", field="serve.answers")
    fmt = answer_format(task.parse, task.labels)
    out: dict[str, str] = {}
    for label in task.labels:
        candidates = [overrides[label]] if label in overrides else fmt.render(label)
        text = next((c for c in candidates if fmt.parse(c).label == label), None)
        if text is None:
            got = fmt.parse(candidates[0]).label
            raise SpecError(
                f"the answer {candidates[0]!r} built for label {label!r} reads back as {got!r} with task.parse; "
                f"set serve.answers.{label} to the exact text the teacher answers",
                field=f"serve.answers.{label}",
            )
        out[label] = text
    return out


def answerer(task: TaskSpec, overrides: dict[str, str] | None = None) -> Callable[[str], str]:
    """The answer text for a predicted label: the checked table of ``build_answers``; for a
    multi-label task (any of 2^labels sets) the format renders the set (its contract test checks
    that every set parses back)."""
    if task.multi_label:
        if overrides:
            raise SpecError("serve.answers is for single-label tasks; a multi-label answer is rendered from task.parse", field="serve.answers")
        fmt = answer_format(task.parse, task.labels)
        return lambda label: (fmt.render(label) or [""])[0]
    table = build_answers(task, overrides)
    return table.__getitem__


def estimate_usage(messages: list[dict[str, Any]], answer: str) -> dict[str, int]:
    from graduate.formats.tokens import estimate_prompt_tokens, estimate_text_tokens

    prompt = estimate_prompt_tokens(messages)
    completion = estimate_text_tokens(answer)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(request_id: str, model: str, content: str, usage: dict[str, int], fingerprint: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object."""
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


def completion_chunks(body: dict[str, Any]) -> list[bytes]:
    """The same completion as a server-sent-events stream (``stream: true``): role and content in
    one chunk, the finish reason in the next, then ``[DONE]``."""
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    content = body["choices"][0]["message"]["content"]
    chunks = [
        {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "logprobs": None, "finish_reason": None}]},
        {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
    ]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def check_serving_spec(spec: ProjectSpec) -> dict[str, str]:
    """Validate what serving needs from the spec; returns the answer text per label."""
    return build_answers(spec.task, spec.serve.answers)
