"""Gates: the expression grammar (parsed, never eval'd) and judging figures against it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.evaluate.criteria import METRICS, GateSyntaxError, Operand, check_gate, judge, parse_gate


def test_the_issues_examples_parse_into_typed_gates():
    g = parse_gate("student.accuracy >= 0.98 * teacher.accuracy on test.balanced")
    assert (g.left, g.op, g.factor, g.right, g.test_set, g.threshold) == (
        Operand("student", None, "accuracy"), ">=", 0.98, Operand("teacher", None, "accuracy"), "test.balanced", None
    )
    g = parse_gate("student.latency_p99_ms <= 20")
    assert (g.left.metric, g.op, g.threshold, g.right, g.test_set, g.scope) == ("latency_p99_ms", "<=", 20.0, None, None, "serving")
    g = parse_gate("student.cost_per_1k <= 0.001 * teacher.cost_per_1k")
    assert (g.factor, g.right.subject, g.right.metric) == (0.001, "teacher", "cost_per_1k")


def test_named_student_offsets_and_trailing_factor():
    g = parse_gate("student[tfidf-logreg].recall >= teacher.recall - 0.02 on test.indist")
    assert g.left == Operand("student", "tfidf-logreg", "recall")
    assert (g.factor, g.offset, g.test_set) == (1.0, -0.02, "test.indist")
    g = parse_gate("  student.f1   >  teacher.f1 * 0.9 + 1e-3 ")
    assert (g.op, g.factor, g.offset) == (">", 0.9, 0.001)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "a gate is an expression"),
        ("accuracy >= 0.9", "expected student.METRIC or teacher.METRIC"),
        ("student.accuracy = 0.9", "expected a comparison"),
        ("student.accuracy == 0.9", "comparison '==' is not allowed"),
        ("student.accuracy >= ", "expected a number or student.METRIC"),
        ("student.accuracy >= 0.9 0.8", "unexpected '0.8'"),
        ("student.accuracy >= 0.9 on", "'on' must be followed by one test set name"),
        ("teacher[x].accuracy >= 0.9", "only student takes a [name]"),
        ("student.accuracy >= __import__('os').system('true')", "expected a number"),
        ("student.accuracy >= 0.5 * ", "student.METRIC or teacher.METRIC after '*'"),
    ],
)
def test_syntax_errors_say_what_was_expected(text, message):
    with pytest.raises(GateSyntaxError, match=__import__("re").escape(message)):
        parse_gate(text)


@given(
    op=st.sampled_from([">=", "<=", ">", "<"]),
    factor=st.floats(min_value=0.001, max_value=1000, allow_nan=False).map(lambda x: round(x, 4)),
    offset=st.floats(min_value=0, max_value=10, allow_nan=False).map(lambda x: round(x, 4)),
    metric=st.sampled_from(sorted(METRICS)),
    name=st.from_regex(r"[a-z][a-z0-9\-]{0,12}", fullmatch=True),
    test_set=st.from_regex(r"[a-z][a-z0-9.\-]{0,12}", fullmatch=True),
)
def test_written_gates_parse_back_to_the_same_numbers(op, factor, offset, metric, name, test_set):
    text = f"student[{name}].{metric} {op} {factor} * teacher.{metric} - {offset} on {test_set}"
    g = parse_gate(text)
    assert (g.left.student, g.left.metric, g.op, g.right.metric, g.test_set) == (name, metric, op, metric, test_set)
    assert g.factor == pytest.approx(factor) and g.offset == pytest.approx(-offset)


def test_check_gate_against_the_spec():
    sets = {"test.balanced": "quality", "bias.fuzzed": "bias"}
    ok = dict(test_sets=sets, students=["majority", "tfidf-logreg"], has_bias_pair=False)
    check_gate(parse_gate("student.accuracy >= teacher.accuracy on test.balanced"), **ok)
    for text, message in [
        ("student.acuracy >= 0.9", "unknown metric 'acuracy'"),
        ("student.accuracy >= 0.9 on test.nope", "unknown test set 'test.nope'"),
        ("student[bert].accuracy >= 0.9", "unknown student 'bert'"),
        ("student.ece <= teacher.ece", "teacher.ece is not measured"),
        ("student.latency_p99_ms <= 20 on test.balanced", "not measured per test set"),
        ("student.bias_flip_rate <= 0.01", "needs evaluation.bias_pair"),
        ("teacher.accuracy >= 0.9", "a gate judges a student"),
        ("student.latency_p99_ms <= teacher.accuracy", "compare like with like"),
    ]:
        with pytest.raises(ValueError, match=__import__("re").escape(message)):
            check_gate(parse_gate(text), **ok)


@pytest.mark.parametrize(
    "text, labels, multi_label, message",
    [
        ("student.fpr <= 0.1", ["a", "b", "c"], False, "fpr is not measured on a task with more than two labels"),
        ("student.worst_identity_fpr <= 0.1", ["a", "b", "c"], False, "worst_identity_fpr is not measured on a task with more than two labels"),
        ("student.brier <= 0.1", ["a", "b", "c"], False, "brier is not measured on a task with more than two labels"),
        ("student.micro_f1 >= 0.5", ["ok", "bad"], False, "micro_f1 is not measured on a task with two labels"),
        ("student.accuracy >= 0.5", ["a", "b"], True, "accuracy is not measured on a multi-label task"),
        ("student.f1 >= 0.5", ["a", "b"], True, "f1 is not measured on a multi-label task; its metrics: "),
    ],
)
def test_a_metric_the_tasks_shape_never_measures_is_refused(text, labels, multi_label, message):
    ok = dict(test_sets={"test": "quality"}, students=["tfidf-logreg"], has_bias_pair=False)
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        check_gate(parse_gate(text), **ok, labels=labels, multi_label=multi_label)
    if multi_label:
        check_gate(parse_gate("student.f1[a] >= 0.5"), **ok, labels=labels, multi_label=True)  # per label it is measured
        check_gate(parse_gate("student.micro_f1_ci_low >= 0.5"), **ok, labels=labels, multi_label=True)
    with pytest.raises(ValueError, match="worst_identity_fpr needs evaluation.identity_terms"):
        check_gate(parse_gate("student.worst_identity_fpr <= 0.1"), **ok, labels=["ok", "bad"], has_identity_terms=False)


def test_a_gate_between_two_named_students_judges_the_left_one():
    names = ["majority", "tfidf-logreg", "encoder", "ensemble", "embed-logreg", "lora-llm"]
    for left in names:
        for right in names:
            if left != right:
                gate = parse_gate(f"student[{left}].accuracy >= student[{right}].accuracy on test")
                (result,) = judge(gate, lambda o, s, ts: 0.5, best_student="majority", quality_sets=["test"])
                assert result.student == left


def test_judge_applies_per_test_set_and_reports_the_figures():
    figures = {
        ("student", "tfidf-logreg", "test.balanced"): 0.86,
        ("teacher", "tfidf-logreg", "test.balanced"): 0.8875,
        ("student", "tfidf-logreg", "test.indist"): 0.916,
        ("teacher", "tfidf-logreg", "test.indist"): 0.909,
    }

    def lookup(o, student, ts):
        return figures.get((o.subject, student, ts))

    results = judge(parse_gate("student.accuracy >= 0.98 * teacher.accuracy"), lookup, best_student="tfidf-logreg", quality_sets=["test.balanced", "test.indist"])
    assert [(r.test_set, r.passed) for r in results] == [("test.balanced", False), ("test.indist", True)]
    assert results[0].detail == "student.accuracy = 0.86 >= 0.98 x teacher.accuracy (0.8875) = 0.8697"
    # a figure that was never measured fails the gate, with the reason
    missing = judge(parse_gate("student.latency_p99_ms <= 20"), lambda o, s, t: None, best_student="x", quality_sets=[])
    assert [(r.passed, r.detail) for r in missing] == [(False, "not measured: student.latency_p99_ms")]
    tiny = judge(parse_gate("student.fpr >= 5e-324"), lookup, best_student="tfidf-logreg", quality_sets=["test.balanced"])
    assert tiny[0].detail == "student.fpr = 0.86 >= 4.941e-324"  # not 324 digits
    small = judge(parse_gate("student.fpr >= 0.00000195"), lookup, best_student="tfidf-logreg", quality_sets=["test.balanced"])
    assert small[0].detail == "student.fpr = 0.86 >= 0.00000195"


def test_per_label_gates_parse_check_and_read_the_label_figure():
    g = parse_gate("student.f1[thin morality] >= 0.8 * teacher.f1[thin morality] on test")
    assert (g.left.metric, g.left.label, g.right.label, g.factor) == ("f1", "thin morality", "thin morality", 0.8)
    assert str(g.left) == "student.f1[thin morality]"
    named = parse_gate("student[tfidf-logreg].recall[care] >= 0.5")
    assert (named.left.student, named.left.metric, named.left.label) == ("tfidf-logreg", "recall", "care")
    ok = dict(test_sets={"test": "quality"}, students=["tfidf-logreg"], has_bias_pair=False, labels=["care", "thin morality"])
    check_gate(g, **ok)
    for text, message in [
        ("student.f1[fairness] >= 0.5", "unknown label 'fairness'"),
        ("student.accuracy[care] >= 0.5", "accuracy is not measured per label"),
    ]:
        with pytest.raises(ValueError, match=__import__("re").escape(message)):
            check_gate(parse_gate(text), **ok)
    with pytest.raises(GateSyntaxError, match="needs a label inside the brackets"):
        parse_gate("student.f1[ ] >= 0.5")
    # bias figures take a label on label-set tasks only (each label is in turn the positive class)
    biased = dict(ok, has_bias_pair=True)
    check_gate(parse_gate("student.bias_fpr_change[care] <= 0.05"), **biased, multi_label=True)
    with pytest.raises(ValueError, match=r"bias_fpr_change is not measured per label; .*bias figures take a label on multi-label tasks"):
        check_gate(parse_gate("student.bias_fpr_change[care] <= 0.05"), **biased)
    with pytest.raises(ValueError, match="unknown label 'fairness'"):
        check_gate(parse_gate("student.bias_fpr_change[fairness] <= 0.05"), **biased, multi_label=True)
    figs = {"student": {"f1": 0.7, "per_label": {"thin morality": {"f1": 0.30}}}, "teacher": {"per_label": {"thin morality": {"f1": 0.35}}}}
    res = judge(g, lambda o, s, ts: o.value(figs[o.subject]), best_student="tfidf-logreg", quality_sets=["test"])
    assert [r.passed for r in res] == [True] and "student.f1[thin morality] = 0.3" in res[0].detail
    assert judge(g, lambda o, s, ts: o.value({"per_label": {}}), best_student="x", quality_sets=["test"])[0].passed is False


@given(st.text(st.characters(blacklist_characters="[]\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_any_label_name_in_brackets_parses_back_and_an_unknown_one_is_one_line(label):
    g = parse_gate(f"student.f1[{label}] >= 0.5 on test")
    assert g.left.label == " ".join(label.split()) and g.left.metric == "f1"
    ok = dict(test_sets={"test": "quality"}, students=["s"], has_bias_pair=False)
    check_gate(g, **ok, labels=[g.left.label])
    with pytest.raises(ValueError) as err:
        check_gate(g, **ok, labels=[g.left.label + "x"])
    assert "unknown label" in str(err.value) and len(str(err.value).splitlines()) == 1


def test_a_per_label_figure_over_no_items_is_not_measured():
    """A label no gold item has: its recall (and F1, when nothing answers it either) is 0/0, which
    the figures hold as 0; a gate read that 0 and judged it (failed, or passed against the teacher's 0)."""
    never = {"per_label": {"delta": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}}}
    added = {"per_label": {"delta": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 3}}}
    for text in ("student.f1[delta] >= 0.5", "student.recall[delta] >= 0.5", "student.precision[delta] >= 0.5", "student.f1[delta] >= 0.9 * teacher.f1[delta] on test"):
        g = parse_gate(text)
        (res,) = judge(g, lambda o, s, ts: o.value(never), best_student="s", quality_sets=["test"])
        assert not res.passed and res.detail.startswith("not measured on test: student.") and res.left is None, res
    # answered where gold never has it: precision and F1 are 0 indeed (all false positives)
    assert parse_gate("student.f1[delta] >= 0.5").left.value(added) == 0.0 and parse_gate("student.precision[delta] >= 0.5").left.value(added) == 0.0
    assert parse_gate("student.recall[delta] >= 0.5").left.value(added) is None


