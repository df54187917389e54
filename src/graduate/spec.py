"""The project spec, ``graduate.yaml``: what the task is, who teaches, what data, which students.

Every field has a description (``graduate spec-help`` lists them); unknown fields are errors, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from graduate.errors import SpecError

SPEC_FILENAME = "graduate.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ParseSpec(_Model):
    """How to turn the teacher's raw answer into one of the task's labels."""

    kind: Literal["json_key", "regex", "label_words"] = Field(
        "json_key",
        description="json_key: read `key` from a JSON/Python-dict answer (code fences allowed); "
        "regex: the first group of `pattern`; label_words: the one label whose words appear.",
    )
    key: str | None = Field(None, description="For json_key: the key that holds the answer, e.g. is_bad.")
    pattern: str | None = Field(None, description="For regex: a regular expression whose group 1 is the answer.")
    values: dict[str, str] = Field(
        default_factory=dict,
        description="Maps the raw answer (as text, e.g. '1') to a label; empty means the raw answer is the label.",
    )
    words: dict[str, list[str]] = Field(
        default_factory=dict,
        description="For label_words: words that mean each label; default: the label names themselves.",
    )

    @model_validator(mode="after")
    def _check_kind_fields(self) -> "ParseSpec":
        if self.kind == "json_key" and not self.key:
            raise ValueError("parse.kind json_key needs parse.key (the JSON key holding the answer)")
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("parse.kind regex needs parse.pattern (a regex whose group 1 is the answer)")
            import re

            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"parse.pattern is not a valid regular expression: {exc}") from exc
            if compiled.groups < 1:
                raise ValueError("parse.pattern needs one capturing group: the answer")
        return self


class TaskSpec(_Model):
    """The classification task."""

    name: str = Field(description="A short name for the task, e.g. toxicity.")
    text_column: str = Field("text", description="The input column that holds the text to classify.")
    labels: list[str] = Field(description="The task's labels, in a fixed order (at least two).")
    positive_label: str | None = Field(
        None, description="For binary tasks: the label that counts as positive for precision/recall (default: the last label)."
    )
    parse: ParseSpec = Field(default_factory=lambda: ParseSpec(kind="label_words"), description="How to parse the teacher's answer.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError("a task needs at least two labels")
        if len(set(v)) != len(v):
            raise ValueError("labels must be unique")
        return v

    @model_validator(mode="after")
    def _check(self) -> "TaskSpec":
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise ValueError(f"positive_label {self.positive_label!r} is not one of labels {self.labels}")
        bad = sorted({v for v in self.parse.values.values() if v not in self.labels})
        if bad:
            raise ValueError(f"parse.values maps to unknown labels {bad}; allowed: {self.labels}")
        bad = sorted(k for k in self.parse.words if k not in self.labels)
        if bad:
            raise ValueError(f"parse.words has unknown labels {bad}; allowed: {self.labels}")
        return self

    @property
    def positive(self) -> str:
        return self.positive_label or self.labels[-1]


class PriceSpec(_Model):
    """Price of a model's tokens, in USD per million tokens."""

    input_per_1m: float = Field(ge=0, description="USD per 1M input (prompt) tokens.")
    output_per_1m: float = Field(ge=0, description="USD per 1M output (completion) tokens.")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_1m + output_tokens * self.output_per_1m) / 1e6


class LocalServerSpec(_Model):
    """The llama.cpp server that a `kind: local` teacher starts on 127.0.0.1 (and stops) by itself."""

    port: int | None = Field(None, ge=1, le=65535, description="Port on 127.0.0.1; default: a free one. A port in use is an error.")
    n_ctx: int = Field(2048, ge=256, description="Context size in tokens (prompt + answer); a longer prompt fails as a counted error, it does not hang.")
    threads: int | None = Field(None, ge=1, description="CPU threads for the model; default: every core this process may use.")
    startup_timeout_s: float = Field(300.0, gt=0, description="How long to wait for the server to load the model and answer /v1/models.")
    max_restarts: int = Field(3, ge=0, description="Times the server is restarted if it dies mid-run; the client retries what was in flight.")


class FewShotSpec(_Model):
    """A worked example sent before the item: the prompt rendered with its text, then its answer."""

    text: str = Field(description="The example's text; it is put into the prompt template like an item's.")
    answer: str = Field(description="The answer the teacher should give for it, verbatim, e.g. '{\"is_bad\": 1}'.")


