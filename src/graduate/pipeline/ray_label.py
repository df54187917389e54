"""graduate label --ray: the teacher's calls sent by workers on a Ray cluster, sharing one call log.

The driver removes what the call log already answered (and what an open Batch API batch holds),
enqueues the rest as pending calls, and gives each worker actor a share. Workers claim calls with
a lease and spend from budget slices (graduate.store.leases, graduate.teacher.leased), each at
its share of the rate limits. A worker that dies is replaced with a new one on the same share:
what it had answered is stored, what it had in flight is sent again once its lease lapses.

A cluster on other machines needs a store they can all reach: PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from graduate.errors import GraduateError, NotReadyError, SpecError, TeacherError
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.ray_cluster import connect
from graduate.privacy import records, redactor_for
from graduate.spec import PriceSpec, PrivacySpec, TeacherSpec
from graduate.store.batches import key_state
from graduate.store.calls import answers, request_key
from graduate.store.db import now, open_engine
from graduate.store.leases import enqueue, release_owner, run_calls, run_held, run_spend
from graduate.store.schema import teacher_calls
from graduate.teacher.labeling import known_cut, known_cut_advice, require_price, require_sendable
from graduate.teacher.prompt import render_messages, request_params

if TYPE_CHECKING:
    from graduate.pipeline.project import Project

WORKER_CPUS = 0.5  # fractional: on 2 cores two workers and Ray's own tasks all fit


@dataclass
class RayLabelReport:
    items: int = 0
    distinct: int = 0
    cached: int = 0
    held: int = 0
    enqueued: int = 0
    sent: int = 0
    failed: int = 0
    retryable: int = 0  # of failed: transient (timeouts, 429, 5xx after retries), which a re-run may get past
    not_sent: int = 0
    skipped: int = 0
    late: int = 0  # answers stored after another worker's (paid twice: only calls in flight when a worker died)
    lost_in_flight: int = 0  # calls the workers that died had claimed, given back: some perhaps sent (the store cannot tell), their answers and cost not stored (not in cost_usd)
    freed: int = 0  # calls workers stopped by Ctrl-C or an error had claimed, given back for a rerun (some perhaps sent: the store cannot tell)
    still_held: int = 0  # calls still claimed by stopped workers not gone 10 s after the stop: a rerun sends them once their leases lapse
    cost_usd: float = 0.0
    restarts: int = 0
    budget_stopped: bool = False
    cut_stopped: bool = False  # the run's first answers, over all workers, were all unusable (cut off, no text): no more were sent
    stopped_unsent: int = 0  # of not_sent: left unsent by that stop
    known_cut: int = 0  # of not_sent: cut off at these very settings before (graduate.teacher.labeling.known_cut)
    known_cut_advice: str | None = None
    errors: list[str] = field(default_factory=list)


class LabelInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped graduate label --ray: ``report`` holds what the run stored and gave back."""

    def __init__(self, report: RayLabelReport):
        super().__init__()
        self.report = report


class LabelWorker:
    """A Ray actor: opens the store, sends the calls of its share that it can claim."""

    def __init__(
        self, store_url: str, teacher: dict[str, Any], price: dict[str, Any] | None, privacy: dict[str, Any], run: str, owner: str, workers: int, lease_s: float
    ):
        self.engine = open_engine(store_url)
        self.spec = TeacherSpec.model_validate(teacher)
        self.price = PriceSpec.model_validate(price) if price else None
        self.redactor = redactor_for(PrivacySpec.model_validate(privacy))
        self.run, self.owner, self.workers, self.lease_s = run, owner, workers, lease_s

    def pid(self) -> int:
        return os.getpid()

    def run(self, items: list[tuple[int, str]]) -> dict[str, Any]:
        from graduate.teacher.leased import work
        from graduate.teacher.registry import make_teacher

        stats = asyncio.run(
            work(
                self.engine, self.spec, make_teacher(self.spec), items, owner=self.owner, run=self.run, workers=self.workers,
                lease_s=self.lease_s, price=self.price, redactor=self.redactor,
            )
        )
        return dataclasses.asdict(stats)


def worker_count(spec: TeacherSpec, workers: int | None) -> int:
    """The workers to start: ``workers``, by default 2 (fewer if the teacher's limits are lower)."""
    # Each worker sends at least one call at a time (and one a minute): more workers than the limits
    # allow would pass them together.
    most = min(spec.concurrency, spec.requests_per_minute)
    if workers is None:
        return min(2, most)
    if workers > most:
        raise SpecError(
            f"{workers} workers would send more than teacher.concurrency ({spec.concurrency}) or requests_per_minute "
            f"({spec.requests_per_minute}) allow, as each sends at least one call at a time; pass --workers {most} or fewer",
            field="--workers",
        )
    return workers


