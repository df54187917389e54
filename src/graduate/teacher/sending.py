"""Send one request to a backend with retries, every attempt paced by the same limits.

A backend makes one attempt (``TeacherBackend.complete``) and raises ``TeacherTransientError``
when it is worth another. Retries are tenacity's (exponential backoff with jitter, or the
server's ``Retry-After`` when it sends one), and each attempt, first or retry, waits for the
``Pacer`` first: a retry that skipped the limiter would add load exactly when the provider asked
for less. A 429 pauses the whole client, not only the request that got it, for the time the
server asked (or the backoff), so every request in flight backs off together.
"""

from __future__ import annotations

import asyncio
import math
import time

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from graduate.errors import TeacherTransientError
from graduate.spec import TeacherSpec
from graduate.teacher.base import ChatRequest, Completion, TeacherBackend

# Aim a little under the configured limits so that clock skew with the server causes no 429s.
RATE_HEADROOM = 0.97
# Burst allowed by the request bucket, as a share of one second's requests (at least one): a
# provider that enforces its per-minute limit per second (OpenAI may) never sees a spike.
BURST_SHARE = 0.02
_backoff = wait_random_exponential(multiplier=0.5, max=30)


class Pacer:
    """The client's shared limits: a pause after a 429, then the request and token buckets."""

    def __init__(self, spec: TeacherSpec):
        from aiolimiter import AsyncLimiter

        rps = max(spec.requests_per_minute * RATE_HEADROOM / 60.0, 1e-3)
        burst = max(1, math.floor(rps * BURST_SHARE))
        # A bucket of `burst` requests that drains at `rps`: requests spaced 1/rps apart once busy.
        self.requests = AsyncLimiter(burst, burst / rps)
        # Tokens: a 10-second bucket, large enough for one long prompt.
        self.tokens = AsyncLimiter(max(spec.tokens_per_minute * RATE_HEADROOM / 6.0, 1.0), 10.0)
        self._paused_until = 0.0
        self.pauses = 0

    async def wait(self, tokens: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while (delay := self._paused_until - loop.time()) > 0:
                await asyncio.sleep(delay)
            await self.requests.acquire()
            # A slot taken while a pause began is given up: held slots would all fire together
            # the moment the pause ends, a burst the provider would refuse again.
            if self._paused_until <= loop.time():
                break
        await self.tokens.acquire(min(tokens, self.tokens.max_rate))

    def pause(self, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    after = getattr(exc, "retry_after_s", None)
    return float(after) if after is not None else _backoff(state)


async def send(backend: TeacherBackend, request: ChatRequest, pacer: Pacer, *, max_retries: int, tokens: int) -> Completion:
    """One completion, after at most ``max_retries`` retries; raises the last error with
    ``attempts`` set (``TeacherTransientError`` when retries ran out, else the backend's)."""
    attempts = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=_wait,
        retry=retry_if_exception_type(TeacherTransientError),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                await pacer.wait(tokens)
                attempts += 1
                started = time.perf_counter()
                try:
                    completion = await backend.complete(request)
                    completion.latency_ms = (time.perf_counter() - started) * 1000
                except TeacherTransientError as exc:
                    if exc.rate_limited:
                        pacer.pause(exc.retry_after_s if exc.retry_after_s is not None else _backoff(attempt.retry_state))
                    raise
    except TeacherTransientError as exc:
        raise TeacherTransientError(
            f"{exc.detail} ({attempts} attempt{'s' if attempts != 1 else ''})", status=exc.status, retry_after_s=exc.retry_after_s, attempts=attempts
        ) from None
    except Exception as exc:
        if getattr(exc, "attempts", None) is None or attempts > 1:
            try:
                exc.attempts = attempts  # type: ignore[attr-defined]
            except AttributeError:
                pass
        raise
    completion.attempts = attempts
    return completion
