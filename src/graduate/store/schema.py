"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create them;
change a table here and add a migration beside it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per teacher call, live or imported. A live call is written as `pending` before it is
# sent and completed after, so a crash loses no finished call and re-sends only those in flight.
teacher_calls = Table(
    "teacher_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cache_key", String(64), nullable=False, doc="sha256 of (model, messages, params)"),
    Column("sample_index", Integer, nullable=False, default=0),
    Column("model", String(200), nullable=False),
    Column("request", JSON, nullable=False, doc="the chat request body: model, messages, params"),
    Column("params", JSON, nullable=False),
    Column("response", JSON, nullable=True, doc="the raw response body"),
    Column("content", Text, nullable=True, doc="the answer text, choices[0].message.content"),
    Column("status", String(16), nullable=False, doc="pending | ok | error"),
    Column("error", Text, nullable=True),
    Column("source", String(16), nullable=False, doc="live | imported"),
    Column("import_key", String(64), nullable=True, unique=True, doc="makes re-imports add nothing"),
    Column("external_id", String(300), nullable=True, doc="e.g. the Batch API custom_id"),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("tokens_estimated", Boolean, nullable=False, default=False),
    Column("latency_ms", Float, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("cache_key", "sample_index", name="uq_teacher_calls_key_sample"),
)

# Files already imported, by content hash: a second import of the same file reads nothing.
imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("added", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

examples = Table(
    "examples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("external_id", String(300), nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False, doc="sha256 of the normalised text"),
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "external_id", name="uq_examples_source_id"),
)
Index("ix_examples_text_hash", examples.c.text_hash)

# Who said what about an example: gold (from the data), human (review), teacher (one per
# teacher+prompt version). label is NULL when a teacher answer could not be parsed.
labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("example_id", Integer, ForeignKey("examples.id"), nullable=False),
    Column("kind", String(16), nullable=False, doc="gold | human | teacher"),
    Column("labeller", String(300), nullable=False),
    Column("label", String(200), nullable=True),
    Column("probs", JSON, nullable=True),
    Column("call_id", Integer, ForeignKey("teacher_calls.id"), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("example_id", "labeller", name="uq_labels_example_labeller"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("recipe", JSON, nullable=False, doc="what built it and what each step dropped"),
    Column("size", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "content_hash", name="uq_datasets_name_hash"),
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("example_id", Integer, ForeignKey("examples.id"), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("weight", Float, nullable=False, default=1.0),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False, doc="train | evaluate"),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False, doc="running | finished | failed"),
    Column("fingerprint", String(64), nullable=True, doc="hash of config + data + code + seed"),
    Column("spec", JSON, nullable=False),
    Column("dataset_hash", String(64), nullable=True),
    Column("code_version", String(80), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("metrics", JSON, nullable=True),
    Column("artifact_dir", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)
Index("ix_runs_fingerprint", runs.c.fingerprint)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("example_id", Integer, ForeignKey("examples.id"), nullable=False),
    Column("test_set", String(200), nullable=False),
    Column("predictor", String(300), nullable=False),
    Column("label", String(200), nullable=True),
    Column("probs", JSON, nullable=True),
    UniqueConstraint("run_id", "example_id", "test_set", "predictor", name="uq_predictions"),
)
