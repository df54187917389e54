"""`predict_csv` streams any CSV through a student: the same labels as predicting in memory,
every row kept in order, empty texts left blank, bad input named."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graduate.errors import InputDataError
from graduate.students.csv_predict import predict_csv
from graduate.students.registry import make_student


def _student():
    s = make_student("tfidf-logreg", ["ok", "bad"])
    s.fit(["you idiot", "you moron", "thanks a lot", "nice work", "stupid jerk", "great edit"] * 3, ["bad", "bad", "ok", "ok", "bad", "ok"] * 3)
    return s


def test_streamed_batches_equal_one_prediction_in_memory(tmp_path: Path) -> None:
    student = _student()
    texts = [f"row {i}: " + ("you idiot" if i % 3 == 0 else "thank you") for i in range(257)]
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i, t in enumerate(texts):
            w.writerow([i, "" if i == 5 else t])
    out = tmp_path / "out.csv"
    seen: list[int] = []
    report = predict_csv(student, src, out, text_column="text", batch_size=16, progress=seen.append)
    assert (report.rows, report.empty, report.empty_rows) == (257, 1, [7])  # file line 7: the header, then rows 0-5
    assert sum(seen) == 257 and max(seen) == 16
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [str(i) for i in range(257)]
    assert rows[5]["label"] == "" and rows[5]["p_bad"] == ""
    kept = [i for i in range(257) if i != 5]
    probs = student.predict_proba([texts[i] for i in kept])
    for j, i in enumerate(kept):
        assert rows[i]["label"] == student.labels[int(probs[j].argmax())]
        assert float(rows[i]["p_bad"]) == pytest.approx(probs[j, 1], abs=1e-6)
    assert not (tmp_path / "out.csv.partial").exists()


def test_bad_input_is_named_and_writes_nothing(tmp_path: Path) -> None:
    student = _student()
    src = tmp_path / "in.csv"
    src.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="no text column 'text'"):
        predict_csv(student, src, tmp_path / "out.csv", text_column="text")
    src.write_text("text,label\nhello,x\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"already has columns \['label'\]"):
        predict_csv(student, src, tmp_path / "out.csv", text_column="text")
    src.write_bytes(b"text\nfine\ncaf\xe9\n")
    with pytest.raises(InputDataError, match=r"in\.csv:3: not UTF-8 \(byte 0xe9\)"):
        predict_csv(student, src, tmp_path / "out.csv", text_column="text")
    src.write_bytes("text\n".encode() + "fine caf\u00e9 \u2713\n".encode() * 5000 + b"late \xff\n")  # past the decoder's first buffer
    with pytest.raises(InputDataError, match=r"in\.csv:5002: not UTF-8 \(byte 0xff\)"):
        predict_csv(student, src, tmp_path / "out.csv", text_column="text")
    assert not (tmp_path / "out.csv").exists()


def test_a_repeated_column_or_cells_past_the_header_are_refused_not_dropped(tmp_path: Path) -> None:
    """A dict row keeps one of two same-named columns and DictWriter dropped cells beyond the
    header: both lost data silently (exit 0). Now one line naming the column or the line, and
    no output, not even a partial one."""
    student = _student()
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("id,text,text\n1,first,second\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.csv:1 \(column 'text'\): the header names column 'text' more than once; rename the other one"):
        predict_csv(student, src, out, text_column="text")
    rows = "".join(f"{i},thank you {i}\n" for i in range(40))
    src.write_text("id,text\n" + rows + "41,you idiot,EXTRA\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.csv:42: 3 cells but the header names 2 columns; quote a text that holds commas"):
        predict_csv(student, src, out, text_column="text", batch_size=8)
    assert not out.exists() and not (tmp_path / "out.csv.partial").exists()


def test_a_quote_that_never_closes_is_named_not_swallowing_the_rows_after_it(tmp_path: Path) -> None:
    # "wrote 50 rows", exit 0: rows 51-100 had become row 50's text.
    student = _student()
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [f"{i},thank you {i}\n" for i in range(1, 101)]
    rows[49] = '50,"oops an opening quote never closed\n'
    src.write_text("id,text\n" + "".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.csv:51: a quoted field opens on this line and never closes"):
        predict_csv(student, src, out, text_column="text", batch_size=8)
    assert not out.exists() and not (tmp_path / "out.csv.partial").exists()
    src.write_text('id,text\n1,"two\nlines, closed"\n\n2,last\n', encoding="utf-8")  # a closed multi-line quote and a blank line are fine
    assert predict_csv(student, src, out, text_column="text").rows == 2
    # The last row is read again from its own first line: a multi-line row before it whose last line,
    # read alone, opens a quote (',"""') was taken for a quote that never closes.
    for before in (0, 1500):  # a short file, and one past the lines held back for that check
        src.write_text("id,text\n" + "".join(f"{i},thank you\n" for i in range(before)) + '1,"first\n,"""\n2,last\n', encoding="utf-8")
        assert predict_csv(student, src, out, text_column="text").rows == before + 2