class TeacherSpec(_Model):
    """The teacher: any OpenAI-compatible chat completions endpoint, or a local GGUF model behind one."""

    kind: Literal["openai", "local"] = Field(
        "openai",
        description="openai: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server); "
        "local: start llama.cpp's OpenAI-compatible server on 127.0.0.1 with `model` (needs `pip install 'graduate[local]'`).",
    )
    base_url: str = Field("https://api.openai.com/v1", description="The endpoint's base URL, up to /v1 (kind local: the started server's).")
    model: str = Field(
        description="The model name sent with each request; kind local: a packaged model (qwen2.5-coder-1.5b, qwen2.5-0.5b) or a path to a GGUF file."
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="Name of the environment variable that holds the API key.")
    prompt_name: str = Field("default", description="A name for this prompt version; labels record it.")
    system: str | None = Field(None, description="An optional system message sent before the prompt.")
    prompt: str = Field(description="The user message; {text} is replaced by the item's text.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(None, gt=0, description="Cap on output tokens per answer (also used to reserve budget).")
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once.")
    requests_per_minute: int = Field(500, ge=1, description="Client-side request rate limit.")
    tokens_per_minute: int = Field(200_000, ge=1, description="Client-side token rate limit (prompt + reserved output).")
    budget_usd: float = Field(10.0, ge=0, description="Hard cap on what live calls of this project may cost, in USD, summed over all runs.")
    timeout_s: float = Field(60.0, gt=0, description="Per-attempt request timeout in seconds.")
    max_retries: int = Field(6, ge=0, description="Retries per call on 408/409/429/5xx, timeouts and connection errors (exponential backoff with jitter, honours Retry-After); every retry waits for the rate limits, and a 429 pauses the whole client.")
    price: PriceSpec | None = Field(None, description="Price of this model; default: the entry for `model` in the top-level prices table.")
    logprobs: bool = Field(
        False,
        description="Ask for the answer tokens' log-probabilities (top_logprobs) and store a label distribution with each teacher label; "
        "needs an endpoint that returns them (OpenAI, llama.cpp).",
    )
    top_logprobs: int = Field(5, ge=1, le=20, description="With logprobs: how many alternatives per answer token.")
    response_format: dict[str, Any] | None = Field(
        None,
        description="Sent as the request's response_format to constrain the answer: {type: json_object} is JSON mode; llama.cpp's server "
        "also takes {type: json_object, schema: {...}}, a JSON schema the answer must follow (e.g. an enum of the allowed values).",
    )
    local: LocalServerSpec = Field(default_factory=LocalServerSpec, description="kind local only: the server started for the model.")
    few_shot: list[FewShotSpec] = Field(
        default_factory=list, description="Worked examples sent before each item as user/assistant turns (few-shot prompting); empty: zero-shot."
    )

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        if v.count("{text}") != 1:
            raise ValueError("prompt must contain the placeholder {text} exactly once")
        return v

    @model_validator(mode="after")
    def _local_only(self) -> "TeacherSpec":
        # Compared with the defaults, not "was it given": a dumped spec carries the defaults back in.
        if self.kind != "local" and self.local != LocalServerSpec():
            raise ValueError("teacher.local applies to kind: local only")
        return self

    @property
    def prompt_hash(self) -> str:
        # Few-shot examples are part of the prompt; without them the hash is what it always was.
        parts: list[Any] = [self.system, self.prompt] + ([[f.text, f.answer] for f in self.few_shot] if self.few_shot else [])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:8]

    @property
    def labeller(self) -> str:
        """Who labels: model, prompt name and prompt version, e.g. ``teacher:gpt-4/simple@1a2b3c4d``."""
        return f"teacher:{self.model}/{self.prompt_name}@{self.prompt_hash}"


