"""graduate batch: the teacher's calls through the OpenAI Batch API, nothing lost or paid twice.

submit   plan the items' requests (skip what the call log answered or an open batch holds, and
         at temperature 0 what was cut off at max_tokens before at the same settings; stop at the
         budget), split them into input files under the API's limits, and for each file
         record the batch and its pending lines in one transaction; then upload the file and
         create the batch with our uid in its metadata. Running submit again resumes: a planned
         batch is uploaded (a file already uploaded under its name is reused), an uploaded one is
         looked up by its metadata before a second is created.
status   ask the provider about every open batch.
collect  for each batch that ended: download its output and its error file (either may be
         absent), and in one transaction complete each pending line by custom_id (answers at
         batch prices, line errors as errors, expired or cancelled lines back to unsent), put
         what neither file answered back to unsent, and close the batch. A batch is collected
         once: a second collect adds nothing; a collect killed midway rolls back whole.
cancel   ask the provider to stop a batch; its paid partial output is kept by the next collect.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from graduate.data.import_calls import batch_result, completion_of
from graduate.errors import BatchError
from graduate.formats.tokens import estimate_prompt_tokens
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.privacy import records
from graduate.store.batches import (
    BatchRow,
    add_lines,
    close_batch,
    find_batch,
    finish_lines,
    insert_batch,
    key_state,
    list_batches,
    pending_lines,
    size_batch,
    unsend_rest,
    update_batch,
)
from graduate.store.calls import live_spend, longest_answer, request_key
from graduate.teacher.batch_api import ENDPOINT, METADATA_KEY, BatchClient, RemoteBatch
from graduate.teacher.base import Completion
from graduate.teacher.labeling import known_cut, known_cut_advice, output_reserve, require_price, require_sendable, unusable_answer
from graduate.teacher.prompt import render_messages, request_params

if TYPE_CHECKING:
    from graduate.pipeline.project import Project

BATCH_DIR = "batches"
CHUNK = 500
# Error codes of lines a batch never ran: sent again by the next submit, not counted as failures.
NOT_RUN = ("batch_expired", "batch_cancelled", "batch_failed")


@dataclass
class SubmitReport:
    items: int = 0
    distinct: int = 0
    answered: int = 0  # in the call log already: not sent
    held: int = 0  # pending in an open batch: not sent twice
    planned: int = 0  # lines in the batches this run planned
    not_sent_budget: int = 0
    too_large: int = 0  # a request bigger than teacher.batch.max_bytes_per_file by itself
    # Cut off at the token limit before at these very settings (temperature 0: cut off again):
    # not paid for twice (graduate.teacher.labeling.known_cut, as `graduate label`).
    known_cut: int = 0
    known_cut_advice: str | None = None  # what to change, said once for them all
    reserved_usd: float = 0.0
    planned_batches: list[str] = field(default_factory=list)  # uids
    sent: list[BatchRow] = field(default_factory=list)  # batches this run uploaded and created (or found created)

    @property
    def budget_stopped(self) -> bool:
        return self.not_sent_budget > 0


@dataclass
class BatchView:
    row: BatchRow
    remote: RemoteBatch | None


@dataclass
class Collected:
    uid: str
    remote_id: str | None
    remote_status: str
    counts: dict[str, int]
    cost_usd: float
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def batch_dir(project: "Project") -> Path:
    d = project.workdir / BATCH_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


def _filename(uid: str) -> str:
    return f"graduate-{uid}.jsonl"


def _epoch(row: BatchRow) -> float:
    stamp = row.created_at
    if stamp.tzinfo is None:  # SQLite gives naive UTC back
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _client(project: "Project", client: BatchClient | None) -> BatchClient:
    return client if client is not None else BatchClient(project.spec.teacher)


# -- submit ------------------------------------------------------------------------------------
def submit(project: "Project", texts: list[str], *, client: BatchClient | None = None, progress: ProgressFn = no_progress) -> SubmitReport:
    """Plan ``texts`` into batches and send every batch not yet sent (this run's and any an earlier,
    interrupted run left planned or uploaded). One spender at a time: two submits at once would
    plan, upload and create the same lines twice (paid twice)."""
    with project.exclusive("graduate batch submit"):
        report = plan(project, texts, progress=progress)
        api = _client(project, client)
        try:
            report.sent = send_open(project, api, progress=progress)
        finally:
            if client is None:
                api.close()
    return report


def plan(project: "Project", texts: list[str], *, progress: ProgressFn = no_progress) -> SubmitReport:
    require_sendable(texts)
    spec = project.spec.teacher
    engine = project.engine
    price = project.spec.price_for(spec.model)
    params = request_params(spec)
    report = SubmitReport(items=len(texts))
    messages_of: dict[str, str] = {}
    for text in texts:
        key = request_key(spec.model, render_messages(spec, text), params)
        messages_of.setdefault(key, text)
    report.distinct = len(messages_of)
    state = key_state(engine, messages_of)
    report.answered, report.held = len(state.answered), len(state.held)
    todo = [k for k in messages_of if k not in state.answered and k not in state.held]
    cut_before = known_cut(engine, spec, todo)
    if cut_before:
        report.known_cut = len(cut_before)
        report.known_cut_advice = known_cut_advice(spec, len(cut_before))
        todo = [k for k in todo if k not in cut_before]
    if todo:
        require_price(spec, price)
    _remove_orphans(project)

    spent = live_spend(engine)
    out_reserve = output_reserve(spec, longest_answer(engine, spec.model))
    limits = spec.batch
    directory = batch_dir(project)
    i = 0
    while i < len(todo):
        uid = uuid.uuid4().hex[:16]
        path = directory / _filename(uid)
        tmp = path.with_name(path.name + ".tmp")
        lines, size, reserved = 0, 0, 0.0
        pending: list[dict[str, Any]] = []
        stop = False
        with engine.begin() as conn, tmp.open("wb") as out:
            batch_id: int | None = None
            while i < len(todo) and lines < limits.max_requests_per_file:
                key = todo[i]
                messages = render_messages(spec, messages_of[key])
                body = {"model": spec.model, "messages": messages, **params}
                line = (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False) + "\n").encode()
                if len(line) > limits.max_bytes_per_file:
                    report.too_large += 1
                    i += 1
                    continue
                if size + len(line) > limits.max_bytes_per_file:
                    break
                cost = price.batch_cost(estimate_prompt_tokens(messages), out_reserve) if price else 0.0
                if spent + report.reserved_usd + reserved + cost > spec.budget_usd:
                    stop = True
                    break
                if batch_id is None:
                    batch_id = insert_batch(conn, uid=uid, model=spec.model, input_path=f"{BATCH_DIR}/{path.name}")
                out.write(line)
                stored, counts = records.request(project.redactor, body)
                pending.append(
                    {"cache_key": key, "sample_index": state.next_index.get(key, 0), "model": spec.model, "request": stored,
                     "params": params, "redactions": counts, "reuse": state.reusable.get(key)}
                )
                lines, size, reserved, i = lines + 1, size + len(line), reserved + cost, i + 1
                if len(pending) >= CHUNK:
                    add_lines(conn, batch_id, pending)
                    pending = []
                    progress("plan batch lines", report.planned + lines, len(todo))
            if batch_id is not None:
                add_lines(conn, batch_id, pending)
                size_batch(conn, batch_id, requests=lines, size=size, reserved_usd=reserved)
                out.flush()
                os.fsync(out.fileno())
                # The file is in place before the rows commit: a crash in between leaves an orphan
                # file (removed by the next submit), never a batch without its file.
                os.replace(tmp, path)
        tmp.unlink(missing_ok=True)
        if lines:
            report.planned += lines
            report.reserved_usd += reserved
            report.planned_batches.append(uid)
        if stop:
            report.not_sent_budget = len(todo) - i
            break
    progress("plan batch lines", report.planned, len(todo))
    return report


def _remove_orphans(project: "Project") -> None:
    """Input files no batch row names: left by a submit killed between writing and committing."""
    known = {Path(b.input_path).name for b in list_batches(project.engine)}
    for f in batch_dir(project).iterdir():
        if f.name.endswith(".tmp") or (f.name.startswith("graduate-") and f.suffix == ".jsonl" and f.name not in known):
            f.unlink(missing_ok=True)


def send_open(project: "Project", api: BatchClient, *, progress: ProgressFn = no_progress) -> list[BatchRow]:
    """Upload and create every batch still planned or uploaded."""
    todo = [b for b in list_batches(project.engine, open_only=True) if b.state in ("planned", "uploaded")]
    sent = []
    for n, b in enumerate(todo):
        progress("send batches", n, len(todo))
        file_id = b.input_file_id
        if b.state == "planned":
            path = project.workdir / b.input_path
            if not path.exists():
                _abandon(project, b, f"its input file {path} is gone; its lines are unsent again")
                continue
            file_id = api.find_file(_filename(b.uid), b.bytes) or api.upload(path, _filename(b.uid))
            update_batch(project.engine, b.id, state="uploaded", input_file_id=file_id)
        assert file_id is not None
        remote = api.find(b.uid, since=_epoch(b)) or api.create(file_id, {METADATA_KEY: b.uid, "graduate_task": project.spec.task.name[:500]})
        update_batch(project.engine, b.id, state="submitted", remote_id=remote.id, remote_status=remote.status)
        sent.append(find_batch(project.engine, b.uid))
    progress("send batches", len(todo), len(todo))
    return [b for b in sent if b is not None]


def _abandon(project: "Project", b: BatchRow, reason: str) -> None:
    with project.engine.begin() as conn:
        n = unsend_rest(conn, b.id, reason)
        close_batch(conn, b.id, remote_status=b.remote_status or "not_sent", counts={"unsent": n}, cost_usd=0.0, error=reason)


# -- status, cancel ----------------------------------------------------------------------------
def status(project: "Project", *, client: BatchClient | None = None) -> list[BatchView]:
    """Every batch of the project; the open ones as the provider sees them now."""
    api = _client(project, client)
    try:
        return [_refresh(project, api, b) for b in list_batches(project.engine)]
    finally:
        if client is None:
            api.close()


def _refresh(project: "Project", api: BatchClient, b: BatchRow) -> BatchView:
    if b.state != "submitted" or b.remote_id is None:
        return BatchView(b, None)
    remote = api.get(b.remote_id)
    update_batch(
        project.engine, b.id, remote_status=remote.status, output_file_id=remote.output_file_id, error_file_id=remote.error_file_id,
        error="; ".join(remote.errors) or None,
    )
    return BatchView(find_batch(project.engine, b.uid) or b, remote)


def cancel(project: "Project", ref: str | None = None, *, client: BatchClient | None = None) -> list[BatchView]:
    """Cancel one batch (our uid or the provider's id) or every open one. A batch not yet created
    at the provider is closed here and its lines are unsent again."""
    if ref is not None:
        b = find_batch(project.engine, ref)
        if b is None:
            raise BatchError(f"batch {ref!r} is not one of this project's batches; `graduate batch status {project.root}` lists them", batch=ref)
        todo = [b] if b.state != "collected" else []
    else:
        todo = list_batches(project.engine, open_only=True)
    api = _client(project, client)
    out = []
    try:
        for b in todo:
            remote_id = b.remote_id
            if remote_id is None and b.state == "uploaded":  # a create may have reached the provider before a crash
                found = api.find(b.uid, since=_epoch(b))
                remote_id = found.id if found else None
            if remote_id is None:
                _abandon(project, b, "cancelled before it was sent")
                out.append(BatchView(find_batch(project.engine, b.uid) or b, None))
                continue
            remote = api.cancel(remote_id)
            update_batch(project.engine, b.id, state="submitted", remote_id=remote_id, remote_status=remote.status)
            out.append(BatchView(find_batch(project.engine, b.uid) or b, remote))
    finally:
        if client is None:
            api.close()
    return out


# -- collect -----------------------------------------------------------------------------------
def collect(
    project: "Project",
    *,
    client: BatchClient | None = None,
    wait: bool = False,
    sleep: Callable[[float], None] | None = None,
    progress: ProgressFn = no_progress,
) -> tuple[list[Collected], list[BatchView]]:
    """Collect every batch that has ended; with ``wait``, poll (teacher.batch.poll_s) until none is
    open. Returns what was collected and the batches still running."""
    import time

    api = _client(project, client)
    done: list[Collected] = []
    try:
        while True:
            running = []
            with project.exclusive("graduate batch collect"):  # not while it sleeps; a second collect would store the lines twice
                for b in list_batches(project.engine, open_only=True):
                    if b.state != "submitted":
                        running.append(BatchView(b, None))
                        continue
                    view = _refresh(project, api, b)
                    if view.remote is not None and view.remote.done:
                        done.append(_collect_one(project, api, view.row, view.remote, progress))
                    else:
                        running.append(view)
            if not wait or not any(v.row.state == "submitted" for v in running):
                return done, running
            (sleep or time.sleep)(project.spec.teacher.batch.poll_s)
    finally:
        if client is None:
            api.close()


def _collect_one(project: "Project", api: BatchClient, b: BatchRow, remote: RemoteBatch, progress: ProgressFn) -> Collected:
    directory = batch_dir(project)
    files = []
    for kind, file_id in (("output", remote.output_file_id), ("errors", remote.error_file_id)):
        if file_id:
            files.append(api.download(file_id, directory / f"graduate-{b.uid}.{kind}.jsonl"))
    price = project.spec.price_for(b.model)
    input_path = project.workdir / b.input_path
    bodies = _Bodies(input_path) if project.redactor is not None and input_path.exists() else None
    counts = {"ok": 0, "error": 0, "cut": 0, "unsent": 0, "unmatched": 0, "malformed": 0}
    problems: list[str] = []
    cost = 0.0
    seen: set[str] = set()
    with project.engine.begin() as conn:
        for path in files:
            chunk: list[tuple[int, dict[str, Any]]] = []

            def flush() -> None:
                nonlocal cost
                ids = pending_lines(conn, b.id, [str(obj["custom_id"]) for _, obj in chunk])
                updates = []
                for lineno, obj in chunk:
                    cid = str(obj["custom_id"])
                    row_id = ids.get(cid)
                    if row_id is None or cid in seen:
                        counts["unmatched"] += 1
                        if len(problems) < 10:
                            problems.append(f"{path.name}:{lineno}: custom_id {cid[:80]!r} matches no pending line of batch {b.uid}")
                        continue
                    seen.add(cid)
                    update, line_cost = _line_update(project, obj, row_id, price, bodies, cid)
                    if update is None:
                        continue  # a line the batch never ran: left pending, unsent below
                    # an error row that keeps its answer: cut off at max_tokens (unusable_answer)
                    counts["cut" if update["status"] == "error" and update["content"] is not None else update["status"]] += 1
                    cost += line_cost
                    updates.append(update)
                finish_lines(conn, updates)
                progress("collect batch lines", sum(counts.values()), b.requests)
                chunk.clear()

            with path.open("rb") as f:
                for lineno, raw in enumerate(f, start=1):
                    if not raw.strip():
                        continue
                    try:
                        obj = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        obj = None
                    if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
                        counts["malformed"] += 1
                        if len(problems) < 10:
                            problems.append(f"{path.name}:{lineno}: not a Batch API result line (JSON object with custom_id)")
                        continue
                    chunk.append((lineno, obj))
                    if len(chunk) >= CHUNK:
                        flush()
            if chunk:
                flush()
        reason = {"expired": "the batch expired before answering it", "cancelled": "the batch was cancelled before answering it"}.get(
            remote.status, f"the batch ended ({remote.status}) without answering it"
        )
        counts["unsent"] += unsend_rest(conn, b.id, reason)
        error = "; ".join(remote.errors) or None
        close_batch(conn, b.id, remote_status=remote.status, counts=counts, cost_usd=cost, error=error)
    # Raw texts leave the disk once their answers are in the store (redacted there when privacy.redact is on).
    for path in files + [input_path]:
        path.unlink(missing_ok=True)
    return Collected(b.uid, b.remote_id, remote.status, counts, cost, error, problems)


def _line_update(
    project: "Project", obj: dict[str, Any], row_id: int, price: Any, bodies: "_Bodies | None", cid: str
) -> tuple[dict[str, Any] | None, float]:
    body, error, problem = batch_result(obj)
    request = bodies.get(cid) if bodies is not None else None
    if problem is None and error is None and body is not None:
        content, tin, tout, estimated = completion_of(body, (request or {}).get("messages"))
        if content is not None:
            # Cut off at max_tokens: paid for (its cost kept, its row not sent again in place), no answer.
            cut = unusable_answer(Completion(content, body), project.spec.teacher)
            stored = records.answer(project.redactor, request, content=content, response=body)
            line_cost = price.batch_cost(tin, tout) if price else 0.0
            return (
                {"_id": row_id, "status": "ok" if cut is None else "error", "content": stored.content, "response": stored.response, "error": cut,
                 "input_tokens": tin, "output_tokens": tout, "tokens_estimated": estimated, "cost_usd": line_cost if price else None,
                 "redactions": stored.redactions},
                line_cost,
            )
        problem = "response has no choices[0].message.content"
    code = error.get("code") if isinstance(error, dict) else None
    if code in NOT_RUN:
        return None, 0.0
    message = problem or (error.get("message") if isinstance(error, dict) else None) or str(error)
    if code and code not in message:
        message = f"{code}: {message}"
    stored = records.answer(project.redactor, request, error=message)
    return (
        {"_id": row_id, "status": "error", "content": None, "response": None, "error": stored.error, "input_tokens": None,
         "output_tokens": None, "tokens_estimated": False, "cost_usd": None, "redactions": stored.redactions},
        0.0,
    )


class _Bodies:
    """The request bodies of a batch input file by custom_id, read on demand (offsets only in memory):
    an answer is redacted together with its request, so a value keeps its placeholder."""

    def __init__(self, path: Path):
        self._path = path
        self._offsets: dict[str, int] = {}
        with path.open("rb") as f:
            offset = 0
            for raw in f:
                try:
                    cid = json.loads(raw).get("custom_id")
                except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                    cid = None
                if isinstance(cid, str):
                    self._offsets[cid] = offset
                offset += len(raw)

    def get(self, cid: str) -> dict[str, Any] | None:
        offset = self._offsets.get(cid)
        if offset is None:
            return None
        with self._path.open("rb") as f:
            f.seek(offset)
            return json.loads(f.readline()).get("body")