ANY_LABEL = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(lambda s: s.strip())


@given(label=ANY_LABEL, name=ANY_LABEL)
def test_a_quoted_label_or_student_name_is_taken_exactly(label, name):
    """Any label (``]``, quotes, backslashes, runs of spaces, ``on``, odd Unicode) named in quotes
    parses back exactly, as the operand writes it, and passes the check against the spec's labels."""
    from graduate.spec.gates import written

    text = f"student[{written(name)}].f1[{written(label)}] >= 0.5 * teacher.f1[{written(label)}] on test"
    g = parse_gate(text)
    assert (g.left.student, g.left.label, g.right.label, g.test_set, g.factor) == (name, label, label, "test", 0.5)
    assert parse_gate(f"{g.left} >= 0.5").left == g.left
    check_gate(g, test_sets={"test": "quality"}, students=[name], has_bias_pair=False, labels=[label, "other"])


def test_labels_holding_brackets_quotes_and_on_can_be_named():
    assert parse_gate('student.f1["a]b"] >= 0.5').left.label == "a]b"
    assert parse_gate("student.f1['a]b'] >= 0.5").left.label == "a]b"
    assert parse_gate(r'student.f1["say \"hi\" \\ bye"] >= 0.5').left.label == 'say "hi" \\ bye'
    assert parse_gate('student.f1[ "two  spaces" ] >= 0.5').left.label == "two  spaces"
    assert parse_gate("student.f1[it's] >= 0.5").left.label == "it's"  # a bare one may hold a quote
    g = parse_gate("student.f1[carry on] >= 0.5 on test")
    assert (g.left.label, g.test_set) == ("carry on", "test")
    assert parse_gate("student.f1[carry on] >= 0.5").test_set is None
    assert str(parse_gate('student.f1["a]b"] >= 0.5').left) == 'student.f1["a]b"]'
    assert parse_gate('student.f1 >= 0.5 on "held out set"').test_set == "held out set"
    assert parse_gate("student.f1 >= 0.5 on 'carry on'").test_set == "carry on"


