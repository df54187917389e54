import pytest

from graduate.data.csv_source import read_items, require_items
from graduate.errors import InputDataError


def write(tmp_path, content: bytes):
    f = tmp_path / "items.csv"
    f.write_bytes(content)
    return f


def test_reads_multiline_quoted_rows_and_tags(tmp_path):
    f = write(tmp_path, b'id,text,gold,tags\n1,"line one\nline two",1,a;b\n2,plain,0,\n')
    items, rep = read_items(f, text_column="text", id_column="id", gold_column="gold", gold_values={"0": "ok", "1": "bad"}, labels=["ok", "bad"], tags_column="tags")
    assert [(i.external_id, i.text, i.gold, i.tags) for i in items] == [("1", "line one\nline two", "bad", ["a", "b"]), ("2", "plain", "ok", [])]
    assert rep.skipped == []


def test_missing_column_names_file_column_and_the_columns_there(tmp_path):
    f = write(tmp_path, b"id,body\n1,x\n")
    with pytest.raises(InputDataError) as exc:
        read_items(f, text_column="text", id_column="id")
    msg = str(exc.value)
    assert str(f) in msg and "'text'" in msg and "['id', 'body']" in msg and "\n" not in msg


def test_non_utf8_names_the_line(tmp_path):
    f = write(tmp_path, b"id,text\n1,fine\n2,caf\xe9\n")
    with pytest.raises(InputDataError, match=r"items\.csv:3: not UTF-8 \(byte 0xe9\)"):
        read_items(f, text_column="text")


def test_empty_text_unknown_gold_and_repeated_ids_are_counted_skips(tmp_path):
    f = write(tmp_path, b"id,text,gold\n1,,0\n2,   ,1\n3,ok text,7\n4,good,1\n4,again,0\n")
    items, rep = read_items(f, text_column="text", id_column="id", gold_column="gold", gold_values={"0": "ok", "1": "bad"}, labels=["ok", "bad"])
    assert [i.external_id for i in items] == ["4"]
    assert len(rep.skipped) == 4
    assert any(":2: empty text" in s for s in rep.skipped)
    assert any(":4: gold value '7'" in s for s in rep.skipped)
    assert any(":6: id '4' repeats line 5" in s for s in rep.skipped)


def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="file not found"):
        read_items(tmp_path / "none.csv", text_column="text")


@pytest.mark.parametrize("tail", [b'2,"never closed\n3,three\n4,four\n', b'2,"never closed', b'2,"a ""quoted"" word\n3,x\n'])
def test_an_unterminated_quote_names_its_line_instead_of_swallowing_the_rest(tmp_path, tail):
    # Issue 12, defect 7: the reader took everything after the quote as one text ("1 rows (0 skipped)").
    f = write(tmp_path, b"id,text\n1,fine\n" + tail)
    with pytest.raises(InputDataError) as exc:
        read_items(f, text_column="text", id_column="id")
    assert f"{f}:3:" in str(exc.value) and "never closed" in str(exc.value) and "\n" not in str(exc.value)


def test_a_closed_multiline_quote_at_the_end_is_fine(tmp_path):
    f = write(tmp_path, b'id,text\n1,fine\n2,"two\nlines"\n')
    items, _ = read_items(f, text_column="text", id_column="id")
    assert [i.text for i in items] == ["fine", "two\nlines"]


def test_a_missing_id_column_names_the_id_option(tmp_path):
    # Issue 12, defect 8: it said "... or pass --text-column".
    f = write(tmp_path, b"id,text\n1,x\n")
    with pytest.raises(InputDataError) as exc:
        read_items(f, text_column="text", id_column="key")
    assert "--id-column" in str(exc.value) and "--text-column" not in str(exc.value)


def test_a_column_named_twice_in_the_header_is_refused_not_read_from_the_last(tmp_path):
    f = write(tmp_path, b"id,text,text\n1,first,second\n")
    with pytest.raises(InputDataError, match=r"items\.csv \(column 'text'\): the header names column 'text' more than once; rename the other one"):
        read_items(f, text_column="text", id_column="id")
    assert read_items(write(tmp_path, b"id,text,x,x\n1,a,b,c\n"), text_column="text", id_column="id")[0][0].text == "a"  # unused: fine


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,text\n", r"items\.csv: has a header but no rows; add one item per row below it"),
        (b"id,text\n1,\n2,  \n", r"items\.csv: none of its 2 rows can be used; the first: line 2: empty text in column 'text'"),
    ],
)
def test_a_file_with_no_usable_row_is_an_error_naming_why(tmp_path, content, message):
    f = write(tmp_path, content)
    items, rep = read_items(f, text_column="text", id_column="id")
    with pytest.raises(InputDataError, match=message):
        require_items(items, rep, f)
    require_items(*read_items(write(tmp_path, b"id,text\n1,\n2,ok\n"), text_column="text", id_column="id"), f)


