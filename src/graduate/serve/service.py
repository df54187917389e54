"""One request's work, whatever the endpoint: the student predicts every item, the strategy routes
each, the teacher answers the items routed to it (falling back to the student when it fails or the
budget is spent), shadow comparisons run in the background, and every item becomes a traffic row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from graduate.errors import BudgetExceededError
from graduate.formats import labelset
from graduate.formats.logprobs import answer_distribution
from graduate.serve.breaker import TeacherBreaker, TeacherDown
from graduate.serve.metrics import ServeMetrics
from graduate.serve.predictor import Predictor
from graduate.serve.promotion import Promotion
from graduate.serve.routing import Strategy
from graduate.serve.teacher_client import ServeTeacher, TeacherAnswer
from graduate.serve.traffic import TrafficWriter


class PromotionError(Exception):
    """A promotion cannot start (one is running)."""


# Background shadow comparisons allowed at once, per teacher concurrency slot; past it a sampled
# item is answered without comparison (reason shadow_skipped) rather than queued without bound.
SHADOW_BACKLOG_PER_SLOT = 4


@dataclass
class ItemResult:
    text: str | None
    label: str | None
    route: str
    reason: str
    student_label: str | None = None
    confidence: float | None = None
    probs: dict[str, float] | None = None
    content: str | None = None  # the teacher's own answer text, when the teacher answered
    # the middle tier's probability per label (from its logprobs; None without), when it answered:
    # ``probs`` stay the student's, as a teacher-answered item's do
    answer_probs: dict[str, float] | None = None
    teacher: TeacherAnswer | None = None
    shadow: bool = False
    student: str | None = None  # NAME:RUN_ID of the student that predicted it (the served one when it started, or a canary candidate)

    @property
    def agree(self) -> bool | None:
        t = self.teacher.label if self.teacher is not None else None
        if t is None or self.student_label is None:
            return None
        return t == self.student_label


@dataclass
class RequestInfo:
    endpoint: str
    client: str | None
    model: str | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    arrived: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    t0: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000


class ServeService:
    def __init__(
        self,
        *,
        labels: list[str],
        student_name: str,
        predictor: Predictor,
        strategy: Strategy,
        teacher: ServeTeacher | None,
        writer: TrafficWriter,
        metrics: ServeMetrics,
        decide: Callable[[np.ndarray], list[str]] | None = None,
        multi_label: bool = False,
    ):
        self.labels = labels
        self.decide = decide
        self.multi_label = multi_label
        self.student_name = student_name
        self.predictor = predictor
        self.strategy = strategy
        self.writer = writer
        self.metrics = metrics
        self._background: set[asyncio.Task] = set()
        self.promotion: Promotion | None = None
        self._inflight: dict[int, int] = {}  # id(predictor) -> requests using it (a swapped-out one closes at 0)
        self.teacher: ServeTeacher | None = None
        self.middle: ServeTeacher | None = None  # cascade: a middle tier (a local LLM) asked before the teacher
        self.middle_threshold = 1.0
        self.task_parse: Any = None
        self.shadow_backlog = 1
        self.teacher_wait_s: float | None = None  # see _ask
        self.breaker: TeacherBreaker | None = None  # see _ask
        self.middle_breaker: TeacherBreaker | None = None  # see _ask_middle
        if teacher is not None:
            self.attach_teacher(teacher)

    def attach_teacher(self, teacher: ServeTeacher) -> None:
        """The teacher client is made inside the event loop (the app's startup), so it comes later."""
        self.teacher = teacher
        self.shadow_backlog = max(1, teacher.concurrency * SHADOW_BACKLOG_PER_SLOT)

    def attach_middle(self, middle: ServeTeacher, threshold: float, task_parse: Any) -> None:
        self.middle, self.middle_threshold, self.task_parse = middle, threshold, task_parse

    async def _ask_middle(self, text: str, *, wait_s: float | None = None) -> tuple[TeacherAnswer | None, str | None]:
        """The middle tier's answer when it is sure enough (its answer's probability from logprobs
        reaches the threshold; without logprobs only a threshold of 0 accepts it), else None, and
        the item's reason when the middle tier was not asked. ``wait_s``: past it the item goes on
        (the call ends, and is logged, in the background). With a breaker (the teacher's settings),
        a middle tier that keeps failing is skipped for a while (``middle_unavailable``)."""
        if self.middle_breaker is None:
            return (await self._ask_middle_tier(text, wait_s=wait_s))[0], None
        try:
            with self.middle_breaker.guard() as may_ask:
                if not may_ask:
                    self.metrics.teacher_calls.labels("middle_circuit_open").inc()
                    return None, "middle_unavailable"
                answer, down = await self._ask_middle_tier(text, wait_s=wait_s)
                if down:
                    raise TeacherDown()  # counted by the breaker
                return answer, None
        except TeacherDown:
            return None, None

    async def _within(self, call: Awaitable[TeacherAnswer], wait_s: float | None) -> TeacherAnswer | None:
        """``call``'s answer, or None once ``wait_s`` has passed: the call then goes on in the
        background and is logged when it ends (the middle tier and the teacher alike), as it does
        when the request waiting for it is cancelled."""
        if wait_s is None:
            return await call
        task = asyncio.ensure_future(call)
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait_s)
        except asyncio.TimeoutError:
            return None
        finally:
            # Past wait_s, or the request itself was cancelled (its deadline, the server's stop): the
            # call goes on in the background, where a stop's drain waits for it or cancels it.
            if not task.done():
                self._background.add(task)
                task.add_done_callback(_settled(self._background))

    def _middle_probs(self, answer: TeacherAnswer) -> dict[str, float] | None:
        """The middle tier's probability per label, from its answer's logprobs (None without). None
        for a label set written as a list (label_list, json_list): that reading sees only the labels
        the answer started (graduate.formats.label_starts), so it overstates how sure the answer is
        of every label it left out; such a middle tier is taken only at threshold 0, as one without logprobs."""
        if self.task_parse is None or self.task_parse.kind in ("label_list", "json_list"):
            return None
        return answer_distribution(answer.response, self.task_parse, self.labels)

    async def _ask_middle_tier(self, text: str, *, wait_s: float | None = None) -> tuple[TeacherAnswer | None, bool]:
        """The answer (see _ask_middle) and whether the call failed or timed out (for the breaker:
        an unsure or unparseable answer is a middle tier that works)."""
        assert self.middle is not None
        try:
            answer = await self._within(self.middle.label(text), wait_s)
            if answer is None:
                self.metrics.teacher_calls.labels("middle_timeout").inc()
                return None, True
        except BudgetExceededError:
            self.metrics.teacher_calls.labels("middle_budget").inc()
            return None, False
        if answer.label is None or answer.error is not None:
            self.metrics.teacher_calls.labels("middle_failed").inc()
            return None, answer.content is None and answer.error is not None
        dist = self._middle_probs(answer)
        if dist and self.multi_label:
            # each label's own P(label), not a distribution: judged as the student's cascade confidence is,
            # by the least sure decision of the answered set (the largest P(label) never passed an empty set)
            sure = labelset.confidence(answer.label, [dist.get(lab, 0.0) for lab in self.labels], self.labels)
        else:
            sure = max(dist.values()) if dist else (1.0 if self.middle_threshold <= 0 else 0.0)
        if sure < self.middle_threshold:
            self.metrics.teacher_calls.labels("middle_unsure").inc()
            return None, False
        self.metrics.teacher_calls.labels("middle_ok").inc()
        return answer, False

    async def _ask(self, text: str, *, wait_s: float | None = None) -> tuple[TeacherAnswer, str | None]:
        """The teacher's answer and, when it cannot be used, the reason to fall back. ``wait_s``: a
        request waits no longer than this (serve.teacher_wait_s); the call goes on in the background
        and is logged when it ends, and the item falls back (``teacher_timeout``). With a breaker
        (graduate.serve.breaker), a teacher that keeps failing is not asked for a while
        (``teacher_unavailable``)."""
        if self.breaker is None:
            return await self._ask_teacher(text, wait_s=wait_s)
        try:
            with self.breaker.guard() as may_ask:
                if not may_ask:
                    self.metrics.teacher_calls.labels("circuit_open").inc()
                    why = f"teacher not asked: {self.breaker.failures} calls in a row failed; it rests {self.breaker.reset_s:g}s (serve.teacher_breaker_*)"
                    return TeacherAnswer(None, None, None, 0.0, error=why), "teacher_unavailable"
                answer, fallback = await self._ask_teacher(text, wait_s=wait_s)
                if fallback in ("teacher_failed", "teacher_timeout"):
                    raise TeacherDown(answer, fallback)  # counted by the breaker
                return answer, fallback
        except TeacherDown as down:
            return down.args[0], down.args[1]

    async def _ask_teacher(self, text: str, *, wait_s: float | None = None) -> tuple[TeacherAnswer, str | None]:
        assert self.teacher is not None
        try:
            answer = await self._within(self.teacher.label(text), wait_s)
            if answer is None:
                assert wait_s is not None
                self.metrics.teacher_calls.labels("timeout").inc()
                return TeacherAnswer(None, None, None, wait_s * 1000, error=f"no answer within {wait_s:g}s (serve.teacher_wait_s)"), "teacher_timeout"
        except BudgetExceededError as exc:
            self.metrics.teacher_calls.labels("budget").inc()
            return TeacherAnswer(None, None, None, 0.0, error=str(exc)), "budget"
        if answer.content is None and answer.error is not None:
            self.metrics.teacher_calls.labels("failed").inc()
            return answer, "teacher_failed"
        self.metrics.teacher_calls.labels("cached" if answer.cached else "ok").inc()
        if answer.label is None:
            return answer, "teacher_unparseable"
        return answer, None

    async def _predict(self, predictor: Predictor, texts: Sequence[str]) -> np.ndarray:
        key = id(predictor)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        try:
            return await predictor.predict(texts)
        finally:
            self._inflight[key] -= 1

    async def classify(self, texts: Sequence[str]) -> list[ItemResult]:
        # read once: a promotion may swap the student while this request runs (its rows name the one that answered)
        decide, name = self.decide, self.student_name
        probs = await self._predict(self.predictor, texts)
        labels = self.labels
        results: list[ItemResult] = []
        to_teacher: list[int] = []
        decided = decide(probs) if decide is not None else [labels[int(p.argmax())] for p in probs]
        for i, (text, p, label) in enumerate(zip(texts, probs, decided)):
            if self.multi_label:
                conf = labelset.confidence(label, p, labels)  # the least sure per-label decision
            else:
                conf = float(p.max())
            decision = self.strategy.decide(conf)
            r = ItemResult(
                text=text,
                label=label,
                route=decision.route,
                reason=decision.reason,
                student_label=label,
                confidence=conf,
                probs={lab: float(v) for lab, v in zip(labels, p)},
                shadow=decision.shadow,
                student=name,
            )
            if decision.route == "teacher":
                to_teacher.append(i)
            results.append(r)
        wait_s = self.teacher_wait_s
        if to_teacher and self.middle is not None:
            # The middle tier and the teacher share serve.teacher_wait_s: the middle gets half, so a
            # hanging local LLM never turns the request into a 504; the teacher gets what is left.
            asked_at = time.perf_counter()
            middle = await asyncio.gather(*(self._ask_middle(texts[i], wait_s=None if wait_s is None else wait_s / 2) for i in to_teacher))
            if wait_s is not None:
                wait_s = max(wait_s / 2, wait_s - (time.perf_counter() - asked_at))
            for i, (answer, skipped) in zip(to_teacher, middle):
                r = results[i]
                if answer is not None:
                    r.route, r.reason, r.label, r.content = "middle", "middle_confident", answer.label, answer.content
                    r.answer_probs = self._middle_probs(answer)
                elif skipped is not None:
                    r.reason = skipped  # the teacher answers it (or its fallback reason replaces this)
            to_teacher = [i for i, (answer, _) in zip(to_teacher, middle) if answer is None]
        if to_teacher:
            asked = await asyncio.gather(*(self._ask(texts[i], wait_s=wait_s) for i in to_teacher))
            for i, (answer, fallback) in zip(to_teacher, asked):
                r = results[i]
                r.teacher = answer
                if fallback is None:
                    r.label, r.content = answer.label, answer.content
                else:
                    r.route, r.reason = "student", fallback
        promotion = self.promotion
        if promotion is not None and promotion.active:
            await self._candidate(promotion, texts, results)
        for r in results:
            self.metrics.routing.labels(self.strategy.mode, r.route, r.reason).inc()
            if r.agree is not None:
                self.metrics.compared(bool(r.agree))
        return results

    # -- promotion (graduate.serve.promotion) --------------------------------------------------
    async def _candidate(self, promotion: Promotion, texts: Sequence[str], results: list[ItemResult]) -> None:
        """The candidate scores the request; in the canary stage it may answer it."""
        cand = promotion.candidate
        started = time.perf_counter()
        try:
            probs = await self._predict(cand.predictor, texts)
        except Exception as exc:  # noqa: BLE001 - any failure of the candidate rolls it back; the client got the current answer
            if promotion.failed(f"{type(exc).__name__}: {exc}") == "rollback":
                await self._settle(promotion)
            return
        latency = (time.perf_counter() - started) * 1000
        decided = cand.decide(probs) if cand.decide is not None else [self.labels[int(p.argmax())] for p in probs]
        served = [r.label for r in results]
        if promotion.answers():
            for r, d, p in zip(results, decided, probs):
                if r.route == "student":
                    r.label = r.student_label = d
                    r.reason = "candidate"
                    r.probs = {lab: float(v) for lab, v in zip(self.labels, p)}
                    # the candidate's own confidence and name, not the served student's beside the candidate's label
                    r.confidence = labelset.confidence(d, p, self.labels) if self.multi_label else float(p.max())
                    r.student = cand.name
        if promotion.observe(served, decided, latency) in ("promote", "rollback"):
            await self._settle(promotion)

    async def _settle(self, promotion: Promotion) -> None:
        """A judged promotion: the candidate becomes the served student, or is dropped."""
        if self.promotion is not promotion:
            return
        cand = promotion.candidate
        if promotion.outcome == "promoted":
            old = self.predictor
            self.predictor, self.decide, self.student_name = cand.predictor, cand.decide, cand.name
            self._retire(old)
        else:
            self._retire(cand.predictor)

    def _retire(self, predictor: Predictor) -> None:
        async def close_when_idle() -> None:
            while self._inflight.get(id(predictor), 0) > 0:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(predictor.close)
            self._inflight.pop(id(predictor), None)

        task = asyncio.get_running_loop().create_task(close_when_idle())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def promotion_busy(self) -> str | None:
        """Why no promotion can start now (one is running), or None."""
        if self.promotion is not None and self.promotion.active:
            return f"a promotion of {self.promotion.candidate.name} is running ({self.promotion.stage}); wait for it to end"
        return None

    def start_promotion(self, promotion: Promotion) -> None:
        busy = self.promotion_busy()
        if busy is not None:
            raise PromotionError(busy)
        self.promotion = promotion

    async def forward(self, body: dict[str, Any]) -> tuple[TeacherAnswer, str | None]:
        """A chat request that does not match the template, passed to the teacher as written."""
        assert self.teacher is not None
        try:
            answer = await self.teacher.forward(body)
        except BudgetExceededError as exc:
            self.metrics.teacher_calls.labels("budget").inc()
            return TeacherAnswer(None, None, None, 0.0, error=str(exc)), "budget"
        self.metrics.teacher_calls.labels("failed" if answer.error else ("cached" if answer.cached else "ok")).inc()
        self.metrics.routing.labels(self.strategy.mode, "teacher", "template_mismatch").inc()
        return answer, ("teacher_failed" if answer.error else None)

    # -- the traffic log ---------------------------------------------------------------------
    @staticmethod
    def _teacher_side(r: ItemResult) -> dict[str, Any]:
        """The columns of a row that the teacher's answer fills in."""
        t = r.teacher
        return {
            "teacher_label": t.label if t else None,
            "teacher_call_id": t.call_id if t else None,
            "teacher_error": t.error if t else None,
            "agree": r.agree,
            "teacher_latency_ms": t.latency_ms if t else None,
        }

    def _row(self, info: RequestInfo, item: int, r: ItemResult, *, status: int, latency_ms: float, answer: str | None) -> dict[str, Any]:
        return {
            "request_id": info.request_id,
            "item": item,
            "created_at": info.arrived,
            "endpoint": info.endpoint,
            "mode": self.strategy.mode,
            "route": r.route,
            "reason": r.reason,
            "status": status,
            "text": r.text,
            "answer": answer,
            "label": r.label,
            "student_label": r.student_label,
            "confidence": r.confidence,
            "probs": r.probs,
            **self._teacher_side(r),
            "shadow": r.shadow,
            "latency_ms": latency_ms,
            "student": (r.student or self.student_name) if r.student_label is not None else None,
            "model": info.model,
            "client": info.client,
        }

    def log(self, info: RequestInfo, results: list[ItemResult], *, status: int, answers: list[str | None]) -> None:
        """Queue the traffic rows of an answered request, all at once: a shadow item's row is
        completed with the teacher's side when its background comparison settles (minutes, for a
        hanging teacher), so a crash meanwhile loses no answered item."""
        latency = info.elapsed_ms()
        rows, compared = [], 0
        for i, (r, answer) in enumerate(zip(results, answers)):
            if r.shadow and self.teacher is not None and len(self._background) + compared < self.shadow_backlog and not self.teacher.saturated:
                compared += 1
            elif r.shadow:
                r.shadow, r.reason = False, "shadow_skipped"
            rows.append(self._row(info, i, r, status=status, latency_ms=latency, answer=answer))
        self.writer.add(rows)
        for i, r in enumerate(results):
            if r.shadow:
                task = asyncio.get_running_loop().create_task(self._shadow(info, i, r))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        self.metrics.items.labels(info.endpoint).inc(len(results))

    async def _shadow(self, info: RequestInfo, i: int, r: ItemResult) -> None:
        try:
            assert r.text is not None
            r.teacher, _ = await self._ask(r.text)
            if r.agree is not None:
                self.metrics.compared(bool(r.agree))
        except asyncio.CancelledError:
            r.teacher = TeacherAnswer(None, None, None, 0.0, error="server stopped before the teacher answered")
            raise
        finally:
            self.writer.update(info.request_id, i, self._teacher_side(r))

    def log_forwarded(self, info: RequestInfo, answer: TeacherAnswer, reason: str, *, status: int) -> None:
        r = ItemResult(text=None, label=None, route="teacher", reason=reason, teacher=answer)
        self.writer.add([self._row(info, 0, r, status=status, latency_ms=info.elapsed_ms(), answer=answer.content)])
        self.metrics.items.labels(info.endpoint).inc()

    async def drain(self, timeout: float) -> None:
        """Let background comparisons finish (bounded); the rest are cancelled and still logged."""
        if not self._background:
            return
        pending = set(self._background)
        _, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)


def _settled(background: set[asyncio.Task]) -> Callable[[asyncio.Future], None]:
    """A done-callback for a teacher call nobody waits for any more: off the background set, its
    outcome read (a failed call is already logged by the teacher client)."""

    def done(task: asyncio.Future) -> None:
        background.discard(task)  # type: ignore[arg-type]
        if not task.cancelled():
            task.exception()

    return done
