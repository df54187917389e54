"""The teacher as the server asks it: from the call log when this exact request was answered
before, else live through the project's backend, logged (pending, then finished) like every call,
bounded by the teacher's concurrency and the project's budget.

Identical requests in flight at once share one call. Store access runs in threads, so the event
loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from graduate.errors import BudgetExceededError, TeacherError
from graduate.privacy import Redactor, records, redact_text
from graduate.spec import PriceSpec, ProjectSpec
from graduate.store.calls import answers, begin_call, finish_call, live_spend, longest_answer, request_key
from graduate.teacher.base import ChatRequest, TeacherBackend
from graduate.teacher.labeling import output_reserve, record_completion, unusable_answer
from graduate.teacher.parse import parse_answer
from graduate.teacher.prompt import render_messages, request_params
from graduate.teacher.sending import Pacer, send
from graduate.formats.tokens import estimate_prompt_tokens, most_prompt_tokens


@dataclass
class TeacherAnswer:
    label: str | None
    content: str | None
    call_id: int | None
    latency_ms: float
    cached: bool = False
    error: str | None = None
    response: dict[str, Any] | None = None


class ServeTeacher:
    def __init__(self, engine: Engine, spec: ProjectSpec, backend: TeacherBackend, redactor: Redactor | None = None, input_redactor: Redactor | None = None):
        self.engine = engine
        self.spec = spec
        self.input_redactor = input_redactor  # privacy.redact_teacher_input: the teacher sees the text redacted
        self.redactor = redactor  # privacy.redact: requests and answers are stored redacted
        self.backend = backend
        self.price = spec.price_for(spec.teacher.model)  # the project's teacher; a forwarded call is priced by its own model
        self.concurrency = spec.teacher.concurrency
        self._sem = asyncio.Semaphore(self.concurrency)
        self._pacer = Pacer(spec.teacher)
        self._inflight: dict[str, asyncio.Future] = {}
        self._reserved = 0.0  # what this server's calls in flight hold (their rows have no cost yet)
        self._budget_lock = asyncio.Lock()
        self.calls = 0

    @property
    def saturated(self) -> bool:
        """Every concurrency slot is taken (shadow sampling skips rather than queue)."""
        return self._sem.locked()

    def unpriced(self, model: str) -> bool:
        """Whether the budget cannot hold a call to ``model``: the project prices its teacher (so
        teacher.budget_usd is enforced) but has no price for this model (graduate.yaml's prices)."""
        return self.price is not None and self.spec.price_for(model) is None

    async def _budget_reserve(self, req: ChatRequest, price: PriceSpec | None) -> float:
        # A call with no price reserves nothing and its cost is stored as unknown (None): the budget
        # cannot count it. The app refuses an unpriced remote teacher at start (require_price) and
        # to forward an unpriced model while the teacher is priced (unpriced()).
        if price is None:
            return 0.0
        async with self._budget_lock:
            # Read from the store for every call: graduate label, another server or a replica
            # spends from the same budget while this one runs.
            spent, longest = await asyncio.to_thread(lambda: (live_spend(self.engine), longest_answer(self.engine, req.model)))
            amount = price.cost(most_prompt_tokens(req.messages), output_reserve(self.spec.teacher, longest))
            budget = self.spec.teacher.budget_usd
            if spent + self._reserved + amount > budget:
                raise BudgetExceededError(spent=spent, budget=budget, needed=amount)
            self._reserved += amount
        return amount

    async def _unreserve(self, amount: float) -> None:
        # Under the lock: a reader that took the spend before this call's cost was written still
        # sees its reservation.
        async with self._budget_lock:
            self._reserved -= amount

    async def _call(self, key: str, req: ChatRequest, *, label: bool) -> TeacherAnswer:
        """One live call, logged; never raises for a failed call (the answer carries the error).
        ``label``: asked for an item's label, so an answer cut off or without text is a failed call."""
        started = time.perf_counter()
        price = self.spec.price_for(req.model)  # the model it is sent with (a forward names its own)
        reserved = await self._budget_reserve(req, price)
        try:
            async with self._sem:
                body = req.body()
                stored, counts = records.request(self.redactor, body)
                try:
                    call_id = await asyncio.to_thread(
                        begin_call, self.engine, cache_key=key, model=req.model, request=stored, params=req.params, redactions=counts
                    )
                except IntegrityError:
                    # Another process logged the same request at the same moment: take the next index.
                    call_id = await asyncio.to_thread(
                        begin_call, self.engine, cache_key=key, model=req.model, request=stored, params=req.params, redactions=counts
                    )
                self.calls += 1
                try:
                    completion = await send(
                        self.backend, req, self._pacer, max_retries=self.spec.teacher.max_retries, tokens=estimate_prompt_tokens(req.messages)
                    )
                except TeacherError as exc:
                    failed = records.answer(self.redactor, body, error=str(exc))
                    await asyncio.to_thread(
                        finish_call, self.engine, call_id, status="error", error=failed.error, attempts=exc.attempts or 1, redactions=failed.redactions
                    )
                    return TeacherAnswer(None, None, call_id, (time.perf_counter() - started) * 1000, error=str(exc))
                except asyncio.CancelledError:
                    await asyncio.shield(
                        asyncio.to_thread(finish_call, self.engine, call_id, status="error", error="cancelled: the request timed out or the server stopped")
                    )
                    raise
                latency = (time.perf_counter() - started) * 1000
                problem = unusable_answer(completion, self.spec.teacher) if label else None
                await asyncio.to_thread(
                    record_completion,
                    self.engine,
                    call_id,
                    completion,
                    est_in=estimate_prompt_tokens(req.messages),
                    latency_ms=latency,
                    price=price,
                    redactor=self.redactor,
                    body=body,
                    unpriced_cost=None,
                    error=problem,
                )
                if problem is not None:
                    return TeacherAnswer(None, None, call_id, latency, error=problem, response=completion.response)
                return TeacherAnswer(None, completion.content, call_id, latency, response=completion.response)
        finally:
            await asyncio.shield(self._unreserve(reserved))

    async def _shared(self, key: str, req: ChatRequest, *, label: bool = False) -> TeacherAnswer:
        """Cached answer, or one call shared by every identical request in flight."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            started = time.perf_counter()
            row = (await asyncio.to_thread(answers, self.engine, [key])).get(key)
            if row is not None:
                answer = TeacherAnswer(None, row.content, row.id, (time.perf_counter() - started) * 1000, cached=True, response=row.response)
            else:
                answer = await self._call(key, req, label=label)
            fut.set_result(answer)
            return answer
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._inflight[key]

    async def label(self, text: str) -> TeacherAnswer:
        """The teacher's label for one item, asked exactly as `graduate label` asks it."""
        teacher = self.spec.teacher
        messages = render_messages(teacher, redact_text(self.input_redactor, text))
        params = request_params(teacher)
        key = request_key(teacher.model, messages, params)
        answer = await self._shared(key, ChatRequest(teacher.model, messages, dict(params)), label=True)
        if answer.error is None:
            parsed = parse_answer(answer.content, self.spec.task.parse, self.spec.task.labels)
            return TeacherAnswer(parsed.label, answer.content, answer.call_id, answer.latency_ms, answer.cached, parsed.error, answer.response)
        return answer

    async def forward(self, body: dict[str, Any]) -> TeacherAnswer:
        """Send a chat request as the app wrote it (one that does not match the template)."""
        params = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "stream_options")}
        req = ChatRequest(str(body.get("model") or self.spec.teacher.model), list(body.get("messages") or []), params)
        return await self._shared(request_key(req.model, req.messages, req.params), req)

    async def aclose(self) -> None:
        await self.backend.aclose()
