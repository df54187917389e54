"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server) through the official SDK.

One attempt per call (the SDK's own retries are off): a failure worth retrying (408/409/429/5xx,
timeout, connection) is raised as ``TeacherTransientError`` with the server's ``Retry-After``, and
``graduate.teacher.sending`` retries it through the client's rate limiter, which the SDK's retries
would bypass.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

from graduate.errors import TeacherAuthError, TeacherError, TeacherQuotaError, TeacherTransientError
from graduate.formats.prompt import message_text
from graduate.formats.tokens import reported_tokens
from graduate.spec import TeacherSpec
from graduate.teacher.base import ChatRequest, Completion


class OpenAICompatTeacher:
    def __init__(self, spec: TeacherSpec, *, api_key: str | None = None):
        import openai

        key = api_key or os.environ.get(spec.api_key_env)
        self._key_missing = not key
        if not key:
            # Local servers accept any key; the official API rejects the placeholder with a clear 401.
            key = "not-set"
        self._key = key
        self._openai = openai
        self._client = openai.AsyncOpenAI(base_url=spec.base_url, api_key=key, max_retries=0, timeout=spec.timeout_s)
        self._api_key_env = spec.api_key_env
        self._timeout_s = spec.timeout_s
        self._base_url = spec.base_url

    async def complete(self, request: ChatRequest) -> Completion:
        openai = self._openai
        if self._key_missing and not is_local_url(self._base_url):
            # Found before sending: offline, a missing key would otherwise surface only after every
            # connection retry ("cannot connect"), and online as a 401 per call.
            raise TeacherAuthError(api_key_env=self._api_key_env, base_url=self._base_url, detail="not set", missing=True)
        try:
            # The SDK's timeout holds per read: an answer that trickles in a byte at a time would
            # hold the call (and its concurrency slot) for ever. timeout_s bounds the attempt.
            raw = await asyncio.wait_for(
                self._client.chat.completions.with_raw_response.create(
                    model=request.model, messages=request.messages, **request.params  # type: ignore[arg-type]
                ),
                self._timeout_s,
            )
        except TimeoutError:
            raise TeacherTransientError("timed out") from None
        except openai.AuthenticationError as exc:
            reason = exc.body.get("message") if isinstance(exc.body, dict) else None
            detail = f"HTTP 401: {self._hide(str(reason)).rstrip('.')}" if reason else "HTTP 401"
            if self._key_missing:
                detail += f"; {self._api_key_env} is not set"
            raise TeacherAuthError(api_key_env=self._api_key_env, base_url=self._base_url, detail=detail) from None
        except openai.APIStatusError as exc:
            message = self._hide(_status_message(exc))
            if exc.status_code == 429 and _error_code(exc) == "insufficient_quota":
                # Not a rate limit: every call fails alike until billing changes, so no retries.
                raise TeacherQuotaError(api_key_env=self._api_key_env, base_url=self._base_url, detail=f"HTTP 429: {message.rstrip('.')}") from None
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                raise TeacherTransientError(
                    f"HTTP {exc.status_code}{': ' + message if message else ''}", status=exc.status_code, retry_after_s=retry_after(exc.response.headers)
                ) from None
            hint = _fix_for(exc, message, self._base_url)
            raise TeacherError(f"HTTP {exc.status_code}{': ' + message if message else ''}; {hint}", attempts=1) from None
        except openai.APITimeoutError:
            raise TeacherTransientError("timed out") from None
        except openai.APIConnectionError as exc:
            raise TeacherTransientError(f"cannot connect: {exc.__cause__ or exc}") from None
        return _completion(raw)

    def _hide(self, text: str) -> str:
        """``text`` without the API key: OpenAI's 401 names the key it got, and errors are printed
        and stored in the call log."""
        return text.replace(self._key, "***") if len(self._key) >= 8 else text

    async def aclose(self) -> None:
        await self._client.close()