class DataSourceSpec(_Model):
    """A CSV of items: text, an id, optionally gold labels and tags (subsets)."""

    name: str = Field(description="A name for this source; examples are keyed by (name, id).")
    path: Path = Field(description="The CSV file, relative to the project directory.")
    id_column: str | None = Field(None, description="Column with a unique id per row; default: the row number.")
    text_column: str | None = Field(None, description="Column with the text; default: task.text_column.")
    gold_column: str | None = Field(None, description="Column with gold (human) labels, if any.")
    gold_values: dict[str, str] = Field(default_factory=dict, description="Maps raw gold values (e.g. '1') to labels; empty: values are labels.")
    tags_column: str | None = Field(None, description="Column naming the subsets each row belongs to.")
    tag_separator: str = Field(";", description="Separator between tags in tags_column.")
    group_column: str | None = Field(None, description="Column naming each row's group (e.g. author), for clean.group_cap.")


class TeacherLogSpec(_Model):
    """Recorded teacher calls to import into the call log."""

    format: Literal["batch", "pairs"] = Field("batch", description="batch: OpenAI Batch API input+output files; pairs: JSONL of {request, response}.")
    input: Path = Field(description="Batch input JSONL (or the pairs JSONL).")
    output: Path | None = Field(None, description="Batch output JSONL (batch format only).")

    @model_validator(mode="after")
    def _check(self) -> "TeacherLogSpec":
        if self.format == "batch" and self.output is None:
            raise ValueError("a batch log needs both input and output files")
        return self


class SelectionSpec(_Model):
    """Which examples: by source and tags (shell-style patterns, e.g. train*)."""

    name: str = Field(description="Name of the set, e.g. test.balanced.")
    source: str | None = Field(None, description="Data source name; default: every source.")
    tags: list[str] = Field(default_factory=list, description="Tag patterns; an example with any matching tag is in the set. Empty: all.")


class TestSetSpec(SelectionSpec):
    """A frozen test set: its content hash is stored with every result, and a changed set is
    refused until it is declared a new version."""

    __test__ = False  # not a pytest class

    version: int = Field(1, ge=1, description="The set's version; raise it when the set's items or gold labels change on purpose.")
    purpose: Literal["quality", "bias"] = Field(
        "quality",
        description="quality: picks the best student and judges gates without 'on'; "
        "bias: a diagnostic set (e.g. the identity-swapped pair), reported but not used to pick the best student.",
    )


class LabellerSpec(_Model):
    """Who labels the training set: the teacher's first answer, a majority over its repeated
    answers (self-consistency), or a vote over several audited teacher configurations."""

    kind: Literal["teacher", "self_consistency", "ensemble"] = Field(
        "teacher",
        description="teacher: the spec teacher's stored answer; self_consistency: majority over every stored sample of that request "
        "(vote share = confidence); ensemble: a vote over audit.configs (each one's own majority when it has n > 1).",
    )
    members: list[str] = Field(default_factory=list, description="ensemble: names of audit.configs that vote; empty: every audit config.")
    method: Literal["majority", "weighted"] = Field(
        "majority",
        description="ensemble: majority (one vote each) or weighted (each member's vote counts log(acc/(1-acc)) of its accuracy in the "
        "latest `graduate teacher audit`).",
    )
    min_vote_share: float = Field(0.0, ge=0, le=1, description="Drop items whose winning label got a smaller share of the (weighted) votes; 0: keep all.")
    weight_by_vote_share: bool = Field(False, description="Give each item the winning vote share as its training weight (ties weigh 0.5).")


class TrainSpec(_Model):
    """What the students learn from."""

    source: str | None = Field(None, description="Data source name; default: every source.")
    tags: list[str] = Field(default_factory=lambda: ["*"], description="Tag patterns of the training pool, e.g. [train*].")
    exclude_test_overlap: bool = Field(True, description="Drop training items whose normalised text is in a test set (leakage guard).")
    labeller: LabellerSpec = Field(default_factory=LabellerSpec, description="Who labels the training set (teacher, self-consistency or an ensemble).")


class StudentSpec(_Model):
    """One student to train."""

    kind: str = Field(description="A student kind from the registry (`graduate students list`; params: `graduate students show KIND`).")
    name: str | None = Field(None, description="A name for this student; default: the kind.")
    params: dict[str, Any] = Field(default_factory=dict, description="Options of that student kind.")

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        from graduate.students.registry import STUDENTS

        if v not in STUDENTS:
            raise ValueError(f"unknown student kind {v!r}; known kinds: {sorted(STUDENTS)}")
        return v

    @property
    def label(self) -> str:
        return self.name or self.kind


