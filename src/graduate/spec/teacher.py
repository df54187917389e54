"""The teacher: endpoint, model, prompt, limits, prices and the local server."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from graduate.errors import SpecError
from graduate.spec.base import SPEC_FILENAME, _Model


class PriceSpec(_Model):
    """Price of a model's tokens, in USD per million tokens."""

    input_per_1m: float = Field(ge=0, description="USD per 1M input (prompt) tokens.")
    output_per_1m: float = Field(ge=0, description="USD per 1M output (completion) tokens.")
    batch_input_per_1m: float | None = Field(
        None, ge=0, description="USD per 1M input tokens sent through the Batch API (graduate batch); default: half of input_per_1m, OpenAI's discount."
    )
    batch_output_per_1m: float | None = Field(None, ge=0, description="USD per 1M output tokens through the Batch API; default: half of output_per_1m.")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_1m + output_tokens * self.output_per_1m) / 1e6

    def batch_cost(self, input_tokens: int, output_tokens: int) -> float:
        tin = self.batch_input_per_1m if self.batch_input_per_1m is not None else self.input_per_1m / 2
        tout = self.batch_output_per_1m if self.batch_output_per_1m is not None else self.output_per_1m / 2
        return (input_tokens * tin + output_tokens * tout) / 1e6


class BatchSpec(_Model):
    """How `graduate batch` sends the teacher's calls through the OpenAI Batch API (files + batches endpoints at base_url)."""

    completion_window: Literal["24h"] = Field("24h", description="The window the provider has to answer a batch; lines not answered in it come back as unsent.")
    max_requests_per_file: int = Field(50_000, ge=1, le=50_000, description="Lines per batch input file (the API allows 50,000).")
    max_bytes_per_file: int = Field(
        100_000_000, ge=1_000, le=200_000_000, description="Bytes per batch input file; the API allows 200 MB, and half keeps well clear of it."
    )
    create_retries: int = Field(
        5, ge=0, description="Retries of creating a batch while the provider does not yet see the file just uploaded (a transient 'file not found')."
    )
    poll_s: float = Field(60.0, gt=0, description="Seconds between polls in `graduate batch collect --wait`.")


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


class TermsSpec(_Model):
    """Under which terms the teacher's answers were produced: may a model be trained on them?"""

    train_allowed: bool | Literal["unknown"] = Field(
        "unknown",
        description="true: the provider's terms allow training a model on its answers; false: they forbid it (graduate data build "
        "refuses such labels unless train.allow_restricted_labels); unknown: not checked yet (the report says so).",
    )
    note: str | None = Field(None, description="Where that comes from, e.g. the terms' URL and date, or the contract.")


class TeacherSpec(_Model):
    """The teacher: any OpenAI-compatible chat completions endpoint, or a local GGUF model behind one."""

    _variant: str = PrivateAttr("")  # an audit configuration's own sampling parameters (variant_of)

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
    max_tokens: int | None = Field(None, gt=0, description="Cap on output tokens per answer; a call reserves budget for this many. Unset: the longest answer in the call log is reserved (the first call runs alone), so only set it holds budget_usd against any answer.")
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
    terms: TermsSpec = Field(default_factory=TermsSpec, description="Under which terms its answers may be used to train a model.")
    batch: BatchSpec = Field(default_factory=BatchSpec, description="graduate batch: the OpenAI Batch API path (half price, answers within the window).")

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

    def sampling_params(self) -> dict[str, Any]:
        """Sampling parameters that change the answer, hence part of the cache key."""
        params: dict[str, Any] = {"temperature": self.temperature}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        # Absent unless asked for, so the cache keys of recorded calls do not change.
        if self.logprobs:
            params["logprobs"] = True
            params["top_logprobs"] = self.top_logprobs
        if self.response_format is not None:
            params["response_format"] = self.response_format
        return params

    def variant_of(self, main: "TeacherSpec") -> "TeacherSpec":
        """This teacher as a configuration of ``main`` (an audit config): its labeller names the
        sampling parameters it sends unlike ``main`` (``...@1a2b3c4d~temperature=0.7``), so two
        configurations of one model and prompt keep their own labels; at ``main``'s parameters the
        name is the plain one it always was. Relative to ``main``, so it moves when ``main``'s
        parameters change: `graduate teacher audit` warns then (``experiments.audit.moved_names``)."""
        mine, theirs = self.sampling_params(), main.sampling_params()
        parts = []
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                value = json.dumps(mine.get(key), sort_keys=True, separators=(",", ":"))
                parts.append(f"{key}={value if len(value) <= 24 else hashlib.sha256(value.encode()).hexdigest()[:8]}")
        self._variant = ",".join(parts)
        return self

    @property
    def labeller(self) -> str:
        """Who labels: model, prompt name and prompt version, e.g. ``teacher:gpt-4/simple@1a2b3c4d``
        (an audit configuration's own sampling parameters after ``~``: ``variant_of``)."""
        return f"teacher:{self.model}/{self.prompt_name}@{self.prompt_hash}" + (f"~{self._variant}" if self._variant else "")