@given(
    value=st.floats(allow_nan=False, allow_infinity=False, width=64),
    style=st.sampled_from(["{:g}", "{:e}", "{:E}", "{:.3f}", "{!r}"]),
    plus=st.booleans(),
)
def test_signed_numbers_and_exponents_parse_wherever_a_number_goes(value, style, plus):
    written = style.format(value)
    if plus and not written.startswith("-"):
        written = "+" + written
    expected = float(written)
    assert parse_gate(f"student.bias_fpr_change >= {written}").threshold == expected
    g = parse_gate(f"student.f1 >= {written} * teacher.f1 - {written} on test")
    assert (g.factor, g.offset) == (expected, -expected)
    assert parse_gate(f"student.f1 >= teacher.f1 * {written} + {written}").factor == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("student.bias_fpr_change >= -0.1", None),
        ("student.bias_fpr_change <= -1e-3", None),
        ("student.accuracy >= - 0.1", None),
        ("student.accuracy >= 1e999", "1e999 is too large a number"),
        ("student.accuracy >= -", "expected a number or student.METRIC"),
        ("student.accuracy >= --0.1", "expected a number or student.METRIC"),
        ('student.f1["a]b] >= 0.5', "expected a comparison"),
        ('student.f1[""] >= 0.5', "needs a label inside the brackets"),
        ("student.f1[x] >= 0.5 on a b", "'on' must be followed by one test set name, at the end (in quotes if it holds spaces)"),
        ('student.f1[x] >= 0.5 on ""', "'on' must be followed by one test set name"),
    ],
)
def test_signs_and_malformed_labels(text, message):
    if message is None:
        assert parse_gate(text).threshold < 0
        return
    with pytest.raises(GateSyntaxError, match=__import__("re").escape(message)) as err:
        parse_gate(text)
    assert len(str(err.value).splitlines()) == 1


