"""The cascade's trade-off: at each confidence threshold, the share of traffic the teacher answers,
the quality the cascade keeps, and what it costs; and the lowest teacher share that reaches a target.

``cascade_curve`` and ``suggest_threshold`` are pure functions over predictions (the student's
confidence and label, the teacher's label, gold where known). ``plan_cascade`` reads them from the
last evaluation run in the store; ``graduate serve-plan`` prints the result and writes it to
``PROJECT/.graduate/cascade_plan.json``.

The cascade answers an item with the student when its confidence is at least the threshold, else
with the teacher; an item whose teacher answer is missing or unparseable stays with the student,
as ``graduate serve`` does.

Multi-label tasks (``cascade_curve_sets``): the confidence is the least sure per-label decision
(``graduate.formats.labelset.confidence``, as the server computes it), quality against gold is
micro-F1 (from the true/false positives and false negatives the cascade's answers add up to;
``relative_accuracy`` is then the cascade's micro-F1 over the teacher's), and agreement is the
share of items whose whole set equals the teacher's.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

Metric = Literal["relative_accuracy", "agreement"]


@dataclass
class CascadePoint:
    threshold: float | None  # None: every item goes to the teacher
    teacher_share: float
    quality: float | None  # the plan's metric
    accuracy: float | None  # against gold, over items with gold and a teacher answer
    agreement: float | None  # with the teacher, over items with a teacher answer
    cost_per_1k_usd: float | None


def cascade_curve(
    confidence: Sequence[float],
    student_labels: Sequence[str],
    teacher_labels: Sequence[str | None],
    gold: Sequence[str | None] | None = None,
    *,
    metric: Metric = "relative_accuracy",
    teacher_cost_per_1k: float | None = None,
    student_cost_per_1k: float | None = None,
) -> list[CascadePoint]:
    """One point per distinct confidence (and one with every item to the teacher), lowest threshold first."""
    n = len(confidence)
    routed, has_gold = _routes(student_labels, teacher_labels, gold)
    gold_list = list(gold) if gold is not None else [None] * n

    def counts(pred: Sequence[str | None]) -> np.ndarray:
        """(n, 2): right answers and answers judged against gold."""
        return np.array([[float(h and p == g), float(h)] for p, g, h in zip(pred, gold_list, has_gold)]).reshape(n, 2)

    def accuracy(c: np.ndarray) -> float | None:
        return float(c[0] / c[1]) if c[1] > 0 else None

    return _curve(
        confidence, student_labels, teacher_labels, counts(routed), counts(student_labels), accuracy,
        metric=metric, teacher_cost_per_1k=teacher_cost_per_1k, student_cost_per_1k=student_cost_per_1k,
    )


def cascade_curve_sets(
    confidence: Sequence[float],
    student_sets: Sequence[str],
    teacher_sets: Sequence[str | None],
    gold: Sequence[str | None] | None,
    labels: list[str],
    *,
    metric: Metric = "relative_accuracy",
    teacher_cost_per_1k: float | None = None,
    student_cost_per_1k: float | None = None,
) -> list[CascadePoint]:
    """``cascade_curve`` for label sets (canonical strings): ``accuracy`` holds micro-F1 vs gold."""
    from graduate.formats import labelset

    n = len(confidence)
    routed, has_gold = _routes(student_sets, teacher_sets, gold)
    gold_list = list(gold) if gold is not None else [None] * n

    def counts(pred: Sequence[str | None]) -> np.ndarray:
        """(n, 3): true positives, false positives, false negatives per item against gold (0 without gold)."""
        out = np.zeros((n, 3))
        for i, (p, g) in enumerate(zip(pred, gold_list)):
            if has_gold[i]:
                ps, gs = labelset.decode(p, labels) or frozenset(), labelset.decode(g, labels) or frozenset()
                out[i] = (len(ps & gs), len(ps - gs), len(gs - ps))
        return out

    def micro_f1(c: np.ndarray) -> float | None:
        tp, fp, fn = c
        return float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) > 0 else None

    return _curve(
        confidence, student_sets, teacher_sets, counts(routed), counts(student_sets), micro_f1,
        metric=metric, teacher_cost_per_1k=teacher_cost_per_1k, student_cost_per_1k=student_cost_per_1k,
    )


def _routes(student: Sequence[str], teacher: Sequence[str | None], gold: Sequence[str | None] | None) -> tuple[list[str], np.ndarray]:
    """What the teacher route answers per item (the student's answer where the teacher has none),
    and which items are judged against gold (gold and a teacher answer)."""
    routed = [t if t is not None else s for s, t in zip(student, teacher)]
    has_teacher = np.array([t is not None for t in teacher], dtype=bool)
    has_gold = np.array([g is not None for g in (gold if gold is not None else [None] * len(student))], dtype=bool) & has_teacher
    return routed, has_gold


def _curve(
    confidence: Sequence[float],
    student: Sequence[str],
    teacher: Sequence[str | None],
    teacher_counts: np.ndarray,
    student_counts: np.ndarray,
    score: Callable[[np.ndarray], float | None],
    *,
    metric: Metric,
    teacher_cost_per_1k: float | None,
    student_cost_per_1k: float | None,
) -> list[CascadePoint]:
    """The curve from per-item gold counts that add up (``score`` turns a sum into the figure):
    with the k least confident items routed to the teacher, the counts are the teacher route's
    over those k plus the student's over the rest, read off cumulative sums."""
    conf = np.asarray(confidence, dtype=float)
    n = len(conf)
    if n == 0:
        return []
    conf = np.where(np.isnan(conf), -np.inf, conf)  # NaN >= any threshold is false: the server sends it to the teacher
    has_teacher = np.array([t is not None for t in teacher], dtype=bool)
    order = np.argsort(conf, kind="stable")
    conf_sorted = conf[order]

    def cum(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x[order], axis=0)])

    agree_t = cum(has_teacher)  # routed to the teacher: its own answer
    agree_s = cum(np.array([s == t for s, t in zip(student, teacher)], dtype=bool) & has_teacher)
    gold_t, gold_s = cum(teacher_counts), cum(student_counts)
    n_agree = int(has_teacher.sum())
    teacher_score = score(np.asarray(teacher_counts, dtype=float).sum(axis=0))
    points = []
    for thr in [float(v) for v in np.unique(conf_sorted) if v > -np.inf] + [None]:
        k = n if thr is None else int(np.searchsorted(conf_sorted, thr, side="left"))
        agreement = (agree_t[k] + agree_s[-1] - agree_s[k]) / n_agree if n_agree else None
        gold_score = score(gold_t[k] + gold_s[-1] - gold_s[k])
        quality = agreement if metric == "agreement" else (gold_score / teacher_score if gold_score is not None and teacher_score else None)
        share = k / n
        cost = share * teacher_cost_per_1k + (student_cost_per_1k or 0.0) if teacher_cost_per_1k is not None else None
        points.append(CascadePoint(thr, share, _f(quality), _f(gold_score), _f(agreement), cost))
    return points


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def suggest_threshold(points: Sequence[CascadePoint], target: float) -> CascadePoint | None:
    """The point with the smallest teacher share whose quality reaches ``target`` (ties: lower threshold)."""
    ok = [p for p in points if p.quality is not None and p.quality >= target - 1e-12]
    if not ok:
        return None
    return min(ok, key=lambda p: (p.teacher_share, math.inf if p.threshold is None else p.threshold))