def test_an_output_that_cannot_be_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    # A folder, or a path under a file, was an internal error that left OUT.partial behind.
    student = _student()
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,thank you\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"is a folder; give a file name for the output"):
        predict_csv(student, src, tmp_path, text_column="text")
    with pytest.raises(InputDataError, match=r"in\.csv is a file, not a folder; write the output elsewhere"):
        predict_csv(student, src, src / "out.csv", text_column="text")
    with pytest.raises(InputDataError, match=r"is a folder; pass a CSV file"):
        predict_csv(student, tmp_path, tmp_path / "o.csv", text_column="text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    assert predict_csv(student, src, tmp_path / "new" / "deeper" / "out.csv", text_column="text").rows == 1


def test_the_input_as_the_output_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    # -i X.csv -o X.csv replaced the input with the output; a second run then failed on its label column
    student = _student()
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,thank you\n", encoding="utf-8")
    for same in (src, tmp_path / "." / "in.csv"):
        with pytest.raises(InputDataError, match=r"in\.csv: is both the input and the output; write the predictions to another file"):
            predict_csv(student, src, same, text_column="text")
    assert src.read_text(encoding="utf-8") == "id,text\n1,thank you\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_any_csv_is_predicted_row_for_row_or_named(tmp_path: Path) -> None:
    """Fuzz the file `graduate predict` reads: any header, cells with odd Unicode, NULs, quotes,
    commas and line breaks, any line ending, stray bytes at the end. Either every row comes out, in
    order, with its cells as read, or an InputDataError names the file and nothing is written."""
    import io

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    student = _student()
    chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
    cell = st.text(chars, max_size=12) | st.sampled_from(['"', '""', "a,b", "\r", "\n", "\r\n", ",", " ", "\ufeff", "\x00", '"x\n', "label", "you idiot"])
    header = st.sampled_from(["text", "id,text", "\ufefftext,x", "text,text", "", "x", "text,label", '"text","p_ok"'])

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(head=header, rows=st.lists(st.lists(cell, max_size=3), max_size=6), end=st.sampled_from(["\n", "\r\n", "\r"]), quoted=st.booleans(), tail=st.binary(max_size=8))
    def check(head: str, rows: list[list[str]], end: str, quoted: bool, tail: bytes) -> None:
        src, out = tmp_path / "in.csv", tmp_path / "out.csv"
        if quoted:  # as a spreadsheet writes it
            buf = io.StringIO(newline="")
            csv.writer(buf, lineterminator=end).writerows(rows)
            data = (head + end + buf.getvalue()).encode()
        else:  # as a careless script writes it
            data = end.join([head, *(",".join(r) for r in rows)]).encode() + tail
        src.write_bytes(data)
        out.unlink(missing_ok=True)
        try:
            report = predict_csv(student, src, out, text_column="text", batch_size=2)
        except InputDataError as exc:
            assert str(exc).startswith(str(src)) and not out.exists()
            return
        with src.open(newline="", encoding="utf-8-sig") as f:
            wanted = list(csv.DictReader(f))
        with out.open(newline="", encoding="utf-8") as f:
            got = list(csv.DictReader(f))
        assert report.rows == len(wanted) == len(got)
        assert [{k: r[k] or "" for k in w} for r, w in zip(got, wanted)] == [{k: v or "" for k, v in w.items()} for w in wanted]

    check()


def test_a_text_of_only_invisible_characters_is_left_blank_as_an_empty_one(tmp_path: Path) -> None:
    # Zero-width spaces, a BOM, bidi marks, NBSP pass strip() and got a label "as if it were text";
    # csv_source skips such items (is_blank), so predict treats them as empty: blank, counted, named.
    student = _student()
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    texts = ["you idiot", "\u200b\u2060", "", "\ufeff\u200e\u00a0", "  \u200f ", "thank you\u200b"]
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([i, t] for i, t in enumerate(texts))
    report = predict_csv(student, src, out, text_column="text")
    assert (report.rows, report.predicted, report.empty, report.empty_rows) == (6, 2, 4, [3, 4, 5, 6])
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["text"] for r in rows] == texts  # the cells themselves are kept as read
    assert [bool(r["label"]) for r in rows] == [True, False, False, False, False, True]
    assert all(r["p_bad"] == "" for r in rows[1:5])
