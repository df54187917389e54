import pytest

from graduate.data.csv_source import read_items
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
