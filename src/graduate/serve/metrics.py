"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from typing import Any

# Latency buckets in seconds: fine-grained under 50 ms, where a student answers.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class ServeMetrics:
    def __init__(self, prefix: str = "graduate") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{prefix}_requests", "HTTP requests by endpoint and status code.", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            f"{prefix}_request_latency_seconds", "Time from request to response, by endpoint.", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.items = Counter(f"{prefix}_items", "Texts answered, by endpoint.", ["endpoint"], registry=r)
        self.routing = Counter(f"{prefix}_routing_decisions", "Items by routing mode, route (who answered) and reason.", ["mode", "route", "reason"], registry=r)
        self.agreement = Counter(f"{prefix}_agreement", "Student vs teacher comparisons, by outcome (agree, disagree).", ["outcome"], registry=r)
        self.agreement_ratio = Gauge(f"{prefix}_agreement_ratio", "Share of comparisons where student and teacher agreed, since start (NaN until one is made).", registry=r)
        self.agreement_ratio.set(float("nan"))  # not 0: nothing compared is not "always disagreed"
        self.rejected = Counter(f"{prefix}_rejected", "Requests refused before any work, by reason.", ["reason"], registry=r)
        self.feedback = Counter(f"{prefix}_feedback", "Answers people gave through POST /v1/feedback, by outcome (added, changed, unchanged).", ["status"], registry=r)
        self.in_flight = Gauge(f"{prefix}_in_flight", "Requests being handled now.", registry=r)
        self.teacher_calls = Counter(f"{prefix}_teacher_calls", "Teacher calls made while serving, by outcome.", ["outcome"], registry=r)
        self.teacher_circuit_open = Gauge(
            f"{prefix}_teacher_circuit_open", "1 while the teacher is not asked after failing serve.teacher_breaker_failures calls in a row, else 0.", registry=r
        )
        self.middle_circuit_open = Gauge(
            f"{prefix}_middle_circuit_open",
            "1 while a cascade's middle tier is skipped after failing serve.teacher_breaker_failures calls in a row, else 0.",
            registry=r,
        )
        self.traffic_pending = Gauge(f"{prefix}_traffic_pending_rows", "Traffic rows waiting to be written.", registry=r)
        self.traffic_written = Counter(f"{prefix}_traffic_written_rows", "Traffic rows written to the store.", registry=r)
        self._agree = 0
        self._compared = 0

    def compared(self, agree: bool) -> None:
        self.agreement.labels("agree" if agree else "disagree").inc()
        self._agree += int(agree)
        self._compared += 1
        self.agreement_ratio.set(self._agree / self._compared)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def snapshot(self) -> dict[str, Any]:
        """A few figures for logs and tests."""
        return {"compared": self._compared, "agreed": self._agree}


class MetricsMiddleware:
    """Counts every request (refused ones too) and its latency, by endpoint and status."""

    def __init__(self, app: Any, *, metrics: ServeMetrics, endpoints: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        import time

        path = scope["path"]
        endpoint = path if path in self.endpoints else "other"
        status = 500
        t0 = time.perf_counter()

        async def tracked(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
