"""graduate predict --ray: score CSV/Parquet files of any size on a Ray cluster with Ray Data.

Ray Data reads the files (a file is one read task; each row keeps its file and its data row
number, the row id), an actor pool scores them (each actor loads the student once and runs as many
threads as it has CPUs) and the rows are written as Parquet: the input's columns, ``source_file``
and ``row_number``, then the student's label (multi-label: ``labels``) and ``p_<label>`` columns,
the same values as the local path (``graduate.students.csv_predict``) row for row. Rows whose
text is empty or blank (only invisible characters: ``graduate.spec.text``) keep them null; multi-label
rows given the empty set (an empty ``labels`` cell) are counted, as the local path counts them. A CSV is read
as the local path reads it (Python's csv module, every cell text): a row with fewer cells than the
header gets blanks for the rest, one with more stops the run naming its line. The files appear under the output directory only once all are written.

On few cores every stage gets a fraction of a CPU (reads and writes 0.25): a pipeline whose
actors hold every CPU would leave none for the reads and wait forever.
"""

from __future__ import annotations

import glob
import math
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graduate.errors import InputDataError, SpecError, StudentError
from graduate.pipeline.ray_cluster import connect
from graduate.spec.text import is_blank

ROW_ID_COLUMNS = ("source_file", "row_number")
IO_CPUS = 0.25


@dataclass
class RayPredictReport:
    files: int
    rows: int
    output: Path
    actors: int
    # Multi-label: rows given the empty set, an empty `labels` cell (as on the local path, whose
    # PredictReport counts them); named by (source_file, row_number), a data row, not a file line.
    no_label: int = 0
    no_label_rows: list[tuple[str, int]] = field(default_factory=list)  # the first 100, in input order
    # Rows whose text is empty or blank, their label left empty (null), as the local path's
    # PredictReport.empty counts them; named alike (source_file, row_number), the first 100.
    empty: int = 0
    empty_rows: list[tuple[str, int]] = field(default_factory=list)


def input_files(pattern: str) -> tuple[list[str], str]:
    """The files a PATH or GLOB names, and their format (csv or parquet); one format per run."""
    # A file that exists is that file, even if its name reads as a glob (`data[1].csv`).
    paths = sorted(glob.glob(pattern, recursive=True)) if any(c in pattern for c in "*?[") and not Path(pattern).is_file() else [pattern]
    paths = [p for p in paths if Path(p).is_file()]
    if not paths:
        raise InputDataError("no file matches it; pass a CSV or Parquet file, or a glob such as 'data/*.csv' (quoted)", path=pattern)
    kinds = {_kind(p) for p in paths}
    if None in kinds:
        bad = next(p for p in paths if _kind(p) is None)
        raise InputDataError("not a .csv or .parquet file", path=bad)
    if len(kinds) > 1:
        raise InputDataError("mixes CSV and Parquet files; predict one format per run", path=pattern)
    return [str(Path(p).resolve()) for p in paths], kinds.pop()  # type: ignore[return-value]


def _kind(path: str) -> str | None:
    name = path.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def _columns(paths: list[str], kind: str) -> list[str]:
    """The header every file shares (checked here, on the driver, so a bad file fails in one line)."""
    import pyarrow.parquet as pq

    first: list[str] | None = None
    first_types: list[str] = []
    for p in paths:
        types: list[str] = []
        if kind == "parquet":
            try:
                schema = pq.read_schema(p)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
                raise InputDataError(f"not a readable Parquet file ({exc})", path=p) from None
            cols, types = list(schema.names), [str(t) for t in schema.types]
        else:
            cols = _csv_header(p)
        twice = next((c for c in cols if cols.count(c) > 1), None)
        if twice is not None:
            raise InputDataError.repeated_column(twice, path=p)
        if first is None:
            first, first_types = cols, types
        elif cols != first:
            raise InputDataError(f"its columns {cols} differ from {paths[0]}'s {first}; predict files with one header", path=p)
        elif types != first_types:  # Ray would fail deep in a worker, joining rows of both into one batch
            col, got, want = next((c, t, f) for c, t, f in zip(cols, types, first_types) if t != f)
            raise InputDataError(f"its column {col!r} is {got} where {paths[0]}'s is {want}; predict files with one schema", path=p, column=col)
    return first or []


