"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server) through the official SDK.

Retries are the SDK's own: exponential backoff with jitter on 408/409/429/5xx, timeouts and
connection errors, honouring ``Retry-After``.
"""

from __future__ import annotations

import os

from graduate.errors import TeacherAuthError, TeacherError
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
        self._openai = openai
        self._client = openai.AsyncOpenAI(
            base_url=spec.base_url, api_key=key, max_retries=spec.max_retries, timeout=spec.timeout_s
        )
        self._api_key_env = spec.api_key_env
        self._base_url = spec.base_url
        # What an error the SDK retries has cost by the time it reaches us.
        self._exhausted = spec.max_retries + 1

    async def complete(self, request: ChatRequest) -> Completion:
        openai = self._openai
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=request.model, messages=request.messages, **request.params  # type: ignore[arg-type]
            )
        except openai.AuthenticationError as exc:
            reason = exc.body.get("message") if isinstance(exc.body, dict) else None
            detail = f"HTTP 401: {reason.rstrip('.')}" if reason else "HTTP 401"
            if self._key_missing:
                detail += f"; {self._api_key_env} is not set"
            raise TeacherAuthError(api_key_env=self._api_key_env, base_url=self._base_url, detail=detail) from None
        except openai.APIStatusError as exc:
            # The SDK retries 408, 409, 429 and 5xx until max_retries; other statuses fail at once.
            retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500
            raise TeacherError(
                f"HTTP {exc.status_code} after retries: {exc.message}", attempts=self._exhausted if retried else 1
            ) from None
        except openai.APITimeoutError:
            raise TeacherError("timed out after retries", attempts=self._exhausted) from None
        except openai.APIConnectionError as exc:
            raise TeacherError(f"cannot connect: {exc.__cause__ or exc}", attempts=self._exhausted) from None
        completion = raw.parse()
        body = completion.model_dump(mode="json", exclude_none=True)
        content = completion.choices[0].message.content if completion.choices else None
        usage = completion.usage
        return Completion(
            content=content,
            response=body,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            attempts=1 + int(getattr(raw, "retries_taken", 0) or 0),
        )

    async def aclose(self) -> None:
        await self._client.close()
