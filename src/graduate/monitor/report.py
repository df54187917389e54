"""``graduate monitor``: read a window of the traffic log, compare it with the student's training
set, judge the spec's thresholds, and write ``PROJECT/.graduate/monitor.json`` (format below) for
the report to plot; each run also appends its checks to ``monitor_history.jsonl``.

monitor.json (``"schema": "graduate.monitor/1"``)::

    generated_at, project, ok (every check passed or had too little traffic)
    window      {since, until, hours}
    future      {items, latest, ahead_s, included, tolerance_s}: rows stamped after the monitor's clock
                (another server's clock ahead): ``included`` of them, up to ``tolerance_s`` ahead, are
                in this window; ``items`` further ahead are left out (latest stamp, how far ahead)
    traffic     {items, requests, by_endpoint {endpoint: items}, by_mode {mode: items}}
    routing     {student, teacher, teacher_share, by_reason {reason: items}}
    agreement   {compared, agreement, buckets [{start, end, items, compared, agreement, teacher_share}]}
    labels      {training {label: share}, traffic {label: share}, psi, training_n, traffic_n}
    drift       {length {psi, ks_statistic, ks_pvalue, bin_edges, reference_share, current_share, ...},
                 embedding {method, domain_auc, centroid_cosine_distance, reference_n, current_n}}
    latency_ms  {p50, p90, p99, max, requests, by_endpoint {endpoint: {p50, p90, p99, max, requests}}}
    reference   {dataset_id, dataset_hash, size, student}
    checks      [{name, value, threshold, comparison, ok (true|false|null: not enough traffic), message}]

Library code: returns the result; the CLI prints it and exits non-zero when a check fails.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import Engine, select

from graduate.data.shift import label_set_shift, label_shift
from graduate.errors import written_whole
from graduate.monitor.drift import embedding_drift, length_drift
from graduate.models.embed import embed_pair
from graduate.spec import MonitorSpec
from graduate.store.runs import get_runs
from graduate.store.schema import dataset_items, datasets, examples, traffic
from graduate.store.traffic import TrafficRow, read_traffic, traffic_from

SCHEMA = "graduate.monitor/1"
# Servers sharing one store stamp rows by their own clocks: a row stamped up to this far after the
# monitor's clock belongs to the window ending now; one further ahead is counted and reported, or it
# would be silently left out until a later run's window reaches it.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass
class Check:
    name: str
    value: float | None
    threshold: float
    comparison: str  # "<=" or ">="
    ok: bool | None  # None: not enough traffic to judge
    message: str


@dataclass
class MonitorResult:
    data: dict[str, Any]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def to_dict(self) -> dict[str, Any]:
        return {**self.data, "checks": [asdict(c) for c in self.checks], "ok": self.ok}


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def percentiles(values: Sequence[float]) -> dict[str, Any]:
    if not len(values):
        return {"p50": None, "p90": None, "p99": None, "max": None, "requests": 0}
    a = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(a.max()), "requests": int(len(a))}


def agreement_buckets(rows: Sequence[TrafficRow], since: datetime, until: datetime, minutes: float) -> list[dict[str, Any]]:
    """Agreement and teacher share per time bucket, oldest first (empty buckets included)."""
    width = timedelta(minutes=minutes)
    n = max(1, int(np.ceil((until - since) / width)))
    items = np.zeros(n, dtype=int)
    teacher = np.zeros(n, dtype=int)
    compared = np.zeros(n, dtype=int)
    agreed = np.zeros(n, dtype=int)
    for r in rows:
        i = min(n - 1, max(0, int((_utc(r.created_at) - since) / width)))
        items[i] += 1
        teacher[i] += r.route == "teacher"
        if r.agree is not None:
            compared[i] += 1
            agreed[i] += bool(r.agree)
    return [
        {
            "start": (since + i * width).isoformat(),
            "end": min(since + (i + 1) * width, until).isoformat(),
            "items": int(items[i]),
            "compared": int(compared[i]),
            "agreement": float(agreed[i] / compared[i]) if compared[i] else None,
            "teacher_share": float(teacher[i] / items[i]) if items[i] else None,
        }
        for i in range(n)
    ]


def training_reference(engine: Engine, dataset_hash: str | None) -> tuple[list[str], list[str], dict[str, Any]]:
    """Texts and labels of the dataset a student was trained on (by hash), else the newest dataset."""
    with engine.connect() as conn:
        stmt = select(datasets.c.id, datasets.c.content_hash, datasets.c.size).order_by(datasets.c.id.desc())
        row = None
        if dataset_hash:
            row = conn.execute(stmt.where(datasets.c.content_hash == dataset_hash)).first()
        row = row or conn.execute(stmt).first()
        if row is None:
            return [], [], {"dataset_id": None, "dataset_hash": None, "size": 0}
        pairs = conn.execute(
            select(examples.c.text, dataset_items.c.label)
            .select_from(dataset_items.join(examples, dataset_items.c.example_id == examples.c.id))
            .where(dataset_items.c.dataset_id == row.id)
            .order_by(examples.c.id)
        ).all()
    return [p[0] for p in pairs], [p[1] for p in pairs], {"dataset_id": row.id, "dataset_hash": row.content_hash, "size": row.size}


def _sample(xs: list[str], k: int, seed: int) -> list[str]:
    return xs if len(xs) <= k else random.Random(seed).sample(xs, k)


def judge(data: dict[str, Any], m: MonitorSpec) -> list[Check]:
    """The spec's thresholds against the figures; a check with too little traffic passes as None."""
    items = data["traffic"]["items"]
    enough = items >= m.min_items
    few = f"not enough traffic ({items} items, monitor.min_items {m.min_items})"

    def check(name: str, value: float | None, threshold: float, comparison: str, what: str, field_name: str, have: bool = True, short: str | None = None) -> Check:
        if value is None or not (enough and have):
            return Check(name, value, threshold, comparison, None, few if not enough else (short or f"{what}: no data"))
        ok = value <= threshold if comparison == "<=" else value >= threshold
        verdict = "ok" if ok else "FAILED"
        return Check(name, float(value), threshold, comparison, ok, f"{what} {value:.4g} (threshold {comparison} {threshold:g}, monitor.{field_name}): {verdict}")

    agreement = data["agreement"]
    drift = data["drift"]
    method = f" ({drift['embedding']['method']})" if drift["embedding"].get("method") else ""  # none: no text to embed
    return [
        # judged on as many compared items as any check needs: one unlucky shadow comparison of three is not an alarm
        check(
            "agreement", agreement["agreement"], m.min_agreement, ">=", f"agreement with the teacher over {agreement['compared']} compared items", "min_agreement",
            agreement["compared"] >= m.min_items, f"not enough items compared with the teacher ({agreement['compared']}, monitor.min_items {m.min_items})",
        ),
        check("length_psi", drift["length"].get("psi"), m.max_length_psi, "<=", "text length PSI (traffic vs training set)", "max_length_psi"),
        check("length_ks", drift["length"].get("ks_statistic"), m.max_length_ks, "<=", "text length KS statistic", "max_length_ks"),
        check("embedding_auc", drift["embedding"].get("domain_auc"), m.max_embedding_auc, "<=", f"embedding drift{method} domain-classifier AUC", "max_embedding_auc"),
        check(
            "label_psi", data["labels"].get("psi"), m.max_label_psi, "<=",
            f"predicted-label PSI of the worst label, {data['labels']['worst_label']!r} (traffic vs training)" if data["labels"].get("worst_label")
            else "predicted-label PSI (traffic vs training labels)",
            "max_label_psi",
        ),
        check("latency_p99_ms", data["latency_ms"]["p99"], m.max_p99_latency_ms, "<=", "p99 latency (ms)", "max_p99_latency_ms"),
        check("teacher_share", data["routing"]["teacher_share"], m.max_teacher_share, "<=", "share of items answered by the teacher", "max_teacher_share"),
    ]


