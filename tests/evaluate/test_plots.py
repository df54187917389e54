"""The report's plots draw any name as written: labels, students, terms and titles holding '$'
(matplotlib's mathtext marker) or other odd text never stop a report."""

from __future__ import annotations

import base64
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graduate.evaluate.curve import CurveFit, CurvePoint, plot_curve
from graduate.evaluate.plots import confusion_plot, shares_plot


def svg(uri: str | None) -> str:
    assert uri is not None and uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")


def test_dollar_labels_are_drawn_not_read_as_mathtext(tmp_path: Path) -> None:
    # '$' and '$$' (price tiers) made matplotlib's mathtext parser raise at the report step.
    labels = ["$", "$$", "a $x$ b"]
    out = svg(confusion_plot({"student $1": [[1, 0, 0], [0, 2, 0], [0, 0, 3]]}, labels, title="$ tiers"))
    assert "<svg" in out
    assert svg(shares_plot(labels, [0.2, 0.3, 0.5], [0.1, 0.4, 0.5], xlabel="$"))
    points = [CurvePoint(fraction=n / 400, size=n, mean=0.6 + n / 1e4, std=0.01, scores=[0.6]) for n in (100, 200, 400)]
    plot_curve(points, CurveFit(ok=True, a=0.7, b=1.0, c=0.5), title="$$", metric="$", png=tmp_path / "c.png", svg=tmp_path / "c.svg", teacher_score=0.65)
    assert (tmp_path / "c.svg").stat().st_size > 0


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12), min_size=2, max_size=4, unique=True))
def test_any_label_names_draw(labels: list[str]) -> None:
    n = len(labels)
    matrix = [[int(i == j) for j in range(n)] for i in range(n)]
    assert "<svg" in svg(confusion_plot({"s": matrix}, labels, title=labels[0]))
