"""``kind: local``: a GGUF model behind llama.cpp's OpenAI-compatible server, started on first use.

The backend is the OpenAI-compatible client pointed at a server it starts itself; requests,
retries, caching and the call log are exactly those of any remote teacher. The model is resolved
(packaged parts joined and verified, or a GGUF path checked) when the backend is made, so a bad
model fails before anything is sent; the server starts only when a request must really be sent,
so a run answered entirely from the call log starts nothing.
"""

from __future__ import annotations

import asyncio

from graduate.spec import TeacherSpec
from graduate.teacher.base import ChatRequest, Completion
from graduate.models.gguf import resolve_model
from graduate.teacher.local_server import LocalServer, require_llama_cpp


def server_for(spec: TeacherSpec) -> LocalServer:
    """The (not yet started) server for a local teacher spec."""
    require_llama_cpp()
    local = spec.local
    return LocalServer(
        resolve_model(spec.model),
        alias=spec.model,
        port=local.port,
        n_ctx=local.n_ctx,
        threads=local.threads,
        logits_all=spec.logprobs,
        startup_timeout_s=local.startup_timeout_s,
        max_restarts=local.max_restarts,
    )


class LocalTeacher:
    def __init__(self, spec: TeacherSpec):
        self.spec = spec
        self.server = server_for(spec)
        self._client = None
        self._start_error: BaseException | None = None
        self._lock: asyncio.Lock | None = None

    async def _started(self):
        from graduate.teacher.openai_compat import OpenAICompatTeacher

        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._start_error is not None:
                raise self._start_error
            if self._client is None:
                try:
                    await asyncio.to_thread(self.server.start)
                except BaseException as exc:
                    self._start_error = exc
                    raise
                self._client = OpenAICompatTeacher(
                    self.spec.model_copy(update={"base_url": self.server.base_url}), api_key="local"
                )
        return self._client

    async def complete(self, request: ChatRequest) -> Completion:
        client = await self._started()
        return await client.complete(request)

    async def aclose(self) -> None:
        try:
            if self._client is not None:
                await self._client.aclose()
        finally:
            await asyncio.to_thread(self.server.stop)