@given(st.text(st.sampled_from(list("studenacher.f1[]\"'\\ -+*e0.5<>=on")) | st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_text_parses_or_is_a_one_line_syntax_error(text):
    try:
        parse_gate(text)
    except GateSyntaxError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc)


GATE_TOKENS = [
    "student", "teacher", ".", "accuracy", "f1", "latency_p99_ms", "bias_fpr_change", "[", "]", "tfidf-logreg", ">=", "<=", ">", "<", "==", "=",
    "0.5", "1e400", "-0", "nan", "inf", "*", "+", "-", "on", "test.balanced", "1" * 400, "0x10", "1_0", "١", "(", ")", "\x00", "≥", "\n",
]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(GATE_TOKENS) | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=4), max_size=14), sep=st.sampled_from([" ", ""]))
def test_any_gate_text_parses_or_is_one_line_saying_what_was_expected(parts, sep):
    """Fuzz the gate language (graduate.yaml's gates:, `graduate train --until`): any text parses to
    a gate that the spec's check accepts or refuses, or is a GateSyntaxError; every message is one line."""
    text = sep.join(parts)
    try:
        gate = parse_gate(text)
    except GateSyntaxError as exc:
        assert str(exc).strip() and len(str(exc).splitlines()) == 1, str(exc)
        return
    try:
        check_gate(gate, test_sets={"test.balanced": "quality"}, students=["tfidf-logreg"], has_bias_pair=False, labels=["ok", "bad"])
    except ValueError as exc:
        assert str(exc).strip() and len(str(exc).splitlines()) == 1, str(exc)
