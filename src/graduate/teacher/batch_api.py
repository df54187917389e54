"""The OpenAI Batch API (files + batches endpoints at the teacher's base_url), through the official SDK.

One job per method: upload an input file, create a batch, find one by our metadata, get, cancel,
download a result file. Every failure comes back as one ``BatchError`` line that names the step.

Creating a batch is never retried blindly: a request that timed out may have created it, so the
caller looks for the batch by its metadata (``find``) before creating another. The one retry is
for the transient "file not found" the service answers while a just-uploaded file propagates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from graduate.errors import BatchError, TeacherAuthError
from graduate.spec import TeacherSpec
from graduate.teacher.openai_compat import is_local_url

ENDPOINT = "/v1/chat/completions"
METADATA_KEY = "graduate_batch"
TERMINAL = ("completed", "failed", "expired", "cancelled")
UPLOAD_TIMEOUT_S = 1800.0


@dataclass
class RemoteBatch:
    """What the provider says about one batch."""

    id: str
    status: str
    metadata: dict[str, str]
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int | None = None
    request_counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def _remote(b: Any) -> RemoteBatch:
    errors = []
    for e in getattr(getattr(b, "errors", None), "data", None) or []:
        line = f" (line {e.line})" if getattr(e, "line", None) is not None else ""
        errors.append(f"{e.code or 'error'}: {e.message or ''}{line}".strip())
    counts = b.request_counts.model_dump() if getattr(b, "request_counts", None) is not None else {}
    return RemoteBatch(
        id=b.id,
        status=b.status,
        metadata=dict(b.metadata or {}),
        input_file_id=b.input_file_id,
        output_file_id=b.output_file_id,
        error_file_id=b.error_file_id,
        created_at=b.created_at,
        request_counts={k: int(v) for k, v in counts.items() if v is not None},
        errors=errors,
    )


def _file_not_found(exc: BaseException) -> bool:
    import openai

    if not isinstance(exc, (openai.NotFoundError, openai.BadRequestError)):
        return False
    text = str(exc).lower()
    return "file" in text and ("not found" in text or "does not exist" in text or "no such" in text)


class BatchClient:
    def __init__(self, spec: TeacherSpec, *, api_key: str | None = None, retry_wait_s: float = 1.0):
        import openai

        key = api_key or os.environ.get(spec.api_key_env)
        # A remote API without a key is refused before any call (a local one takes any key).
        self._missing_key = TeacherAuthError(api_key_env=spec.api_key_env, base_url=spec.base_url, detail="not set", missing=True) if not key and not is_local_url(spec.base_url) else None
        key = key or "not-set"
        self._openai = openai
        self._client = openai.OpenAI(base_url=spec.base_url, api_key=key, max_retries=2, timeout=max(spec.timeout_s, 60.0))
        self._base_url = spec.base_url
        self._create_retries = spec.batch.create_retries
        self._completion_window = spec.batch.completion_window
        self._retry_wait_s = retry_wait_s

    def _need_key(self) -> None:
        if self._missing_key is not None:
            raise self._missing_key

    def _fail(self, step: str, exc: Exception, batch: str | None = None) -> BatchError:
        openai = self._openai
        if isinstance(exc, openai.AuthenticationError):
            return BatchError(f"{step}: the Batch API at {self._base_url} refused the API key (HTTP 401); set a valid key and run again", batch=batch)
        if isinstance(exc, openai.APIStatusError):
            return BatchError(f"{step}: HTTP {exc.status_code} from {self._base_url}: {exc.message}", batch=batch)
        if isinstance(exc, openai.APIConnectionError):
            return BatchError(f"{step}: cannot reach the Batch API at {self._base_url} ({exc.__cause__ or exc}); run the command again when it answers", batch=batch)
        return BatchError(f"{step}: {exc}", batch=batch)

    def find_file(self, filename: str, size: int) -> str | None:
        """An input file already uploaded under this name and size (a submit killed after uploading)."""
        self._need_key()
        try:
            for f in self._client.files.list(purpose="batch"):
                if f.filename == filename and f.bytes == size:
                    return f.id
        except self._openai.OpenAIError as exc:
            raise self._fail(f"list files to find {filename}", exc) from None
        return None

    def upload(self, path: Path, filename: str) -> str:
        self._need_key()
        try:
            with path.open("rb") as fh:
                # Up to 100 MB on a slow link: the per-call timeout of chat requests would cut it off.
                return self._client.with_options(timeout=UPLOAD_TIMEOUT_S).files.create(file=(filename, fh, "application/jsonl"), purpose="batch").id
        except self._openai.OpenAIError as exc:
            raise self._fail(f"upload {path}", exc) from None

    def find(self, uid: str, *, since: float) -> RemoteBatch | None:
        """Our batch ``uid`` if the provider has it (newest first, back to ``since`` minus a margin)."""
        self._need_key()
        try:
            for b in self._client.batches.list(limit=100):
                if (b.metadata or {}).get(METADATA_KEY) == uid:
                    return _remote(b)
                if b.created_at is not None and b.created_at < since - 3600:
                    break
        except self._openai.OpenAIError as exc:
            raise self._fail(f"list batches to find {uid}", exc, uid) from None
        return None

    def create(self, file_id: str, metadata: dict[str, str]) -> RemoteBatch:
        self._need_key()
        client = self._client.with_options(max_retries=0)
        retrying = Retrying(
            stop=stop_after_attempt(self._create_retries + 1),
            wait=wait_exponential(multiplier=self._retry_wait_s, max=30 * self._retry_wait_s),
            retry=retry_if_exception(_file_not_found),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    b = client.batches.create(
                        input_file_id=file_id, endpoint=ENDPOINT, completion_window=self._completion_window, metadata=metadata
                    )
        except self._openai.OpenAIError as exc:
            raise self._fail(f"create the batch for file {file_id}", exc, metadata.get(METADATA_KEY)) from None
        return _remote(b)

    def get(self, remote_id: str) -> RemoteBatch:
        self._need_key()
        try:
            return _remote(self._client.batches.retrieve(remote_id))
        except self._openai.OpenAIError as exc:
            raise self._fail(f"get batch {remote_id}", exc, remote_id) from None

    def cancel(self, remote_id: str) -> RemoteBatch:
        self._need_key()
        try:
            return _remote(self._client.batches.cancel(remote_id))
        except self._openai.OpenAIError as exc:
            raise self._fail(f"cancel batch {remote_id}", exc, remote_id) from None

    def download(self, file_id: str, dest: Path) -> Path:
        """Stream a result file to ``dest`` (through a .part file, so a partial download is never read)."""
        self._need_key()
        part = dest.with_name(dest.name + ".part")
        try:
            with self._client.files.with_streaming_response.content(file_id) as response, part.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except self._openai.OpenAIError as exc:
            part.unlink(missing_ok=True)
            raise self._fail(f"download file {file_id}", exc) from None
        os.replace(part, dest)
        return dest

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "BatchClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

