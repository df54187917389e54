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

# A Ray worker's name (RUN-share-attempt): a run's rows are found by a range on it (RUN- <= owner <
# RUN.), the exact prefix only where strings compare byte by byte, so PostgreSQL's is collation "C"
# whatever the database's locale (SQLite compares bytes already).
OWNER = String(64).with_variant(String(64, collation="C"), "postgresql")

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
    Column("status", String(16), nullable=False, doc="pending | ok | error | unsent (a batch line its batch did not answer: sent again by the next submit)"),
    Column("error", Text, nullable=True),
    Column("source", String(16), nullable=False, doc="live | imported | proxy (made by an app through graduate proxy) | batch (graduate batch)"),
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
    Column("redactions", JSON, nullable=True, doc="personal data replaced before storing (privacy.redact): {EMAIL: 2, ...}"),
    Column("batch_id", Integer, nullable=True, doc="source batch: the batches row it was last sent in"),
    Column("lease_owner", OWNER, nullable=True, doc="graduate label --ray: the worker that claimed this pending call (RUN-share-attempt)"),
    Column("lease_until", DateTime(timezone=True), nullable=True, doc="the claim lapses then unless renewed: another worker may send it"),
    Column(
        "transient", Boolean, nullable=True,
        doc="graduate label --ray, a failed call: its error was transient (timeout, 429, 5xx after retries), so a re-run may get past it",
    ),
    UniqueConstraint("cache_key", "sample_index", name="uq_teacher_calls_key_sample"),
    Index("ix_teacher_calls_batch", "batch_id", "external_id"),
    Index("ix_teacher_calls_lease_owner", "lease_owner"),
)

