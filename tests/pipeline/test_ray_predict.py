"""graduate predict --ray on a real local Ray cluster: the same labels and probabilities as the
local path, row for row, from CSV globs and Parquet; bad input and a dead address in one line.
Every Ray run is a subprocess with a timeout, so a hung pipeline fails the test instead of the suite."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from graduate.pipeline.project import Project
from graduate.students.csv_predict import predict_csv
from teacher.live_teacher import cli_env

pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ODD = ["", "   ", "12345", "3.5", "line one\nline two, with \"quotes\"", "emoji 🤖 and ünïcödé", "[bold]not markup[/]", "x" * 5000, "NULL", "NaN"]


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
    assert "161 rows from 2 files" in result.stdout
    table = pq.read_table(tmp_path / "out")
    assert_same(table, expected, ["ok", "bad"])
    assert {r["label"] for r in table.to_pylist() if r["comment_text"].strip() == ""} == {None}

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
        (["--input", "{tmp}/twice.csv"], "the header names column 'comment_text' more than once"),
    ],
)
def test_bad_ray_input_is_one_line_naming_the_file(trained_copy: Path, tmp_path: Path, args: list[str], message: str) -> None:
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
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=60)
    assert result.returncode == 2 and "does not answer" in result.stderr and "ray start --head" in result.stderr


def test_a_row_with_more_cells_than_the_header_is_named_and_nothing_is_written(trained_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("comment_text\nfine\n")
    (tmp_path / "in" / "b.csv").write_text("comment_text\nhello\n\"two\nlines\"\nhello,there\nbye\n")
    result = ray_predict(trained_copy, str(tmp_path / "in" / "*.csv"), tmp_path / "out")
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "b.csv: Row #4: Expected 1 columns, got 2: hello,there" in last and "nothing was written" in last
    assert "Traceback" not in result.stderr  # Ray Data's console log is quiet; its file log keeps the trace
    assert not (tmp_path / "out").exists()