class ServingSpec(_Model):
    """How serving cost is counted."""

    cpu_core_hour_usd: float = Field(
        0.0446,
        ge=0,
        description="USD per CPU core-hour for student cost: default is AWS c7i.large on-demand "
        "(us-east-1, $0.08925/h for 2 vCPU) per vCPU.",
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
        0.9, ge=0, le=1, description="cascade: the lowest top-label probability the student answers at; `graduate serve-plan` suggests one."
    )
    plan_metric: Literal["relative_accuracy", "agreement"] = Field(
        "relative_accuracy",
        description="What `graduate serve-plan` holds the cascade to: its accuracy on gold as a share of the teacher's "
        "(relative_accuracy), or its agreement with the teacher (agreement).",
    )
    plan_target: float = Field(0.99, gt=0, le=1, description="The value of plan_metric the suggested cascade threshold must reach on the test sets.")
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
    body_timeout_s: float = Field(
        10.0, gt=0, description="Time a client has to send a request's headers, and again its body; slower ones get 408 and the connection is closed."
    )
    shutdown_timeout_s: float = Field(30.0, gt=0, description="On SIGTERM, how long in-flight requests and background teacher calls may take to finish.")
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


class MonitorSpec(_Model):
    """`graduate monitor`: the traffic window it reads and the thresholds that fail it (non-zero exit)."""

    window_hours: float = Field(24.0, gt=0, description="Read the traffic of the last N hours.")
    bucket_minutes: float = Field(60.0, gt=0, description="Width of the time buckets for agreement over time.")
    min_items: int = Field(50, ge=1, description="With fewer items in the window a check reports 'not enough traffic' instead of failing.")
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


# The identity terms swapped in the conversationai fuzzed toxicity test set (shared/data/bias).
DEFAULT_IDENTITY_TERMS = [
    "catholic", "christian", "gay", "heterosexual", "homosexual", "jew", "jewish", "lesbian",
    "muslim", "protestant", "queer", "sikh", "transgender",
]


class BiasPairSpec(_Model):
    """Two test sets with the same items (joined on id), identity terms swapped in the second."""

    original: str = Field(description="The test set with the original texts, e.g. bias.original.")
    perturbed: str = Field(description="The test set whose identity terms were swapped, e.g. bias.fuzzed.")


class EvaluationSpec(_Model):
    """How students and teacher are measured: intervals, calibration, latency, slices, bias."""

    bootstrap_resamples: int = Field(
        1000, ge=0, description="Resamples for the bootstrap confidence intervals (scipy.stats.bootstrap) on accuracy, F1 and ROC-AUC; 0: none."
    )
    confidence_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of those intervals.")
    calibration_bins: int = Field(10, ge=2, le=100, description="Equal-width probability bins for the reliability curve and the expected calibration error.")
    latency_items: int = Field(200, ge=1, description="Items each student predicts one at a time for the latency percentiles.")
    latency_batch_size: int = Field(64, ge=1, description="Batch size for the batch latency figure (ms per item).")
    length_buckets: list[int] = Field(
        default_factory=lambda: [100, 300, 1000], description="Text-length slice boundaries in characters, ascending: [100, 300] gives <100, 100-299, >=300."
    )
    identity_terms: list[str] | None = Field(
        None,
        description="Identity terms for the slices and the bias table (matched as whole words, case-insensitive); "
        "default: none, or with a bias_pair the 13 terms swapped in the conversationai fuzzed toxicity set.",
    )
    min_slice_size: int = Field(10, ge=1, description="Slices with fewer items are listed but not ranked among the worst.")
    min_teacher_answers: int = Field(
        30, ge=1, description="Below this many teacher answers on a test set (and under 90% of it) the teacher's figures there are shown as '–' with the count."
    )
    bias_pair: BiasPairSpec | None = Field(None, description="The identity-term pair: false-positive rate per term and the score shift between the two sets.")

    @field_validator("length_buckets")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(v, v[1:])) or any(x <= 0 for x in v):
            raise ValueError("length_buckets must be positive and strictly ascending, e.g. [100, 300, 1000]")
        return v

    @model_validator(mode="after")
    def _identity_default(self) -> "EvaluationSpec":
        # Identity slices belong to projects that declare them (or the bias pair that needs them).
        if self.identity_terms is None:
            self.identity_terms = list(DEFAULT_IDENTITY_TERMS) if self.bias_pair is not None else []
        return self