def _csv_header(path: str) -> list[str]:
    import csv
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as f:  # type: ignore[operator]
            header = next(csv.reader(f), None)
    except UnicodeDecodeError as exc:
        raise InputDataError(f"not UTF-8 ({exc.reason}); re-save the file as UTF-8", path=path) from None
    if not header:
        raise InputDataError("empty file: no header row", path=path, line=1)
    return header


class _Scorer:
    """One actor of the pool: loads the student once, scores batches of rows."""

    def __init__(self, student_dir: str, text_column: str, threads: int):
        from threadpoolctl import threadpool_limits

        from graduate.students.registry import load_student

        self._limits = threadpool_limits(threads)  # kept: BLAS/OpenMP pools at the actor's share
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.student = load_student(Path(student_dir))
        self.text_column = text_column

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from graduate.formats import labelset

        student = self.student
        texts = batch.column(self.text_column).to_pylist()
        keep = [i for i, t in enumerate(texts) if t is not None and not is_blank(str(t))]  # as the local path: zero-width spaces, a BOM ... are no text
        labels: list[str | None] = [None] * len(texts)
        probs_cols: list[list[float | None]] = [[None] * len(texts) for _ in student.labels]
        if keep:
            probs = student.predict_proba([str(texts[i]) for i in keep])
            for j, (i, decided) in enumerate(zip(keep, student.decide(probs))):
                labels[i] = ";".join(labelset.as_list(decided, student.labels) or []) if student.multi_label else decided
                for k in range(len(student.labels)):
                    probs_cols[k][i] = float(probs[j, k])
        out = batch.append_column("labels" if student.multi_label else "label", pa.array(labels, pa.string()))
        for k, lab in enumerate(student.labels):
            out = out.append_column(f"p_{lab}", pa.array(probs_cols[k], pa.float64()))
        return out


