"""Output files (the HTML report, the errors CSVs, review queues) are written through
``written_whole``: a reader never sees half a file, writers at once each leave a whole one, and a
failed write leaves the old file and no temporary file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.errors import written_whole


def test_writers_at_once_each_leave_a_whole_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    bodies = [chr(ord("a") + i) * 300_000 for i in range(8)]
    start = threading.Barrier(len(bodies))

    def write(body: str) -> None:
        start.wait()
        with written_whole(path) as f:
            for k in range(0, len(body), 1000):
                f.write(body[k : k + 1000])

    threads = [threading.Thread(target=write, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_text(encoding="utf-8") in bodies  # one writer's whole text, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "queue.csv"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with written_whole(path) as f:
            f.write("half")
            raise RuntimeError("disk full")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["queue.csv"]


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))  # what a UTF-8 file can hold
def test_any_text_reads_back_as_written(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "out.csv"
        with written_whole(path, newline="") as f:
            f.write(text)
        assert path.read_bytes().decode("utf-8") == text  # no newline translated
        assert [p.name for p in Path(d).iterdir()] == ["out.csv"]
