"""graduate predict --ray on a real local Ray cluster: the same labels and probabilities as the
local path, row for row, from CSV globs and Parquet; bad input and a dead address in one line.
Every Ray run is a subprocess with a timeout, so a hung pipeline fails the test instead of the suite."""

from __future__ import annotations

import contextlib
import csv
import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graduate.spec.text import is_blank
from graduate.pipeline.project import Project
from graduate.students.csv_predict import predict_csv
from teacher.live_teacher import RAY_CORE_LINE, cli_env

pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ODD = ["", "   ", "\u200b\ufeff", "12345", "3.5", "line one\nline two, with \"quotes\"", "emoji 🤖 and ünïcödé", "[bold]not markup[/]", "x" * 5000, "NULL", "NaN"]


def write_inputs(project: Path, directory: Path) -> list[Path]:
    with (project / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for i, text in enumerate(ODD):
        rows[i * 7]["comment_text"] = text
    directory.mkdir()
    files = []
    for part, chunk in enumerate([rows[:90], rows[90:]]):
        path = directory / f"part-{part}.csv"
        with path.open("w", newline="", encoding="utf-8-sig" if part == 0 else "utf-8") as f:  # a BOM in one of them
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(chunk)
        files.append(path)
    return files


def ray_predict(project: Path, pattern: str, output: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "graduate", "predict", str(project), "--input", pattern, "--output", str(output), "--ray", "local", *extra]
    return subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)


def local_rows(project: Path, files: list[Path], tmp: Path) -> dict[tuple[str, int], dict[str, str]]:
    student, _ = Project.load(project).best_student()
    out = {}
    for f in files:
        target = tmp / f"local-{f.stem}.csv"
        predict_csv(student, f, target, text_column="comment_text")
        with target.open(newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=1):
                out[(str(f.resolve()), n)] = row
    return out


def assert_same(table, expected: dict, labels: list[str]) -> None:
    got = table.to_pylist()
    assert len(got) == len(expected)
    for row in got:
        want = expected[(row["source_file"], row["row_number"])]
        assert row["comment_text"] == want["comment_text"] and row["id"] == want["id"]
        assert (row["label"] or "") == want["label"]
        for lab in labels:
            if want[f"p_{lab}"] == "":
                assert row[f"p_{lab}"] is None
            else:
                assert row[f"p_{lab}"] == pytest.approx(float(want[f"p_{lab}"]), abs=1e-6)


