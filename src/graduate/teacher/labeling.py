"""Send items to a live teacher: cached, rate-limited, budget-capped, crash-safe.

For each distinct request: a stored successful answer is reused (nothing sent); otherwise the
call is written as pending, sent through the backend, and completed in the log. Requests run
with bounded concurrency behind two leaky-bucket limiters (requests and tokens per minute).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Sequence

from sqlalchemy import Engine

from graduate.errors import TeacherAuthError, TeacherError, TeacherTransientError, usd
from graduate.privacy import Redactor, records
from graduate.spec import PriceSpec, TeacherSpec
from graduate.store.batches import key_state
from graduate.store.calls import answers, begin_call, finish_call, live_spend, longest_answer, request_key
from graduate.teacher.base import ChatRequest, Completion, TeacherBackend
from graduate.teacher.prompt import render_messages, request_params
from graduate.teacher.sending import Pacer, send
from graduate.formats.tokens import estimate_prompt_tokens, estimate_text_tokens, most_prompt_tokens

Progress = Callable[[int], None]

# The least answer length reserved against budget and token limits when the spec sets no max_tokens.
DEFAULT_OUTPUT_RESERVE = 64


def output_reserve(spec: TeacherSpec, longest: int | None) -> int:
    """Output tokens a call reserves: teacher.max_tokens, else the longest answer the model has
    given (``longest``, from the call log), at least DEFAULT_OUTPUT_RESERVE."""
    return spec.max_tokens or max(DEFAULT_OUTPUT_RESERVE, longest or 0)


@dataclass
class LabelOutcome:
    text: str
    cache_key: str
    status: str  # cached | sent | failed | not_sent
    call_id: int | None = None
    content: str | None = None
    error: str | None = None


@dataclass
class LabelStats:
    items: int = 0
    distinct: int = 0
    cached: int = 0
    sent: int = 0
    failed: int = 0
    not_sent: int = 0
    held: int = 0  # of not_sent: waiting in an open Batch API batch
    cost_usd: float = 0.0
    attempts: int = 0
    budget_stopped: bool = False
    errors: list[str] = field(default_factory=list)
    # Of failed: the calls a re-run may get past (timeouts, 429s, 5xx after every retry); the
    # rest were refused or cut off as sent, and fail alike until graduate.yaml changes.
    retryable: int = 0
    # The run stopped sending because its first answers were all cut off or held no text.
    cut_stopped: bool = False
    stopped_unsent: int = 0  # of not_sent: left unsent by that stop (CUT_STOP)
    # Of not_sent: requests whose answer at these very settings (temperature 0: the same answer
    # again) was cut off at the token limit before; not paid for again (``known_cut``).
    known_cut: int = 0
    known_cut_advice: str | None = None  # what to change, said once for them all
    # The calls this run set out to send (after the answers it reused and the requests it left
    # unsent before sending), and of them those begun and not yet completed in the log: what a
    # caller stopped midway (Ctrl-C) says was in flight. Their rows stay pending; a rerun reuses them.
    to_send: int = 0
    in_flight: int = 0

    @property
    def budget_unsent(self) -> int:
        """Of ``not_sent``: those the budget left unsent (the rest have reasons of their own)."""
        return self.not_sent - self.held - self.known_cut - self.stopped_unsent


# How many unusable answers in a row, before any usable one, stop a run from sending the rest.
CUT_STOP = 5


@dataclass
class CutCount:
    """A run's answers so far, as the CUT_STOP stop counts them: one for a whole run that calls
    ``label_texts`` more than once (synth asks in chunks), so the stop is the run's, not a chunk's."""

    usable: int = 0
    unusable: list[str] = field(default_factory=list)  # why each unusable answer was, in order


def _cut_fix(spec: TeacherSpec) -> tuple[str, str]:
    if spec.max_tokens:
        return f"teacher.max_tokens ({spec.max_tokens})", "raise teacher.max_tokens in graduate.yaml"
    return "the server's default output limit", "set teacher.max_tokens in graduate.yaml above it"


def known_cut(engine: Engine, spec: TeacherSpec, keys: Iterable[str]) -> set[str]:
    """The requests among ``keys`` whose answer was cut off at the token limit before, when the
    teacher samples at temperature 0: the same request (same prompt, model, max_tokens: its cache
    key) gets the same answer, cut off again, so sending it pays for nothing. Another setting is
    another request, sent as usual; failures that were no answer (timeouts, 5xx) are sent again."""
    from graduate.store.calls import cut_off, samples as stored_samples

    if spec.temperature != 0:
        return set()
    return {key for key, rows in stored_samples(engine, keys).items() if any(cut_off(r) for r in rows)}


def known_cut_advice(spec: TeacherSpec, count: int) -> str:
    """One line for the requests ``known_cut`` left unsent."""
    where, fix = _cut_fix(spec)
    return (
        f"{count} requests were not sent: their answers at these same settings (temperature 0) were cut off at {where} before and would be "
        f"cut off again; {fix} (a new limit is a new request, so they are asked again)"
    )


def unusable_answer(completion: Completion, spec: TeacherSpec) -> str | None:
    """Why a 200 answer is no answer to store as the teacher's, or None: cut off at the token
    limit (finish_reason length), or no text at all (a tool call, a filtered answer). Either is
    paid for, so the call is logged failed with its cost, never reused from the call log."""
    choices = completion.response.get("choices") if isinstance(completion.response, dict) else None
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    reason = first.get("finish_reason")
    if reason == "length":
        where, fix = _cut_fix(spec)
        return f"the answer was cut off at {where} (finish_reason length); {fix} (a new limit is a new request, so these are asked again)"
    if completion.content is None:
        message = first.get("message")
        what = "a tool call" if reason == "tool_calls" or isinstance(message, dict) and message.get("tool_calls") else "no text"
        return (
            f"the answer holds {what}, not text (finish_reason {reason!r}); check teacher.model and teacher.prompt in graduate.yaml "
            "(the teacher must answer in text)"
        )
    return None


@dataclass
class _Budget:
    """What the run may still spend. A call reserves its worst case (its output at the token cap)
    and settles at its real cost. A reservation that does not fit waits while others are in flight
    (most settle far below their reserve); only when none is left to settle is the budget reached."""

    limit: float
    spent: float
    reserved: float = 0.0
    in_flight: int = 0
    stopped: bool = False
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def reserve(self, amount_of: Callable[[float], float]) -> float | None:
        """Reserve ``amount_of(what is left)``, worked out again each time the budget changes;
        returns the amount reserved, or None once the budget is reached."""
        async with self._changed:
            while True:
                if self.stopped:
                    return None
                amount = amount_of(self.limit - self.spent - self.reserved)
                if self.spent + self.reserved + amount <= self.limit:
                    self.reserved += amount
                    self.in_flight += 1
                    return amount
                if not self.in_flight:
                    self.stopped = True
                    self._changed.notify_all()
                    return None
                await self._changed.wait()

    async def settle(self, reserved: float, actual: float) -> None:
        async with self._changed:
            self.reserved -= reserved
            self.spent += actual
            self.in_flight -= 1
            self._changed.notify_all()


def require_sendable(texts: Sequence[str]) -> None:
    """Refuse an item that is no string, or a text that cannot be sent as UTF-8 (a lone UTF-16
    surrogate such as "\\ud800", which Python strings allow): one line naming the item, before
    anything is keyed or sent."""
    from graduate.errors import InputDataError

    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputDataError(f"is {type(text).__name__}, not text, so nothing was sent; pass strings (e.g. str(value))", path=f"texts[{i}]")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputDataError(
                f"holds a lone UTF-16 surrogate ({ascii(text[exc.start])} at character {exc.start}) that UTF-8 cannot carry, so nothing was sent; "
                "replace it, e.g. text.encode('utf-8', 'replace').decode()",
                path=f"texts[{i}]",
            ) from None


def require_price(spec: TeacherSpec, price: PriceSpec | None) -> None:
    """Refuse to spend on a remote teacher that has no price: its calls would be stored as free,
    so teacher.budget_usd would hold nothing back. A server on this machine (kind local, or a
    local base_url: llama.cpp, vLLM, Ollama) costs nothing per token."""
    from graduate.errors import SpecError
    from graduate.teacher.openai_compat import is_local_url

    if price is None and spec.kind == "openai" and not is_local_url(spec.base_url):
        raise SpecError(
            f"{spec.model!r} has no price, so teacher.budget_usd ({usd(spec.budget_usd)}) cannot be held and nothing was sent; "
            f"add it to prices: ({spec.model}: {{input_per_1m: ..., output_per_1m: ...}}, USD per 1M tokens) or set teacher.price "
            "(0 for a free endpoint)",
            field="teacher.model",
        )


def record_completion(
    engine: Engine,
    call_id: int,
    completion: Completion,
    *,
    est_in: int,
    latency_ms: float,
    price: PriceSpec | None,
    redactor: Redactor | None = None,
    body: dict[str, Any] | None = None,
    unpriced_cost: float | None = 0.0,
    error: str | None = None,
) -> float:
    """Complete a pending call in the log with its answer, tokens (estimated where the endpoint
    reported no usage) and cost; returns the cost. With a ``redactor`` the answer is stored redacted
    (``body``: the request as sent, so its values keep their placeholders). ``unpriced_cost``: the
    cost stored when ``price`` is None (None: unknown, as the proxy and batches store it). With
    ``error`` the call is completed as failed (an answer paid for but unusable: ``unusable_answer``),
    its answer, tokens and cost kept."""
    stored = records.answer(redactor, body, content=completion.content, response=completion.response)
    estimated = completion.input_tokens is None or completion.output_tokens is None
    tin = completion.input_tokens if completion.input_tokens is not None else est_in
    tout = completion.output_tokens if completion.output_tokens is not None else estimate_text_tokens(completion.content or "")
    cost = price.cost(tin, tout) if price else unpriced_cost
    finish_call(
        engine,
        call_id,
        status="ok" if error is None else "error",
        error=error,
        content=stored.content,
        response=stored.response,
        redactions=stored.redactions,
        input_tokens=tin,
        output_tokens=tout,
        tokens_estimated=estimated,
        latency_ms=latency_ms,
        cost_usd=cost,
        attempts=completion.attempts,
    )
    return cost or 0.0


async def label_texts(
    engine: Engine,
    spec: TeacherSpec,
    backend: TeacherBackend,
    texts: Sequence[str],
    *,
    price: PriceSpec | None,
    progress: Progress | None = None,
    samples: int = 1,
    redactor: Redactor | None = None,
    whole_answers: bool = True,
    stats: LabelStats | None = None,
    cut: CutCount | None = None,
) -> tuple[list[LabelOutcome], LabelStats]:
    """Label ``texts`` with the live teacher. Outcomes come back in input order.

    ``samples`` > 1 makes sure each distinct request has that many successful answers in the log
    (self-consistency): the missing ones are sent one after another per request, each stored
    under the next sample index.

    With a ``redactor`` (privacy.redact) every request and answer is stored redacted; the
    outcomes carry the answers as received.

    ``whole_answers``: an answer cut off at the token limit, or without text, is a failed call
    (``unusable_answer``); False keeps a cut one as an answer (a written list keeps its lines).

    ``stats``: the counts to keep, updated as calls settle, so a caller that is stopped midway
    (Ctrl-C cancels the sending) can say what was stored (a new one when not given).

    ``cut``: the run's answers so far for the CUT_STOP stop, when this call is one part of a run
    (a new count when not given: this call is the run).

    Raises ``TeacherAuthError`` if the teacher refuses the API key (after the calls in flight settle).
    """
    require_sendable(texts)
    params = request_params(spec)
    stats = stats if stats is not None else LabelStats()
    stats.items = len(texts)
    keyed: dict[str, list[int]] = {}
    requests: dict[str, ChatRequest] = {}
    for i, text in enumerate(texts):
        messages = render_messages(spec, text)
        key = request_key(spec.model, messages, params)
        keyed.setdefault(key, []).append(i)
        requests.setdefault(key, ChatRequest(spec.model, messages, dict(params)))
    stats.distinct = len(keyed)
    outcomes: list[LabelOutcome | None] = [None] * len(texts)

    def settle(key: str, outcome_for: Callable[[str], LabelOutcome]) -> None:
        for i in keyed[key]:
            outcomes[i] = outcome_for(texts[i])
        if progress:
            progress(len(keyed[key]))

    # A cut answer is no answer to reuse (an older version stored some as ok), unless cut ones are kept.
    cut_ok = not whole_answers
    done = answers(engine, keyed, cut_ok=cut_ok)
    need = {k: 1 for k in keyed if k not in done}
    if samples > 1:
        from graduate.store.calls import samples as stored_samples

        have = {k: sum(r.status == "ok" for r in rows) for k, rows in stored_samples(engine, keyed, cut_ok=cut_ok).items()}
        need = {k: samples - have.get(k, 0) for k in keyed if have.get(k, 0) < samples}
        done = {k: row for k, row in done.items() if k not in need}
    for key, row in done.items():
        stats.cached += 1
        settle(key, lambda t, row=row, key=key: LabelOutcome(t, key, "cached", row.id, row.content))
    # A request waiting in an open Batch API batch (graduate batch) is not paid for twice.
    for key in key_state(engine, need).held:
        need.pop(key, None)
        stats.not_sent += 1
        stats.held += 1
        settle(key, lambda t, key=key: LabelOutcome(t, key, "not_sent", error="held by an open batch: graduate batch collect"))
    if whole_answers and need:
        cut_before = known_cut(engine, spec, need)
        if cut_before:
            stats.known_cut = len(cut_before)
            stats.not_sent += len(cut_before)
            stats.known_cut_advice = known_cut_advice(spec, len(cut_before))
            where, fix = _cut_fix(spec)
            why = f"not sent: its answer at these same settings was cut off at {where} before (finish_reason length); {fix}"
            for key in cut_before:
                need.pop(key)
                settle(key, lambda t, key=key: LabelOutcome(t, key, "not_sent", error=why))

    if need:
        require_price(spec, price)
    stats.to_send = sum(need.values())
    budget = _Budget(spec.budget_usd, live_spend(engine))
    sem = asyncio.Semaphore(spec.concurrency)
    pacer = Pacer(spec)
    # Without teacher.max_tokens an answer has no bound: a call reserves the longest answer the
    # model has given, and while it has given none, the first call runs alone with what is left
    # reserved, so a teacher that writes long answers cannot overshoot budget_usd in one wave.
    longest = longest_answer(engine, spec.model) if spec.max_tokens is None else None
    probing = spec.max_tokens is None and longest is None

    def reserve_for(most_in: int) -> Callable[[float], float]:
        def amount(left: float) -> float:
            wanted = price.cost(most_in, output_reserve(spec, longest)) if price else 0.0
            return max(wanted, left) if probing and price else wanted

        return amount

    # A refused API key fails every call alike: send no more, and raise it once the rest settle.
    refused: list[TeacherAuthError] = []

    # Answers that are all cut off (or hold no text) would be paid for every item and fail alike:
    # once the first CUT_STOP answers are all unusable, the rest are not sent.
    cut = cut if cut is not None else CutCount()
    unusable = cut.unusable

    def refuse(key: str) -> bool:
        if refused:
            stats.not_sent += 1
            settle(key, lambda t: LabelOutcome(t, key, "not_sent", error=str(refused[0])))
        elif not cut.usable and len(unusable) >= CUT_STOP:
            stats.not_sent += 1
            stats.stopped_unsent += 1
            stats.cut_stopped = True
            why = f"not sent: the first {len(unusable)} answers were all unusable ({unusable[0]})"
            settle(key, lambda t: LabelOutcome(t, key, "not_sent", error=why))
            return True
        return bool(refused)

    async def one(key: str) -> None:
        req = requests[key]
        async with sem:
            if refuse(key):
                return
            nonlocal longest, probing
            est_in = estimate_prompt_tokens(req.messages)
            # The prompt's most tokens, not the estimate: a text in another script has ~4 times as many.
            reserve = await budget.reserve(reserve_for(most_prompt_tokens(req.messages)))
            if reserve is None:
                stats.not_sent += 1
                settle(key, lambda t: LabelOutcome(t, key, "not_sent", error="budget reached"))
                return
            actual = 0.0
            out_tokens: int | None = None
            try:
                if refuse(key):
                    return
                body = req.body()
                stored_request, counts = records.request(redactor, body)
                call_id = begin_call(engine, cache_key=key, model=req.model, request=stored_request, params=req.params, redactions=counts)
                stats.in_flight += 1
                started = time.perf_counter()
                try:
                    # Every attempt, retries too, waits for the shared limits (graduate.teacher.sending).
                    completion = await send(backend, req, pacer, max_retries=spec.max_retries, tokens=est_in + output_reserve(spec, longest))
                except TeacherError as exc:
                    failed = records.answer(redactor, body, error=str(exc))
                    finish_call(engine, call_id, status="error", error=failed.error, attempts=exc.attempts or 1, redactions=failed.redactions)
                    stats.in_flight -= 1
                    if isinstance(exc, TeacherAuthError):
                        refused.append(exc)
                    stats.failed += 1
                    stats.retryable += isinstance(exc, TeacherTransientError)
                    if len(stats.errors) < 20:
                        stats.errors.append(str(exc))
                    settle(key, lambda t: LabelOutcome(t, key, "failed", call_id, error=str(exc)))
                    return
                # The answering attempt's own time (what a local model's CPU cost is estimated from).
                latency = completion.latency_ms if completion.latency_ms is not None else (time.perf_counter() - started) * 1000
                problem = unusable_answer(completion, spec) if whole_answers or completion.content is None else None
                actual = record_completion(
                    engine, call_id, completion, est_in=est_in, latency_ms=latency, price=price, redactor=redactor, body=body, error=problem
                )
                stats.in_flight -= 1
                stats.cost_usd += actual
                stats.attempts += completion.attempts
                out_tokens = completion.output_tokens if completion.output_tokens is not None else estimate_text_tokens(completion.content or "")
                if problem is not None:
                    unusable.append(problem)
                    stats.failed += 1
                    if len(stats.errors) < 20:
                        stats.errors.append(problem)
                    settle(key, lambda t: LabelOutcome(t, key, "failed", call_id, error=problem))
                    return
                cut.usable += 1
                stats.sent += 1
                settle(key, lambda t: LabelOutcome(t, key, "sent", call_id, completion.content))
            finally:
                if out_tokens is not None and spec.max_tokens is None:
                    longest, probing = max(longest or 0, out_tokens), False
                await budget.settle(reserve, actual)

    try:
        await asyncio.gather(*(_repeat(one, k, need[k]) for k in need))
    finally:
        await backend.aclose()
    if refused:
        raise refused[0]
    stats.budget_stopped = budget.stopped
    return [o for o in outcomes if o is not None], stats


async def _repeat(send: Callable[[str], Awaitable[None]], key: str, times: int) -> None:
    # One request's samples go one after another: concurrent ones would share its pending row.
    for _ in range(times):
        await send(key)
