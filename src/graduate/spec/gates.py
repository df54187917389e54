"""The gate language of graduate.yaml's ``gates:``: a gate's grammar, the metrics it may name, and the
check against the spec's test sets and students (run when the spec is read). Judging a gate on
measured figures is ``graduate.evaluate.criteria``.

A gate is written as ``LEFT OP RIGHT [on TEST_SET]``::

    student.accuracy >= 0.98 * teacher.accuracy on test.balanced
    student.latency_p99_ms <= 20
    student[tfidf-logreg].recall >= teacher.recall - 0.02 on test.indist
    student.f1[thin morality] >= 0.8 * teacher.f1[thin morality] on test

    student.bias_fpr_change >= -0.1
    student.f1["a]b"] >= 0.5 on "held out"

A per-label figure names the label in brackets after the metric (``precision``, ``recall`` or ``f1``
of that one label, single- or multi-label tasks alike). A label (or student name) in quotes,
double or single, is taken exactly, and may hold ``]``, quotes (a backslash before a quote or a
backslash makes it literal) and runs of spaces; a bare one ends at the first ``]`` and its spaces
are made single. A test set name with spaces is quoted the same way.

The grammar (parsed by a small tokenizer and recursive descent, never ``eval``)::

    gate    := operand CMP rhs [ "on" TEST_SET ]
    rhs     := NUMBER | [ NUMBER "*" ] operand [ "*" NUMBER ] [ ("+" | "-") NUMBER ]
    operand := ("student" [ "[" NAME "]" ] | "teacher") "." METRIC [ "[" LABEL "]" ]
    NUMBER  := [ "+" | "-" ] digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ]   (finite)
    CMP     := ">=" | "<=" | ">" | "<"
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable, Literal

Scope = Literal["test", "serving", "bias"]
Shape = Literal["binary", "multi_class", "multi_label"]
EVERY_SHAPE: frozenset[Shape] = frozenset(("binary", "multi_class", "multi_label"))
SINGLE: frozenset[Shape] = frozenset(("binary", "multi_class"))
BINARY: frozenset[Shape] = frozenset(("binary",))
SETS: frozenset[Shape] = frozenset(("multi_label",))


@dataclass(frozen=True)
class MetricInfo:
    scope: Scope  # test: measured per test set; serving: per predictor; bias: on the bias pair
    higher_is_better: bool
    teacher: bool  # defined for the teacher too (the teacher gives labels, not probabilities)
    description: str
    shapes: frozenset[Shape] = EVERY_SHAPE  # the task shapes it is measured on (without a [label])


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("test", True, True, "share of items whose label matches gold", SINGLE),
    "accuracy_ci_low": MetricInfo("test", True, True, "lower end of accuracy's bootstrap confidence interval", SINGLE),
    "accuracy_ci_high": MetricInfo("test", True, True, "upper end of accuracy's bootstrap confidence interval", SINGLE),
    "precision": MetricInfo("test", True, True, "precision of the positive label (binary) or macro precision", SINGLE),
    "recall": MetricInfo("test", True, True, "recall of the positive label (binary) or macro recall", SINGLE),
    "f1": MetricInfo("test", True, True, "F1 of the positive label (binary) or macro F1", SINGLE),
    "f1_ci_low": MetricInfo("test", True, True, "lower end of F1's bootstrap confidence interval", SINGLE),
    "macro_precision": MetricInfo("test", True, True, "unweighted mean of the per-label precisions"),
    "macro_recall": MetricInfo("test", True, True, "unweighted mean of the per-label recalls"),
    "macro_f1": MetricInfo("test", True, True, "unweighted mean of the per-label F1 scores"),
    "roc_auc": MetricInfo("test", True, True, "ROC-AUC (the teacher's from its hard labels)", SINGLE),
    "pr_auc": MetricInfo("test", True, True, "area under the precision-recall curve (average precision)", SINGLE),
    "fpr": MetricInfo("test", False, True, "false-positive rate at the operating threshold (binary)", BINARY),
    "tpr": MetricInfo("test", True, True, "true-positive rate at the operating threshold (binary)", BINARY),
    "worst_identity_fpr": MetricInfo(
        "test", False, True, "binary: the highest FPR over evaluation.identity_terms on one test set (terms with min_slice_size or more non-positive items)", BINARY
    ),
    "ece": MetricInfo("test", False, False, "expected calibration error of the predicted probabilities", SINGLE),
    "brier": MetricInfo("test", False, False, "Brier score of the positive label's probability (binary)", BINARY),
    "agreement_with_teacher": MetricInfo("test", True, False, "share of items where the student gives the teacher's label"),
    "kappa_with_teacher": MetricInfo("test", True, False, "Cohen's kappa between student and teacher labels", SINGLE),
    # multi-label tasks (task.kind multi_label): label sets against gold sets
    "micro_f1": MetricInfo("test", True, True, "multi-label: F1 over every (item, label) decision", SETS),
    "micro_f1_ci_low": MetricInfo("test", True, True, "multi-label: lower end of micro-F1's bootstrap confidence interval", SETS),
    "micro_precision": MetricInfo("test", True, True, "multi-label: precision over every (item, label) decision", SETS),
    "micro_recall": MetricInfo("test", True, True, "multi-label: recall over every (item, label) decision", SETS),
    "exact_match": MetricInfo("test", True, True, "multi-label: share of items whose whole label set matches gold", SETS),
    "hamming_loss": MetricInfo("test", False, True, "multi-label: share of (item, label) decisions that are wrong", SETS),
    "latency_p50_ms": MetricInfo("serving", False, True, "median latency of one single-item prediction, ms"),
    "latency_p95_ms": MetricInfo("serving", False, True, "95th percentile latency of a single-item prediction, ms"),
    "latency_p99_ms": MetricInfo("serving", False, True, "99th percentile latency of a single-item prediction, ms"),
    "batch_ms_per_item": MetricInfo("serving", False, False, "median time per item when predicting in batches, ms"),
    "cost_per_1k": MetricInfo("serving", False, True, "USD per 1,000 items (teacher: tokens x prices; student: CPU time)"),
    "bias_mean_abs_shift": MetricInfo("bias", False, False, "mean |score change| when identity terms are swapped"),
    "bias_max_abs_shift": MetricInfo("bias", False, False, "largest |score change| when identity terms are swapped"),
    "bias_flip_rate": MetricInfo("bias", False, True, "share of swapped pairs whose label changed"),
    "bias_fpr_gap": MetricInfo("bias", False, True, "largest gap between one identity term's FPR and the overall FPR"),
    "bias_worst_term_fpr": MetricInfo("bias", False, True, "the FPR of the identity term with the highest FPR on the swapped copy"),
    "bias_fpr_change": MetricInfo("bias", False, True, "largest rise of one identity term's FPR caused by the swap itself (the same items before and after)"),
}

# Figures a gate may take per label: ``student.f1[care]``.
PER_LABEL_METRICS = ("precision", "recall", "f1")

_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


# Label sets' micro figures, whose 0/0 (no label in gold, none answered) is not measured.
MICRO_RATES = frozenset({"micro_f1", "micro_f1_ci_low", "micro_f1_ci_high", "micro_precision", "micro_recall"})


@dataclass(frozen=True)
class Operand:
    subject: Literal["student", "teacher"]
    student: str | None  # None: the best student
    metric: str
    label: str | None = None  # a per-label figure: that label's precision, recall or F1

    def __str__(self) -> str:
        who = self.subject if self.student is None else f"student[{written(self.student)}]"
        return f"{who}.{self.metric}" + (f"[{written(self.label)}]" if self.label is not None else "")

    def value(self, figures: dict | None) -> float | None:
        """This operand's figure from one predictor's figures (``per_label`` for a label)."""
        if figures is None:
            return None
        if self.label is None:
            per = figures.get("per_label")
            # (figures stored before per-label "predicted" counts existed are judged as they were)
            if self.metric in MICRO_RATES and isinstance(per, dict) and per and all(isinstance(r, dict) and "support" in r and "predicted" in r for r in per.values()):
                # label sets: 0/0 over every (item, label) decision is not measured either: micro recall
                # where no gold set holds a label, precision where none was answered, F1 where neither
                gold = sum(int(r.get("support") or 0) for r in per.values())
                said = sum(int(r.get("predicted") or 0) for r in per.values())
                if {"micro_recall": gold, "micro_precision": said}.get(self.metric, gold + said) == 0:
                    return None
            return figures.get(self.metric)
        row = (figures.get("per_label") or {}).get(self.label) or {}
        # 0/0 is not measured, not the 0 the figures hold: recall of a label no gold item has,
        # precision of one never answered (label sets count those), F1 of one neither has
        if (self.metric in ("recall", "f1") and row.get("support") == 0 and (self.metric == "recall" or not row.get("predicted"))) or (
            self.metric == "precision" and row.get("predicted") == 0
        ):
            return None
        return row.get(self.metric)


@dataclass(frozen=True)
class Gate:
    """One parsed gate: ``left op (factor * right + offset | threshold)`` on one or every test set."""

    text: str
    left: Operand
    op: str
    threshold: float | None = None
    right: Operand | None = None
    factor: float = 1.0
    offset: float = 0.0
    test_set: str | None = None

    @property
    def scope(self) -> Scope:
        return METRICS[self.left.metric].scope

    def operands(self) -> list[Operand]:
        return [self.left] + ([self.right] if self.right is not None else [])


class GateSyntaxError(ValueError):
    pass


# A [name] or [label]: quoted (double or single quotes; a backslash makes the next character
# literal), which may hold any character, or bare up to the first "]".
_BRACKET = r"""\[\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\]|\[[^\]]*\]"""
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<ref>(?:student|teacher)(?:{_BRACKET})?\.[A-Za-z0-9_]+(?:{_BRACKET})?)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<cmp>>=|<=|==|!=|=>|=<|>|<)
  | (?P<arith>[*+\-])
  | (?P<word>\S+)
    """,
    re.X | re.S,
)
_REF = re.compile(rf"(?P<subject>student|teacher)(?P<name>{_BRACKET})?\.(?P<metric>[A-Za-z0-9_]+)(?P<label>{_BRACKET})?", re.S)
_QUOTED = re.compile(r"""\s*(?P<q>["'])(?P<body>(?:[^"'\\]|\\.|(?!(?P=q))["'])*)(?P=q)\s*""", re.S)


