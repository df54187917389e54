"""Log graduate runs to MLflow (any tracking URI: SQLite, a server; a local folder where the installed MLflow still takes one).

Each graduate run becomes one MLflow run in the experiment named after the task, tagged with the
graduate run id; a run already logged there is skipped, so logging again adds nothing.
"""

from __future__ import annotations

import importlib.util
import math
import re
import socket
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

from graduate.errors import NotReadyError
from graduate.experiments.compare import flatten, run_config, run_metrics
from graduate.store.runs import RunRow

MAX_PARAM_CHARS = 500  # MLflow's limit on a param value (older servers); longer values are cut
# MLflow refuses other characters in param and metric names; test set and label names may hold them.
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_\-. :/]")


def _name(key: str) -> str:
    """A param or metric name MLflow takes: brackets and other refused characters become _."""
    return _NOT_IN_NAME.sub("_", key.replace("[", "_").replace("]", ""))[:250]


def log_runs(uri: str, experiment: str, runs: Sequence[RunRow], *, artifacts: bool = True, max_artifact_mb: float = 200.0) -> list[str]:
    """Log finished ``runs``; returns the MLflow run ids (existing ones for runs logged before).
    An unreachable server or a tracking URI MLflow refuses is a NotReadyError naming the URI."""
    check_tracking(uri)
    from mlflow.exceptions import MlflowException

    try:
        return _log(uri, experiment, runs, artifacts=artifacts, max_artifact_mb=max_artifact_mb)
    except MlflowException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if len(first) > 300:  # MLflow's reasons run long: up to the last full sentence that fits
            first = first[: first.rfind(". ", 0, 300) + 1 or 300]
        raise NotReadyError(f"MLflow at {uri!r} refused: {first.rstrip('.;')}; try --mlflow sqlite:///mlflow.db or a running `mlflow server`") from None


def check_tracking(uri: str) -> None:
    """What --mlflow needs, checked before a command trains anything: the package, and an http(s)
    tracking server that answers."""
    if importlib.util.find_spec("mlflow") is None:
        raise NotReadyError("--mlflow needs the `mlflow` package; run `pip install 'graduate[mlflow]'`")
    _check_reachable(uri)


def _check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """An http(s) tracking URI must accept a connection within ``timeout_s`` (MLflow's own client
    would retry for minutes without a word)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    if parsed.scheme in getproxies() and not proxy_bypass(parsed.hostname):
        return  # reached through a proxy: MLflow's client knows how
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        raise NotReadyError(f"cannot reach MLflow at {uri!r} ({exc.strerror or exc}); start `mlflow server` there or pass --mlflow sqlite:///mlflow.db") from None


def _log(uri: str, experiment: str, runs: Sequence[RunRow], *, artifacts: bool, max_artifact_mb: float) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    out = []
    for run in runs:
        found = client.search_runs([exp_id], filter_string=f"tags.`graduate.run_id` = '{run.id}'", max_results=1)
        if found and found[0].info.status != "RUNNING":
            out.append(found[0].info.run_id)
            continue
        if found:  # logging it stopped midway (an error, a kill): log it again, whole
            client.delete_run(found[0].info.run_id)
        tags = {
            "graduate.run_id": run.id,
            "graduate.kind": run.kind,
            "graduate.code_version": run.code_version,
            "graduate.dataset_hash": run.dataset_hash or "",
            "graduate.fingerprint": run.fingerprint or "",
            "mlflow.runName": run.name,
        }
        mrun = client.create_run(exp_id, tags=tags, start_time=int(run.started_at.timestamp() * 1000) if run.started_at else None)
        rid = mrun.info.run_id
        config = {k: v for k, v in flatten(run_config(run)).items() if not k.startswith("spec.")}
        params: dict[str, str] = {}
        for key, value in sorted(config.items()):
            params.setdefault(_name(key), str(value)[:MAX_PARAM_CHARS])  # two keys one name: MLflow refuses a param changed
        for key, value in params.items():
            client.log_param(rid, key, value)
        for key, value in sorted(run_metrics(run).items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            client.log_metric(rid, _name(key), float(value))
        if artifacts and run.artifact_dir:
            directory = Path(run.artifact_dir)
            run_json = directory.parent / "run.json"
            if run_json.exists():
                client.log_artifact(rid, str(run_json))
            if directory.exists():
                size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
                if size <= max_artifact_mb * 1e6:
                    client.log_artifacts(rid, str(directory), artifact_path="student")
        status = {"finished": "FINISHED", "failed": "FAILED"}.get(run.status, "RUNNING")
        client.set_terminated(rid, status=status, end_time=int(run.finished_at.timestamp() * 1000) if run.finished_at else None)
        out.append(rid)
    return out
