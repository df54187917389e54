"""Speak the teacher's chat format: recover an item's text from a chat request rendered from the
project's prompt template, and answer a label the way the teacher would (``{"is_bad": 1}``), so an
app switches from the teacher to the student by changing its ``base_url``."""

from __future__ import annotations

import json
import math
import time
from typing import Callable, Any

from graduate.errors import SpecError
from graduate.spec import ProjectSpec, TaskSpec, TeacherSpec
from graduate.formats import answer_format
from graduate.formats.prompt import extract_text, message_text


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


# A completion's id is this prefix and the request id (x-request-id); feedback takes either.
COMPLETION_ID_PREFIX = "chatcmpl-"


def completion_body(
    request_id: str, model: str, content: str, usage: dict[str, int], fingerprint: str, *, n: int = 1, logprobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object with ``n`` choices (a student answers the same every
    time: n identical choices, as a teacher at temperature 0 would), each with ``logprobs``."""
    usage = dict(usage)
    if n > 1 and "completion_tokens" in usage:
        usage["completion_tokens"] *= n
        usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage["completion_tokens"]
    return {
        "id": f"{COMPLETION_ID_PREFIX}{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": content}, "logprobs": logprobs, "finish_reason": "stop"} for i in range(n)
        ],
        "usage": usage,
    }


def completion_chunks(body: dict[str, Any]) -> list[bytes]:
    """The same completion as a server-sent-events stream (``stream: true``): for each choice, its
    whole message in one chunk (role, content, and any refusal or tool calls, each call with its
    ``index`` as OpenAI's chunks carry it), its finish reason in the next; then ``[DONE]``."""
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    chunks = []
    for n, choice in enumerate(body["choices"]):
        i, message, logprobs = choice.get("index", n), choice["message"], choice.get("logprobs")
        delta = {"role": "assistant", "content": message.get("content")}
        delta.update({k: message[k] for k in ("refusal", "function_call") if message.get(k) is not None})
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": k, **call} for k, call in enumerate(message["tool_calls"])]
        chunks += [
            {**base, "object": "chat.completion.chunk", "choices": [{"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": None}]},
            {**base, "object": "chat.completion.chunk", "choices": [{"index": i, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason") or "stop"}]},
        ]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


# The least log-probability written (log 0 is not a JSON number).
MIN_LOGPROB = -9999.0


def _logprob(p: float) -> float:
    return max(math.log(p), MIN_LOGPROB) if p > 0 else MIN_LOGPROB


def _alt(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def _token(text: str, logprob: float, top: list[dict[str, Any]]) -> dict[str, Any]:
    return {**_alt(text, logprob), "top_logprobs": top}


def answer_logprobs(task: TaskSpec, answer_for: Callable[[str], str], label: str, probs: dict[str, float], top_logprobs: int) -> dict[str, Any]:
    """OpenAI ``logprobs`` for a single-label student answer, from the student's probabilities: the
    answer as three tokens (what comes before the label's value, the value, what comes after, e.g.
    ``{"is_bad": `` ``1`` ``}``), the value token carrying every label's value with its probability
    among its ``top_logprobs`` (the best ``top_logprobs``, at least the chosen one). Read back by
    graduate's own logprob parser (``formats.logprobs.answer_distribution``), it gives the
    student's distribution: a graduate server can be another one's teacher or middle tier."""
    content = answer_for(label)
    answers = {lab: answer_for(lab) for lab in task.labels}
    fmt = answer_format(task.parse, task.labels)
    offset = fmt.answer_offset(content, fmt.parse(content))
    prefix = content[: offset or 0]
    if not all(a.startswith(prefix) for a in answers.values()):
        prefix = ""
    suffix = ""
    if prefix:  # a structured answer ({"is_bad": 1}): what follows the value is the same for every label
        tails = [a[len(prefix) :] for a in answers.values()]
        k = 0
        while all(len(t) > k + 1 for t in tails) and len({t[-(k + 1)] for t in tails}) == 1:
            k += 1
        suffix = tails[0][len(tails[0]) - k :] if k else ""
    values = {lab: a[len(prefix) : len(a) - len(suffix)] for lab, a in answers.items()}
    ranked = sorted(task.labels, key=lambda lab: -probs.get(lab, 0.0))
    keep = ranked[: max(1, top_logprobs)]
    if label not in keep:
        keep = keep[:-1] + [label]
    top = [_alt(values[lab], _logprob(probs.get(lab, 0.0))) for lab in keep]
    tokens = [_token(values[label], _logprob(probs.get(label, 0.0)), top)]
    if prefix:
        tokens.insert(0, _token(prefix, 0.0, [_alt(prefix, 0.0)]))
    if suffix:
        tokens.append(_token(suffix, 0.0, [_alt(suffix, 0.0)]))
    return {"content": tokens, "refusal": None}


def label_set_logprobs(task: TaskSpec, label: str, probs: dict[str, float], top_logprobs: int) -> dict[str, Any] | None:
    """OpenAI ``logprobs`` for a multi-label ``json_booleans`` answer: each label's ``true``/``false``
    value a token of its own, carrying both values among its ``top_logprobs`` (the likelier first,
    at least the one answered) with the student's P(label) and 1 - P(label); the syntax between
    them has probability 1. Read back by ``MultiLabelFormat.label_probabilities``, it gives the
    student's probability per label. None for the other spellings, where a label's absence is no
    token."""
    fmt = answer_format(task.parse, task.labels)
    pieces = fmt.value_pieces(label) if hasattr(fmt, "value_pieces") else None
    if pieces is None:
        return None
    tokens = []
    for text, lab in pieces:
        if lab is None:
            tokens.append(_token(text, 0.0, [_alt(text, 0.0)]))
            continue
        p = min(max(float(probs.get(lab, float(text == "true"))), 0.0), 1.0)
        values = {"true": _logprob(p), "false": _logprob(1.0 - p)}
        ranked = sorted(values, key=lambda v: -values[v])[: max(1, top_logprobs)]
        if text not in ranked:
            ranked = ranked[:-1] + [text]
        tokens.append(_token(text, values[text], [_alt(v, values[v]) for v in ranked]))
    return {"content": tokens, "refusal": None}


def check_serving_spec(spec: ProjectSpec) -> dict[str, str]:
    """Validate what serving needs from the spec; returns the answer text per label."""
    return build_answers(spec.task, spec.serve.answers)