def test_ray_predict_equals_local_predict_row_for_row(trained_copy: Path, tmp_path: Path) -> None:
    files = write_inputs(trained_copy, tmp_path / "in")
    expected = local_rows(trained_copy, files, tmp_path)
    result = ray_predict(trained_copy, str(tmp_path / "in" / "*.csv"), tmp_path / "out", "--actors", "2", "--cpus-per-actor", "0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    # Ray's token-authentication notice was on stderr on every run (what else Ray warns of, e.g. a
    # small /dev/shm, depends on the machine, so only that notice is checked); so were its C++ core's
    # "Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL" and Ray Data's ERROR line
    # about actor restarts (issue 57733), though nothing had gone wrong.
    assert "Token authentication" not in result.stderr, result.stderr[-3000:]
    assert not RAY_CORE_LINE.search(result.stderr), result.stderr[-3000:]
    assert "161 rows from 2 files" in result.stdout
    table = pq.read_table(tmp_path / "out")
    assert_same(table, expected, ["ok", "bad"])
    assert {r["label"] for r in table.to_pylist() if is_blank(r["comment_text"])} == {None}

    # Parquet in, the same answers; the row ids name the Parquet file.
    pdir = tmp_path / "pq"
    pdir.mkdir()
    for f in files:
        with f.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        pq.write_table(pa.Table.from_pylist(rows), pdir / f"{f.stem}.parquet")
    result = ray_predict(trained_copy, str(pdir / "*.parquet"), tmp_path / "out-pq")
    assert result.returncode == 0, result.stderr[-3000:]
    renamed = {(str((pdir / (Path(k[0]).stem + ".parquet")).resolve()), k[1]): v for k, v in expected.items()}
    assert_same(pq.read_table(tmp_path / "out-pq"), renamed, ["ok", "bad"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{tmp}/none-*.csv"], "no file matches it"),
        (["--input", "{tmp}/bad.csv", "--text-column", "nope"], "no text column 'nope'"),
        (["--input", "{tmp}/bad.txt"], "not a .csv or .parquet file"),
        (["--input", "{tmp}/bad.csv", "--output", "{tmp}/bad.csv"], "not empty"),
        (["--input", "{tmp}/bad.csv", "--output", "{tmp}/bad.csv/scored"], "bad.csv is a file, not a folder; write the output elsewhere"),
        (["--input", "{tmp}/twice.csv"], "the header names column 'comment_text' more than once"),
        (["--input", "{tmp}/mix/*.parquet"], "b.parquet (column 'id'): its column 'id' is int64 where"),
    ],
)
def test_bad_ray_input_is_one_line_naming_the_file(trained_copy: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "mix").mkdir()  # the same columns, of other types: Ray failed deep in a worker
    pq.write_table(pa.table({"id": ["1"], "comment_text": ["hello"]}), tmp_path / "mix" / "a.parquet")
    pq.write_table(pa.table({"id": [2], "comment_text": ["there"]}), tmp_path / "mix" / "b.parquet")
    (tmp_path / "bad.csv").write_text("comment_text\nhello\n")
    (tmp_path / "bad.txt").write_text("comment_text\nhello\n")
    (tmp_path / "twice.csv").write_text("comment_text,comment_text\nhello,there\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "out")]
    command = [sys.executable, "-m", "graduate", "predict", str(trained_copy), *args, "--ray", "local"]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_ray_address_that_does_not_answer_fails_at_once(trained_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("comment_text\nhello\n")
    command = [sys.executable, "-m", "graduate", "predict", str(trained_copy), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o"), "--ray", "127.0.0.1:9"]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 2 and "does not answer" in result.stderr and "ray start --head" in result.stderr


def test_short_rows_and_invisible_texts_are_read_as_the_local_path_reads_them(trained_copy: Path, tmp_path: Path) -> None:
    # --ray refused a row with fewer cells than the header (the local path fills them with blanks),
    # and scored a text of only zero-width spaces or a BOM that the local path leaves blank.
    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "a.csv"
    src.write_text("id,comment_text,extra\n1,you idiot,x\n2\n3,\u200b\u2060\n4,\ufeff\u200e\u00a0,y\n5,thanks a lot\n", encoding="utf-8")
    (tmp_path / "in" / "b.csv.gz").write_bytes(gzip.compress(src.read_bytes()))  # the same rows, gzipped
    expected = local_rows(trained_copy, [src], tmp_path)
    expected |= {(str((tmp_path / "in" / "b.csv.gz").resolve()), n): row for (_, n), row in expected.items()}
    result = ray_predict(trained_copy, str(tmp_path / "in" / "*"), tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pq.read_table(tmp_path / "out")
    assert_same(table, expected, ["ok", "bad"])
    got = table.to_pylist()
    assert [r["extra"] for r in got] == ["x", "", "", "y", ""] * 2
    assert [r["label"] is not None for r in got] == [True, False, False, False, True] * 2


def test_ray_predict_counts_and_names_the_rows_with_empty_text_as_the_local_path(trained_copy: Path, tmp_path: Path) -> None:
    """--ray left an empty or blank text's label empty, as the local path does, but said nothing of
    it, where the local path counts such rows ("N with empty text left blank") and names the first
    five. Ray knows a row by file and data row (its row_number), not by file line."""
    (tmp_path / "in").mkdir()
    a, b = tmp_path / "in" / "a.csv", tmp_path / "in" / "b.csv"
    # a.csv: a text over two lines before the empty ones, so a data row is not its line
    a.write_text('id,comment_text\n1,"you\nidiot"\n2,\n3,   \n4,thanks\n5,\u200b\ufeff\n', encoding="utf-8")
    b.write_text("id,comment_text\n6,\n7,fine\n8,\n9,\n10,\n", encoding="utf-8")
    local = predict_csv(Project.load(trained_copy).best_student()[0], a, tmp_path / "local.csv", text_column="comment_text")
    assert (local.empty, local.empty_rows) == (3, [4, 5, 7])  # the local path: file lines
    result = ray_predict(trained_copy, str(tmp_path / "in" / "*.csv"), tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "10 rows from 2 files (7 with empty text left blank)" in " ".join(result.stdout.split()), result.stdout
    named = [ln for ln in result.stderr.splitlines() if "empty text, label left blank" in ln]
    sa, sb = str(a.resolve()), str(b.resolve())
    assert named == [f"{sa} row 2: empty text, label left blank", f"{sa} row 3: empty text, label left blank", f"{sa} row 5: empty text, label left blank",
                     f"{sb} row 1: empty text, label left blank", f"{sb} row 3: empty text, label left blank"], result.stderr[-3000:]


def test_the_ray_csv_reader_reads_as_the_local_path_and_names_what_it_cannot(tmp_path: Path) -> None:
    # The reader runs in Ray's read tasks; here on its own, over the same stream Ray hands it.
    from graduate.pipeline.ray_predict import csv_tables

    def read(data: bytes, columns: list[str]) -> list[dict]:
        return [r for t in csv_tables(pa.BufferReader(data), "in.csv", columns, rows_per_table=2) for r in t.to_pylist()]

    data = b'\xef\xbb\xbfid,t,e\r\n1,a,x\r\n2\r\n\r\n3,"two\nlines, ""quoted""",y\r\n4,b\r\n5,\xe2\x80\x8b,z'
    (tmp_path / "in.csv").write_bytes(data)
    with (tmp_path / "in.csv").open(newline="", encoding="utf-8-sig") as f:
        local = [{k: v or "" for k, v in r.items()} for r in csv.DictReader(f)]
    assert read(data, ["id", "t", "e"]) == local and [r["id"] for r in local] == ["1", "2", "3", "4", "5"]
    assert read(b'id,t\n1,"first\n,"""\n2,last\n', ["id", "t"]) == [{"id": "1", "t": 'first\n,"'}, {"id": "2", "t": "last"}]  # no false unclosed quote
    for bad, message in [
        (b"t\nhello\nhello,there\n", "in.csv: line 3: 2 cells but the header names 1 columns"),
        (b't\nfine\n"never closed\nlast\n', "in.csv: line 3: a quoted field opens on this line and never closes"),
        (b"t\ncaf\xe9\n", "in.csv: not UTF-8"),
    ]:
        with pytest.raises(ValueError, match=re.escape("CSV parse error in " + message)):
            read(bad, ["t"])


def test_a_row_with_more_cells_than_the_header_is_named_and_nothing_is_written(trained_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("comment_text\nfine\n")
    (tmp_path / "in" / "b.csv").write_text("comment_text\nhello\n\"two\nlines\"\nhello,there\nbye\n")
    result = ray_predict(trained_copy, str(tmp_path / "in" / "*.csv"), tmp_path / "out")
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "b.csv: line 5: 2 cells but the header names 1 columns" in last and "nothing was written" in last  # the local path's words
    assert "Traceback" not in result.stderr  # Ray Data's console log is quiet; its file log keeps the trace
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:abc", "[::1]:x", "ray://host:99999"])
def test_a_ray_address_whose_port_is_not_a_number_is_one_line(trained_copy: Path, tmp_path: Path, address: str) -> None:
    (tmp_path / "in.csv").write_text("comment_text\nhello\n")
    command = [sys.executable, "-m", "graduate", "predict", str(trained_copy), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o"), "--ray", address]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"error: Ray address '{address}' is not host:port (or ray://host:port, auto, local)"]


def test_a_pool_the_local_cluster_cannot_hold_is_refused_instead_of_waiting_forever(trained_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("comment_text\nhello\n")
    result = ray_predict(trained_copy, str(tmp_path / "in.csv"), tmp_path / "out", "--actors", "4096", "--cpus-per-actor", "1")
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: option: --cpus-per-actor: 4096 actors × 1 CPUs and 0.25 for the reads need 4096.25 CPUs")
    assert "wait forever; pass fewer --actors" in last
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_ray_predict_killed_midway_leaves_no_output_that_looks_complete_and_a_rerun_writes_every_row(trained_copy: Path, tmp_path: Path) -> None:
    import os
    import signal
    import time

    source = (trained_copy / "comments.csv").read_bytes()
    with (trained_copy / "comments.csv").open(newline="", encoding="utf-8") as f:
        per_file = len(list(csv.DictReader(f)))
    (tmp_path / "in").mkdir()
    for i in range(60):  # several output files, written one after another
        (tmp_path / "in" / f"part-{i:02d}.csv").write_bytes(source)
    out, partial = tmp_path / "out", tmp_path / "out.partial"
    command = [sys.executable, "-m", "graduate", "predict", str(trained_copy), "--input", str(tmp_path / "in" / "*.csv"), "--output", str(out),
               "--ray", "local", "--cpus-per-actor", "0.5"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(), start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not list(out.glob("*.parquet")) + list(partial.glob("*.parquet")):
            assert proc.poll() is None, f"the run ended before it wrote a file: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no file written in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # the first file is there: the rest are still being written
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Ray's workers of the killed driver
    time.sleep(1)
    # Whatever the kill caught, OUTPUT is absent or holds every row: never a part that reads as the whole.
    if out.exists():
        assert pq.read_table(out).num_rows == 60 * per_file
        shutil.rmtree(out)  # the kill came after the rename: nothing left to rerun

    result = ray_predict(trained_copy, str(tmp_path / "in" / "*.csv"), out, "--cpus-per-actor", "0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    # no ERROR line of Ray's C++ core on a run that went well ("[... E 123 123] core_worker.cc: ...")
    assert not [line for line in result.stderr.splitlines() if re.match(r"\[[^\]]* E \d+ \d+\]", line)], result.stderr[-3000:]
    assert pq.read_table(out).num_rows == 60 * per_file
    assert not partial.exists()


def test_ray_predict_scores_in_batches_of_the_batch_size_asked_for(trained_copy: Path, tmp_path: Path) -> None:
    # --batch-size was raised to at least 256 under --ray, silently: each scored batch is written as
    # its own row group, so no row group may hold more rows than asked for.
    result = ray_predict(trained_copy, str(trained_copy / "comments.csv"), tmp_path / "out", "--batch-size", "10", "--cpus-per-actor", "0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted((tmp_path / "out").glob("*.parquet"))
    groups = [pq.ParquetFile(f).metadata.row_group(i).num_rows for f in files for i in range(pq.ParquetFile(f).metadata.num_row_groups)]
    assert sum(groups) == 161 and max(groups) == 10


def test_a_ray_predict_killed_midway_takes_its_local_cluster_with_it(trained_copy: Path, tmp_path: Path) -> None:
    # `--ray local` runs ray.init in the command's process: Ray binds its GCS and raylet to it (the
    # kernel kills them with it), and the workers end with the raylet. Only Ray's two agents outlive
    # it, for about a minute (README, Scale out), so none of the cluster's work goes on unseen.
    import os
    import signal
    import time

    psutil = pytest.importorskip("psutil")
    (tmp_path / "in").mkdir()
    for i in range(40):
        shutil.copy(trained_copy / "comments.csv", tmp_path / "in" / f"part-{i:02d}.csv")
    command = [sys.executable, "-m", "graduate", "predict", str(trained_copy), "--input", str(tmp_path / "in" / "*.csv"),
               "--output", str(tmp_path / "out"), "--ray", "local", "--cpus-per-actor", "0.5"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(), start_new_session=True)
    seen: dict[int, tuple[object, str]] = {}
    deadline = time.monotonic() + 240
    try:
        while not any(name.startswith("ray::") and "Agent" not in name for _, name in seen.values()):  # a worker runs
            assert proc.poll() is None and time.monotonic() < deadline, "no Ray worker started"
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(proc.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        seen[child.pid] = (child, " ".join(child.cmdline()))  # a worker renames itself once started
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)

        def left_over() -> list[str]:  # what still runs, by its name now (a worker still starting has python's)
            names = []
            for child, name in seen.values():
                with contextlib.suppress(psutil.Error):
                    if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:  # type: ignore[attr-defined]
                        names.append(" ".join(child.cmdline()) or name)  # type: ignore[attr-defined]
            return sorted(n for n in names if n.split()[0] not in {"ray::DashboardAgent", "ray::RuntimeEnvAgent"})

        # a worker that was still importing when its raylet went notices within seconds, longer on a loaded
        # machine; what must not happen is work going on past the agents' minute
        settle = time.monotonic() + 60
        while (alive := left_over()) and time.monotonic() < settle:
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the agents that outlive it, so the suite leaves nothing behind
    assert any("raylet" in name for _, name in seen.values())
    assert alive == [], alive


def test_a_file_whose_name_reads_as_a_glob_is_that_file(tmp_path: Path) -> None:
    from graduate.pipeline.ray_predict import input_files

    (tmp_path / "data[1].csv").write_text("comment_text\nhello\n")
    (tmp_path / "data1.csv").write_text("comment_text\nother\n")  # what the name matches as a glob
    assert input_files(str(tmp_path / "data[1].csv")) == ([str((tmp_path / "data[1].csv").resolve())], "csv")
    assert input_files(str(tmp_path / "data[0-9].csv")) == ([str((tmp_path / "data1.csv").resolve())], "csv")  # still a glob


def test_a_scoring_actor_that_dies_midway_stops_the_run_in_one_line_and_writes_nothing(trained_copy: Path, tmp_path: Path) -> None:
    # The actors are not restarted (README, Scale out): one killed (out of memory, say) must end the
    # run with one line that says what happened and what to do, not Ray's traceback, and leave nothing.
    import os
    import signal
    import time

    psutil = pytest.importorskip("psutil")
    (tmp_path / "in").mkdir()
    for i in range(60):
        shutil.copy(trained_copy / "comments.csv", tmp_path / "in" / f"part-{i:02d}.csv")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "graduate", "predict", str(trained_copy), "--input", str(tmp_path / "in" / "*.csv"),
               "--output", str(out), "--ray", "local", "--cpus-per-actor", "0.5"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(), start_new_session=True)
    deadline, killed = time.monotonic() + 240, None
    try:
        while killed is None:
            assert proc.poll() is None, f"the run ended before an actor was seen: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no scoring actor started"
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(proc.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if "MapWorker" in " ".join(child.cmdline()):
                            child.kill()
                            killed = child.pid
                            break
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, stderr[-3000:]  # graduate's own one-line error, not an internal one (70)
    assert lines[-1].startswith("error: ") and "scoring actor" in lines[-1] and "nothing was written" in lines[-1], stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_ray_predict_on_a_multi_label_project_counts_the_rows_given_no_label_as_the_local_path(tmp_path: Path) -> None:
    """--ray wrote an empty `labels` cell for the empty set, as the local path does, but did not
    count those rows nor print the local path's line about them (an import reads such a cell as no
    answer). Ray knows each row by file and data row (its row_number), not by file line."""
    import yaml

    from test_multilabel_edges import make_project

    project = make_project(tmp_path / "p", ["care", "equality", "loyalty"], {"kind": "label_list", "none": "none"})
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["students"] = [{"kind": "tfidf-logreg"}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    Project.load(project).run()
    (tmp_path / "in").mkdir()
    files = [tmp_path / "in" / "a.csv", tmp_path / "in" / "b.csv"]
    # a.csv: a text over two lines before the no-label row, so its data row (3) is not its line (5);
    # an empty text, which is no answer, not the empty set.
    rows = {
        files[0]: [["id", "text"], ["i0", "w0a w0b item 0"], ["i1", "w1a w1b\nitem 1"], ["i3", "item 3 filler"], ["i4", " "]],
        files[1]: [["id", "text"], ["j3", "item 7 filler"], ["j0", "w2a w2b item 2"]],
    }
    for f, content in rows.items():
        with f.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(content)
    student, _ = Project.load(project).best_student()
    local = [predict_csv(student, f, tmp_path / f"local-{f.stem}.csv", text_column="text") for f in files]
    assert [(r.no_label, r.no_label_rows) for r in local] == [(1, [5]), (1, [2])]

    result = ray_predict(project, str(tmp_path / "in" / "*.csv"), tmp_path / "out", "--cpus-per-actor", "0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    got = {(Path(r["source_file"]).name, r["row_number"]): r["labels"] for r in pq.read_table(tmp_path / "out").to_pylist()}
    assert got == {("a.csv", 1): "care", ("a.csv", 2): "equality", ("a.csv", 3): "", ("a.csv", 4): None, ("b.csv", 1): "", ("b.csv", 2): "loyalty"}
    a, b = (str(f.resolve()) for f in files)
    assert (
        f"2 rows given no label (the empty set) have an empty labels cell ({a} row 3, {b} row 1: source_file and row_number, "
        "which counts data rows, not file lines); an import (label_imports, a review file) reads an empty cell as no answer: "
        "write (none) there to import the empty set"
    ) in " ".join(result.stdout.split()), result.stdout
    # the empty text is counted apart from the empty set, and named as Ray names rows
    assert "rows from 2 files (1 with empty text left blank)" in " ".join(result.stdout.split()), result.stdout
    assert f"{a} row 4: empty text, label left blank" in " ".join(result.stderr.split()), result.stderr[-3000:]
