"""graduate serve / proxy / serve-plan: the student behind an OpenAI-compatible API, a logging
proxy in front of the teacher, and the cascade threshold to serve with."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, err_console, fmt, fmt_usd
from graduate.cli.options import apply_options, number


def _need_serve() -> None:
    import importlib.util

    from graduate.errors import NotReadyError

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client", "httpx") if importlib.util.find_spec(m) is None]
    if missing:
        raise NotReadyError(f"serving needs {', '.join(missing)}; run `pip install 'graduate[serve]'`")


def _overrides(**flags: Any) -> dict[str, Any]:
    return {k: v for k, v in flags.items() if v is not None}


# serve: fields and the options that set them, so that a bad value names the option the user typed
# ("spec: serve.cascade_threshold" sent them to a graduate.yaml that was fine)
FLAGS = {
    "host": "--host", "port": "--port", "mode": "--mode", "student": "--student", "cascade_threshold": "--threshold", "shadow_rate": "--shadow-rate",
    "canary_share": "--canary-share", "fallback_to_teacher": "--fallback", "auth": "--no-auth", "max_in_flight": "--max-in-flight",
    "request_timeout_s": "--timeout", "predict_workers": "--workers", "max_body_bytes": "--max-body-bytes", "plan_metric": "--metric", "plan_target": "--target",
}  # fmt: skip


def _refuse(update: dict[str, Any]) -> Any:
    from graduate.errors import SpecError

    def refuse(field: str, msg: str) -> SpecError:
        if field in update and field in FLAGS:
            return SpecError(f"{msg} (got {update[field]!r})", field=FLAGS[field])
        return SpecError(msg, field=f"serve.{field}" if field else "serve")

    return refuse


def serve(
    project: Path = typer.Argument(..., help="Project directory."),
    host: Optional[str] = typer.Option(None, help="Address to listen on (serve.host, default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (serve.port, default 8000); 0 picks a free one."),
    mode: Optional[str] = typer.Option(None, help="student | cascade | shadow | canary (serve.mode)."),
    student: Optional[str] = typer.Option(None, help="Name of the student to serve (default: the best)."),
    threshold: Optional[float] = typer.Option(None, parser=number("--threshold", least=0, most=1), help="cascade: the student's confidence needed to answer (serve.cascade_threshold)."),
    shadow_rate: Optional[float] = typer.Option(None, parser=number("--shadow-rate", least=0, most=1), help="shadow: share of requests compared with the teacher."),
    canary_share: Optional[float] = typer.Option(None, parser=number("--canary-share", least=0, most=1), help="canary: share of requests the student answers."),
    fallback: Optional[bool] = typer.Option(None, "--fallback/--no-fallback", help="Pass chat requests that do not match the template to the teacher."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without API keys (local testing only)."),
    max_in_flight: Optional[int] = typer.Option(None, help="Requests handled at once; more get 429 (serve.max_in_flight)."),
    timeout: Optional[float] = typer.Option(None, parser=number("--timeout", above=0), help="Per-request timeout in seconds (serve.request_timeout_s)."),
    workers: Optional[int] = typer.Option(None, help="Student prediction processes; 0: a thread (serve.predict_workers)."),
    max_body_bytes: Optional[int] = typer.Option(None, help="Larger bodies get 413 (serve.max_body_bytes)."),
) -> None:
    """Serve the student: POST /v1/chat/completions (OpenAI-compatible), POST /v1/classify, GET /v1/models, /healthz, /readyz, /metrics."""
    _need_serve()
    from graduate.errors import SpecError
    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.serve.server import bind_socket, run_app

    proj = Project.load(project)
    update = _overrides(
        host=host,
        port=port,
        mode=mode,
        student=student,
        cascade_threshold=threshold,
        shadow_rate=shadow_rate,
        canary_share=canary_share,
        fallback_to_teacher=fallback,
        max_in_flight=max_in_flight,
        request_timeout_s=timeout,
        predict_workers=workers,
        max_body_bytes=max_body_bytes,
    )
    if no_auth:
        update["auth"] = False
    opts = apply_options(proj.spec.serve, update, _refuse(update))
    def stopped(stats: dict[str, Any]) -> None:
        spilled = stats["spilled_rows"]
        line = f"stopped: {stats['traffic_rows_written']} traffic rows written"
        if spilled:
            line += f"; {spilled} rows the store did not take are in {stats['spilled']}"
        console.print(escape(line), highlight=False, soft_wrap=True)
        if spilled:
            err_console.print(f"[yellow]warning:[/] {escape(str(stats['last_error'] or 'the store refused them'))}", highlight=False, soft_wrap=True)

    app = create_app(proj, opts, on_stopped=stopped)
    sock = bind_socket(opts.host, opts.port)
    bound_port = sock.getsockname()[1]
    if not opts.auth:
        err_console.print("[yellow]warning:[/] serving without API keys (--no-auth); anyone who can reach the port can use it")
    elif app.state.clients_can_promote:
        err_console.print("[yellow]warning:[/] any client key can promote; set GRADUATE_ADMIN_KEYS=KEY1,KEY2 to keep /admin/* to admins", highlight=False)
    extra = {
        "cascade": f", threshold {opts.cascade_threshold:g} (`graduate serve-plan {project}` suggests one)",
        "shadow": f", shadow rate {opts.shadow_rate:g}",
        "canary": f", student share {opts.canary_share:g}",
    }.get(opts.mode, "")
    console.print(escape(f"serving {app.state.student_name} in {opts.mode} mode{extra}"), highlight=False)
    if app.state.unwritable_none:
        console.print(
            "[yellow]note[/]: the student may answer no label, and task.parse has no word for that (parse.none): "
            "/v1/chat/completions then answers an empty message; set parse.none to the teacher's word for no label",
            highlight=False,
        )
    # Tests and scripts wait for this exact line.
    console.print(f"listening on http://{opts.host}:{bound_port}", highlight=False, soft_wrap=True)
    # After a graceful stop uvicorn re-raises the SIGTERM/SIGINT it caught, so the exit status
    # says which signal stopped the server (143 for SIGTERM), as a supervisor expects.
    run_app(app, sock, shutdown_timeout_s=opts.shutdown_timeout_s, header_timeout_s=opts.body_timeout_s)


def proxy(
    project: Path = typer.Argument(..., help="Project directory."),
    upstream: str = typer.Option(..., help="The teacher's base URL, up to /v1, e.g. https://api.openai.com/v1."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8001, help="Port; 0 picks a free one."),
    key_from_env: bool = typer.Option(
        False,
        "--key-from-env",
        help="Send the key in teacher.api_key_env upstream; callers then authenticate with GRADUATE_API_KEYS. "
        "Default: the caller's Authorization header is passed through.",
    ),
    timeout: float = typer.Option(600.0, parser=number("--timeout", above=0), help="Upstream timeout in seconds."),
) -> None:
    """A logging pass-through to the teacher: every chat completion (streaming too) goes into the call log; keys are never stored."""
    _need_serve()
    from graduate.pipeline.project import Project
    from graduate.serve.proxy import create_proxy_app
    from graduate.serve.server import bind_socket, run_app
    from graduate.store.db import safe_url

    proj = Project.load(project)
    app = create_proxy_app(proj, upstream, key_from_env=key_from_env, timeout_s=timeout)
    sock = bind_socket(host, port)
    console.print(escape(f"proxying {upstream}, logging chat completions into {safe_url(proj.engine.url)}"), highlight=False)
    console.print(f"listening on http://{host}:{sock.getsockname()[1]}", highlight=False, soft_wrap=True)
    run_app(app, sock, shutdown_timeout_s=30.0, header_timeout_s=proj.spec.proxy.body_timeout_s)


def threshold_up(value: float | None, digits: int = 4) -> str:
    """A guaranteed threshold as a person copies it into serve.cascade_threshold: rounded up, never
    down (a lower threshold keeps more items than the one tested, and the guarantee is for it or
    above), with more decimals where rounding up would reach 1 (0.99999999, not 1.0000: nothing kept)."""
    if value is None:
        return "–"
    from decimal import ROUND_CEILING, Decimal

    exact = Decimal(repr(float(value)))
    for places in range(digits, 18):
        up = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)
        if up < 1 or exact >= 1:
            return str(up)
    return str(exact)


def serve_plan(
    project: Path = typer.Argument(..., help="Project directory."),
    target: Optional[float] = typer.Option(None, parser=number("--target", above=0, most=1), help="The value of serve.plan_metric to reach (default serve.plan_target)."),
    metric: Optional[str] = typer.Option(None, help="relative_accuracy | agreement (default serve.plan_metric)."),
    student: Optional[str] = typer.Option(None, help="Student name (default: the best)."),
) -> None:
    """Suggest the cascade threshold: the lowest share of traffic to the teacher that keeps quality at the target."""
    from graduate.evaluate.cascade import plan_cascade
    from graduate.pipeline.project import Project

    from graduate.errors import SpecError

    proj = Project.load(project)
    update = _overrides(plan_metric=metric, plan_target=target)
    # --metric and --target as the spec's fields would take them (0 or nan is no default)
    opts = apply_options(proj.spec.serve, update, _refuse(update))
    if not math.isfinite(opts.plan_target):
        raise SpecError(f"give a number in (0, 1], e.g. 0.99 (got {opts.plan_target!r})", field="--target" if target is not None else "serve.plan_target")
    plans = plan_cascade(proj, metric=opts.plan_metric, target=opts.plan_target, student=student)
    for plan in plans:
        t = Table(title=escape(f"cascade plan: {plan.student} on {plan.test_set} ({plan.metric} >= {plan.target:g})"), title_justify="left")
        extra = plan.metric != "agreement"  # relative accuracy: show the agreement beside it
        gold_col = "micro-F1" if plan.gold_metric == "micro_f1" else "accuracy"
        for col in ("threshold", "to teacher", plan.metric, gold_col, *(["agreement"] if extra else []), "cost / 1k"):
            t.add_column(col, justify="right")
        for p in plan.table(rows=8):
            t.add_row(
                fmt(p.threshold, 4),
                f"{p.teacher_share:.1%}",
                fmt(p.quality, 4),
                fmt(p.accuracy, 4),
                *([fmt(p.agreement, 4)] if extra else []),
                fmt_usd(p.cost_per_1k_usd, plan.cost_estimated),
            )
        console.print(t)
        g = plan.guarantee
        if g is not None and plan.test_set in g.calibration_set.split(","):
            if g.threshold is None:
                console.print(escape(f"guarantee: no threshold keeps agreement >= {g.target:g} with probability {1 - g.delta:g} on {g.n} calibration items: send everything to the teacher"))
            else:
                console.print(
                    escape(
                        f"guaranteed cascade_threshold: {threshold_up(g.threshold)} (chosen on calibration set {g.calibration_set}, {g.n} items): agreement with the teacher "
                        f"{'within each teacher class ' if g.per_class else ''}>= {g.target:g} with probability >= {1 - g.delta:g} "
                        f"(Clopper-Pearson lower bound {g.agreement_bound:.4f}); {g.teacher_share:.1%} of traffic to the teacher"
                    ),
                    highlight=False,
                )
            continue
        if g is not None and plan.test_set in g.held_out:
            h = g.held_out[plan.test_set]
            console.print(
                escape(f"guaranteed threshold {threshold_up(g.threshold)} on held-out {plan.test_set} ({h['n']} items): {h['teacher_share']:.1%} to the teacher, agreement {h['agreement']:.4f} (bound {g.agreement_bound:.4f})"),
                highlight=False,
            )
        for note in plan.notes:
            console.print(f"[yellow]note[/]: {escape(note)}", highlight=False)
        if plan.suggested is None:
            console.print(f"[yellow]{escape(f'no threshold reaches {plan.metric} {plan.target:g} on {plan.test_set}')}[/]: even all-teacher gives {fmt(plan.best_quality, 4)}", highlight=False)
        elif plan.suggested.threshold is None:  # only the all-teacher point reaches the target
            s = plan.suggested
            console.print(
                escape(f"suggested: send every item to the teacher on {plan.test_set}: no student threshold reaches {plan.metric} {plan.target:g} ({plan.metric} {s.quality:.4f} all-teacher)"),
                highlight=False,
            )
        else:
            s = plan.suggested
            console.print(
                f"suggested cascade_threshold: [bold]{s.threshold:.4f}[/] on {escape(plan.test_set)}: {s.teacher_share:.1%} of traffic to the teacher, "
                f"{plan.metric} {s.quality:.4f}, cost {_per_1k(fmt_usd(s.cost_per_1k_usd, plan.cost_estimated))} "
                f"(teacher alone {fmt_usd(plan.teacher_cost_per_1k_usd, plan.cost_estimated)})",
                highlight=False,
            )
            if g is not None:  # a pick on the test set itself sits beside the guarantee: say which to serve
                which = (
                    f"serve the guaranteed {threshold_up(g.threshold)}" if g.threshold is not None
                    else "the guarantee found no threshold, so this one carries no guarantee: serve it only knowingly"
                )
                console.print(escape(f"  (this suggestion is picked on {plan.test_set} itself, for comparison; {which})"), highlight=False)


def _server_root(server: str) -> str:
    """--server as the root the admin routes hang from: the OpenAI base URL of the same server
    (``http://host:8000/v1``, what its clients are given) means that server; a URL without a scheme
    is refused (httpx's own error read as a server that does not answer)."""
    from graduate.errors import SpecError

    given = server.strip()
    scheme, sep, rest = given.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        where = (rest if sep else re.sub(r"^https?:/*", "", given, flags=re.IGNORECASE)) or "127.0.0.1:8000"
        raise SpecError(f"--server {server!r} has no http:// or https://; give http://{where}", field="--server")
    if not rest.strip("/"):
        raise SpecError(f"--server {server!r} names no host; give one, e.g. http://127.0.0.1:8000", field="--server")
    base = given.rstrip("/")
    return base[: -len("/v1")] if base.lower().endswith("/v1") else base


def promote(
    project: Path = typer.Argument(..., help="Project directory."),
    server: str = typer.Option(..., "--server", help="The running graduate serve, e.g. http://127.0.0.1:8000."),
    student: Optional[str] = typer.Option(None, "--student", help="Promote this student's newest evaluated run (default: the served student's)."),
    run: Optional[str] = typer.Option(None, "--run", help="Promote this training run (its id or first characters; graduate runs list)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the stages until the candidate is promoted or rolled back."),
    timeout: float = typer.Option(3600.0, parser=number("--timeout", least=1), help="--wait: give up following after this many seconds (the server goes on)."),
    api_key_env: Optional[str] = typer.Option(
        None,
        help="Environment variable holding the key to send. Default: GRADUATE_ADMIN_KEY, else GRADUATE_API_KEY; "
        "with neither set, the first of the server's own keys here (GRADUATE_ADMIN_KEYS, else serve.api_keys_env).",
    ),
) -> None:
    """Promote a retrained student on a running server: shadow (it scores, answers nothing), canary
    (it answers serve.promote.canary_share), then full; each stage must agree with what was served
    (serve.promote.min_agreement over min_items) or the server rolls it back by itself. Requests are
    never dropped: the swap waits for those in flight. Exit 0 promoted, 1 rolled back."""
    import os
    import time

    import httpx

    from graduate.errors import NotReadyError
    from graduate.pipeline.project import Project

    typed, run = run, run.strip() if run is not None else None  # sent as checked: " abcd" matched no run on the server
    if run is not None and not 4 <= len(run) <= 64:  # the server's bounds (serve.schemas), said for the option typed
        from graduate.errors import SpecError

        what = "too short to name a run: give at least 4 characters of its id" if len(run) < 4 else "longer than a run id: give its id"
        raise SpecError(f"{typed!r} is {what} (graduate runs list)", field="--run")
    proj = Project.load(project)  # the spec must be valid; the server loads the run itself
    # The key in --api-key-env (default GRADUATE_ADMIN_KEY, else GRADUATE_API_KEY), else the first key the
    # server itself accepts for /admin/* on this machine: an admin key, else a client key (serve.api_keys_env, serve.api_keys).
    from graduate.serve.auth import resolve_admin_keys
    from graduate.serve.limits import PROMOTE_TIMEOUT_S

    sources = [api_key_env] if api_key_env else ["GRADUATE_ADMIN_KEY", "GRADUATE_API_KEY"]
    source = next((name for name in sources if os.environ.get(name)), sources[0])
    served_keys = [k.strip() for k in os.environ.get(proj.spec.serve.api_keys_env, "").split(",") if k.strip()] or [k for k in proj.spec.serve.api_keys if k]
    own_keys = resolve_admin_keys() or served_keys
    key = os.environ.get(source) or (own_keys[0] if own_keys else None)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = _server_root(server)
    try:
        r = httpx.post(f"{base}/admin/promote", json={"run_id": run, "student": student, "project": proj.spec.task.name}, headers=headers, timeout=PROMOTE_TIMEOUT_S + 30)  # the server gives the candidate PROMOTE_TIMEOUT_S to start
    except httpx.HTTPError as exc:
        raise NotReadyError(f"the server at {base} does not answer ({exc}); start it with `graduate serve {project}`") from None
    if r.status_code not in (200, 202):  # 200: this candidate's promotion already runs (a rerun follows it)
        message = (r.json().get("error") or {}).get("message") if r.headers.get("content-type", "").startswith("application/json") else r.text
        hint = {
            401: f"; put a key the server accepts in {source} (or pass --api-key-env)",
            403: f"; put an admin key in {api_key_env or 'GRADUATE_ADMIN_KEY'} (or pass --api-key-env)",
        }.get(r.status_code, "")
        raise NotReadyError(f"the server refused the promotion (HTTP {r.status_code}): {message}{hint}")
    state = r.json()
    already = " (already running: following it)" if r.status_code == 200 else ""
    console.print(escape(f"promoting {state['candidate']} (replaces {state['replaces']}){already}: {state['stage']}"), highlight=False)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    seen = 0
    lost = (
        f"a promotion lives in the server's memory, so a restarted server has none: "
        f"once it serves again, start the promotion again with `graduate promote {project} --server {base}`"
    )
    while state.get("outcome") is None and time.monotonic() < deadline:
        time.sleep(1.0)
        try:
            r = httpx.get(f"{base}/admin/promotion", headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            raise NotReadyError(f"the server at {base} stopped answering while the promotion ran ({type(exc).__name__}); {lost}") from None
        if r.status_code != 200:  # 404 no_promotion: another process answers at the address now
            raise NotReadyError(f"the server at {base} no longer knows the promotion (HTTP {r.status_code}): it was restarted; {lost}")
        state = r.json()
        for h in state.get("history", [])[seen:]:
            console.print(escape(
                f"  {h['stage']}: {h['compared']} items, agreement {fmt(h['agreement'], 3)}" + (f", p99 {h['p99_ms']:.1f} ms" if h.get("p99_ms") else "")
                + (f", label PSI {h['label_psi']:.3f}" if h.get("label_psi") is not None else "") + (" passed" if h["passed"] else " FAILED")
            ), highlight=False)  # fmt: skip
        seen = len(state.get("history", []))
    if state.get("outcome") == "promoted":
        console.print(escape(f"promoted: the server now serves {state['serving']}"), highlight=False)
        return
    if state.get("outcome") == "rolled_back":
        err_console.print(escape(f"rolled back: {state['reason']}; the server still serves {state['serving']}"), highlight=False)
        raise typer.Exit(1)
    err_console.print(escape(f"still {state.get('stage')} after {timeout:.0f} s; follow it with GET {base}/admin/promotion"), highlight=False)
    raise typer.Exit(1)


def _per_1k(cost: str) -> str:
    """``fmt_usd`` text with its unit: per 1k items, unless it already names per 1M."""
    return cost if "per 1M" in cost else f"{cost} per 1k"
