"""Multi-label answers (issue 18): the recorded MFRC teacher's answers parse without a failure and
give the figures the data's README states; bad answers are named, never guessed; the spec refuses
a multi-label task read with a single-label format and the other way round.

Reads ../shared/data/mfrc (not copied: its answers carry no licence)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_score, recall_score

from graduate.errors import SpecError
from graduate.formats import answer_format, labelset
from graduate.formats.multi_label import MultiLabelFormat
from graduate.spec import ParseSpec, parse_spec

MFRC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mfrc"
LABELS = ["care", "proportionality", "loyalty", "authority", "purity", "equality", "thin morality", "non-moral"]


def test_the_recorded_teacher_parses_whole_and_scores_as_published():
    fmt = answer_format(ParseSpec(kind="label_list"), LABELS)
    gold_rows = {r["id"]: r for r in csv.DictReader((MFRC / "comments.csv").open(encoding="utf-8", newline=""))}
    gold, pred, failed, answers = [], [], [], 0
    with (MFRC / "teacher_logs" / "ft-gpt-3.5-turbo-0613.batch_output.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            answers += 1
            parsed = fmt.parse(rec["response"]["body"]["choices"][0]["message"]["content"])
            if parsed.label is None:
                failed.append(parsed.error)
                continue
            subset, item, _ = rec["custom_id"].split("/")
            if subset == "test":
                gold.append([int(gold_rows[item][lab]) for lab in LABELS])
                pred.append(labelset.indicator(parsed.label, LABELS))
    assert answers == 2305 and failed == []
    assert len(gold) == 564
    # README: micro-F1 0.768 (P 0.776, R 0.760); exact match 0.738
    assert round(f1_score(gold, pred, average="micro"), 3) == 0.768
    assert round(precision_score(gold, pred, average="micro"), 3) == 0.776
    assert round(recall_score(gold, pred, average="micro"), 3) == 0.760
    assert round(sum(g == p for g, p in zip(gold, pred)) / len(gold), 3) == 0.738


@pytest.mark.parametrize(
    ("spec", "answer", "labels", "error"),
    [
        (ParseSpec(kind="label_list"), "Care, EQUALITY.", ["care", "equality"], None),
        (ParseSpec(kind="label_list"), "care\nloyalty", ["care", "loyalty"], None),
        (ParseSpec(kind="label_list"), "care, fairness", None, "unknown label word 'fairness'"),
        (ParseSpec(kind="label_list", none="none"), "none", [], None),
        (ParseSpec(kind="label_list", none="none"), "none, care", None, "'none' (no label) given with other labels"),
        # a trailing separator or the none word twice is no other label ("care," reads as care)
        (ParseSpec(kind="label_list", none="none"), "none,", [], None),
        (ParseSpec(kind="label_list", none="none"), "None\nnone", [], None),
        (ParseSpec(kind="json_list", none="none"), '["none", ""]', [], None),
        (ParseSpec(kind="label_list", max_labels=2), "care, loyalty, purity", None, "3 labels, at most 2 allowed"),
        (ParseSpec(kind="label_list"), " , ", None, "no label in the answer"),
        # a separator with spaces around it splits with or without them (no label holds its visible part)
        (ParseSpec(kind="label_list", separator=" | "), "care|equality |loyalty", ["care", "equality", "loyalty"], None),
        (ParseSpec(kind="label_list", separator=" / "), "care / purity", ["care", "purity"], None),
        (ParseSpec(kind="label_list", separator=" / ", none="N/A"), "N/A", [], None),
        (ParseSpec(kind="label_list", separator=" | "), "care|fairness", None, "unknown label word 'care|fairness'"),
        (ParseSpec(kind="json_list"), 'Here: ```json\n["purity", "care"]\n```', ["care", "purity"], None),
        (ParseSpec(kind="json_list", key="labels"), '{"labels": []}', [], None),
        (ParseSpec(kind="json_list", key="labels"), '{"tags": ["care"]}', None, "no key 'labels' in a JSON object"),
        (ParseSpec(kind="json_list"), '["care", 3]', None, "not a label word: 3"),
        (ParseSpec(kind="json_booleans"), '{"care": true, "purity": "yes", "loyalty": false}', ["care", "purity"], None),
        (ParseSpec(kind="json_booleans"), '{"care": "maybe"}', None, "label 'care': 'maybe' is not true or false"),
        (ParseSpec(kind="json_booleans"), '{"kindness": true}', None, "unknown label 'kindness'"),
        # a number other than 1 or 0 is no yes or no: it was read as false
        (ParseSpec(kind="json_booleans"), '{"care": 1, "purity": 0}', ["care"], None),
        (ParseSpec(kind="json_booleans"), '{"care": 2}', None, "label 'care': 2 is not true or false"),
        # 1.0 and 0.0 are 1 and 0 (as json_key reads them): they were 'not true or false'
        (ParseSpec(kind="json_booleans"), '{"care": 1.0, "purity": 0.0, "loyalty": "1.0"}', ["care", "loyalty"], None),
        (ParseSpec(kind="json_booleans"), '{"care": 0.5}', None, "label 'care': 0.5 is not true or false"),
        (ParseSpec(kind="json_booleans"), '{"care": NaN}', None, "label 'care': nan is not true or false"),
        (ParseSpec(kind="json_booleans"), '{"care": -1}', None, "label 'care': -1 is not true or false"),
        # one label said twice, once true and once false: it was read as true
        (ParseSpec(kind="json_booleans"), '{"care": true, "Care": false}', None, "label 'care' is both 'care' and 'Care', true and false"),
        (ParseSpec(kind="json_booleans"), '{"Care": false, "care": true, "purity": 0}', None, "label 'care' is both 'Care' and 'care', true and false"),
        (ParseSpec(kind="json_booleans"), '{"care": true, "Care": "yes"}', ["care"], None),
        # a comma as CJK or Arabic text writes it is the comma (full-width, ideographic, Arabic): refused before
        (ParseSpec(kind="label_list"), "care\uff0cequality", ["care", "equality"], None),
        (ParseSpec(kind="label_list"), "Care\u3001 purity\u3001loyalty", ["care", "purity", "loyalty"], None),
        (ParseSpec(kind="label_list"), "care \u060c equality", ["care", "equality"], None),
        (ParseSpec(kind="label_list", separator=", "), "care\uff0c equality", ["care", "equality"], None),
        (ParseSpec(kind="label_list", none="none"), "none\u3001none", [], None),
        # taken only when every piece is then a label word, as a separator's visible part
        (ParseSpec(kind="label_list"), "care\uff0cfairness", None, "unknown label word 'care\uff0cfairness'"),
        (ParseSpec(kind="label_list", none="none"), "none\u3001care", None, "unknown label word 'none\u3001care'"),
        (ParseSpec(kind="label_list", separator=";"), "care\uff0cequality", None, "unknown label word 'care\uff0cequality'"),
        # the key of the list or object with white space around it is that key; two such keys that
        # disagree are refused, naming both; a key in another case is no such key
        (ParseSpec(kind="json_list", key="labels"), '{" labels ": ["care"]}', ["care"], None),
        (ParseSpec(kind="json_booleans", key="labels"), '{"labels ": {"care": true}}', ["care"], None),
        (ParseSpec(kind="json_list", key="labels"), '{"labels": ["care"], "labels ": ["care"]}', ["care"], None),
        (ParseSpec(kind="json_list", key="labels"), '{"labels": ["care"], " labels": ["purity"]}', None, "keys 'labels' and ' labels' both give 'labels', with different values"),
        (ParseSpec(kind="json_list", key="labels"), '{"Labels": ["care"]}', None, "no key 'labels' in a JSON object"),
        # label keys are read in any case and spacing already; two that disagree name both
        (ParseSpec(kind="json_booleans"), '{" care ": true, "Purity": false}', ["care"], None),
        (ParseSpec(kind="json_booleans"), '{" care ": true, "care": false}', None, "label 'care' is both ' care ' and 'care', true and false"),
    ],
)
def test_answers_parse_to_sets_or_name_what_is_wrong(spec, answer, labels, error):
    parsed = answer_format(spec, LABELS).parse(answer)
    if error is None:
        assert parsed.error is None and labelset.decode(parsed.label, LABELS) == frozenset(labels) and parsed.label == labelset.encode(labels, LABELS)
    else:
        assert parsed.label is None and parsed.error == error


def test_a_label_named_like_none_is_a_label():
    fmt = answer_format(ParseSpec(kind="label_list", none="non-moral"), LABELS)
    assert labelset.decode(fmt.parse("non-moral").label, LABELS) == {"non-moral"}


def _raw(task: dict) -> dict:
    return {"task": {"name": "t", "labels": ["a", "b"], **task}, "teacher": {"model": "m", "prompt": "{text}"}}


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"kind": "multi_label", "parse": {"kind": "label_words"}}, "task.kind multi_label reads answers with parse.kind json_booleans | json_list | label_list"),
        ({"parse": {"kind": "label_list"}}, "parse.kind label_list gives a set of labels: set task.kind: multi_label"),
        ({"kind": "multi_label", "labels": ["a;b", "c"], "parse": {"kind": "label_list"}}, "may not contain ';'"),
        ({"kind": "multi_label", "parse": {"kind": "label_list", "max_labels": 3}}, "parse.max_labels 3 is more than the 2 labels"),
        ({"kind": "multi_label", "labels": ["care, fairness", "c"], "parse": {"kind": "label_list"}}, "labels ['care, fairness'] contain parse.separator ','"),
        ({"kind": "multi_label", "labels": ["a/b", "c"], "parse": {"kind": "label_list", "separator": " / "}}, "labels ['a/b'] contain parse.separator ' / '"),
        # options only a label set reads were accepted on a single-label task and ignored
        ({"parse": {"kind": "label_words", "max_labels": 1}}, "parse.max_labels is for multi-label tasks (task.kind: multi_label); remove it"),
        ({"parse": {"kind": "json_key", "key": "k", "none": "none"}}, "parse.none is for multi-label tasks"),
        ({"parse": {"kind": "label_words", "max_labels": 1, "none": "x"}}, "parse.max_labels and parse.none are for multi-label tasks"),
        # gold cells and answer words are read stripped: " alpha" would never match
        ({"kind": "multi_label", "labels": [" alpha", "b"], "parse": {"kind": "json_list"}}, "labels [' alpha']: a multi-label task's label may not start or end with spaces; name it 'alpha'"),
    ],
)
def test_the_spec_pairs_task_kind_and_answer_format(task, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(_raw(task))
    assert parse_spec(_raw({"kind": "multi_label", "parse": {"kind": "json_list"}})).task.multi_label


def test_every_student_kind_takes_a_multi_label_task():
    """Kinds that learn label sets themselves get multi_label (the LLM student too: one fine-tune,
    never one per label); the rest are wrapped once per label."""
    from graduate.pipeline.validate import parse_checked_spec
    from graduate.students.registry import STUDENTS, for_label_sets

    raw = _raw({"kind": "multi_label", "parse": {"kind": "label_list"}})
    raw["students"] = [{"kind": "tfidf-logreg"}, {"kind": "lora-llm"}, {"kind": "ensemble"}]
    assert parse_checked_spec(raw).task.multi_label
    assert for_label_sets("lora-llm", {"lora_r": 4}) == ("lora-llm", {"lora_r": 4, "multi_label": True})
    assert for_label_sets("majority", {})[0] == "one-vs-rest"
    assert all(for_label_sets(kind, {}) for kind in STUDENTS)


def test_the_multi_label_wrapper_is_refused_for_a_single_label_task():
    from graduate.pipeline.validate import parse_checked_spec

    raw = _raw({})
    raw["students"] = [{"kind": "one-vs-rest"}]
    with pytest.raises(SpecError, match=r"students\[0\]\.kind: student kind one-vs-rest is for multi-label tasks"):
        parse_checked_spec(raw)


def _tokens(pieces):
    """A response's logprobs content from (token, logprob, [(alternative, logprob), ...]) triples."""
    return {"choices": [{"logprobs": {"content": [{"token": t, "logprob": lp, "top_logprobs": [{"token": a, "logprob": alp} for a, alp in alts]} for t, lp, alts in pieces]}}]}


