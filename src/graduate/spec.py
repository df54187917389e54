"""The project spec, ``graduate.yaml``: what the task is, who teaches, what data, which students.

Every field has a description (``graduate spec-help`` lists them); unknown fields are errors, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class TeacherSpec(_Model):
    """The teacher: any OpenAI-compatible chat completions endpoint."""

    kind: Literal["openai"] = Field("openai", description="openai: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server).")
    base_url: str = Field("https://api.openai.com/v1", description="The endpoint's base URL, up to /v1.")
    model: str = Field(description="The model name sent with each request.")
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
    max_retries: int = Field(6, ge=0, description="Retries per call on 429/5xx/timeouts (exponential backoff with jitter, honours Retry-After).")
    price: PriceSpec | None = Field(None, description="Price of this model; default: the entry for `model` in the top-level prices table.")

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        if v.count("{text}") != 1:
            raise ValueError("prompt must contain the placeholder {text} exactly once")
        return v

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(json.dumps([self.system, self.prompt]).encode()).hexdigest()[:8]

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


class TrainSpec(_Model):
    """What the students learn from."""

    source: str | None = Field(None, description="Data source name; default: every source.")
    tags: list[str] = Field(default_factory=lambda: ["*"], description="Tag patterns of the training pool, e.g. [train*].")
    exclude_test_overlap: bool = Field(True, description="Drop training items whose normalised text is in a test set (leakage guard).")


class StudentSpec(_Model):
    """One student to train."""

    kind: str = Field(description="A student kind from the registry (graduate students list).")
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
    test_sets: list[SelectionSpec] = Field(default_factory=list, description="Frozen test sets, evaluated against gold.")
    students: list[StudentSpec] = Field(default_factory=lambda: [StudentSpec(kind="tfidf-logreg")], description="Students to train.")
    serving: ServingSpec = Field(default_factory=ServingSpec, description="Serving cost assumptions.")
    store: StoreSpec = Field(default_factory=StoreSpec, description="The database.")
    seed: int = Field(0, description="Random seed for every run.")

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
        students = [s.label for s in self.students]
        if len(set(students)) != len(students):
            raise ValueError(f"student names must be unique, got {students}; give each a name")
        return self

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
        err = exc.errors()[0]
        loc = _format_loc(tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (misspelt?); see `graduate spec-help` for the fields allowed"
        elif err["type"] == "missing":
            msg = "required field is missing"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(msg + more, path=path, field=loc or None) from None


def spec_hash(spec: ProjectSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
