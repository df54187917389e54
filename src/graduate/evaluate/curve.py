"""Learning curves: quality against training-set size, a saturating fit, and what more labels buy.

Pure functions over (size, score) points: ``fit_saturating`` fits ``score = a - b * n^(-c)``
(scipy's ``curve_fit``), ``marginal_value`` turns the fit into the one-line answer, and
``plot_curve`` draws the points with error bars and the fit (matplotlib, no global state).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np


@dataclass
class CurvePoint:
    fraction: float
    size: int
    mean: float
    std: float
    scores: list[float]


PLATEAU_BOUND = 1.0


@dataclass
class CurveFit:
    ok: bool
    a: float | None = None  # the plateau: the score with unlimited data
    b: float | None = None
    c: float | None = None
    message: str = ""

    @property
    def plateau_found(self) -> bool:
        """False when the fitted plateau sits on its bound (1.0): the measured sizes have not begun
        to level off, so the fit can extrapolate a little but cannot say where the curve flattens."""
        return self.ok and self.a is not None and self.a < PLATEAU_BOUND - 1e-3

    def plateau_text(self) -> str:
        if not self.ok or self.a is None:
            return "unknown"
        return f"{self.a:.3f}" if self.plateau_found else "not reached within the measured sizes"

    def predict(self, n: float) -> float | None:
        if not self.ok or self.a is None or self.b is None or self.c is None:
            return None
        return float(self.a - self.b * n ** (-self.c))


@dataclass
class Advice:
    more_items: int
    expected_gain_points: float | None  # percentage points of the metric
    cost_usd: float | None
    stop: bool
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(rows: Sequence[tuple[float, int, float]]) -> list[CurvePoint]:
    """(fraction, size, score) per trained student -> one point per fraction: mean, std, the scores."""
    by: dict[float, list[tuple[int, float]]] = {}
    for frac, size, s in rows:
        by.setdefault(frac, []).append((size, s))
    out = []
    for frac in sorted(by):
        sizes = [n for n, _ in by[frac]]
        scores = [s for _, s in by[frac]]
        out.append(CurvePoint(frac, int(round(float(np.mean(sizes)))), float(np.mean(scores)), float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0, scores))
    return out


def fit_saturating(points: Sequence[CurvePoint]) -> CurveFit:
    """Fit ``a - b * n^(-c)`` (a <= 1, b >= 0, 0 < c <= 2) by least squares over every seed's score."""
    from scipy.optimize import OptimizeWarning, curve_fit

    if len(points) < 3:
        return CurveFit(False, message=f"{len(points)} sizes; a fit needs at least 3")
    # Every seed's score is a point: sizes with more agreeing seeds count more, none dominates
    # because its seeds happened to agree exactly (a zero spread would be an infinite weight).
    n = np.array([p.size for p in points for _ in p.scores], dtype=float)
    y = np.array([s for p in points for s in p.scores], dtype=float)

    def f(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return a - b * np.power(x, -c)

    try:
        with warnings.catch_warnings():
            # With as many sizes as parameters the covariance is undefined; only the fit is used.
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(f, n, y, p0=[min(1.0, y.max() + 0.02), 1.0, 0.5], bounds=([0.0, 0.0, 1e-3], [PLATEAU_BOUND, 1e3, 2.0]), maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        return CurveFit(False, message=f"the curve did not fit ({exc})")
    a, b, c = (float(v) for v in params)
    if not all(math.isfinite(v) for v in (a, b, c)):
        return CurveFit(False, message="the curve did not fit (non-finite parameters)")
    return CurveFit(True, a, b, c, "fitted score = a - b * n^(-c)")


def marginal_value(
    fit: CurveFit, current_size: int, more_items: int, cost_per_item_usd: float | None, min_gain_points: float
) -> Advice:
    """The one-line answer: what ``more_items`` more labels are expected to add, and cost."""
    cost = None if cost_per_item_usd is None else cost_per_item_usd * more_items
    cost_text = f"${cost:,.2f}" if cost is not None else "an unknown amount (no priced teacher calls)"
    now, later = fit.predict(current_size), fit.predict(current_size + more_items)
    if now is None or later is None:
        return Advice(more_items, None, cost, False, f"cannot say what more labels would add: {fit.message}")
    gain = 100 * (later - now)
    if gain < min_gain_points:
        return Advice(
            more_items,
            gain,
            cost,
            True,
            f"stop labelling: {more_items:,} more items are expected to add only {gain:.2f} points "
            f"(under {min_gain_points:g}) for {cost_text}"
            + (f"; the curve levels off at {100 * fit.a:.1f}" if fit.plateau_found else ""),  # type: ignore[operator]
        )
    return Advice(more_items, gain, cost, False, f"labelling {more_items:,} more items is expected to add {gain:.2f} points and cost {cost_text}")


def plot_curve(
    points: Sequence[CurvePoint], fit: CurveFit, *, title: str, metric: str, png: Path, svg: Path, teacher_score: float | None = None
) -> None:
    """Quality against training-set size with standard-deviation error bars, the fit and the teacher."""
    import warnings

    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from graduate.evaluate.plots import MISSING_GLYPH

    with rc_context({"text.parse_math": False}), warnings.catch_warnings():  # names shown as written, never read as mathtext
        warnings.filterwarnings("ignore", message=MISSING_GLYPH, category=UserWarning)
        fig = Figure(figsize=(7, 4.5), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        n = np.array([p.size for p in points], dtype=float)
        ax.errorbar(n, [p.mean for p in points], yerr=[p.std for p in points], fmt="o", capsize=4, label="students (mean ± sd over seeds)")
        if fit.ok:
            grid = np.linspace(n.min(), n.max() * 2, 200)
            ax.plot(grid, [fit.predict(x) for x in grid], "-", alpha=0.7, label=f"fit {fit.a:.3f} - {fit.b:.2f}·n^-{fit.c:.2f}")
        if teacher_score is not None:
            ax.axhline(teacher_score, color="grey", linestyle="--", label=f"teacher {teacher_score:.3f}")
        ax.set_xscale("log")
        ax.set_xlabel("training items (log scale)")
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png)
        fig.savefig(svg)