def test_json_booleans_give_each_label_its_probability_from_the_value_token():
    import math

    from graduate.formats.logprobs import answer_distribution
    from graduate.spec import ParseSpec

    labels = ["care", "loyalty", "purity"]
    spec = ParseSpec(kind="json_booleans")
    response = _tokens(
        [
            ('{"', 0.0, []), ("care", 0.0, []), ('":', 0.0, []),
            (" true", math.log(0.8), [(" true", math.log(0.8)), (" false", math.log(0.15)), (" tr", math.log(0.05))]),
            (', "', 0.0, []), ("loyalty", 0.0, []), ('":', 0.0, []),
            (" false", math.log(0.6), [(" false", math.log(0.6)), (" true", math.log(0.3)), (" maybe", math.log(0.1))]),
            ("}", 0.0, []),
        ]
    )
    probs = answer_distribution(response, spec, labels)
    assert probs is not None and probs["care"] == pytest.approx(0.85 / 1.0) and probs["loyalty"] == pytest.approx(0.3 / 0.9)
    assert probs["purity"] == 0.0  # not in the answer: false, as the parse says
    # the value token carrying its ':' (': true'): alternatives must share it
    glued = _tokens([('{"care', 0.0, []), ('": true', math.log(0.9), [('": true', math.log(0.9)), ('": false', math.log(0.1)), ("}", math.log(0.01))]), ("}", 0.0, [])])
    assert answer_distribution(glued, spec, labels)["care"] == pytest.approx(0.9)
    # no true/false among a value's alternatives, an unparseable answer, or a list format: no soft label
    assert answer_distribution(_tokens([('{"care": ', 0.0, []), ("yes", 0.0, [("yes", 0.0)]), ("}", 0.0, [])]), spec, labels) is None
    assert answer_distribution(_tokens([("care, loyalty", 0.0, [])]), ParseSpec(kind="label_list"), labels) is None
    assert answer_distribution(_tokens([('{"fairness": true}', 0.0, [])]), spec, labels) is None


