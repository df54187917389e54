"""A teacher that answers from the call log: what was recorded for this exact request.

Useful to re-run a pipeline offline, and as the reference side of the backend contract test.
"""

from __future__ import annotations

from sqlalchemy import Engine

from graduate.errors import TeacherError
from graduate.store.calls import answers, request_key
from graduate.teacher.base import ChatRequest, Completion


class ReplayTeacher:
    def __init__(self, engine: Engine):
        self._engine = engine

    async def complete(self, request: ChatRequest) -> Completion:
        key = request_key(request.model, request.messages, request.params)
        row = answers(self._engine, [key]).get(key)
        if row is None:
            raise TeacherError("no recorded answer for this request in the call log")
        return Completion(
            content=row.content,
            response=row.response or {},
            input_tokens=None if row.tokens_estimated else row.input_tokens,
            output_tokens=None if row.tokens_estimated else row.output_tokens,
        )

    async def aclose(self) -> None:
        return None
