"""Items in the store: an id never stands for two texts, and the refusal names the file, the row
and where the texts part."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graduate.errors import InputDataError
from graduate.pipeline.project import Project


def test_an_edited_text_under_a_stored_id_names_file_line_and_where_it_differs(tiny_project: Path) -> None:
    proj = Project.load(tiny_project)
    proj.load_data()
    data = tiny_project / "comments.csv"
    with data.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    n, row = next((i, r) for i, r in enumerate(rows[1:], start=1) if len(r[1]) > 150 and "\n" not in r[1])
    old = row[1]
    row[1] = old[:120] + "EDITED" + old[126:]  # the same first 120 characters: the old message showed two equal excerpts
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    line = 1 + sum(1 + r[1].count("\n") + r[3].count("\n") for r in rows[1:n]) + 1  # header, then rows before it
    with pytest.raises(InputDataError) as err:
        proj.load_data()
    msg = str(err.value)
    assert msg.startswith(f"{data}:{line}: id {row[0]!r} of data source 'jigsaw' is stored with another text (from character 121: ")
    assert "EDITED" in msg and repr(old[100:160]) not in msg and "\n" not in msg
