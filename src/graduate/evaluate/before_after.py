"""What a retraining did to each slice and identity term: for every student trained more than once,
its latest training against the one before, each as last assessed (the ``assessment`` an evaluation
run stores). Rows per quality-set slice (accuracy; multi-label: micro-F1) and per identity term of
the bias pair (false-positive rate on the perturbed set, and the mean absolute score shift), so a
data-loop step (graduate augment / synth / select, then graduate run) shows where it helped."""

from __future__ import annotations

from typing import Any, Iterable


def _latest_by_training(assessments: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{student: {train run id: the latest assessment that scored that training}} in training order."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a in assessments:  # oldest first
        for name, info in (a.get("students") or {}).items():
            rid = (info or {}).get("run_id")
            if not rid:
                continue
            by_run = out.setdefault(name, {})
            by_run.pop(rid, None)  # re-assessed: it moves to the end, keeping training order by last assessment
            by_run[rid] = a
    return out


def _slice_metric(row: dict[str, Any]) -> str | None:
    return next((m for m in ("accuracy", "micro_f1") if row.get(m) is not None), None)


def slice_changes(assessments: Iterable[dict[str, Any]], *, min_size: int = 20) -> list[dict[str, Any]]:
    """Rows {student, test_set, slice, n, metric, before, after, change}, for slices of at least
    ``min_size`` items in both assessments and identity terms with that many negatives; largest
    change first."""
    rows: list[dict[str, Any]] = []
    for name, by_run in _latest_by_training(assessments).items():
        if len(by_run) < 2:
            continue
        (_, before), (_, after) = list(by_run.items())[-2:]
        for ts, t_after in (after.get("test_sets") or {}).items():
            if t_after.get("purpose") not in (None, "quality"):
                continue
            s_after = ((t_after.get("students") or {}).get(name) or {}).get("slices") or []
            s_before = {(r["kind"], r["name"]): r for r in ((((before.get("test_sets") or {}).get(ts) or {}).get("students") or {}).get(name) or {}).get("slices") or []}
            for r in s_after:
                b = s_before.get((r["kind"], r["name"]))
                metric = _slice_metric(r)
                if b is None or metric is None or b.get(metric) is None or min(r.get("n", 0), b.get("n", 0)) < min_size:
                    continue
                rows.append({"student": name, "test_set": ts, "slice": f"{r['kind']}: {r['name']}", "n": r["n"], "metric": metric,
                             "before": float(b[metric]), "after": float(r[metric]), "change": float(r[metric]) - float(b[metric])})  # fmt: skip
        b_bias = ((before.get("bias") or {}).get("students") or {}).get(name)
        a_bias = ((after.get("bias") or {}).get("students") or {}).get(name)
        if b_bias and a_bias:
            pert = (after.get("bias") or {}).get("perturbed", "bias")
            # label sets: each label's figures side by side (the headline label may differ between runs)
            b_views = b_bias.get("per_label") or {"": b_bias}
            for lab, a_fig in (a_bias.get("per_label") or {"": a_bias}).items():
                b_fig = b_views.get(lab)
                if b_fig is not None:
                    rows += _bias_rows(name, pert, b_fig, a_fig, f" [{lab}]" if lab else "", min_size)
    return sorted(rows, key=lambda r: (r["student"], -abs(r["change"])))


def _bias_rows(name: str, pert: str, b_bias: dict[str, Any], a_bias: dict[str, Any], suffix: str, min_size: int) -> list[dict[str, Any]]:
    """The bias pair's rows (mean |score shift|, each term's FPR on the swapped copy) of one student,
    before and after; ``suffix`` names the label for label sets."""
    rows: list[dict[str, Any]] = []
    if a_bias.get("mean_abs_shift") is not None and b_bias.get("mean_abs_shift") is not None:
        rows.append({"student": name, "test_set": pert, "slice": "all pairs" + suffix, "n": a_bias.get("pairs"), "metric": "mean |score shift|",
                     "before": float(b_bias["mean_abs_shift"]), "after": float(a_bias["mean_abs_shift"]),
                     "change": float(a_bias["mean_abs_shift"]) - float(b_bias["mean_abs_shift"])})  # fmt: skip
    b_terms = {t["term"]: t for t in b_bias.get("terms") or []}
    for t in a_bias.get("terms") or []:
        bt = b_terms.get(t["term"])
        if bt is None or t.get("fpr_perturbed") is None or bt.get("fpr_perturbed") is None:
            continue
        if min(t.get("negatives_perturbed", 0), bt.get("negatives_perturbed", 0)) < min_size:
            continue
        rows.append({"student": name, "test_set": pert, "slice": f"identity: {t['term']}{suffix}", "n": t["negatives_perturbed"], "metric": "false-positive rate",
                     "before": float(bt["fpr_perturbed"]), "after": float(t["fpr_perturbed"]),
                     "change": float(t["fpr_perturbed"]) - float(bt["fpr_perturbed"])})  # fmt: skip
    return rows
