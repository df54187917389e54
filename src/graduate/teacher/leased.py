"""One worker of a shared labelling job (graduate label --ray): sends the calls it can claim.

The driver has enqueued the work as pending calls (graduate.store.leases). For each of its calls
the worker claims the lease (one conditional UPDATE), reserves the call's estimate from its
budget slice, sends it through the existing client path (graduate.teacher.sending: retries,
rate limits at this worker's share), and completes it if it is still pending. A heartbeat renews
the leases of what is in flight. A call another worker holds is tried again once that lease
lapses (its worker died), so a killed worker's calls are re-sent after at most one lease.
Once the run's first CUT_STOP answers, counted in the store over all its workers, are all unusable,
no worker sends more.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import timezone

from sqlalchemy import Engine

from graduate.errors import TeacherAuthError, TeacherError, TeacherTransientError
from graduate.formats.tokens import estimate_prompt_tokens, estimate_text_tokens, most_prompt_tokens
from graduate.privacy import Redactor, records
from graduate.spec import PriceSpec, TeacherSpec
from graduate.store import leases
from graduate.store.calls import longest_answer
from graduate.store.db import now
from graduate.teacher.base import ChatRequest, TeacherBackend
from graduate.teacher.labeling import CUT_STOP, output_reserve, unusable_answer
from graduate.teacher.prompt import render_messages, request_params
from graduate.teacher.sending import Pacer, send

# A slice holds this many calls' estimates: few reservations, little budget idle in one worker.
SLICE_CALLS = 20


@dataclass
class WorkerStats:
    sent: int = 0
    failed: int = 0
    retryable: int = 0  # of failed: transient (timeouts, 429, 5xx after retries)
    not_sent: int = 0  # budget reached
    skipped: int = 0  # already answered, or answered by another worker first
    late: int = 0  # answered here after another worker's answer was stored (paid twice)
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)
    budget_stopped: bool = False
    cut_stopped: bool = False  # the run's first CUT_STOP answers (all workers') were all unusable: this one sent no more
    stopped_unsent: int = 0  # of not_sent: left unsent by that stop


class _Slice:
    """This worker's budget: slices reserved in the store, spent locally. A slice stays open (its
    unused part reserved) until the worker ends, so a call in flight is always covered; what is
    left in a slice when the next is needed is less than one call's estimate."""

    def __init__(self, engine: Engine, owner: str, limit: float, lease_s: float):
        self.engine, self.owner, self.limit, self.lease_s = engine, owner, limit, lease_s
        self.id: int | None = None
        self.left = 0.0
        self.stopped = False
        self._lock = threading.Lock()  # calls in flight take from it at once (from worker threads)

    def take(self, amount: float) -> int | None:
        """The slice this call's estimate is reserved from, or None: the budget is reached."""
        with self._lock:
            return self._take(amount)

    def _take(self, amount: float) -> int | None:
        if self.stopped:
            return None
        if self.id is None or amount > self.left:
            slice_id, granted = leases.reserve_slice(
                self.engine, self.owner, max(amount * SLICE_CALLS, amount), limit=self.limit, minimum=amount, lease_s=self.lease_s
            )
            if slice_id is None:
                self.stopped = True
                return None
            self.id, self.left = slice_id, granted
        self.left -= amount
        return self.id

    def settle(self, slice_id: int | None, reserved: float, actual: float) -> None:
        with self._lock:
            if slice_id is not None and slice_id == self.id:
                self.left += reserved - actual