@dataclass
class Guarantee:
    """A cascade threshold chosen so that agreement with the teacher is at least ``target`` with
    probability at least 1 - ``delta`` over new items like the calibration items."""

    calibration_set: str
    n: int
    target: float
    delta: float
    threshold: float | None  # None: no threshold passes; every item goes to the teacher
    teacher_share: float  # on the calibration items
    disagreements: int  # student answers that differ from the teacher's, among those it keeps
    agreement_bound: float  # the one-sided Clopper-Pearson lower bound on agreement at the threshold
    held_out: dict[str, dict[str, float | int | None]] = field(default_factory=dict)  # per test set: observed figures at the threshold
    per_class: bool = False  # the agreement holds within each teacher class (robust to class shares that move)
    missing_classes: list[str] = field(default_factory=list)  # per_class: task labels with no calibration item (no threshold can pass)


def agreement_lower_bound(disagreements: int, n: int, delta: float) -> float:
    """One-sided (1 - delta) Clopper-Pearson lower bound on the agreement rate 1 - p, from
    ``disagreements`` out of ``n`` (scipy's beta quantile gives the exact upper bound on p)."""
    from scipy.stats import beta

    if n <= 0:
        return 0.0
    if disagreements >= n:
        return 0.0
    upper = float(beta.ppf(1 - delta, disagreements + 1, n - disagreements))
    return max(0.0, 1.0 - upper)