class TeacherConfigSpec(_Model):
    """A teacher configuration for `graduate teacher audit`: the spec's teacher with the fields given here changed."""

    name: str = Field(description="A short name, e.g. gpt-4 simple; ensembles and train.labeller refer to it.")
    model: str | None = Field(None, description="Model name; default: teacher.model.")
    base_url: str | None = Field(None, description="Endpoint for --live; default: teacher.base_url.")
    prompt_name: str | None = Field(None, description="Name of the prompt version; default: teacher.prompt_name.")
    system: str | None = Field(None, description="System message; default: teacher.system.")
    prompt: str | None = Field(None, description="User message template with {text}; default: teacher.prompt.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature; default: teacher.temperature.")
    max_tokens: int | None = Field(None, gt=0, description="Cap on answer tokens; default: teacher.max_tokens.")
    few_shot: list[FewShotSpec] | None = Field(None, description="Worked examples before the item; default: teacher.few_shot.")
    n: int = Field(1, ge=1, le=64, description="Samples per item: above 1 the label is the majority of n answers (self-consistency), its vote share the confidence.")

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, v: str | None) -> str | None:
        if v is not None and v.count("{text}") != 1:
            raise ValueError("prompt must contain the placeholder {text} exactly once")
        return v

    def resolve(self, teacher: "TeacherSpec") -> "TeacherSpec":
        """The full teacher spec this configuration describes."""
        changes = {k: v for k, v in self.model_dump(exclude={"name", "n"}, exclude_none=True).items()}
        return TeacherSpec.model_validate({**teacher.model_dump(exclude_unset=True), **changes})


class EnsembleSpec(_Model):
    """A vote across audited teacher configurations."""

    name: str = Field(description="A short name for the ensemble.")
    members: list[str] = Field(min_length=2, description="Names of audit.configs that vote.")
    method: Literal["majority", "weighted"] = Field(
        "majority", description="majority: one vote each (ties: no label); weighted: each vote counts log(acc/(1-acc)) of the member's audited accuracy."
    )


class AuditSpec(_Model):
    """`graduate teacher audit`: teacher configurations compared on gold-labelled sets."""

    configs: list[TeacherConfigSpec] = Field(default_factory=list, description="Configurations to compare; empty: the spec's teacher only.")
    ensembles: list[EnsembleSpec] = Field(default_factory=list, description="Votes across configurations, audited like one more configuration.")
    sets: list[SelectionSpec] = Field(default_factory=list, description="Gold-labelled audit sets; empty: the spec's quality test sets.")
    min_coverage: float = Field(
        0.9, ge=0, le=1, description="A configuration is recommended only if it gave a parseable answer for at least this share of every audit set."
    )
    fpr_flag: float = Field(
        1.5, gt=1, description="Flag a configuration whose false-positive rate is more than this many times the recommended one's (binary tasks)."
    )

    @model_validator(mode="after")
    def _names(self) -> "AuditSpec":
        names = [c.name for c in self.configs] + [e.name for e in self.ensembles]
        if len(set(names)) != len(names):
            raise ValueError(f"audit config and ensemble names must be unique, got {names}")
        known = {c.name for c in self.configs}
        for i, e in enumerate(self.ensembles):
            bad = [m for m in e.members if m not in known]
            if bad:
                raise ValueError(f"ensembles[{i}] {e.name!r}: unknown members {bad}; audit.configs are {sorted(known)}")
        return self


@dataclass
class AuditConfig:
    """One teacher configuration to audit: the spec's teacher with the configuration's changes."""

    name: str
    teacher: TeacherSpec
    n: int
    spec: dict[str, Any]


def audit_configs(spec: "ProjectSpec") -> list[AuditConfig]:
    """The configurations to audit, resolved against the spec's teacher (none listed: the teacher itself)."""
    if not spec.audit.configs:
        return [AuditConfig("teacher", spec.teacher, 1, {"name": "teacher"})]
    return [AuditConfig(c.name, c.resolve(spec.teacher), c.n, c.model_dump(exclude_none=True)) for c in spec.audit.configs]