def predict_ray(
    student: Any,
    student_dir: Path,
    pattern: str,
    output: Path,
    *,
    text_column: str,
    address: str = "local",
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    batch_size: int = 4096,
    num_cpus: int | None = None,
) -> RayPredictReport:
    """Score every row of the files ``pattern`` names into Parquet files under ``output``."""
    paths, kind = input_files(pattern)
    columns = _columns(paths, kind)
    if text_column not in columns:
        raise InputDataError(f"no text column {text_column!r}; the columns are {columns}; pass --text-column", path=paths[0], column=text_column)
    new = list(ROW_ID_COLUMNS) + ["labels" if student.multi_label else "label"] + [f"p_{lab}" for lab in student.labels]
    clash = [c for c in new if c in columns]
    if clash:
        raise InputDataError(f"the input already has columns {clash}; rename them or write elsewhere", path=paths[0])
    if output.is_file() or (output.exists() and any(output.iterdir())):
        raise InputDataError("the output directory is not empty; pass a new --output directory", path=output)
    blocker = next((q for q in output.resolve().parents if q.exists() and not q.is_dir()), None)
    if blocker is not None:  # found before Ray starts, not by the write at the end
        raise InputDataError(f"{blocker} is a file, not a folder; write the output elsewhere", path=output)
    try:
        output.resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputDataError(f"cannot create its folder ({exc.strerror}); write the output elsewhere", path=output) from None

    connect(address, num_cpus=num_cpus)
    import ray.data

    if address == "local":  # a cluster started here cannot grow: a pool it cannot hold would wait forever
        have = float(ray.cluster_resources().get("CPU", 0))
        need = actors * cpus_per_actor + IO_CPUS
        if need > have:
            fits = math.floor((have - IO_CPUS) / actors * 100) / 100
            fix = f"--cpus-per-actor {fits:g} or fewer --actors" if fits >= 0.1 else "fewer --actors"
            raise SpecError(
                f"{actors} actors × {cpus_per_actor:g} CPUs and {IO_CPUS:g} for the reads need {need:g} CPUs, but the local Ray "
                f"cluster has {have:g}: the pool would never start and the run would wait forever; pass {fix}",
                field="--cpus-per-actor",
            )

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # row order as in the files, as the local path writes it
    ctx.enable_progress_bars = False
    ds = ray.data.read_datasource(_numbered_source(paths, kind, columns), num_cpus=IO_CPUS)
    with warnings.catch_warnings():
        # max_restarts has no named parameter in Ray 2.60 (pinned): its **ray_remote_args warn.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
        scored = ds.map_batches(
            _Scorer,
            fn_constructor_kwargs={"student_dir": str(student_dir), "text_column": text_column, "threads": max(1, int(cpus_per_actor))},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
            # No actor restarts: with them Ray's core logs an ERROR on the terminal for every actor of
            # the pool (its constructor arguments are in the object store, so a restart may fail:
            # https://github.com/ray-project/ray/issues/57733, /53727). A scorer that dies fails the
            # run, which writes nothing (see below) and is run again.
            max_restarts=0,
            zero_copy_batch=True,
        )
    # Written whole or not at all: Ray writes into OUTPUT.partial, renamed to OUTPUT once every file
    # is there, so a run killed midway leaves OUTPUT.partial (removed by the next run), never an
    # OUTPUT that holds some of the rows and reads as if it were complete.
    partial = output.resolve().with_name(output.resolve().name + ".partial")  # resolved: `.` has no name
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with _ray_data_console_quiet():  # a bad row is our one line, not Ray's pages of tracebacks (they stay in its log file)
            scored.write_parquet(str(partial), ray_remote_args={"num_cpus": IO_CPUS})
    except Exception as exc:  # noqa: BLE001 - Ray wraps a read error of one file in its task error
        shutil.rmtree(partial, ignore_errors=True)  # no half-written result is left to be mistaken for one
        cause = str(getattr(exc, "cause", None) or exc)
        if "Failed to read CSV file" in cause or "CSV parse error" in cause or "ArrowInvalid" in cause:
            lines = cause.splitlines()
            line = next((ln for ln in lines if "CSV parse error" in ln), None) or next((ln for ln in lines if "Failed to read CSV file" in ln), lines[0])
            raise InputDataError(f"Ray could not read it ({line.strip()[:300]}); nothing was written", path=pattern) from None
        died = next((e for e in _chain(exc) if isinstance(e, ray.exceptions.RayActorError)), None)
        if died is not None:  # actors are not restarted (above): the run stops, whole or nothing
            from graduate.pipeline.ray_label import died_because

            _quiet_unhandled_errors()
            if died.actor_init_failed:  # it could not load the student: a rerun fails alike
                raise StudentError(f"a scoring actor could not load the student ({died_because(died)}); nothing was written") from None
            raise StudentError(
                f"a scoring actor died ({died_because(died)}); nothing was written: run the command again "
                "(if it ran out of memory, with fewer --actors or a smaller --batch-size)"
            ) from None
        raise
    if output.is_dir():
        output.rmdir()  # empty (checked above): the finished files take its place
    partial.replace(output)
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in output.glob("*.parquet"))
    report = RayPredictReport(files=len(paths), rows=rows, output=output, actors=actors)
    import pyarrow.compute as pc

    column = "labels" if student.multi_label else "label"
    # an empty text is the one row _Scorer gives no label (null); the empty set is an empty string
    matches = [pc.is_null]
    if student.multi_label:  # a null (empty text) compares null: dropped
        matches.append(lambda labels: pc.equal(labels, ""))
    found = _rows_where(output, paths, column, matches)  # one read of the output for both
    report.empty, report.empty_rows = found[0]
    if student.multi_label:
        report.no_label, report.no_label_rows = found[1]
    return report


def _rows_where(
    output: Path, paths: list[str], column: str, matches: list[Callable[[Any], Any]], keep: int = 100
) -> list[tuple[int, list[tuple[str, int]]]]:
    """For each of ``matches`` (a pyarrow mask of ``column``): how many rows of the written output it
    holds, and the first ``keep`` of them in input order as (source_file, row_number); the output is
    read once, a batch at a time."""
    import pyarrow.parquet as pq

    order = {p: i for i, p in enumerate(paths)}
    found: list[tuple[int, list[tuple[str, int]]]] = [(0, []) for _ in matches]
    for f in output.glob("*.parquet"):
        for batch in pq.ParquetFile(f).iter_batches(columns=[column, *ROW_ID_COLUMNS]):
            for i, match in enumerate(matches):
                hit = batch.filter(match(batch.column(column)))
                count, first = found[i]
                ids = zip(hit.column(1).to_pylist(), hit.column(2).to_pylist())
                found[i] = (count + hit.num_rows, sorted([*first, *ids], key=lambda r: (order.get(r[0], len(order)), r[0], r[1]))[:keep])
    return found