def guaranteed_threshold(
    confidence: Sequence[float],
    student_labels: Sequence[str],
    teacher_labels: Sequence[str | None],
    *,
    target: float,
    delta: float,
    per_class: bool = False,
    classes: Sequence[str] | None = None,
) -> tuple[float | None, float, int, float]:
    """The lowest confidence threshold whose agreement with the teacher is at least ``target`` with
    probability 1 - ``delta`` (returns threshold, teacher share, disagreements kept, bound).

    An item the student keeps (confidence >= threshold) disagrees when its label differs from the
    teacher's; items sent to the teacher agree. Thresholds are tested from the most conservative
    (every item to the teacher) down, each by the Clopper-Pearson bound at level delta, and the scan
    stops at the first that fails: fixed-sequence testing, so the guarantee holds for the chosen one
    without a multiple-testing correction (Bates et al., "Distribution-free, risk-controlling
    prediction sets"; Angelopoulos et al., "Learn then Test"). Items without a teacher answer are
    left out (the server keeps them with the student, and nothing can be said of them).

    ``per_class``: the agreement must hold among the items of each teacher class (every class's
    bound at delta), so it holds for any mix of the classes, e.g. traffic whose class shares differ
    from the calibration items'; the bound returned is the lowest class's. No Bonferroni split of
    delta is needed (it sent more traffic to the teacher than the guarantee asks, the more so the
    more classes): a threshold passes only when every class passes (an intersection-union test),
    and each class's agreement only falls as the threshold does, so the scan goes past the
    threshold where the first class turns bad only if that one class's test, at delta, passes there.
    ``classes``: every class the traffic may hold (the task's labels); one with no calibration item
    has no agreement to bound, so no threshold passes (else the guarantee would be silent on it)."""
    keep = [i for i, t in enumerate(teacher_labels) if t is not None]
    n = len(keep)
    if n == 0:
        return None, 1.0, 0, 0.0
    conf = np.asarray([confidence[i] for i in keep], dtype=float)
    wrong = np.asarray([student_labels[i] != teacher_labels[i] for i in keep], dtype=bool)
    classes = sorted({str(teacher_labels[i]) for i in keep} | set(classes or ())) if per_class else ["*"]
    cls = np.asarray([classes.index(str(teacher_labels[i])) if per_class else 0 for i in keep])
    sizes = np.bincount(cls, minlength=len(classes))
    order = np.argsort(-conf, kind="stable")  # most confident first: lowering the threshold keeps more
    chosen: tuple[float | None, float, int, float] = (None, 1.0, 0, 1.0)
    disagree = np.zeros(len(classes), dtype=int)
    i = 0
    while i < n:
        c = conf[order[i]]
        if np.isnan(c):  # sorted last; NaN >= any threshold is false, so the server sends these to the teacher
            break
        j = i
        while j < n and conf[order[j]] == c:  # ties: one threshold keeps them all
            disagree[cls[order[j]]] += int(wrong[order[j]])
            j += 1
        bound = min(agreement_lower_bound(int(d), int(m), delta) for d, m in zip(disagree, sizes))
        if bound < target:
            break
        chosen = (float(c), 1.0 - j / n, int(disagree.sum()), bound)
        i = j
    return chosen