class FilterSpec(_Model):
    """Rule filters on the training items' text."""

    min_chars: int | None = Field(None, ge=0, description="Drop items with fewer characters (after trimming).")
    max_chars: int | None = Field(None, ge=1, description="Drop items with more characters.")
    drop_patterns: list[str] = Field(default_factory=list, description="Drop items whose text matches any of these regular expressions.")

    @field_validator("drop_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        import re

        for pat in v:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(f"drop_patterns: {pat!r} is not a valid regular expression: {exc}") from None
        return v


class NearDuplicateSpec(_Model):
    """Near-duplicate removal: MinHash over character shingles of the normalised text (datasketch)."""

    enabled: bool = Field(False, description="Drop items whose text is nearly the same as an earlier item's.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity of the shingle sets at which two texts are near-duplicates.")
    shingle_chars: int = Field(5, ge=1, le=20, description="Characters per shingle.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations (more: more exact, slower).")


class LabelIssueSpec(_Model):
    """Label-issue detection: cleanlab on out-of-fold probabilities of a student trained on the teacher's labels."""

    action: Literal["off", "report", "remove", "down_weight"] = Field(
        "off", description="off: skip; report: rank suspected label errors (recipe, review queue); remove: drop them; down_weight: train on them with `weight`."
    )
    student: str = Field("tfidf-logreg", description="Student kind that gives the out-of-fold probabilities.")
    params: dict[str, Any] = Field(default_factory=dict, description="Options of that student.")
    folds: int = Field(5, ge=2, le=20, description="Cross-validation folds.")
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"] = Field(
        "prune_by_noise_rate", description="cleanlab.filter.find_label_issues' filter_by."
    )
    max_share: float = Field(0.2, gt=0, le=1, description="Act on at most this share of the items (the most suspect first).")
    weight: float = Field(0.2, ge=0, le=1, description="down_weight: the training weight of a suspected item.")


class BalanceSpec(_Model):
    """Class balance of the training set: reported always, changed only if asked."""

    strategy: Literal["none", "class_weight", "undersample", "prior"] = Field(
        "none",
        description="none: report counts only; class_weight: weight items so each class counts alike (n / (classes x count)); "
        "undersample: drop random items of the larger classes down to the smallest class's count; "
        "prior: weight items so the classes count in the shares of `prior` (the rates the student will see in production).",
    )
    prior: dict[str, float] | None = Field(
        None,
        description="strategy prior: each label's share in production, e.g. {bad: 0.1, ok: 0.9} when the pool over-samples "
        "toxic comments; shares are > 0 and sum to 1.",
    )

    @model_validator(mode="after")
    def _prior(self) -> "BalanceSpec":
        if self.strategy == "prior":
            if not self.prior:
                raise ValueError("strategy prior needs prior: {label: share, ...} (each label's share in production)")
            if any(v <= 0 for v in self.prior.values()):
                raise ValueError(f"prior shares must be > 0, got {self.prior}")
            if abs(sum(self.prior.values()) - 1) > 0.01:
                raise ValueError(f"prior shares must sum to 1, got {sum(self.prior.values()):g} from {self.prior}")
        elif self.prior is not None:
            raise ValueError(f"prior is used only with strategy: prior (strategy is {self.strategy})")
        return self


class DiversitySpec(_Model):
    """`graduate data diversity`: embedding clusters of the unlabelled pool vs the training set."""

    pool_tags: list[str] = Field(default_factory=lambda: ["*"], description="Tag patterns of the pool (of train.source); items in a test set are left out.")
    clusters: int = Field(20, ge=2, le=500, description="k-means clusters over pool and training embeddings.")
    sample: int = Field(3000, ge=100, description="Most texts embedded per side (random sample, seeded).")
    embedding: Literal["auto", "minilm", "tfidf"] = Field("auto", description="minilm (graduate[embed]), tfidf, or auto (minilm when installed).")
    min_coverage: float = Field(0.5, gt=0, description="A cluster whose training share is below this fraction of its pool share is 'not covered'.")