def monitor_project(
    project: Any,
    *,
    until: datetime | None = None,
    window_hours: float | None = None,
    settings: MonitorSpec | None = None,
    write: bool = True,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> MonitorResult:
    """Figures and checks over the traffic of the last ``window_hours`` before ``until`` (now).
    ``progress(stage, done, total)`` hears about each stage (the embeddings can take a while)."""
    report = progress or (lambda stage, done, total: None)
    m = settings or project.spec.monitor
    hours = window_hours or m.window_hours
    clock = datetime.now(timezone.utc)
    # The window ending now takes rows stamped a little ahead (clock skew); a window given an end does not.
    upper = _utc(until) if until is not None else clock + FUTURE_TOLERANCE
    until = _utc(until or clock)
    since = until - timedelta(hours=hours)
    report("read traffic", 0, 1)
    rows = read_traffic(project.engine, since=since, until=upper)
    ahead, latest = traffic_from(project.engine, clock + FUTURE_TOLERANCE)
    report("read traffic", 1, 1)
    texts = [r.text for r in rows if r.text is not None]

    # The reference is the training set of the student that served this window.
    with project.engine.connect() as conn:
        served = conn.execute(
            select(traffic.c.student)
            .where(traffic.c.created_at >= since, traffic.c.created_at < upper, traffic.c.student.is_not(None))
            .order_by(traffic.c.created_at.desc())
            .limit(1)
        ).scalar()
    dataset_hash = None
    if served and ":" in served:
        run_id = served.rsplit(":", 1)[1]
        run = next((r for r in get_runs(project.engine, root=project.root, kind="train") if r.id == run_id), None)
        dataset_hash = run.dataset_hash if run else None
    ref_texts, ref_labels, reference = training_reference(project.engine, dataset_hash)
    reference["student"] = served

    per_request: dict[str, tuple[str, float]] = {}
    for r in rows:
        per_request.setdefault(r.request_id, (r.endpoint, r.latency_ms))
    by_endpoint: dict[str, list[float]] = {}
    for ep, lat in per_request.values():
        by_endpoint.setdefault(ep, []).append(lat)
    latency = percentiles([lat for _, lat in per_request.values()])
    latency["by_endpoint"] = {ep: percentiles(v) for ep, v in sorted(by_endpoint.items())}

    n = len(rows)
    teacher_n = sum(r.route == "teacher" for r in rows)
    compared = [r for r in rows if r.agree is not None]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project": project.spec.task.name,
        "window": {"since": since.isoformat(), "until": until.isoformat(), "hours": hours},
        "future": {
            "items": ahead,
            "latest": _utc(latest).isoformat() if latest is not None else None,
            "ahead_s": (_utc(latest) - clock).total_seconds() if latest is not None else None,
            "included": sum(_utc(r.created_at) > clock for r in rows),
            "tolerance_s": FUTURE_TOLERANCE.total_seconds(),
        },
        "traffic": {
            "items": n,
            "requests": len(per_request),
            "by_endpoint": dict(Counter(r.endpoint for r in rows)),
            "by_mode": dict(Counter(r.mode for r in rows)),
        },
        "routing": {
            "student": n - teacher_n,
            "teacher": teacher_n,
            "teacher_share": teacher_n / n if n else None,
            "by_reason": dict(Counter(r.reason for r in rows)),
        },
        "agreement": {
            "compared": len(compared),
            "agreement": (sum(bool(r.agree) for r in compared) / len(compared)) if compared else None,
            "buckets": agreement_buckets(rows, since, until, m.bucket_minutes),
        },
        "latency_ms": latency,
        "reference": reference,
    }
    labels = project.spec.task.labels
    predicted = [r.student_label for r in rows if r.student_label is not None]
    shift = label_set_shift if project.spec.task.multi_label else label_shift
    data["labels"] = shift(ref_labels, predicted, labels) if ref_labels and predicted else {"psi": None}
    drift: dict[str, Any] = {"length": {}, "embedding": {"method": None}}
    if ref_texts and texts:
        drift["length"] = length_drift(ref_texts, texts)
        if len(texts) >= m.min_items:
            seed = project.spec.seed
            ref_s, cur_s = _sample(ref_texts, m.sample, seed), _sample(texts, m.sample, seed + 1)
            report("embedding drift", 0, 1)
            ref_v, cur_v, method = embed_pair(ref_s, cur_s, method=m.embedding, seed=seed)
            drift["embedding"] = {"method": method, **embedding_drift(ref_v, cur_v, seed=seed)}
            report("embedding drift", 1, 1)
    data["drift"] = drift
    result = MonitorResult(data, judge(data, m))
    if write:
        with written_whole(project.workdir / "monitor.json") as f:  # the last whole one stays if this write stops midway
            f.write(json.dumps(result.to_dict(), indent=2))
        with (project.workdir / "monitor_history.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"generated_at": data["generated_at"], "window": data["window"], "ok": result.ok, "checks": [asdict(c) for c in result.checks]}) + "\n")
    return result