def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what Ray says caused it (``.cause``) and Python's chain, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "cause", None) if isinstance(getattr(e, "cause", None), BaseException) else None, e.__cause__, e.__context__]


@contextmanager
def _ray_data_console_quiet() -> Iterator[None]:
    """Ray Data's console handler off while the pipeline runs (its file log keeps everything)."""
    import logging

    handlers = [h for h in logging.getLogger("ray.data").handlers if type(h).__name__ == "PlainRayHandler"]
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for h, level in zip(handlers, levels):
            h.setLevel(level)


class _UnhandledErrors:
    """Drops Ray's "Unhandled error" log lines: once a scoring actor died, the tasks still in flight
    fail with it (a read task as "TypeError: 'Handlers' object is not callable"), and Ray logged each
    when its result was dropped, after the run's own one-line error (the fault is already named)."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("Unhandled error")


def _quiet_unhandled_errors() -> None:
    import logging

    log = logging.getLogger("ray._private.worker")
    if not any(isinstance(f, _UnhandledErrors) for f in log.filters):
        log.addFilter(_UnhandledErrors())


def _numbered_source(paths: list[str], kind: str, columns: list[str]) -> Any:
    """Ray Data's own CSV/Parquet reader, with each row's file and data row number added: one file
    is one read task, so the numbering needs no coordination."""
    import pyarrow as pa
    from ray.data.datasource import FileBasedDatasource

    def numbered(tables: Any, path: str) -> Any:
        n = 0
        for table in tables:
            rows = table.num_rows
            table = table.append_column(ROW_ID_COLUMNS[0], pa.array([path] * rows, pa.string()))
            table = table.append_column(ROW_ID_COLUMNS[1], pa.array(range(n + 1, n + rows + 1), pa.int64()))
            n += rows
            yield table

    if kind == "csv":

        class NumberedCSV(FileBasedDatasource):
            _FILE_EXTENSIONS = ["csv", "csv.gz"]  # Ray opens a .gz decompressed

            def _read_stream(self, f: Any, path: str) -> Any:
                yield from numbered(csv_tables(f, path, columns), path)

        return NumberedCSV(paths)

    class NumberedParquet(FileBasedDatasource):
        _FILE_EXTENSIONS = ["parquet"]

        def _open_input_source(self, filesystem: Any, path: str, **open_args: Any) -> Any:
            return filesystem.open_input_file(path)  # Parquet needs a seekable file (its footer first)

        def _read_stream(self, f: Any, path: str) -> Any:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(f)
            yield from numbered((pa.Table.from_batches([b]) for b in pf.iter_batches(batch_size=65536)), path)

    return NumberedParquet(paths)


def csv_tables(f: Any, path: str, columns: list[str], rows_per_table: int = 65536) -> Iterator[Any]:
    """The data rows of CSV stream ``f`` as Arrow tables of text columns, read as the local path
    reads them (``graduate.students.csv_predict.csv_rows``; pyarrow's reader refuses a row with
    fewer cells than the header): what it cannot read stops the run with a ValueError beginning
    "CSV parse error in PATH", which the driver prints as one line."""
    import io

    import pyarrow as pa

    from graduate.students.csv_predict import csv_rows

    def table(rows: list[list[str]]) -> Any:
        return pa.table({c: pa.array(v, pa.string()) for c, v in zip(columns, zip(*rows))})

    rows: list[list[str]] = []
    try:
        read = csv_rows(io.TextIOWrapper(f, encoding="utf-8-sig", newline=""), path)
        next(read)  # the header, checked on the driver
        for _, row in read:
            rows.append(row)
            if len(rows) >= rows_per_table:
                yield table(rows)
                rows = []
    except InputDataError as exc:
        raise ValueError(f"CSV parse error in {path}: {f'line {exc.line}: ' if exc.line else ''}{exc.reason}") from None
    if rows:
        yield table(rows)