class CleanSpec(_Model):
    """Cleaning, label-issue, balance and group steps of the training-set build; each records what it changed in the recipe."""

    human_labels: bool = Field(True, description="Human corrections (`graduate data review import`) replace teacher labels.")
    filters: FilterSpec = Field(default_factory=FilterSpec, description="Length and regex filters.")
    near_duplicates: NearDuplicateSpec = Field(default_factory=NearDuplicateSpec, description="MinHash near-duplicate removal.")
    group_cap: int | None = Field(None, ge=1, description="Keep at most this many items per group (data[].group_column), the first ones by id.")
    label_issues: LabelIssueSpec = Field(default_factory=LabelIssueSpec, description="cleanlab label-issue detection.")
    balance: BalanceSpec = Field(default_factory=BalanceSpec, description="Class balance.")
    diversity: DiversitySpec = Field(default_factory=DiversitySpec, description="Coverage report of the unlabelled pool.")


class StoreSpec(_Model):
    """Where the project's data lives."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite:///PROJECT/.graduate/graduate.db. "
        "The environment variable GRADUATE_STORE_URL overrides it.",
    )


class ProjectSpec(_Model):
    """graduate.yaml: the whole project."""

    task: TaskSpec
    teacher: TeacherSpec
    prices: dict[str, PriceSpec] = Field(default_factory=dict, description="Price table by model name.")
    data: list[DataSourceSpec] = Field(default_factory=list, description="Item sources (CSV).")
    teacher_logs: list[TeacherLogSpec] = Field(default_factory=list, description="Recorded teacher calls to import.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="The training pool.")
    test_sets: list[TestSetSpec] = Field(default_factory=list, description="Frozen, versioned test sets, evaluated against gold.")
    students: list[StudentSpec] = Field(default_factory=lambda: [StudentSpec(kind="tfidf-logreg")], description="Students to train.")
    serving: ServingSpec = Field(default_factory=ServingSpec, description="Serving cost assumptions.")
    serve: ServeSpec = Field(default_factory=ServeSpec, description="`graduate serve`: routing, API keys and limits.")
    proxy: ProxySpec = Field(default_factory=ProxySpec, description="`graduate proxy`: the routes it forwards and its limits.")
    monitor: MonitorSpec = Field(default_factory=MonitorSpec, description="`graduate monitor`: traffic window and alert thresholds.")
    store: StoreSpec = Field(default_factory=StoreSpec, description="The database.")
    seed: int = Field(0, description="Random seed for every run.")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="How students and teacher are measured.")
    audit: AuditSpec = Field(default_factory=AuditSpec, description="`graduate teacher audit`: teacher configurations to compare on gold.")
    clean: CleanSpec = Field(default_factory=CleanSpec, description="Cleaning, label issues, balance and diversity of the training set.")
    gates: list[str] = Field(
        default_factory=list,
        description="Criteria `graduate evaluate` checks (non-zero exit when one fails), e.g. "
        "'student.accuracy >= 0.98 * teacher.accuracy on test.balanced', 'student.latency_p99_ms <= 20'; "
        "student[NAME] names a student (default: the best); metrics: see graduate.evaluate.criteria.METRICS.",
    )

    _gates: list[Any] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> "ProjectSpec":
        sources = [d.name for d in self.data]
        if len(set(sources)) != len(sources):
            raise ValueError(f"data source names must be unique, got {sources}")
        for sel in [*self.test_sets, self.train]:
            if sel.source is not None and sel.source not in sources:
                raise ValueError(f"unknown data source {sel.source!r}; defined: {sources}")
        names = [t.name for t in self.test_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"test set names must be unique, got {names}")
        for d in self.data:
            bad = sorted({v for v in d.gold_values.values() if v not in self.task.labels})
            if bad:
                raise ValueError(f"data {d.name!r}: gold_values maps to unknown labels {bad}; allowed: {self.task.labels}")
        configs = {c.name for c in self.audit.configs}
        bad = [m for m in self.train.labeller.members if m not in configs]
        if bad:
            raise ValueError(f"train.labeller.members: unknown {bad}; name audit.configs {sorted(configs)}")
        if self.train.labeller.kind == "ensemble" and len(self.train.labeller.members or configs) < 2:
            raise ValueError("train.labeller.kind ensemble needs at least two audit.configs to vote")
        for i, sel in enumerate(self.audit.sets):
            if sel.source is not None and sel.source not in sources:
                raise ValueError(f"audit.sets[{i}]: unknown data source {sel.source!r}; defined: {sources}")
        prior = self.clean.balance.prior
        if prior is not None and sorted(prior) != sorted(self.task.labels):
            raise ValueError(f"clean.balance.prior must give a share for each label {self.task.labels}, got {sorted(prior)}")
        students = [s.label for s in self.students]
        if len(set(students)) != len(students):
            raise ValueError(f"student names must be unique, got {students}; give each a name")
        from graduate.errors import StudentError
        from graduate.students.registry import make_student

        for i, st in enumerate(self.students):
            try:  # constructing a student checks its params (cheap: nothing is loaded or trained)
                make_student(st.kind, self.task.labels, st.params)
            except StudentError as exc:
                raise ValueError(f"students[{i}] ({st.label}): {exc}; see `graduate students show {st.kind}`") from None
        return self

    @model_validator(mode="after")
    def _check_evaluation(self) -> "ProjectSpec":
        from graduate.evaluate.criteria import check_gate, parse_gate

        by_name = {d.name: d for d in self.data}
        for i, t in enumerate(self.test_sets):
            sources = [by_name[t.source]] if t.source is not None else list(self.data)
            if sources and not any(d.gold_column for d in sources):
                where = f"data source {t.source!r}" if t.source else "no data source"
                raise ValueError(f"test_sets[{i}] {t.name!r}: {where} has a gold_column; a test set needs gold labels")
        purposes = {t.name: t.purpose for t in self.test_sets}
        if purposes and "quality" not in purposes.values():
            raise ValueError("test_sets: needs at least one test set of purpose quality (bias sets do not pick the best student)")
        pair = self.evaluation.bias_pair
        if pair is not None:
            for role in ("original", "perturbed"):
                name = getattr(pair, role)
                if name not in purposes:
                    raise ValueError(f"evaluation.bias_pair.{role}: unknown test set {name!r}; the spec's test sets are {sorted(purposes)}")
                if purposes[name] != "bias":
                    raise ValueError(f"evaluation.bias_pair.{role}: give test set {name!r} purpose: bias")
            if pair.original == pair.perturbed:
                raise ValueError("evaluation.bias_pair: original and perturbed must be two different test sets")
        gates = []
        for i, text in enumerate(self.gates):
            try:
                gate = parse_gate(text)
                check_gate(gate, test_sets=purposes, students=[s.label for s in self.students], has_bias_pair=pair is not None)
            except ValueError as exc:
                raise ValueError(f"gates[{i}]: {exc}") from None
            gates.append(gate)
        self._gates = gates
        return self

    @property
    def parsed_gates(self) -> list[Any]:
        """The gates as typed objects (graduate.evaluate.criteria.Gate), parsed at validation."""
        return list(self._gates)

    def price_for(self, model: str) -> PriceSpec | None:
        if model == self.teacher.model and self.teacher.price is not None:
            return self.teacher.price
        return self.prices.get(model)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec(path: Path | str) -> tuple[ProjectSpec, Path]:
    """Read and validate a spec. ``path`` is the spec file or the project directory.

    Returns the spec (with relative paths resolved against the project directory) and that directory.
    """
    path = Path(path)
    spec_path = path / SPEC_FILENAME if path.is_dir() else path
    if not spec_path.exists():
        raise SpecError(f"no {SPEC_FILENAME} here; create one with `graduate init {path}`", path=spec_path)
    try:
        raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise SpecError(f"not valid YAML ({where}): {getattr(exc, 'problem', exc)}", path=spec_path) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=spec_path) from None
    if not isinstance(raw, dict):
        raise SpecError("must be a YAML mapping with at least task: and teacher:", path=spec_path)
    spec = parse_spec(raw, path=spec_path)
    root = spec_path.parent.resolve()
    for d in spec.data:
        d.path = (root / d.path).resolve()
    for log in spec.teacher_logs:
        log.input = (root / log.input).resolve()
        if log.output is not None:
            log.output = (root / log.output).resolve()
    return spec, root


def parse_spec(raw: dict[str, Any], *, path: Path | str | None = None) -> ProjectSpec:
    """Validate a spec given as a mapping; errors name the field and what is allowed."""
    try:
        return ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _format_loc(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (misspelt?); see `graduate spec-help` for the fields allowed"
            elif err["type"] == "missing":
                msg = "required field is missing"
            problems.append(SpecError(msg, path=path, field=loc or None))
        # Every problem, one line each: fixing them one run at a time is the slow way.
        raise SpecError.several(problems) from None


def spec_hash(spec: ProjectSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