def test_json_booleans_keys_with_escapes_are_read_as_their_labels():
    import math

    from graduate.formats.logprobs import answer_distribution
    from graduate.spec import ParseSpec

    labels = ["café", "it's", 'say "hi"']
    spec = ParseSpec(kind="json_booleans")

    def body(*keys: str, yes: str = "true", no: str = "false") -> dict:
        pieces = [("{", 0.0, [])]
        for i, key in enumerate(keys):
            pieces += [((", " if i else "") + key + ": ", 0.0, []), (yes, math.log(0.7), [(yes, math.log(0.7)), (no, math.log(0.3))])]
        return _tokens(pieces + [("}", 0.0, [])])

    # as json.dumps writes them (\u00e9, \"), and as a Python literal (\xe9, \'), which the parser also reads
    for keys, yes, no in ((['"caf\\u00e9"', '"it\'s"', '"say \\"hi\\""'], "true", "false"), (["'caf\\xe9'", "'it\\'s'", "'say \"hi\"'"], "True", "False")):
        probs = answer_distribution(body(*keys, yes=yes, no=no), spec, labels)
        assert probs is not None and all(probs[lab] == pytest.approx(0.7) for lab in labels), (keys, probs)


@pytest.mark.parametrize("where", ["data", "label_imports"])
def test_a_label_that_contains_the_gold_or_import_separator_is_refused(where):
    raw = _raw({"kind": "multi_label", "labels": ["a|b", "c"], "parse": {"kind": "json_list"}})
    raw["data"] = [{"name": "d", "path": "x.csv", "gold_column": "g", "gold_separator": "|" if where == "data" else ";"}]
    if where == "label_imports":
        raw["label_imports"] = [{"path": "y.csv", "source": "d", "columns": ["old"], "separator": "|"}]
    with pytest.raises(SpecError, match=r"labels \['a\|b'\] contain (gold_)?separator '\|'; choose a separator no label contains"):
        parse_spec(raw)