def label_ray(
    project: "Project",
    texts: list[str],
    *,
    address: str = "local",
    workers: int | None = None,
    lease_s: float = 60.0,
    num_cpus: int | None = None,
    max_restarts: int = 3,
    progress: ProgressFn = no_progress,
) -> RayLabelReport:
    """Send the calls ``texts`` need from ``workers`` actors (see ``worker_count``)."""
    workers = worker_count(project.spec.teacher, workers)
    # One spender at a time, as for a local `graduate label`: a second one would read the budget
    # while these workers spend from it.
    with project.exclusive("labelling with the teacher on Ray"):
        return _label_ray(project, texts, address, workers, lease_s, num_cpus, max_restarts, progress)


def _label_ray(
    project: "Project", texts: list[str], address: str, workers: int, lease_s: float, num_cpus: int | None, max_restarts: int, progress: ProgressFn
) -> RayLabelReport:
    engine = project.engine
    if address != "local" and engine.dialect.name == "sqlite":
        raise NotReadyError(
            f"a Ray cluster at {address} needs a store every worker reaches: set store.url: postgresql+psycopg://USER@HOST/DB in "
            f"{project.root / 'graduate.yaml'} (or GRADUATE_STORE_URL); SQLite is a file on this machine (--ray local works with it)"
        )
    require_sendable(texts)
    spec = project.spec.teacher
    params = request_params(spec)
    report = RayLabelReport(items=len(texts))
    keyed: dict[str, str] = {}
    for text in texts:
        keyed.setdefault(request_key(spec.model, render_messages(spec, text), params), text)
    report.distinct = len(keyed)
    done = answers(engine, keyed)
    report.cached = len(done)
    need = [k for k in keyed if k not in done]
    held = key_state(engine, need).held
    report.held = len(held)
    need = [k for k in need if k not in held]
    # At temperature 0 an answer cut off before is cut off again: not paid for twice.
    cut_before = known_cut(engine, spec, need)
    if cut_before:
        report.known_cut = report.not_sent = len(cut_before)
        report.known_cut_advice = known_cut_advice(spec, len(cut_before))
        need = [k for k in need if k not in cut_before]
    if need:
        require_price(spec, project.spec.price_for(spec.model))
    work = []
    for key in need:
        body = {"model": spec.model, "messages": render_messages(spec, keyed[key]), **params}
        stored, counts = records.request(project.redactor, body)
        work.append({"cache_key": key, "model": spec.model, "request": stored, "params": params, "redactions": counts})
    ids = enqueue(engine, work)
    items = [(ids[k], keyed[k]) for k in need]
    report.enqueued = len(items)
    if not items:
        return report

    connect(address, num_cpus=num_cpus)
    import ray

    actor_class = ray.remote(num_cpus=WORKER_CPUS, max_restarts=0)(LabelWorker)
    url = engine.url.render_as_string(hide_password=False)
    run_id = uuid.uuid4().hex[:8]
    price = project.spec.price_for(spec.model)
    args = (url, spec.model_dump(mode="json"), price.model_dump(mode="json") if price else None, project.spec.privacy.model_dump(mode="json"))

    def start(share: int, attempt: int) -> tuple[Any, Any, str]:
        owner = f"{run_id}-{share}-{attempt}"
        actor = actor_class.remote(*args, run_id, owner, workers, lease_s)
        return actor, actor.run.remote(shares[share]), owner

    shares = [items[i::workers] for i in range(workers)]
    running: dict[Any, tuple[int, Any, str]] = {}
    dead: list[str] = []  # the owners of workers that died: their figures are only in the store
    for i, share in enumerate(shares):
        if share:
            actor, ref, owner = start(i, 0)
            running[ref] = (i, actor, owner)
    started = now()
    interrupted = False
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            progress("label on Ray", _finished_since(engine, started), len(items))
            for ref in ready:
                share, actor, owner = running.pop(ref)
                try:
                    stats = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the worker raised: the error itself, not Ray's wrapper
                    # Its method has ended (asyncio.run waited for every call in it), so it sends nothing
                    # more: what it had claimed is given back now, or a rerun would wait --lease-s for it.
                    ray.kill(actor)
                    report.freed += release_owner(engine, owner)
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, GraduateError):
                        raise cause from None
                    if isinstance(cause, Exception):  # a bug: its one line names it; GRADUATE_DEBUG shows the worker's traceback
                        raise cause from exc
                    raise
                except ray.exceptions.RayError as exc:  # the worker died: killed, out of memory, its node gone
                    why = died_because(exc)
                    dead.append(owner)
                    # Its process is gone (a death Ray reports), or is once the kill is seen through: what it held is free now.
                    if _gone(ray, actor, exc):
                        report.lost_in_flight += release_owner(engine, owner)
                    if isinstance(exc, ray.exceptions.RayActorError) and exc.actor_init_failed:  # a new one would fail the same way
                        raise TeacherError(f"a Ray worker could not start ({why}); answered calls are stored: fix it and run the same command again") from None
                    report.restarts += 1
                    if report.restarts > max_restarts:
                        raise TeacherError(
                            f"Ray workers died {report.restarts} times, the last: {why}; answered calls are stored: run the same command again"
                        ) from None
                    actor, new_ref, owner = start(share, report.restarts)
                    running[new_ref] = (share, actor, owner)
                    continue
                # sent, failed and cost_usd are counted in the store below, over every worker
                for name in ("retryable", "not_sent", "skipped", "late", "stopped_unsent"):
                    setattr(report, name, getattr(report, name) + stats[name])
                report.budget_stopped = report.budget_stopped or stats["budget_stopped"]
                report.cut_stopped = report.cut_stopped or stats["cut_stopped"]
                report.errors += stats["errors"][: max(0, 20 - len(report.errors))]
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for _, actor, _ in running.values():
            ray.kill(actor)
        # A killed worker's task ends with an error once its process is gone: only then are its leases
        # given back, so a rerun sends its calls at once instead of after --lease-s. One still alive
        # after the wait keeps them until they lapse (it could still be sending).
        if running:
            gone, _ = ray.wait(list(running), num_returns=len(running), timeout=10.0)
            for ref in gone:
                report.freed += release_owner(engine, running[ref][2])
    _count_stored(engine, run_id, dead, report)
    if interrupted:
        report.still_held = run_held(engine, run_id)
        raise LabelInterrupted(report)
    progress("label on Ray", report.enqueued, len(items))
    return report