def test_a_row_with_more_cells_than_the_header_is_skipped_and_named_not_cut_short(tmp_path):
    # "1,Great product, would buy again" was stored as 'Great product', nothing said.
    f = write(tmp_path, b'id,text\n1,Great product, would buy again\n2,"quoted, kept whole"\n3,"two\nlines",extra,more\n')
    items, rep = read_items(f, text_column="text", id_column="id")
    assert [(i.external_id, i.text) for i in items] == [("2", "quoted, kept whole")]
    assert rep.skipped == [
        f"{f}:2: 1 more cell(s) than the header's 2 columns; quote a text that holds commas (\"...\")",
        f"{f}:5: 2 more cell(s) than the header's 2 columns; quote a text that holds commas (\"...\")",
    ]


def test_a_row_without_its_gold_or_tags_cell_is_skipped_and_named_not_read_as_no_gold(tmp_path):
    """A row cut short (its gold and tags cells missing, not empty) was kept as an item without gold
    and without tags: a test item silently left its test set, a gold set was lost."""
    f = write(tmp_path, b"id,text,labels,subsets,note\n1,ok,a;b,test,x\n2,cut short\n3,no tags,b\n4,no note,a,test\n5,empty cells,,,\n")
    items, rep = read_items(f, text_column="text", id_column="id", gold_column="labels", gold_separator=";", labels=["a", "b"], tags_column="subsets")
    assert [(i.external_id, i.gold, i.tags) for i in items] == [("1", "a;b", ["test"]), ("4", "a", ["test"]), ("5", None, [])]
    assert rep.skipped == [
        f"{f}:3: 3 cell(s) fewer than the header's 5 columns: no cell for column 'labels' (gold); quote a text that holds line breaks (\"...\")",
        f"{f}:4: 2 cell(s) fewer than the header's 5 columns: no cell for column 'subsets' (tags); quote a text that holds line breaks (\"...\")",
    ]


def test_any_data_file_gives_items_or_names_each_row_it_skips(tmp_path):
    """Fuzz the data file graduate.yaml's data: names (and `graduate label --input`): any header,
    cells with odd Unicode, NULs, quotes, separators and line breaks, any line ending, bytes that are
    not UTF-8. Every row is an item or a skipped line naming the file, ids never repeat, and an
    unusable file is an InputDataError naming it."""
    import csv
    import io

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
    cell = st.text(chars, max_size=10) | st.sampled_from(['"', '""', "a,b", "ok", "bad", "0", "1", "2", "\r", "\n", ",", ";", " ", "\ufeff", "\x00", '"x\n'])
    header = st.sampled_from(["id,text,gold,tags", "text", "id,text,text", "\ufeffid,text,gold", "", "id;text", '"id","text","gold"'])

    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(head=header, rows=st.lists(st.lists(cell, max_size=5), max_size=6), end=st.sampled_from(["\n", "\r\n", "\r"]), quoted=st.booleans(), tail=st.binary(max_size=8), sets=st.booleans())
    def check(head: str, rows: list[list[str]], end: str, quoted: bool, tail: bytes, sets: bool) -> None:
        if quoted:
            buf = io.StringIO(newline="")
            csv.writer(buf, lineterminator=end).writerows(rows)
            data = (head + end + buf.getvalue()).encode()
        else:
            data = end.join([head, *(",".join(r) for r in rows)]).encode() + tail
        f = write(tmp_path, data)
        columns = {"id_column": "id" if "id" in head else None, "gold_column": "gold" if "gold" in head else None, "tags_column": "tags" if "tags" in head else None}
        try:
            items, rep = read_items(f, text_column="text", gold_values={"0": "ok", "1": "bad"}, labels=["ok", "bad"], gold_separator=";" if sets else None, **columns)
            require_items(items, rep, f)
        except InputDataError as exc:
            assert str(exc).startswith(str(f)) and len(str(exc).splitlines()) == 1, str(exc)
            return
        assert len(items) + len(rep.skipped) == rep.rows
        assert all(line.startswith(f"{f}:") for line in rep.skipped)
        assert len({it.external_id for it in items}) == len(items)
        assert all(it.text.strip() and (it.gold is None or it.gold in ("ok", "bad") or sets) for it in items)

    check()


def test_a_text_of_only_invisible_characters_is_skipped_and_named(tmp_path):
    """Zero-width spaces, a BOM or bidi marks pass `not text.strip()`: such a row became an item
    nobody can read, and the teacher was paid to label it."""
    f = write(tmp_path, "id,text\n1,\u200b\u200b\n2,\ufeff\u2060\u200e\n3,caf\u00e9 \u200b ok\n4,\U0001f600\n".encode())
    items, rep = read_items(f, text_column="text", id_column="id")
    assert [i.external_id for i in items] == ["3", "4"]  # a visible character among them, or an emoji: kept
    assert [s.split(": ")[0] for s in rep.skipped] == [f"{f}:2", f"{f}:3"]
    assert all("shows nothing (only invisible characters" in s for s in rep.skipped)
