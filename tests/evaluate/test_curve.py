"""Learning-curve maths on points with a known curve."""

import math

import numpy as np
import pytest

from graduate.evaluate.curve import CurveFit, fit_saturating, marginal_value, plot_curve, summarise


def _points(a=0.9, b=0.8, c=0.5, sizes=(50, 100, 250, 500, 750, 1000), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for _ in range(3):
            rows.append((n / 1000, n, a - b * n ** (-c) + rng.normal(0, noise)))
    return summarise(rows)


def test_fit_recovers_a_known_curve():
    fit = fit_saturating(_points(noise=0.002))
    assert fit.ok
    assert fit.a == pytest.approx(0.9, abs=0.02)
    assert fit.predict(4000) == pytest.approx(0.9 - 0.8 * 4000**-0.5, abs=0.01)


def test_advice_prices_more_labels_or_says_stop():
    fit = fit_saturating(_points())
    go = marginal_value(fit, 1000, 1000, cost_per_item_usd=0.002, min_gain_points=0.5)
    gain = 100 * (fit.predict(2000) - fit.predict(1000))
    assert not go.stop and go.expected_gain_points == pytest.approx(gain)
    assert go.text == f"labelling 1,000 more items is expected to add {gain:.2f} points and cost $2.00"
    stop = marginal_value(fit, 1000, 1000, cost_per_item_usd=0.002, min_gain_points=5.0)
    assert stop.stop and stop.text.startswith("stop labelling: 1,000 more items are expected to add only")


def test_too_few_sizes_cannot_be_fitted():
    fit = fit_saturating(_points(sizes=(100, 200)))
    assert not fit.ok and "at least 3" in fit.message
    advice = marginal_value(fit, 200, 200, 0.001, 0.5)
    assert advice.expected_gain_points is None and advice.text.startswith("cannot say")


def test_summarise_gives_mean_and_spread():
    points = summarise([(0.5, 10, 0.7), (0.5, 10, 0.8), (1.0, 20, 0.9)])
    assert [p.size for p in points] == [10, 20]
    assert points[0].mean == pytest.approx(0.75) and points[0].std == pytest.approx(np.std([0.7, 0.8], ddof=1))
    assert points[1].std == 0.0


def test_plot_writes_png_and_svg(tmp_path):
    pts = _points()
    plot_curve(pts, fit_saturating(pts), title="t", metric="accuracy", png=tmp_path / "c.png", svg=tmp_path / "c.svg", teacher_score=0.88)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:1000]
    plot_curve(pts[:2], CurveFit(False, message="x"), title="t", metric="f1", png=tmp_path / "d.png", svg=tmp_path / "d.svg")
    assert (tmp_path / "d.png").exists()


def test_a_plateau_on_its_bound_is_reported_as_not_reached() -> None:
    from graduate.evaluate.curve import CurvePoint, fit_saturating

    sizes = [250, 500, 1000, 2000, 4000]
    # Straight in log n: no sign of levelling off; the fit runs into its bound of 1.0.
    straight = [CurvePoint(s / 4000, s, 0.60 + 0.05 * math.log2(s / 250), 0.0, [0.60 + 0.05 * math.log2(s / 250)] * 3) for s in sizes]
    fit = fit_saturating(straight)
    assert fit.ok and not fit.plateau_found and fit.plateau_text() == "not reached within the measured sizes"
    # A curve that flattens at 0.9: found, near 0.9.
    curved = [CurvePoint(s / 4000, s, 0.9 - 2.0 * s**-0.5, 0.0, [0.9 - 2.0 * s**-0.5] * 3) for s in sizes]
    fit = fit_saturating(curved)
    assert fit.plateau_found and abs(fit.a - 0.9) < 0.01