@pytest.mark.parametrize("where", ["data", "label_imports"])
def test_a_none_word_that_contains_the_gold_or_import_separator_is_refused(where):
    """Gold cells and label imports read parse.none's word as the empty set: one holding the separator
    they split at would be read as pieces ('n', 'a'), never as the empty set."""
    raw = _raw({"kind": "multi_label", "labels": ["care", "c"], "parse": {"kind": "json_list", "none": "n/a"}})
    raw["data"] = [{"name": "d", "path": "x.csv", "gold_column": "g", "gold_separator": "/" if where == "data" else ";"}]
    if where == "label_imports":
        raw["label_imports"] = [{"path": "y.csv", "source": "d", "columns": ["old"], "separator": "/"}]
    with pytest.raises(SpecError, match=r"parse.none 'n/a' contains (gold_)?separator '/', so a (gold )?cell could not say the empty set with it; choose a separator it does not contain"):
        parse_spec(raw)
    raw["task"]["parse"]["none"] = "none"  # the same spec with a none word the separator does not split loads
    parse_spec(raw)


@pytest.mark.parametrize(
    ("labels", "parse", "message"),
    [
        (["Care", "care", "x"], {"kind": "label_list"}, "label 'Care' is written 'Care' in task.parse's format and reads back as 'care'"),
        ([" care", "care", "x"], {"kind": "label_list"}, "labels [' care']: a multi-label task's label may not start or end with spaces; name it 'care'"),
        (["a", "b"], {"kind": "label_list", "none": "x, y"}, "the empty set (parse.none) is written 'x, y' in task.parse's format and reads back as a parse failure"),
        (["a", "b"], {"kind": "label_list", "words": {"a": ["same"], "b": ["Same"]}}, "label 'a' is written 'same'"),
        (["", "c"], {"kind": "label_list"}, "a label needs a visible name"),
        (["a\nb", "c"], {"kind": "json_list"}, "may not hold a line break"),
    ],
)
def test_labels_the_answer_format_cannot_read_back_are_refused_in_one_line(labels, parse, message):
    """They passed `graduate check` and then lost every teacher answer holding them (dropped as an
    unknown word) or merged two labels into one."""
    from graduate.pipeline.validate import parse_checked_spec

    with pytest.raises(SpecError, match=re.escape(message)) as err:
        parse_checked_spec(_raw({"kind": "multi_label", "labels": labels, "parse": parse}))
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("kind", ["label_list", "json_list", "json_booleans"])
def test_a_spec_with_max_labels_below_the_label_count_loads(kind):
    """Every such spec was refused: "all labels together ... reads back as a parse failure (3 labels,
    at most 1 allowed)", as the check wrote the whole label set, which max_labels forbids by design."""
    from graduate.pipeline.validate import parse_checked_spec

    for most in (1, 2, 3):
        spec = parse_checked_spec(_raw({"kind": "multi_label", "labels": ["a", "b", "c"], "parse": {"kind": kind, "max_labels": most}}))
        assert spec.task.parse.max_labels == most


