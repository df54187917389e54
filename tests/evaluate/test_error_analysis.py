"""The limitations sentences of the report, from an assessment's figures."""

from __future__ import annotations

from pathlib import Path

from graduate.evaluate.error_analysis import ErrorAnalysis, limitations
from graduate.spec.load import load_spec

EXAMPLE = Path(__file__).parents[2] / "examples" / "toxicity" / "graduate.yaml"


def _sentences(level: float, student_cost: float, teacher_cost: float) -> str:
    spec, _ = load_spec(EXAMPLE)
    spec.evaluation.confidence_level = level
    assessment = {
        "test_sets": {
            "test.balanced": {
                "n": 100,
                "students": {"s": {"accuracy": 0.9, "ci": {"accuracy": [0.85, 0.94]}, "ci_level": level}},
                "teacher": {"accuracy": 0.95, "answered": 100},
            }
        },
        "serving": {"students": {"s": {"cost_per_1k": student_cost, "latency_p50_ms": 1.0, "latency_p99_ms": 2.0}}, "teacher": {"cost_per_1k": teacher_cost}},
    }
    analysis = ErrorAnalysis("s", "run", ["test.balanced"], spec.task.labels, [], {}, {}, {})
    return " ".join(limitations(spec, assessment, analysis))


def test_the_interval_is_named_at_the_level_it_was_computed_at():
    # evaluation.confidence_level 0.9 gave 90% intervals that the report called "95% interval"
    assert "(90% interval 85.0%–94.0%)" in _sentences(0.9, 0.001, 1.0)
    assert "(95% interval" in _sentences(0.95, 0.001, 1.0)


def test_a_student_dearer_than_the_teacher_is_said_to_cost_more():
    # a CPU-heavy student beside a cheap teacher: the ratio 0.25 read "about 0 times less"
    text = _sentences(0.95, 0.04, 0.01)
    assert "about 4.0 times more." in text and "times less" not in text
    assert "about 1,000 times less." in _sentences(0.95, 0.001, 1.0)
