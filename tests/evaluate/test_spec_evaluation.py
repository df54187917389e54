"""Bad evaluation input is a clear error when the spec is validated, before any work starts."""

import csv
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from graduate import Project
from graduate.errors import SpecError
from graduate.evaluate.criteria import Gate
from graduate.spec import parse_spec
from graduate.store.schema import examples, teacher_calls

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny" / "graduate.yaml"


def raw() -> dict:
    return yaml.safe_load(FIXTURE.read_text())


def test_a_gate_on_identity_terms_the_spec_never_declares_is_a_spec_error():
    r = raw()
    r["gates"] = ["student.worst_identity_fpr <= 0.1"]
    with pytest.raises(SpecError, match=r"gates\[0\]: .*worst_identity_fpr needs evaluation.identity_terms"):
        parse_spec(r)
    r["evaluation"] = {"identity_terms": ["gay", "muslim"]}
    assert parse_spec(r).parsed_gates[0].left.metric == "worst_identity_fpr"


def test_gates_become_typed_objects_and_round_trip_as_text():
    r = raw()
    r["gates"] = ["student.accuracy >= 0.98 * teacher.accuracy on test.balanced", "student[majority].latency_p99_ms <= 20"]
    spec = parse_spec(r)
    assert all(isinstance(g, Gate) for g in spec.parsed_gates)
    assert spec.parsed_gates[1].left.student == "majority"
    again = parse_spec(spec.model_dump(mode="json", exclude_unset=True))
    assert [g.text for g in again.parsed_gates] == r["gates"]


@pytest.mark.parametrize(
    "gate, message",
    [
        ("student.acurracy >= 0.9", "gates[0]: 'student.acurracy >= 0.9': unknown metric 'acurracy'; known metrics: ["),
        ("student.accuracy >= 0.9 on test.nowhere", "unknown test set 'test.nowhere'; the spec's test sets are ['test.balanced']"),
        ("student[bert].accuracy >= 0.9", "unknown student 'bert'; the spec's students are ['majority', 'tfidf-logreg']"),
        ("student.accuracy >> 0.9", "gates[0]: 'student.accuracy >> 0.9': expected a number or student.METRIC"),
        ("student.bias_flip_rate <= 0.1", "needs evaluation.bias_pair"),
    ],
)
def test_bad_gates_name_the_gate_and_what_is_allowed(gate, message):
    r = raw()
    r["gates"] = [gate]
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(r, path="p/graduate.yaml")


def test_bias_pair_and_test_set_declarations_are_checked():
    r = raw()
    r["evaluation"] = {"bias_pair": {"original": "test.balanced", "perturbed": "nope"}}
    with pytest.raises(SpecError, match=re.escape("evaluation.bias_pair.original: give test set 'test.balanced' purpose: bias")):
        parse_spec(r)
    r = raw()
    r["data"].append({"name": "unlabelled", "path": "x.csv"})
    r["test_sets"].append({"name": "t2", "source": "unlabelled"})
    with pytest.raises(SpecError, match=re.escape("test_sets[1] 't2': data source 'unlabelled' has a gold_column")):
        parse_spec(r)
    r = raw()
    r["test_sets"][0]["version"] = 0
    with pytest.raises(SpecError, match=r"test_sets\[0\]\.version"):
        parse_spec(r)
    r = raw()
    r["test_sets"][0]["purpose"] = "bias"
    with pytest.raises(SpecError, match="needs at least one test set of purpose quality"):
        parse_spec(r)


def test_gold_labels_the_task_does_not_have_stop_the_run_before_any_work(tiny_project):
    csv_path = tiny_project / "comments.csv"
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    # a third gold value on a test.balanced row: '2' maps to no label through gold_values {"0": ok, "1": bad}
    target = next(i for i, r in enumerate(rows) if "test.balanced" in r["subsets"])
    rows[target]["is_bad"] = "2"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        line = next(reader.line_num for i, _ in enumerate(reader) if i == target)

    proj = Project.load(tiny_project)
    with pytest.raises(SpecError) as exc:
        proj.run()
    msg = str(exc.value)
    assert "test_sets[0] (test.balanced)" in msg and f"comments.csv:{line}: gold value '2'" in msg and "gold_values" in msg
    with proj.engine.connect() as conn:  # nothing was imported or loaded
        assert conn.execute(select(func.count()).select_from(teacher_calls)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(examples)).scalar_one() == 0