def test_a_label_with_the_dots_and_quotes_llms_add_reads_back_as_itself():
    """`n.a.` was read as the unknown word `n.a` (the reader strips dots and quotes an LLM adds)."""
    labels = ["n.a.", "'quoted'", "ok"]
    fmt = MultiLabelFormat(ParseSpec(kind="label_list", none="none"), labels)
    assert fmt.parse("n.a., 'quoted'").label == "n.a.;'quoted'"
    assert fmt.parse("N.A").label == "n.a."


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12), min_size=2, max_size=5, unique=True),
    kind=st.sampled_from(["label_list", "json_list", "json_booleans"]),
    none=st.sampled_from([None, "none", "N/A"]),
    pick=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_a_spec_that_loads_reads_back_every_label_set_it_writes(labels, kind, none, pick):
    """Any label names: either the spec is refused in one line, or every set the format writes
    (here a random subset) parses back to itself."""
    from graduate.errors import GraduateError
    from graduate.pipeline.validate import parse_checked_spec

    raw = _raw({"kind": "multi_label", "labels": labels, "parse": {"kind": kind, **({"none": none} if none else {})}})
    try:
        spec = parse_checked_spec(raw)
    except GraduateError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
        return
    chosen = [lab for lab, yes in zip(labels, pick) if yes] or ([] if none or kind != "label_list" else labels[:1])
    value = labelset.encode(chosen, labels)
    fmt = answer_format(spec.task.parse, labels)
    for text in fmt.render(value):
        assert fmt.parse(text).label == value, (labels, kind, none, text, fmt.parse(text))