@dataclass
class CascadePlan:
    student: str
    test_set: str
    metric: str
    target: float
    n: int
    points: list[CascadePoint]
    suggested: CascadePoint | None
    teacher_cost_per_1k_usd: float | None
    student_cost_per_1k_usd: float | None
    cost_estimated: bool
    notes: list[str] = field(default_factory=list)
    gold_metric: str = "accuracy"  # what CascadePoint.accuracy holds: accuracy, or micro_f1 for label sets
    guarantee: Guarantee | None = None  # chosen on a calibration set (purpose: calibration), checked on this test set

    @property
    def best_quality(self) -> float | None:
        qs = [p.quality for p in self.points if p.quality is not None]
        return max(qs) if qs else None

    def table(self, rows: int = 8) -> list[CascadePoint]:
        """A few points for display: evenly spread teacher shares, plus the suggested one."""
        if len(self.points) <= rows:
            return list(self.points)
        idx = {round(i * (len(self.points) - 1) / (rows - 1)) for i in range(rows)}
        picked = [self.points[i] for i in sorted(idx)]
        if self.suggested is not None and self.suggested not in picked:
            picked.append(self.suggested)
            picked.sort(key=lambda p: p.teacher_share)
        return picked

    def to_dict(self, max_points: int = 201) -> dict[str, Any]:
        """As JSON-ready data, with the curve thinned to ``max_points`` (the suggested point kept)."""
        out = asdict(self)
        out["points"] = [asdict(p) for p in self.table(rows=max_points)]
        return out


def _confidences(spec: Any, entry: dict[str, dict[int, Any]], items: list[int]) -> list[float]:
    if spec.task.multi_label:
        from graduate.formats import labelset

        order = spec.task.labels
        return [labelset.confidence(entry["student"][i][0], [entry["student"][i][1].get(lab, 0.0) for lab in order], order) for i in items]
    return [max(entry["student"][i][1].values()) for i in items]


def _guarantee(spec: Any, by_set: dict[str, dict[str, dict[int, Any]]], calibration: list[str]) -> Guarantee | None:
    """The threshold chosen on the calibration sets' items (pooled, each item once: counted twice
    it would pass for two draws and tighten the bound), by ``guaranteed_threshold``."""
    conf: list[float] = []
    s_lab: list[str] = []
    t_lab: list[str | None] = []
    seen: set[int] = set()
    for name in calibration:
        entry = by_set.get(name)
        if not entry:
            continue
        items = sorted(set(entry["student"]) - seen)
        seen.update(items)
        conf += _confidences(spec, entry, items)
        s_lab += [entry["student"][i][0] for i in items]
        t_lab += [entry["teacher"].get(i) for i in items]
    if not conf:
        return None
    target, delta = spec.serve.guarantee_agreement, spec.serve.guarantee_delta
    per_class = spec.serve.guarantee_per_class and not spec.task.multi_label
    labels = list(spec.task.labels)
    threshold, share, wrong, bound = guaranteed_threshold(conf, s_lab, t_lab, target=target, delta=delta, per_class=per_class, classes=labels if per_class else None)
    missing = [lab for lab in labels if lab not in set(t_lab)] if per_class else []
    return Guarantee(",".join(calibration), sum(t is not None for t in t_lab), target, delta, threshold, share, wrong, bound, per_class=per_class, missing_classes=missing)


def _checked(g: Guarantee, test_set: str, conf: Sequence[float], s_lab: Sequence[str], t_lab: Sequence[str | None]) -> Guarantee:
    """The guarantee with what its threshold gives on ``test_set``: teacher share and agreement."""
    pairs = [(c, s, t) for c, s, t in zip(conf, s_lab, t_lab) if t is not None]
    n = len(pairs)
    if n == 0 or test_set in g.calibration_set.split(","):
        return g
    kept = [(s, t) for c, s, t in pairs if g.threshold is not None and c >= g.threshold]
    agree = 1.0 - sum(s != t for s, t in kept) / n
    out = Guarantee(**{**asdict(g), "held_out": dict(g.held_out)})
    figures: dict[str, Any] = {"n": n, "teacher_share": 1.0 - len(kept) / n, "agreement": agree}
    if g.per_class:  # the lowest agreement within one teacher class
        worst = 1.0
        for label in {t for _, _, t in pairs}:
            members = [(c, s) for c, s, t in pairs if t == label]
            wrong = sum(1 for c, s in members if g.threshold is not None and c >= g.threshold and s != label)
            worst = min(worst, 1.0 - wrong / len(members))
        figures["worst_class_agreement"] = worst
    out.held_out[test_set] = figures
    return out