def shared_spec(spec: TeacherSpec, workers: int) -> TeacherSpec:
    """This worker's share of the limits: rate limits and concurrency divided among the workers."""
    return spec.model_copy(
        update={
            "requests_per_minute": max(1, spec.requests_per_minute // workers),
            "tokens_per_minute": max(1, spec.tokens_per_minute // workers),
            "concurrency": max(1, spec.concurrency // workers),
        }
    )


async def work(
    engine: Engine,
    spec: TeacherSpec,
    backend: TeacherBackend,
    items: list[tuple[int, str]],
    *,
    owner: str,
    run: str,
    workers: int,
    lease_s: float,
    price: PriceSpec | None,
    redactor: Redactor | None = None,
) -> WorkerStats:
    """Send ``items`` (call id, text) that this worker can claim; returns what it did. ``owner``
    names this worker's leases; it starts with ``run``- (``leases.run_answers``)."""
    mine = shared_spec(spec, workers)
    params = request_params(spec)
    pacer = Pacer(mine)
    sem = asyncio.Semaphore(mine.concurrency)
    budget = _Slice(engine, owner, spec.budget_usd, lease_s)
    out_reserve = output_reserve(spec, await asyncio.to_thread(longest_answer, engine, spec.model))
    stats = WorkerStats()
    in_flight: set[int] = set()
    refused: list[TeacherAuthError] = []
    # As graduate.teacher.labeling: once the run's first CUT_STOP answers are all unusable (cut at
    # max_tokens, no text), every other call would be paid for and fail alike: the rest are not sent.
    # Counted in the store over all the run's workers (a late or replaced one too), so the cluster pays
    # for CUT_STOP of them and the calls then in flight, not CUT_STOP per worker. The store is asked
    # before each call only until a usable answer is seen or the stop is reached: either settles it.
    usable = 0
    stop: bool | None = None  # settled: True, the rest are not sent; False, a usable answer came

    async def cut_stop() -> bool:
        nonlocal stop
        if stop is None and usable:
            stop = False
        if stop is None:
            ok, bad = await asyncio.to_thread(leases.run_answers, engine, run)
            if ok or bad >= CUT_STOP:
                stop = not ok
        return bool(stop)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(lease_s / 3)
            await asyncio.to_thread(leases.renew, engine, owner, list(in_flight), lease_s)

    async def one(call_id: int, text: str) -> float | None:
        """None: done (sent, failed, skipped, not sent); else the time its holder's lease lapses."""
        nonlocal usable
        async with sem:
            if refused or budget.stopped:
                stats.not_sent += 1
                return None
            if await cut_stop():
                stats.not_sent += 1
                stats.stopped_unsent += 1
                stats.cut_stopped = True
                return None
            if not await asyncio.to_thread(leases.claim, engine, call_id, owner, lease_s):
                status, until = await asyncio.to_thread(leases.call_state, engine, call_id)
                if status != "pending" or until is None:
                    stats.skipped += 1
                    return None
                return until.astimezone(timezone.utc).timestamp()
            messages = render_messages(spec, text)
            request = ChatRequest(spec.model, messages, dict(params))
            est_in = estimate_prompt_tokens(messages)
            reserve = price.cost(most_prompt_tokens(messages), out_reserve) if price else 0.0
            slice_id = await asyncio.to_thread(budget.take, reserve)
            if slice_id is None:
                await asyncio.to_thread(leases.release, engine, call_id, owner)
                stats.not_sent += 1
                stats.budget_stopped = True
                return None
            in_flight.add(call_id)
            actual = 0.0
            try:
                started = time.perf_counter()
                try:
                    completion = await send(backend, request, pacer, max_retries=spec.max_retries, tokens=est_in + out_reserve)
                except TeacherError as exc:
                    if isinstance(exc, TeacherAuthError):
                        refused.append(exc)
                    failed = records.answer(redactor, request.body(), error=str(exc))
                    # Stored, not only counted: if this worker dies, the driver reads it back (leases.run_calls).
                    transient = isinstance(exc, TeacherTransientError)
                    await asyncio.to_thread(
                        leases.finish_claimed, engine, call_id, {"status": "error", "error": failed.error, "transient": transient, "attempts": exc.attempts or 1}
                    )
                    stats.failed += 1
                    stats.retryable += transient
                    if len(stats.errors) < 20:
                        stats.errors.append(str(exc))
                    return None
                stored = records.answer(redactor, request.body(), content=completion.content, response=completion.response)
                tin = completion.input_tokens if completion.input_tokens is not None else est_in
                tout = completion.output_tokens if completion.output_tokens is not None else estimate_text_tokens(completion.content or "")
                actual = price.cost(tin, tout) if price else 0.0
                latency = completion.latency_ms if completion.latency_ms is not None else (time.perf_counter() - started) * 1000
                problem = unusable_answer(completion, spec)
                values = {
                    "status": "ok" if problem is None else "error", "content": stored.content, "response": stored.response, "error": problem, "input_tokens": tin,
                    "output_tokens": tout, "tokens_estimated": completion.input_tokens is None or completion.output_tokens is None,
                    "latency_ms": latency, "cost_usd": actual, "attempts": completion.attempts,
                }
                first = await asyncio.to_thread(leases.finish_claimed, engine, call_id, values, slice_id=slice_id, cost=actual)
                stats.cost_usd += actual
                if problem is not None:
                    stats.failed += 1
                    if len(stats.errors) < 20:
                        stats.errors.append(problem)
                    return None
                usable += 1
                stats.sent += 1
                if not first:
                    stats.late += 1
                return None
            finally:
                in_flight.discard(call_id)
                budget.settle(slice_id, reserve, actual)

    beat = asyncio.create_task(heartbeat())
    try:
        todo = list(items)
        while todo:
            results = await asyncio.gather(*(one(cid, text) for cid, text in todo))
            waiting = [(item, until) for item, until in zip(todo, results) if until is not None]
            if not waiting:
                break
            # Held by a worker that may be dead: try again once the earliest of those leases lapses.
            delay = max(0.05, min(u for _, u in waiting) - now().timestamp() + 0.05)
            await asyncio.sleep(min(delay, lease_s))
            todo = [item for item, _ in waiting]
    finally:
        beat.cancel()
        await backend.aclose()
        await asyncio.to_thread(leases.close_slices, engine, owner)
    if refused:
        raise refused[0]
    return stats