def _count_stored(engine: Any, run_id: str, dead: list[str], report: RayLabelReport) -> None:
    """The run's sent, failed and cost from the store, so a worker that died is counted too (its
    stats died with it): a call counts once, whichever worker finished it, and the cost is what
    every worker's budget slices spent (an answer paid twice included). What only a worker knows
    (why a call was not sent) comes from the live ones; a dead one's transient failures are read
    from the store too (a refusal, a 4xx, is not one: a re-run would fail alike), and its stored
    errors join the live ones'."""
    calls = run_calls(engine, run_id, errors_of=dead, most_errors=max(0, 20 - len(report.errors)))
    report.sent = sum(c.ok for c in calls.values())
    report.failed = sum(c.failed for c in calls.values())
    report.cost_usd = run_spend(engine, run_id)
    lost = [calls[o] for o in dead if o in calls]
    report.retryable = min(report.failed, report.retryable + sum(c.retryable for c in lost))
    for c in lost:
        report.errors += list(c.errors[: max(0, 20 - len(report.errors))])


def _gone(ray: Any, actor: Any, exc: Exception) -> bool:
    """Whether the process of a worker whose task failed with ``exc`` (Ray's error, not the worker's
    own) is gone, so that the calls it claimed may be given back: Ray reports its death, or it is
    killed here and that is seen through. An ActorUnavailableError (a RayActorError too) is no death:
    Ray could not reach the worker, which "may or may not" have run on and may still be sending."""
    return isinstance(exc, ray.exceptions.ActorDiedError) or _killed(ray, actor)


def _killed(ray: Any, actor: Any, timeout_s: float = 10.0) -> bool:
    """Kill a worker whose task failed without its death being reported (a lost object, a cancelled
    task, a worker Ray cannot reach): True once a call to it fails as an actor death, its process gone."""
    ray.kill(actor)
    try:
        ray.get(actor.pid.remote(), timeout=timeout_s)
    except ray.exceptions.ActorDiedError:  # not ActorUnavailableError: it may live on
        return True
    except ray.exceptions.RayError:
        return False
    return False


def died_because(exc: Exception) -> str:
    """Why Ray says a worker died, on one line: its reason (out of memory, killed, node gone) without
    Ray's list of the actor's ids, or for a worker that could not start the error it raised (the
    last line of its traceback)."""
    from ray.exceptions import RayActorError

    plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # Ray colours the worker's name in a traceback
    lines = [ln.strip() for ln in plain.splitlines() if ln.strip()]
    if isinstance(exc, RayActorError) and exc.actor_init_failed and lines:
        return lines[-1][:300]
    base = ("The actor died unexpectedly before finishing this task.", "The actor experienced an error before finishing this task.")
    # Ray's own lines: the bare headline and the actor's fields (class_name, actor_id, pid, ip, ...)
    reason = [ln for ln in lines if ln not in base and not re.fullmatch(r"[a-z_]+: \S+", ln)]
    text = " ".join(" ".join(reason).split()) or "no reason given (see Ray's logs: /tmp/ray/session_latest/logs)"
    return text if len(text) <= 300 else text[:297] + "..."


def _finished_since(engine: Any, started: Any) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    and_(teacher_calls.c.source == "live", teacher_calls.c.status.in_(["ok", "error"]), teacher_calls.c.completed_at >= started)
                )
            ).scalar_one()
        )
