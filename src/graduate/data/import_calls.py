"""Import recorded teacher calls: OpenAI Batch API files, or JSONL of {request, response} pairs.

Bad lines never stop an import: each is skipped and reported as ``file:line: reason``. Importing
the same content twice adds nothing (whole files are recognised by hash, single calls by content).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Engine

from graduate.data.text import scrub_surrogates, text_hash
from graduate.errors import InputDataError
from graduate.privacy import Redactor
from graduate.privacy import records as privacy_records
from graduate.spec import PriceSpec
from graduate.store.calls import CallRecord, file_imported, import_calls
from graduate.store.forget import forgotten_values
from graduate.formats.prompt import item_texts as _item_texts
from graduate.formats.tokens import MAX_TOKENS, estimate_prompt_tokens, estimate_text_tokens, reported_tokens

PriceLookup = Callable[[str], PriceSpec | None]
item_texts_default = _item_texts([])


@dataclass
class ImportReport:
    path: str
    read: int = 0
    added: int = 0
    skipped_existing: int = 0
    failed_calls: int = 0
    forgotten: int = 0  # calls that hold an item `graduate privacy forget` deleted: never stored again
    problems: list[str] = field(default_factory=list)
    already_imported: bool = False

    @property
    def skipped_bad(self) -> int:
        return len(self.problems)


def _hash_files(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _read_jsonl(path: Path, problems: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.exists():
        raise InputDataError("file not found", path=path)
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problems.append(f"{path}:{lineno}: not UTF-8 ({exc.reason})")
                continue
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{path}:{lineno}: expected a JSON object")
                continue
            # "\ud800" escapes decode to strings no store can hold: U+FFFD, as a UTF-8 decoder would.
            yield lineno, scrub_surrogates(obj)


def _content_of(body: dict[str, Any]) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _record(
    body: dict[str, Any],
    response: dict[str, Any] | None,
    error: Any,
    external_id: str | None,
    where: str,
    price_for: PriceLookup,
    problems: list[str],
) -> CallRecord | None:
    messages = body.get("messages")
    model = body.get("model") or (response or {}).get("model")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        problems.append(f"{where}: request has no messages list")
        return None
    if not isinstance(model, str):
        problems.append(f"{where}: request names no model")
        return None
    params = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "user")}
    if error or response is None:
        message = error.get("message") if isinstance(error, dict) else str(error or "no response recorded")
        return CallRecord(model, messages, params, None, None, "error", error=message, external_id=external_id)
    content = _content_of(response)
    if content is None:
        problems.append(f"{where}: response has no choices[0].message.content")
        return None
    usage = response.get("usage") or {}
    if isinstance(usage, dict) and "prompt_tokens" in usage and "completion_tokens" in usage:
        tin, tout = usage["prompt_tokens"], usage["completion_tokens"]
        for key, value in (("prompt_tokens", tin), ("completion_tokens", tout)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_TOKENS:
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
                problems.append(f"{where}: usage.{key} is {shown}, not a whole number of tokens (0 to {MAX_TOKENS - 1:,}); fix or drop the line")
                return None
        estimated = False
    else:
        tin, tout, estimated = estimate_prompt_tokens(messages), estimate_text_tokens(content), True
    price = price_for(model)
    cost = price.cost(tin, tout) if price else None
    return CallRecord(
        model,
        messages,
        params,
        response,
        content,
        "ok",
        external_id=external_id,
        input_tokens=tin,
        output_tokens=tout,
        tokens_estimated=estimated,
        cost_usd=cost,
    )


def batch_result(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, Any, str | None]:
    """One line of a Batch API output or error file: (the completion body when it succeeded, the
    error otherwise, a problem when the line is malformed)."""
    response, error = obj.get("response"), obj.get("error")
    body = None
    if isinstance(response, dict):
        body = response.get("body")
        status = response.get("status_code", 200)
        if not isinstance(body, dict):
            return None, None, "response has no body"
        if isinstance(status, int) and status >= 400:
            error = error or (body.get("error") or {"message": f"HTTP {status}"})
            body = None
    return body, error, None


def completion_of(body: dict[str, Any], messages: list[dict[str, Any]] | None) -> tuple[str | None, int, int, bool]:
    """A completion body's answer text and its (input, output) tokens, estimated (True) when the
    body reports no usage; ``messages`` are what the input estimate is made from."""
    content = _content_of(body)
    usage = body.get("usage") or {}
    counts = [usage.get("prompt_tokens"), usage.get("completion_tokens")] if isinstance(usage, dict) else []
    if counts and all(reported_tokens(n) is not None for n in counts):  # a count past any window would not fit the store
        return content, int(counts[0]), int(counts[1]), False
    return content, estimate_prompt_tokens(messages or []), estimate_text_tokens(content or ""), True


def read_batch_files(input_path: Path, output_path: Path, price_for: PriceLookup, report: ImportReport) -> list[CallRecord]:
    """Join a Batch API input file and its output file on custom_id."""
    requests: dict[str, tuple[int, dict[str, Any]]] = {}
    for lineno, obj in _read_jsonl(input_path, report.problems):
        cid, body = obj.get("custom_id"), obj.get("body")
        if not isinstance(cid, str) or not isinstance(body, dict):
            report.problems.append(f"{input_path}:{lineno}: needs custom_id and body")
            continue
        if cid in requests:
            report.problems.append(f"{input_path}:{lineno}: custom_id {cid!r} repeats line {requests[cid][0]}")
            continue
        requests[cid] = (lineno, body)
    records: list[CallRecord] = []
    answered: set[str] = set()
    for lineno, obj in _read_jsonl(output_path, report.problems):
        report.read += 1
        where = f"{output_path}:{lineno}"
        cid = obj.get("custom_id")
        if not isinstance(cid, str):
            report.problems.append(f"{where}: no custom_id")
            continue
        if cid not in requests:
            report.problems.append(f"{where}: custom_id {cid!r} is not in {input_path.name}")
            continue
        if cid in answered:
            report.problems.append(f"{where}: custom_id {cid!r} answered twice")
            continue
        answered.add(cid)
        body, error, problem = batch_result(obj)
        if problem:
            report.problems.append(f"{where}: {problem}")
            continue
        rec = _record(requests[cid][1], body, error, cid, where, price_for, report.problems)
        if rec is not None:
            records.append(rec)
    return records


def read_pairs_file(path: Path, price_for: PriceLookup, report: ImportReport) -> list[CallRecord]:
    """A JSONL of {"request": chat body, "response": completion body} (optional "error", "id")."""
    records: list[CallRecord] = []
    for lineno, obj in _read_jsonl(path, report.problems):
        report.read += 1
        where = f"{path}:{lineno}"
        request = obj.get("request")
        if not isinstance(request, dict):
            report.problems.append(f"{where}: needs a request object")
            continue
        response = obj.get("response")
        if response is not None and not isinstance(response, dict):
            report.problems.append(f"{where}: response must be an object or null")
            continue
        ext = obj.get("id") or obj.get("custom_id")
        rec = _record(request, response, obj.get("error"), str(ext) if ext is not None else None, where, price_for, report.problems)
        if rec is not None:
            records.append(rec)
    return records


def import_log(
    engine: Engine,
    input_path: Path,
    output_path: Path | None,
    *,
    price_for: PriceLookup,
    fmt: str = "batch",
    redactor: Redactor | None = None,
    item_texts: Callable[[list[dict[str, Any]]], Iterable[str]] | None = None,
) -> ImportReport:
    """Import one log (batch pair or pairs file) into the call log; with a ``redactor``
    (privacy.redact) each call is stored redacted, keyed by its request as read.

    A call whose item was forgotten (``graduate privacy forget``) is left out: its request is
    known by its cache key, or by an item text (``item_texts``: the texts a request may hold, e.g.
    ``formats.prompt.item_texts`` over the project's prompts; default: each user message whole)
    whose hash the deletion log holds, so a log with another prompt brings nothing back either."""
    paths = [input_path] + ([output_path] if output_path is not None else [])
    for p in paths:
        if not p.exists():
            raise InputDataError("file not found", path=p)
        if p.is_dir():
            raise InputDataError("is a folder; name the JSONL file in it", path=p)
    report = ImportReport(path=str(output_path or input_path))
    digest = _hash_files(*paths)
    if file_imported(engine, digest):
        report.already_imported = True
        return report
    if fmt == "batch":
        if output_path is None:
            raise InputDataError("a Batch API import needs the output file too", path=input_path)
        records = read_batch_files(input_path, output_path, price_for, report)
    else:
        records = read_pairs_file(input_path, price_for, report)
    gone = forgotten_values(engine, "text_hash")
    if gone:
        texts = item_texts or item_texts_default
        kept = [r for r in records if not any(text_hash(t) in gone for t in texts(r.messages))]
        report.forgotten, records = len(records) - len(kept), kept
    report.failed_calls = sum(1 for r in records if r.status == "error")
    redact = None if redactor is None else partial(privacy_records.call_record, redactor)
    # A file with bad lines is not recorded as imported: importing it again reads it again, adds
    # nothing twice, and names its bad lines again (it said "already imported" and exited 0).
    added, skipped = import_calls(engine, records, kind=fmt, path=report.path, sha256=digest, redact=redact, record_file=not report.problems)
    report.added, report.skipped_existing = added, skipped
    return report
