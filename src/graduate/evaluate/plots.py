"""The report's plots (matplotlib, object API: no pyplot global state), each returned as an SVG
``data:`` URI so the HTML page needs no other file and makes no request. Text is drawn as paths,
so no font has to be found by the browser."""

from __future__ import annotations

import base64
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
TEACHER_COLOR = "#333333"


# A name with a character the font lacks (a control character, a rare script) is drawn as a box;
# matplotlib's warning about it would only be noise on the console.
MISSING_GLYPH = r"Glyph \d+ .*missing from font"


@contextmanager
def _figure(width: float, height: float) -> Iterator[Any]:
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    # text.parse_math off: a label, student or term is shown as written ('$', '$$' would be read as mathtext and fail)
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "graduate", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "text.parse_math": False}):
        fig = Figure(figsize=(width, height), dpi=100)
        FigureCanvasSVG(fig)
        yield fig


def _uri(fig: Any) -> str:
    import io

    from matplotlib import rc_context

    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "graduate"}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=MISSING_GLYPH, category=UserWarning)
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def reliability_plot(curves: dict[str, dict[str, Any]], *, title: str) -> str | None:
    """One line per predictor: mean predicted probability against the observed frequency."""
    curves = {k: v for k, v in curves.items() if v and v.get("curve")}
    if not curves:
        return None
    with _figure(4.6, 3.6) as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1, label="perfectly calibrated")
        for i, (name, cal) in enumerate(curves.items()):
            xs = [p["mean_predicted"] for p in cal["curve"]]
            ys = [p["fraction_positive"] for p in cal["curve"]]
            ece = cal.get("ece")
            ax.plot(xs, ys, marker="o", markersize=4, color=COLORS[i % len(COLORS)], label=f"{name} (ECE {ece:.3f})" if ece is not None else name)
        target = next(iter(curves.values())).get("target") or "P(positive)"
        ax.set_xlabel(f"mean predicted {target}")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)
        return _uri(fig)


def confusion_plot(matrices: dict[str, list[list[int]]], labels: Sequence[str], *, title: str) -> str | None:
    """Small multiples: one heatmap per predictor, counts written in the cells (rows: gold).

    Panels grow with the number of labels and the length of their names, at most three to a
    row, with the predicted labels slanted, so no tick label runs into the next panel."""
    matrices = {k: v for k, v in matrices.items() if v}
    if not matrices:
        return None
    k = len(matrices)
    n = len(labels)
    longest = max((len(str(lab)) for lab in labels), default=1)
    panel = max(2.3, 0.45 * n + 0.07 * longest + 1.0)
    per_row = min(k, 3)
    rows = (k + per_row - 1) // per_row
    slant = n > 2 or longest > 5
    with _figure(panel * per_row + 0.4, (panel + (0.06 * longest if slant else 0.0)) * rows + 0.4) as fig:
        fig.set_layout_engine("constrained")
        axes = fig.subplots(rows, per_row, squeeze=False).ravel()
        for ax in axes[k:]:
            ax.set_visible(False)
        for ax, (name, m) in zip(axes, matrices.items()):
            arr = np.asarray(m, dtype=float)
            norm = arr / np.maximum(arr.sum(axis=1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            for i in range(arr.shape[0]):
                for j in range(arr.shape[1]):
                    ax.text(j, i, f"{int(arr[i, j])}", ha="center", va="center", color="white" if norm[i, j] > 0.6 else "black", fontsize=9 if n <= 6 else 7)
            ax.set_xticks(range(n), labels=list(labels), rotation=40 if slant else 0, ha="right" if slant else "center", rotation_mode="anchor")
            ax.set_yticks(range(n), labels=list(labels))
            ax.set_xlabel("predicted")
            ax.set_ylabel("gold")
            ax.set_title(name, fontsize=9)
            ax.spines[:].set_visible(False)
        fig.suptitle(title, fontsize=10)
        return _uri(fig)


def ladder_plot(points: dict[str, dict[str, tuple[float | None, list[float] | None]]], teacher: dict[str, float | None], *, metric: str) -> str | None:
    """Per test set: each student's figure with its bootstrap interval, and the teacher's as a line."""
    sets = list(teacher)
    students = list(points)
    if not sets or not students:
        return None
    with _figure(max(4.0, 1.6 * len(sets) + 1.5), 3.4) as fig:
        ax = fig.add_subplot()
        width = 0.8 / max(len(students), 1)
        for i, name in enumerate(students):
            xs, ys, lo, hi = [], [], [], []
            for j, ts in enumerate(sets):
                val, ci = points[name].get(ts, (None, None))
                if val is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(val)
                lo.append(val - ci[0] if ci else 0.0)
                hi.append(ci[1] - val if ci else 0.0)
            ax.bar(xs, ys, width=width * 0.9, color=COLORS[i % len(COLORS)], label=name, yerr=[lo, hi], capsize=3)
        for j, ts in enumerate(sets):
            if teacher[ts] is not None:
                ax.hlines(teacher[ts], j - 0.45, j + 0.45, colors=TEACHER_COLOR, linestyles="--", linewidth=1.5, label="teacher" if j == 0 else None)
        ax.set_xticks(range(len(sets)), labels=sets)
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.05)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        return _uri(fig)


def cost_latency_plot(rows: list[dict[str, Any]]) -> str | None:
    """Two log-scale bar charts: cost per 1,000 items and single-item latency (p50 bar, p99 tick)."""
    rows = [r for r in rows if r.get("cost_per_1k") is not None or r.get("latency_p50_ms") is not None]
    if not rows:
        return None
    with _figure(8.0, 2.9) as fig:
        a1, a2 = fig.subplots(1, 2)
        names = [r["name"] for r in rows]
        colors = [TEACHER_COLOR if r.get("teacher") else COLORS[i % len(COLORS)] for i, r in enumerate(rows)]
        costs = [r.get("cost_per_1k") or 0.0 for r in rows]
        a1.barh(names, costs, color=colors)
        a1.set_xscale("log")
        a1.set_xlabel("USD per 1,000 items (log scale)")
        a1.invert_yaxis()
        for y, c in enumerate(costs):
            if c:
                a1.text(c, y, f" ${c:.2g}", va="center", fontsize=7)
        lat = [r.get("latency_p50_ms") for r in rows]
        p99 = [r.get("latency_p99_ms") for r in rows]
        a2.barh(names, [x or 0.0 for x in lat], color=colors)
        for y, (x, hi) in enumerate(zip(lat, p99)):
            if hi:
                a2.plot([hi], [y], marker="|", markersize=14, color="black")
            if x is None:
                a2.text(0.0, y, " not measured", va="center", fontsize=7, transform=a2.get_yaxis_transform())
        if any(x for x in lat):
            a2.set_xscale("log")
        a2.set_xlabel("ms per item, one at a time (bar p50, tick p99)")
        a2.invert_yaxis()
        a2.set_yticks(range(len(names)), labels=[""] * len(names))
        return _uri(fig)


def bias_plot(terms: dict[str, list[dict[str, Any]]], overall: dict[str, float | None], *, side: str = "perturbed", min_size: int = 1) -> str | None:
    """False-positive rate per identity term, one bar group per term, a line per student's overall FPR."""
    names = [n for n, t in terms.items() if t]
    if not names:
        return None
    term_names = [t["term"] for t in terms[names[0]]]
    with _figure(max(6.0, 0.45 * len(term_names) * max(len(names), 1) + 1.5), 3.2) as fig:
        ax = fig.add_subplot()
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            vals = [(t.get(f"fpr_{side}") if (t.get(f"negatives_{side}") or 0) >= min_size else None) for t in terms[name]]
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(term_names))]
            ax.bar(xs, [v if v is not None else 0.0 for v in vals], width=width * 0.9, color=COLORS[i % len(COLORS)], label=name)
            if overall.get(name) is not None:
                ax.axhline(overall[name], color=COLORS[i % len(COLORS)], linestyle="--", linewidth=1)
        ax.set_xticks(range(len(term_names)), labels=term_names, rotation=45, ha="right")
        ax.set_ylabel(f"false-positive rate ({side})")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
        return _uri(fig)