@pytest.mark.parametrize(
    ("task", "params", "message"),
    [
        # single-label: max_labels was ignored, multi_label: true trained label sets for single labels
        ({}, {"max_labels": 1}, "params.max_labels is set by the project from task.parse.max_labels"),
        ({}, {"multi_label": True}, "params.multi_label is set by the project from task.kind"),
        # parse.max_labels replaced the student's own
        ({"kind": "multi_label", "labels": ["a", "b", "c"], "parse": {"kind": "label_list", "max_labels": 2}}, {"max_labels": 3}, "params.max_labels is set by the project"),
    ],
)
def test_student_params_the_project_sets_are_refused_in_the_spec(task, params, message):
    from graduate.pipeline.validate import parse_checked_spec

    raw = _raw(task)
    raw["students"] = [{"kind": "tfidf-logreg", "params": params}]
    with pytest.raises(SpecError, match=re.escape(message)) as err:
        parse_checked_spec(raw)
    assert "students[0] (tfidf-logreg)" in str(err.value) and len(str(err.value).splitlines()) == 1
    # a multi-label task that caps no set may cap one student's
    raw = _raw({"kind": "multi_label", "labels": ["a", "b", "c"], "parse": {"kind": "label_list"}})
    raw["students"] = [{"kind": "tfidf-logreg", "params": {"max_labels": 1}}]
    assert parse_checked_spec(raw).students[0].params == {"max_labels": 1}


@pytest.mark.parametrize("kind", ["label_list", "json_list", "json_booleans"])
def test_a_label_word_in_another_unicode_form_or_with_invisible_edges_reads_as_its_label(kind):
    """'café' written decomposed (e + U+0301, as some tokenizers and macOS text give it) or with a
    BOM / zero-width space at its edge was an unknown label word: the teacher's answer was lost."""
    import unicodedata

    labels = ["café", "naïve", "ok"]
    for spelled in (labels, [unicodedata.normalize("NFD", lab) for lab in labels]):  # the spec in either form
        fmt = MultiLabelFormat(ParseSpec(kind=kind), spelled)
        for words in (["cafe\u0301", "nai\u0308ve"], ["\ufeffcafé", "naïve\u200b"], ["CAFÉ", "NAÏVE"]):
            answer = {"label_list": ", ".join(words), "json_list": json.dumps(words), "json_booleans": json.dumps({w: True for w in words})}[kind]
            got = fmt.parse(answer)
            assert got.error is None and labelset.decode(got.label, spelled) == {spelled[0], spelled[1]}, (spelled, answer, got)