def _completion(raw: Any) -> Completion:
    """The answer of a 200 response, or ``TeacherTransientError`` when the body is no chat
    completion (cut short, an HTML or event-stream page from a gateway, no choices): stored as an
    answer it would be paid for, cached and never asked again."""
    from openai.types.chat import ChatCompletion

    content_type = raw.headers.get("content-type", "none")
    try:
        completion = raw.parse()
    except ValueError as exc:  # JSON cut short or malformed
        raise TeacherTransientError(f"unreadable answer (HTTP {raw.status_code}, {content_type}): {exc}") from None
    if not isinstance(completion, ChatCompletion) or not isinstance(completion.choices, list) or not completion.choices:
        raise TeacherTransientError(f"the answer is no chat completion (HTTP {raw.status_code}, {content_type}): {_excerpt(raw.text)}")
    message = getattr(completion.choices[0], "message", None)
    if message is None:  # e.g. the legacy completions shape (choices[].text)
        raise TeacherTransientError(f"the answer is no chat completion (HTTP {raw.status_code}, {content_type}): {_excerpt(raw.text)}")
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        # Some servers answer with OpenAI's list of content parts: the text parts joined.
        content = message_text(content)
        if content is None:
            raise TeacherTransientError(f"the answer's content is no text (HTTP {raw.status_code}): {_excerpt(raw.text)}")
    # Built without validation by the SDK: a field of the wrong type must not warn on the terminal.
    body = completion.model_dump(mode="json", exclude_none=True, warnings=False)
    usage = completion.usage
    return Completion(
        content=content,
        response=body,
        input_tokens=reported_tokens(getattr(usage, "prompt_tokens", None)),
        output_tokens=reported_tokens(getattr(usage, "completion_tokens", None)),
    )


# The request parameters graduate sends, and the spec field each comes from.
_PARAM_FIELDS = {
    "model": "teacher.model",
    "max_tokens": "teacher.max_tokens",
    "max_completion_tokens": "teacher.max_tokens",
    "temperature": "teacher.temperature",
    "logprobs": "teacher.logprobs",
    "top_logprobs": "teacher.top_logprobs",
    "response_format": "teacher.response_format",
    "messages": "teacher.prompt (or teacher.system, teacher.few_shot)",
}


def _fix_for(exc: Any, message: str, base_url: str) -> str:
    """What to change for a refusal that no retry can help (4xx other than 408/409/429): the
    field of graduate.yaml it names, as a re-run would send the same request and fail alike."""
    status = exc.status_code
    base = base_url.rstrip("/")
    if status in (404, 405) and not base.endswith("/v1"):
        # the SDK appends /chat/completions to base_url: most servers want it to end in /v1
        return f"teacher.base_url {base_url!r} usually ends in /v1 (e.g. {base}/v1)"
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    code = str(_error_code(exc) or "")
    said = message.lower()
    if code == "context_length_exceeded" or "context length" in said or "context window" in said or "maximum context" in said:
        return "the prompt and answer do not fit the model's context: shorten the item or teacher.prompt, or lower teacher.max_tokens in graduate.yaml"
    param = error.get("param")
    if isinstance(param, str) and param:
        field = _PARAM_FIELDS.get(param.split(".")[0].split("[")[0])
        if field:
            return f"the server refused parameter {param!r}: fix {field} in graduate.yaml"
    if status == 404 or code == "model_not_found" or "model" in said:
        return f"check teacher.model in graduate.yaml (and teacher.base_url {base_url!r})"
    return "the server refused the request as sent: fix the teacher section of graduate.yaml as its message says"


def _error_code(exc: Any) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return (error.get("code") or error.get("type")) if isinstance(error, dict) else None


def _status_message(exc: Any) -> str:
    """What the server said with an error status: the message of OpenAI's error object, else the
    start of the body (a gateway's plain text or HTML), else nothing."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
        return str(message) if message else _excerpt(str(body))
    return _excerpt(body) if isinstance(body, str) else ""


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def retry_after(headers: object) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms`` (OpenAI's), else ``Retry-After`` in
    seconds or as an HTTP date; None when absent or unreadable (or over 10 minutes)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    try:
        ms = get("retry-after-ms")
        if ms is not None:
            value = float(ms) / 1000
        else:
            raw = get("retry-after")
            if raw is None:
                return None
            try:
                value = float(raw)
            except ValueError:
                value = (parsedate_to_datetime(raw) - datetime.now(timezone.utc)).total_seconds()
    except (TypeError, ValueError, OverflowError):
        return None
    return max(0.0, value) if value <= 600 else None


def is_local_url(url: str) -> bool:
    """A server on this machine (llama.cpp, vLLM, Ollama) accepts any key; a remote one needs one."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.endswith(".localhost")