def curve_plot(points: list[dict[str, Any]], *, metric: str, teacher: float | None = None) -> str | None:
    """A learning curve from stored points: size against mean score with standard-deviation bars."""
    pts = [p for p in points if p.get("size") is not None and p.get("mean") is not None]
    if not pts:
        return None
    with _figure(5.0, 3.3) as fig:
        ax = fig.add_subplot()
        ax.errorbar([p["size"] for p in pts], [p["mean"] for p in pts], yerr=[p.get("std") or 0.0 for p in pts], fmt="o-", capsize=4, color=COLORS[0])
        if teacher is not None:
            ax.axhline(teacher, color=TEACHER_COLOR, linestyle="--", label="teacher")
            ax.legend(fontsize=7)
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on a short range
        ax.set_xlabel("training items (log scale)")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        return _uri(fig)


def monitor_time_plot(buckets: list[dict[str, Any]]) -> str | None:
    """Production traffic over the monitor's window: agreement with the teacher (where compared)
    and the share of items routed to the teacher, per time bucket."""
    rows = [b for b in buckets if b.get("items")]
    if not rows:
        return None
    with _figure(6.0, 2.8) as fig:
        ax = fig.add_subplot()
        x = np.arange(len(buckets))
        agreement = [b["agreement"] if b.get("compared") and b.get("agreement") is not None else np.nan for b in buckets]
        share = [b["teacher_share"] if b.get("items") and b.get("teacher_share") is not None else np.nan for b in buckets]
        ax.plot(x, agreement, "o-", color=COLORS[0], label="agreement with teacher", markersize=3)
        ax.plot(x, share, "s--", color=COLORS[1], label="share sent to teacher", markersize=3)
        step = max(1, len(buckets) // 6)
        ax.set_xticks(x[::step], [str(b.get("start", ""))[5:16].replace("T", " ") for b in buckets][::step], fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("time bucket start (UTC)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        return _uri(fig)


def shares_plot(categories: Sequence[str], reference: Sequence[float], current: Sequence[float], *, xlabel: str) -> str | None:
    """Two distributions side by side: the training set (reference) and production traffic."""
    if not categories:
        return None
    with _figure(max(4.0, 0.45 * len(categories) + 2.0), 2.8) as fig:
        ax = fig.add_subplot()
        x = np.arange(len(categories))
        ax.bar(x - 0.2, reference, width=0.4, color=COLORS[0], label="training set")
        ax.bar(x + 0.2, current, width=0.4, color=COLORS[1], label="traffic")
        ax.set_xticks(x, list(categories), fontsize=7, rotation=30 if len(categories) > 5 else 0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
        return _uri(fig)