def _bracket(raw: str | None, what: str, text: str) -> str | None:
    """The name inside a matched ``[...]``: a quoted one (the whole of it between quotes) exactly,
    escapes undone; a bare one with its runs of spaces made one; None without brackets."""
    if raw is None:
        return None
    inner = raw[1:-1]
    quoted = _QUOTED.fullmatch(inner)
    if quoted is not None:
        value = re.sub(r"\\(.)", r"\1", quoted.group("body"), flags=re.S)
    else:  # a bare name may hold a quote too (``[it's]``, ``[']``)
        value = " ".join(inner.split())
    if not value.strip():
        raise GateSyntaxError(f"{text!r}: [] needs {what} inside the brackets")
    return value


def written(name: str) -> str:
    """``name`` as a gate writes it inside brackets: bare where that reads back the same, else quoted."""
    if name == " ".join(name.split()) and not re.search(r"[\[\]\"'\\]", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, end) of each token but spaces."""
    return [(m.lastgroup or "", m.group(), m.end()) for m in _TOKEN.finditer(text) if m.lastgroup != "space"]


def parse_gate(text: str) -> Gate:
    """Parse one gate expression; a GateSyntaxError says what was expected where."""
    if not isinstance(text, str) or not text.strip():
        raise GateSyntaxError("a gate is an expression such as 'student.accuracy >= 0.98 * teacher.accuracy on test.balanced'")
    raw = text.strip()
    text = " ".join(text.split())
    found = _tokens(raw)
    test_set = None
    ons = [i for i, (kind, word, _) in enumerate(found) if (kind, word) == ("word", "on")]  # an "on" inside [...] is part of a ref
    if ons:
        test_set = raw[found[ons[0]][2] :].strip()
        quoted = _QUOTED.fullmatch(test_set)
        if quoted is not None:  # a name with spaces: on "my test"
            test_set = re.sub(r"\\(.)", r"\1", quoted.group("body"), flags=re.S)
        if not test_set.strip() or (quoted is None and len(test_set.split()) > 1):
            raise GateSyntaxError(f"{text!r}: 'on' must be followed by one test set name, at the end (in quotes if it holds spaces)")
        found = found[: ons[0]]
    toks = [(kind, word) for kind, word, _ in found]
    pos = 0

    def peek(kind: str | None = None) -> tuple[str, str] | None:
        if pos < len(toks) and (kind is None or toks[pos][0] == kind):
            return toks[pos]
        return None

    def take(kind: str, what: str) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or tok[0] != kind:
            found = f"{tok[1]!r}" if tok else "the end"
            raise GateSyntaxError(f"{text!r}: expected {what}, found {found}")
        pos += 1
        return tok[1]

    def number(what: str) -> float:
        """A number, with an optional sign: ``-0.1``, ``+2``, ``-1e-3``."""
        nonlocal pos
        sign = 1.0
        if peek("arith") and toks[pos][1] in "+-" and pos + 1 < len(toks) and toks[pos + 1][0] == "num":
            sign = -1.0 if toks[pos][1] == "-" else 1.0
            pos += 1
        written_ = take("num", what)
        value = sign * float(written_)
        if not math.isfinite(value):
            raise GateSyntaxError(f"{text!r}: {written_} is too large a number")
        return value

    def operand(raw: str) -> Operand:
        r = _REF.fullmatch(raw)
        if r is None:  # the tokenizer only yields refs that match; kept for safety
            raise GateSyntaxError(f"{text!r}: {raw!r} is not student.METRIC or teacher.METRIC")
        if r.group("subject") == "teacher" and r.group("name") is not None:
            raise GateSyntaxError(f"{text!r}: only student takes a [name]")
        name = _bracket(r.group("name"), "a student name", text)
        label = _bracket(r.group("label"), "a label", text)
        return Operand(r.group("subject"), name, r.group("metric"), label)  # type: ignore[arg-type]

    def signed_num() -> bool:
        return bool(peek("num")) or (bool(peek("arith")) and toks[pos][1] in "+-" and pos + 1 < len(toks) and toks[pos + 1][0] == "num")

    left = operand(take("ref", "student.METRIC or teacher.METRIC"))
    op = take("cmp", "a comparison (>=, <=, >, <)")
    if op not in _OPS:
        raise GateSyntaxError(f"{text!r}: comparison {op!r} is not allowed; use >=, <=, > or <")
    threshold: float | None = None
    right: Operand | None = None
    factor, offset = 1.0, 0.0
    if signed_num():
        value = number("a number")
        if peek("arith") and toks[pos][1] == "*":
            take("arith", "*")
            factor = value
            right = operand(take("ref", "student.METRIC or teacher.METRIC after '*'"))
        else:
            threshold = value
    else:
        right = operand(take("ref", "a number or student.METRIC / teacher.METRIC"))
        if peek("arith") and toks[pos][1] == "*":
            take("arith", "*")
            factor = number("a number after '*'")
    if right is not None and peek("arith") and toks[pos][1] in "+-":
        sign = -1.0 if take("arith", "+ or -") == "-" else 1.0
        offset = sign * number("a number after + or -")
    if pos != len(toks):
        raise GateSyntaxError(f"{text!r}: unexpected {toks[pos][1]!r}; a gate is LEFT OP RIGHT [on TEST_SET]")
    return Gate(text, left, op, threshold, right, factor, offset, test_set)


def check_gate(
    gate: Gate,
    *,
    test_sets: dict[str, str],
    students: list[str],
    has_bias_pair: bool,
    labels: list[str] | None = None,
    multi_label: bool = False,
    has_identity_terms: bool = True,
) -> None:
    """Check a parsed gate against the spec: metrics, test sets, students and labels must exist,
    and each metric must be one the task's shape measures (with ``labels``).

    ``test_sets`` maps each test set name to its purpose (quality | bias). With label sets
    (``multi_label``) a bias figure may name a label too (each label is in turn the positive class).
    """
    shape: Shape | None = "multi_label" if multi_label else None if labels is None else "binary" if len(labels) == 2 else "multi_class"
    for o in gate.operands():
        info = METRICS.get(o.metric)
        if info is None:
            raise ValueError(f"{gate.text!r}: unknown metric {o.metric!r}; known metrics: {sorted(METRICS)}")
        if shape is not None and o.label is None and shape not in info.shapes:
            what = {"binary": "a task with two labels", "multi_class": "a task with more than two labels", "multi_label": "a multi-label task"}[shape]
            also = f"; per label: {o.metric}[LABEL]" if o.metric in PER_LABEL_METRICS else ""
            raise ValueError(f"{gate.text!r}: {o.metric} is not measured on {what}; its metrics: {sorted(m for m, i in METRICS.items() if shape in i.shapes)}{also}")
        if o.metric == "worst_identity_fpr" and not has_identity_terms:
            raise ValueError(f"{gate.text!r}: worst_identity_fpr needs evaluation.identity_terms (or evaluation.bias_pair, which brings the default terms)")
        if o.label is not None:
            if o.metric not in PER_LABEL_METRICS and not (multi_label and info.scope == "bias"):
                also = "; bias figures take a label on multi-label tasks" if info.scope == "bias" else ""
                raise ValueError(f"{gate.text!r}: {o.metric} is not measured per label; per-label figures are {', '.join(PER_LABEL_METRICS)}{also}")
            if labels is not None and o.label not in labels:
                raise ValueError(f"{gate.text!r}: unknown label {o.label!r}; the task's labels are {labels}")
        if o.subject == "teacher" and not info.teacher:
            raise ValueError(f"{gate.text!r}: teacher.{o.metric} is not measured (the teacher gives labels, not probabilities)")
        if o.student is not None and o.student not in students:
            raise ValueError(f"{gate.text!r}: unknown student {o.student!r}; the spec's students are {students}")
        if info.scope == "bias" and not has_bias_pair:
            raise ValueError(f"{gate.text!r}: {o.metric} needs evaluation.bias_pair (an original and an identity-swapped test set)")
    scopes = {METRICS[o.metric].scope for o in gate.operands()}
    if len(scopes) > 1:
        raise ValueError(f"{gate.text!r}: compares a {' and a '.join(sorted(scopes))} metric; compare like with like")
    if gate.left.subject != "student" and (gate.right is None or gate.right.subject != "student"):
        raise ValueError(f"{gate.text!r}: a gate judges a student; put student.METRIC on one side")
    if gate.test_set is not None:
        if gate.test_set not in test_sets:
            raise ValueError(f"{gate.text!r}: unknown test set {gate.test_set!r}; the spec's test sets are {sorted(test_sets)}")
        if scopes != {"test"}:
            raise ValueError(f"{gate.text!r}: {gate.left.metric} is not measured per test set; drop 'on {gate.test_set}'")
    elif scopes == {"test"} and "quality" not in test_sets.values():
        raise ValueError(f"{gate.text!r}: no quality test set to judge it on; add one to test_sets or name one with 'on'")
