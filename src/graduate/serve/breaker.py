"""A circuit breaker in front of the teacher while serving (pybreaker): after
``serve.teacher_breaker_failures`` teacher calls in a row fail or time out, requests stop waiting
on a teacher that is down. For ``serve.teacher_breaker_reset_s`` they fall back to the student at
once (reason ``teacher_unavailable``). Then calls try the teacher again: a success closes the
circuit, a failure opens it for another rest. The state is the ``graduate_teacher_circuit_open``
gauge and ``teacher_circuit`` on ``/readyz``. A cascade's middle tier has its own breaker with the
same settings: while it is open items skip the middle tier for the teacher (reason
``middle_unavailable``; ``middle_circuit`` on ``/readyz``, the ``graduate_middle_circuit_open`` gauge).
A call cancelled before it answered (the request's deadline or the server's stop came first)
counts as a timed-out call."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Callable, Iterator


class TeacherDown(Exception):
    """Raised inside ``guard`` for a call that failed or timed out, so that the breaker counts it
    (a call cancelled inside ``guard`` counts as timed out too)."""


class TeacherBreaker:
    def __init__(self, failures: int, reset_s: float, on_change: Callable[[str], None] | None = None):
        import pybreaker

        self.failures, self.reset_s = failures, reset_s
        self._open_error = pybreaker.CircuitBreakerError
        listeners = []
        if on_change is not None:

            class _Listener(pybreaker.CircuitBreakerListener):
                def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
                    on_change(new_state.name)

            listeners.append(_Listener())
        # throw_new_error_on_trip=False: the call that trips the breaker fails as itself (TeacherDown).
        # pybreaker counts an excluded exception as a success (it resets the failures in a row and
        # closes a half-open circuit), so a call cancelled before it answered is not excluded: the
        # request's deadline (serve.request_timeout_s) or the server's stop came first, a timed-out call.
        self._cb = pybreaker.CircuitBreaker(
            fail_max=failures, reset_timeout=reset_s, throw_new_error_on_trip=False, listeners=listeners,
            exclude=[lambda e: not isinstance(e, (TeacherDown, asyncio.CancelledError))],
        )  # fmt: skip

    @property
    def state(self) -> str:
        """closed, open or half-open."""
        return str(self._cb.current_state)

    @contextlib.contextmanager
    def guard(self) -> Iterator[bool]:
        """Yields True when the teacher may be asked (the block then raises TeacherDown for a failed
        call), False while the circuit is open (ask nobody)."""
        try:
            ctx = self._cb.calling()
            ctx.__enter__()
        except self._open_error:
            yield False
            return
        try:
            yield True
        except BaseException as exc:  # noqa: BLE001 - counted by the breaker, then raised again
            if not ctx.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            ctx.__exit__(None, None, None)