# One row per Batch API batch that graduate batch submitted (one input file each). Its lines are
# teacher_calls rows with source `batch`, written in the same transaction as this row, before upload.
batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True, doc="ours: in the file name and the batch's metadata, so a crashed submit finds its batch"),
    Column("state", String(16), nullable=False, doc="planned | uploaded | submitted | collected"),
    Column("model", String(200), nullable=False),
    Column("input_path", Text, nullable=False, doc="the input file, relative to the project"),
    Column("requests", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("reserved_usd", Float, nullable=False, doc="estimated cost at batch prices, held against the budget until collected"),
    Column("input_file_id", String(200), nullable=True),
    Column("remote_id", String(200), nullable=True, unique=True, doc="the provider's batch id"),
    Column("remote_status", String(32), nullable=True, doc="validating | in_progress | finalizing | completed | failed | expired | cancelling | cancelled"),
    Column("output_file_id", String(200), nullable=True),
    Column("error_file_id", String(200), nullable=True),
    Column("counts", JSON, nullable=True, doc="what collect found: ok, error, unsent, unmatched"),
    Column("cost_usd", Float, nullable=True),
    Column("error", Text, nullable=True, doc="why the provider failed the batch"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    Column("group", String(300), nullable=True, doc="the row's group (data[].group_column), e.g. its author"),
    Column("lineage", JSON, nullable=True, doc="an item graduate made: method, parent example id, what changed"),
    Column(
        "absent_since", DateTime(timezone=True), nullable=True,
        doc="set when a later load of its data file no longer held it (row deleted, id changed): left out of builds, test sets and selections, "
        "its labels and calls kept; cleared when the file holds it again",
    ),
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
    Column("label", Text, nullable=True),
    Column("probs", JSON, nullable=True),
    Column("call_id", Integer, ForeignKey("teacher_calls.id"), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rationale", JSON, nullable=True, doc="the answer's other fields, e.g. a chain-of-thought's reason_innocent / reason_toxic"),
    Column("terms", JSON, nullable=True, doc="a teacher label: the terms it was produced under (teacher.terms: train_allowed, note)"),
    UniqueConstraint("example_id", "labeller", name="uq_labels_example_labeller"),
)

# Every change to a stored label (a reviewer correcting their own earlier correction, ...): the old
# and new value and where the change came from, so nothing is overwritten without a record.
label_changes = Table(
    "label_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("example_id", Integer, ForeignKey("examples.id"), nullable=False),
    Column("labeller", String(300), nullable=False),
    Column("old_label", Text, nullable=True),
    Column("new_label", Text, nullable=True),
    Column("old_note", Text, nullable=True),
    Column("origin", Text, nullable=False, doc="what made the change, e.g. review import FILE:LINE"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per teacher configuration (or ensemble) per `graduate teacher audit`: its figures on
# each audit set, and which configuration the audit recommended.
teacher_audits = Table(
    "teacher_audits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_id", String(32), nullable=False, doc="one id per audit (uuid4 hex)"),
    Column("config", String(200), nullable=False, doc="the configuration's or ensemble's name"),
    Column("labeller", String(300), nullable=True, doc="teacher:MODEL/PROMPT@HASH (NULL for an ensemble)"),
    Column("spec", JSON, nullable=False, doc="the configuration as audited"),
    Column("metrics", JSON, nullable=False, doc="per audit set: accuracy, precision, recall, F1, FPR/TPR, parse failures, cost, latency, disagreement"),
    Column("recommended", Boolean, nullable=False, default=False),
    Column("live", Boolean, nullable=False, default=False, doc="missing answers were requested from the teacher"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("audit_id", "config", name="uq_teacher_audits_audit_config"),
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

dataset_builds = Table(
    "dataset_builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, index=True),
    Column("recipe", JSON, nullable=False, doc="a later build's recipe: the same items, other steps (e.g. more items dropped)"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("example_id", Integer, ForeignKey("examples.id"), primary_key=True),
    Column("label", Text, nullable=False),
    Column("weight", Float, nullable=False, default=1.0),
    Column("labeller", String(300), nullable=True, doc="who produced this item's label: the teacher labeller (or vote), or human:REVIEWER"),
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
    Column("owner", String(300), nullable=True, doc="host:pid of the process running it: a running run whose process is gone was interrupted"),
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
    Column("label", Text, nullable=True),
    Column("probs", JSON, nullable=True),
    UniqueConstraint("run_id", "example_id", "test_set", "predictor", name="uq_predictions"),
)

# One row per item answered by `graduate serve` (a /v1/classify request of 64 texts writes 64 rows),
# written in batches off the request path. route says who answered; a teacher comparison (cascade,
# shadow, canary) fills teacher_label and agree. Refused requests (401/413/422/429) are counted in
# /metrics, not here.
traffic = Table(
    "traffic",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, doc="uuid4 hex, also sent back in x-request-id"),
    Column("item", Integer, nullable=False, default=0, doc="index of the text within its request"),
    Column("created_at", DateTime(timezone=True), nullable=False, doc="when the request arrived"),
    Column("endpoint", String(16), nullable=False, doc="classify | chat"),
    Column("mode", String(16), nullable=False, doc="student | cascade | shadow | canary"),
    Column("route", String(16), nullable=False, doc="student | teacher: who answered"),
    Column("reason", String(32), nullable=False, doc="why: student, confident, low_confidence, canary, template_mismatch, teacher_failed, budget, middle_confident, middle_unavailable ..."),
    Column("status", Integer, nullable=False, doc="HTTP status of the response"),
    Column("text", Text, nullable=True, doc="the input text (NULL for a chat request passed to the teacher unparsed)"),
    Column("answer", Text, nullable=True, doc="what was sent back: the chat content, or the label for classify"),
    Column("label", Text, nullable=True, doc="the label answered (NULL when the teacher's answer did not parse)"),
    Column("student_label", Text, nullable=True),
    Column("confidence", Float, nullable=True, doc="the student's top probability"),
    Column("probs", JSON, nullable=True, doc="the student's probability per label"),
    Column("teacher_label", Text, nullable=True),
    Column("teacher_call_id", Integer, nullable=True, doc="teacher_calls.id of the teacher's answer, if it was asked"),
    Column("teacher_error", Text, nullable=True),
    Column("agree", Boolean, nullable=True, doc="student_label == teacher_label, when both exist"),
    Column("shadow", Boolean, nullable=False, default=False, doc="the teacher was asked in the background (shadow mode); its columns stay NULL until that call settles (for good if the server died first)"),
    Column("latency_ms", Float, nullable=False, doc="from arrival to response, as the caller waited"),
    Column("teacher_latency_ms", Float, nullable=True),
    Column("student", String(300), nullable=True, doc="the student that predicted: name:run_id"),
    Column("redactions", JSON, nullable=True, doc="personal data replaced in text and answer before storing (privacy.redact)"),
    Column("model", String(200), nullable=True, doc="the model name the caller asked for"),
    Column("client", String(16), nullable=True, doc="sha256 of the caller's API key, first 12 hex digits (never the key)"),
    UniqueConstraint("request_id", "item", name="uq_traffic_request_item"),
)
Index("ix_traffic_created_at", traffic.c.created_at)

# Frozen test sets: the content hash of each (name, version) when it was first evaluated. A later
# evaluation of the same name and version with another hash is refused (TestSetChangedError).
test_set_versions = Table(
    "test_set_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False, doc="sha256 over (source, id, text hash, gold) of every item"),
    Column("size", Integer, nullable=False),
    Column("label_counts", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_test_set_versions_name_version"),
)

# One row per (evaluation run, test set, predictor): the figures, with the test set's version and
# content hash they were measured on, so a result is never compared across different sets.
eval_results = Table(
    "eval_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("test_set", String(200), nullable=False),
    Column("test_set_version", Integer, nullable=False),
    Column("test_set_hash", String(64), nullable=False),
    Column("predictor", String(300), nullable=False, doc="the teacher's labeller, or student:NAME:TRAIN_RUN_ID"),
    Column("metrics", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "test_set", "predictor", name="uq_eval_results"),
)


forgotten = Table(
    "forgotten",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, doc="item | match (graduate privacy forget)"),
    Column("what_hash", String(64), nullable=False, doc="sha256 of the item id or the matched text: never the text"),
    Column("counts", JSON, nullable=False, doc="rows deleted per table, files rewritten or removed"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What may never come back: the normalised-text hashes of forgotten items (a data file that still
# holds the row adds nothing) and the cache keys of forgotten calls (an import adds nothing).
forgotten_keys = Table(
    "forgotten_keys",
    metadata,
    Column("kind", String(16), primary_key=True, doc="text_hash | cache_key"),
    Column("value", String(64), primary_key=True),
)


# graduate label --ray: each worker spends from budget slices it reserves; an open slice's unused
# part counts against teacher.budget_usd until it is closed or its lease lapses (a dead worker).
budget_slices = Table(
    "budget_slices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", OWNER, nullable=False),
    Column("reserved_usd", Float, nullable=False),
    Column("used_usd", Float, nullable=False, default=0.0),
    Column("lease_until", DateTime(timezone=True), nullable=False),
    Column("closed", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_budget_slices_owner", "owner"),
)