# The evaluation run stores each student's predictions on the validation split ``model_selection``
# held out of training (and the teacher's labels there) under this name: not a test set, but
# training items no student learnt from, where a cascade threshold may be chosen.
VALIDATION_SET = "model_selection.validation"


def plan_cascade(project: Any, *, metric: str = "relative_accuracy", target: float = 0.99, student: str | None = None, write: bool = True) -> list[CascadePlan]:
    """Plans for each test set of the project's last evaluation run (from stored predictions)."""
    from sqlalchemy import func, select

    from graduate.errors import NotReadyError
    from graduate.store.runs import get_runs
    from graduate.store.schema import labels, predictions, teacher_calls

    engine = project.engine
    spec = project.spec
    multi = spec.task.multi_label
    evals = get_runs(engine, kind="evaluate", status="finished")
    if not evals:
        raise NotReadyError(f"no evaluation run yet; run `graduate run {project.root}` first")
    ev = evals[-1]
    name = student
    if name is None:
        _, run = project.best_student()
        name = run.name
    with engine.connect() as conn:
        rows = conn.execute(
            select(predictions.c.example_id, predictions.c.test_set, predictions.c.predictor, predictions.c.label, predictions.c.probs).where(
                predictions.c.run_id == ev.id
            )
        ).all()
        ids = sorted({r.example_id for r in rows})
        gold: dict[int, str | None] = {}
        for i in range(0, len(ids), 500):
            for ex, lab in conn.execute(select(labels.c.example_id, labels.c.label).where(labels.c.kind == "gold", labels.c.example_id.in_(ids[i : i + 500]))):
                gold.setdefault(ex, lab)
        cost_row = conn.execute(
            select(func.avg(teacher_calls.c.cost_usd), func.max(teacher_calls.c.tokens_estimated), func.count())
            .select_from(labels.join(teacher_calls, labels.c.call_id == teacher_calls.c.id))
            .where(labels.c.labeller == spec.teacher.labeller, teacher_calls.c.cost_usd.is_not(None), labels.c.example_id.in_(ids[:50_000]))
        ).one()
    teacher_cost = float(cost_row[0]) * 1000 if cost_row[0] is not None else None
    estimated = bool(cost_row[1])
    prefix = f"student:{name}:"
    by_set: dict[str, dict[str, dict[int, Any]]] = {}
    for r in rows:
        entry = by_set.setdefault(r.test_set, {"teacher": {}, "student": {}})
        if r.predictor == spec.teacher.labeller:
            entry["teacher"][r.example_id] = r.label
        elif r.predictor.startswith(prefix) and r.probs:
            entry["student"][r.example_id] = (r.label, r.probs)
    who = next((r.predictor for r in rows if r.predictor.startswith(prefix)), None)
    if who is not None and not (by_set.get(VALIDATION_SET) or {}).get("student"):
        # `graduate evaluate` scores no validation split: take the one the `graduate run` that
        # scored this very training run stored (the same student, the same held-out items).
        from graduate.store.schema import runs

        with engine.connect() as conn:
            source = conn.execute(
                select(predictions.c.run_id)
                .join(runs, runs.c.id == predictions.c.run_id)
                .where(predictions.c.test_set == VALIDATION_SET, predictions.c.predictor == who)
                .order_by(runs.c.started_at.desc())
                .limit(1)
            ).scalar()
            if source is not None:
                entry = by_set.setdefault(VALIDATION_SET, {"teacher": {}, "student": {}})
                for r in conn.execute(
                    select(predictions.c.example_id, predictions.c.predictor, predictions.c.label, predictions.c.probs).where(
                        predictions.c.run_id == source, predictions.c.test_set == VALIDATION_SET, predictions.c.predictor.in_([who, spec.teacher.labeller])
                    )
                ):
                    if r.predictor == who and r.probs:
                        entry["student"][r.example_id] = (r.label, r.probs)
                    elif r.predictor == spec.teacher.labeller:
                        entry["teacher"][r.example_id] = r.label
    student_costs = ((ev.metrics or {}).get("test_sets") or {})
    calibration = {t.name for t in spec.test_sets if t.purpose == "calibration"}
    if not calibration and (by_set.get(VALIDATION_SET) or {}).get("student"):
        calibration = {VALIDATION_SET}  # no calibration set: the items held out of training to pick the student
    guarantee = _guarantee(spec, by_set, sorted(calibration)) if calibration else None
    # The bias sets measure the student, they are not traffic to route: the teacher saw few of them.
    bias_sets = {t.name for t in spec.test_sets if t.purpose == "bias"}
    plans = []
    for test_set, entry in sorted(by_set.items()):
        items = sorted(entry["student"])
        if not items or test_set == VALIDATION_SET or test_set in bias_sets:
            continue
        s_lab = [entry["student"][i][0] for i in items]
        t_lab = [entry["teacher"].get(i) for i in items]
        g_lab = [gold.get(i) for i in items]
        s_cost = (((student_costs.get(test_set) or {}).get("students") or {}).get(name) or {}).get("cost_per_1k_usd")
        conf = _confidences(spec, entry, items)
        if multi:
            points = cascade_curve_sets(conf, s_lab, t_lab, g_lab, spec.task.labels, metric=metric, teacher_cost_per_1k=teacher_cost, student_cost_per_1k=s_cost)  # type: ignore[arg-type]
        else:
            points = cascade_curve(conf, s_lab, t_lab, g_lab, metric=metric, teacher_cost_per_1k=teacher_cost, student_cost_per_1k=s_cost)  # type: ignore[arg-type]
        notes = []
        if not calibration:
            notes.append("the threshold is picked on this test set: declare a calibration set (test_sets: purpose calibration, e.g. share 0.2 of the pool) to choose it on held-out training data with a guarantee")
        elif calibration == {VALIDATION_SET}:
            notes.append(
                "the guaranteed threshold is chosen on the validation split held out of training (model_selection), the items that also picked "
                "the student; declare a calibration set (test_sets: purpose calibration) to keep the two apart"
            )
        if sum(t is None for t in t_lab):
            notes.append(f"{sum(t is None for t in t_lab)} items without a parseable teacher answer stay with the student")
        if guarantee is not None and guarantee.missing_classes:
            notes.append(
                f"the calibration items hold no teacher answer {guarantee.missing_classes}: the per-class guarantee cannot vouch for "
                f"{'that class' if len(guarantee.missing_classes) == 1 else 'those classes'}, so it keeps every item with the teacher; "
                "give the calibration set more items (a larger test_sets share) or set serve.guarantee_per_class: false"
            )
        plans.append(
            CascadePlan(
                name, test_set, metric, target, len(items), points, suggest_threshold(points, target), teacher_cost, s_cost, estimated, notes,
                gold_metric="micro_f1" if multi else "accuracy",
                guarantee=_checked(guarantee, test_set, conf, s_lab, t_lab) if guarantee is not None else None,
            )
        )
    if not plans:
        known = sorted({r.predictor.split(":")[1] for r in rows if r.predictor.startswith("student:") and r.probs})
        if student is not None and known and name not in known:
            from graduate.errors import SpecError

            raise SpecError(f"no student {name!r} in the last evaluation; students with stored probabilities: {known}", field="--student")
        raise NotReadyError(f"the last evaluation run has no stored predictions with probabilities for student {name!r}; run `graduate run {project.root}`")
    if write:
        (project.workdir / "cascade_plan.json").write_text(json.dumps({"evaluation_run_id": ev.id, "plans": [p.to_dict() for p in plans]}, indent=2))
    return plans