CELL_SET_LABELS = ["care", "équité", "thin morality"]


@settings(max_examples=200, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(CELL_SET_LABELS), max_size=5),
    spell=st.lists(st.sampled_from(["as is", "upper", "decomposed", "padded", "empty piece before"]), min_size=5, max_size=5),
)
def test_a_label_set_cell_reads_as_the_set_it_names_however_a_person_spells_it(chosen: list[str], spell: list[str]) -> None:
    """labelset.read_cell, the one reader of a set a person writes (review files, label imports,
    feedback): order, case, Unicode form, spaces and empty pieces do not change the set."""
    import unicodedata

    pieces = []
    for lab, how in zip(chosen, spell):
        word = {"as is": lab, "upper": lab.upper(), "decomposed": unicodedata.normalize("NFD", lab), "padded": f"  {lab}\u200b "}.get(how, lab)
        pieces += ["", word] if how == "empty piece before" else [word]
    cell = ";".join(pieces) if chosen else "(none)"
    assert labelset.read_cell(cell, CELL_SET_LABELS) == labelset.encode(chosen, CELL_SET_LABELS)
    assert labelset.read_cell(pieces, CELL_SET_LABELS) == labelset.encode(chosen, CELL_SET_LABELS)  # a list: the same pieces


def test_an_unknown_piece_is_named_once_whatever_its_unicode_form() -> None:
    """A cell of one unknown piece written decomposed (NFD, as a Mac may save it) was named twice,
    cell and piece looking alike: "'négatif': 'négatif' is not a task label"."""
    labels = ["positif", "neutre"]
    for cell in ("ne\u0301gatif", " ne\u0301gatif ", "n\u00e9gatif"):
        with pytest.raises(labelset.CellError) as err:
            labelset.read_cell(cell, labels)
        assert str(err.value) == "'n\u00e9gatif' is not a task label ['positif', 'neutre']", cell
    with pytest.raises(labelset.CellError) as err:  # a piece of a longer cell is named beside the cell
        labelset.read_cell("positif;ne\u0301gatif", labels)
    assert str(err.value) == "'positif;ne\u0301gatif': 'n\u00e9gatif' is not a task label ['positif', 'neutre']"


@settings(max_examples=300, deadline=None)
@given(cell=st.text(max_size=30) | st.lists(st.text(max_size=12), max_size=4))
def test_any_cell_reads_as_a_canonical_set_no_answer_or_one_named_reason(cell: str | list[str]) -> None:
    from graduate.spec.text import is_blank

    try:
        got = labelset.read_cell(cell, CELL_SET_LABELS, none_word="none", max_labels=2)
    except labelset.CellError as exc:
        assert exc.code in {"no_label", "unknown_label", "none_with_labels", "too_many_labels"} and "\n" not in str(exc)  # one line
        return
    if got is None:  # no answer: only a cell that shows nothing
        assert isinstance(cell, str) and is_blank(cell)
    else:
        assert labelset.encode(labelset.decode(got, CELL_SET_LABELS) or (), CELL_SET_LABELS) == got


@settings(max_examples=200, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True),
    commas=st.lists(st.sampled_from([",", "\uff0c", "\u3001", "\u060c", "\ufe50", "\ufe51"]), min_size=3, max_size=3),
    spaces=st.lists(st.sampled_from(["", " ", "\u3000", "  "]), min_size=6, max_size=6),
    separator=st.sampled_from([",", ", "]),
)
def test_label_words_joined_by_any_written_comma_read_as_their_set(chosen, commas, spaces, separator):
    answer = chosen[0] + "".join(spaces[2 * i] + commas[i] + spaces[2 * i + 1] + w for i, w in enumerate(chosen[1:]))
    parsed = answer_format(ParseSpec(kind="label_list", separator=separator), LABELS).parse(answer)
    assert parsed.label == labelset.encode(chosen, LABELS), (answer, parsed)
