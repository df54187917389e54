"""The HTTP app of ``graduate serve``: OpenAI-compatible chat completions, /v1/classify, models,
health, readiness and Prometheus metrics, behind API keys and limits.

``create_app(project)`` builds it from the spec's ``serve`` section (or the options given); the
student, the traffic writer and the teacher client start and stop with the app's lifespan, so a
SIGTERM lets uvicorn finish in-flight requests, then background comparisons finish and every
traffic row is written before the process exits.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response, StreamingResponse

from graduate.errors import GraduateError, StudentError
from graduate.formats import labelset
from graduate.serve.auth import AuthMiddleware, resolve_admin_keys, resolve_keys
from graduate.serve.chat import COMPLETION_ID_PREFIX, answer_logprobs, answerer, completion_body, completion_chunks, estimate_usage, label_set_logprobs, message_text, recover_text
from graduate.serve.context import ServedProject
from graduate.serve.errors import error_body
from graduate.serve.limits import PROMOTE_TIMEOUT_S, BodySizeLimit, InFlightLimit, RequestTimeout
from graduate.serve.metrics import MetricsMiddleware, ServeMetrics
from graduate.serve.predictor import Predictor
from graduate.serve.routing import make_strategy
from graduate.data.review import record_feedback
from graduate.serve.schemas import ChatBody, ClassifyBody, FeedbackBody, PromoteBody
from graduate.store.traffic import find_traffic
from graduate.serve.service import RequestInfo, ServeService
from graduate.serve.teacher_client import ServeTeacher
from graduate.serve.traffic import TrafficWriter
from graduate.spec import ServeSpec
from graduate.spec.text import is_blank
from graduate.teacher.base import TeacherBackend

ENDPOINTS = frozenset({"/v1/classify", "/v1/chat/completions", "/v1/feedback", "/v1/models", "/healthz", "/readyz", "/metrics", "/admin/promote", "/admin/promotion"})


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), status_code=status, headers=headers, media_type="application/json")


def _param(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def create_app(
    project: ServedProject,
    options: ServeSpec | None = None,
    *,
    teacher_backend: TeacherBackend | None = None,
    on_stopped: Callable[[dict[str, Any]], None] | None = None,
) -> FastAPI:
    """Build the app. ``teacher_backend`` replaces the spec's teacher (tests, other transports);
    ``on_stopped`` gets the traffic writer's figures once everything is written at shutdown."""
    spec = project.spec
    opts = options or spec.serve
    answer_for = answerer(spec.task, opts.answers)
    keys = resolve_keys(opts.api_keys_env, opts.api_keys, auth=opts.auth)
    admin_keys = resolve_admin_keys()
    student, run = project.select_student(opts.student)
    student_name = f"{run.name}:{run.id}"
    metrics = ServeMetrics()
    writer = TrafficWriter(
        project.engine,
        batch_size=opts.traffic_batch_size,
        flush_s=opts.traffic_flush_s,
        spill_dir=project.workdir,
        on_written=metrics.traffic_written.inc,
        redactor=project.redactor,
    )
    labels = list(student.labels)
    # A student that may answer no label, in a format with no word for that (label_list without
    # parse.none): /v1/chat/completions then answers "", which graduate's own parser reads as a failure.
    unwritable_none = bool(spec.task.multi_label and not getattr(student, "at_least_one", True) and not answer_for(labelset.NONE))
    decide = student.decision_rule()  # multi-label: the set by its tuned thresholds (kept without the model)
    # With worker processes the student lives there only: the server process does not keep a copy.
    predictor = Predictor(
        student if opts.predict_workers == 0 else None,
        Path(run.artifact_dir or "."),
        workers=opts.predict_workers,
        max_items=max(opts.max_batch, 256),
        labels=labels,
    )
    del student
    strategy = make_strategy(opts, seed=spec.seed)
    service = ServeService(
        labels=labels,
        student_name=student_name,
        predictor=predictor,
        strategy=strategy,
        teacher=None,
        writer=writer,
        metrics=metrics,
        decide=decide,
        multi_label=spec.task.multi_label,
    )
    service.teacher_wait_s = min(opts.teacher_wait_s, 0.8 * opts.request_timeout_s)
    if opts.teacher_breaker_failures > 0:
        from graduate.serve.breaker import TeacherBreaker

        service.breaker = TeacherBreaker(
            opts.teacher_breaker_failures, opts.teacher_breaker_reset_s, on_change=lambda s: metrics.teacher_circuit_open.set(1.0 if s == "open" else 0.0)
        )
        if strategy.mode == "cascade" and opts.middle is not None:
            # The middle tier's own circuit, with the same settings: a local LLM that is down costs
            # each unsure item a failed call (or half of teacher_wait_s) until it rests.
            service.middle_breaker = TeacherBreaker(
                opts.teacher_breaker_failures, opts.teacher_breaker_reset_s, on_change=lambda s: metrics.middle_circuit_open.set(1.0 if s == "open" else 0.0)
            )
    needs_teacher = strategy.needs_teacher or opts.fallback_to_teacher
    if needs_teacher and teacher_backend is None:
        from graduate.teacher.labeling import require_price

        # As graduate label does: an unpriced remote teacher's calls would count as free, and
        # teacher.budget_usd would hold nothing back. Refused before the server listens.
        require_price(spec.teacher, spec.price_for(spec.teacher.model))
        middle = spec.model_copy(update={"serve": opts}).middle_teacher() if strategy.mode == "cascade" and opts.middle is not None else None
        if middle is not None:
            require_price(middle, spec.model_copy(update={"teacher": middle}).price_for(middle.model))
    state: dict[str, Any] = {"ready": False, "stopping": False}

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        writer.start()
        if needs_teacher:
            from graduate.teacher.registry import make_teacher

            service.attach_teacher(ServeTeacher(
                    project.engine, spec, teacher_backend or make_teacher(spec.teacher), redactor=project.redactor, input_redactor=project.input_redactor
                ))
        middle_spec = spec.model_copy(update={"serve": opts}).middle_teacher() if strategy.mode == "cascade" else None
        if middle_spec is not None and opts.middle is not None:
            from graduate.teacher.registry import make_teacher as make_backend

            service.attach_middle(
                ServeTeacher(project.engine, spec.model_copy(update={"teacher": middle_spec}), make_backend(middle_spec), redactor=project.redactor, input_redactor=project.input_redactor),
                opts.middle.threshold,
                spec.task.parse,
            )
        try:
            await predictor.start()
            state["ready"] = True
            yield
        finally:
            state["ready"] = False
            state["stopping"] = True
            await service.drain(opts.shutdown_timeout_s)
            if service.teacher is not None:
                await service.teacher.aclose()
            if service.middle is not None:
                await service.middle.aclose()
            await asyncio.to_thread(service.predictor.close)  # the served one: a promotion may have swapped it
            if service.promotion is not None and service.promotion.active:
                await asyncio.to_thread(service.promotion.candidate.predictor.close)
            await asyncio.to_thread(writer.close, opts.shutdown_timeout_s)
            if on_stopped is not None:
                on_stopped(
                    {
                        "traffic_rows_written": writer.written,
                        "write_failures": writer.failures,
                        "spilled": str(writer.spilled) if writer.spilled else None,
                        "spilled_rows": writer.spilled_rows,
                        "last_error": writer.last_error,
                    }
                )

    def reject(reason: str) -> None:
        metrics.rejected.labels(reason).inc()

    app = FastAPI(
        title=f"graduate: {spec.task.name}",
        description="A distilled student behind an OpenAI-compatible API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics, endpoints=ENDPOINTS),
            Middleware(AuthMiddleware, keys=keys, admin_keys=admin_keys, on_reject=reject),
            # The body first: a slow one must not hold an in-flight slot while it trickles in.
            Middleware(BodySizeLimit, max_bytes=opts.max_body_bytes, timeout_s=opts.body_timeout_s, on_reject=reject),
            Middleware(InFlightLimit, limit=opts.max_in_flight, retry_after_s=opts.retry_after_s, on_reject=reject, gauge=metrics.in_flight),
            Middleware(
                RequestTimeout, timeout_s=opts.request_timeout_s, on_reject=reject,
                # the candidate's workers load for up to STARTUP_TIMEOUT_S each: request_timeout_s (30 s) would 504 every slow one
                slow_paths={"/admin/promote": (PROMOTE_TIMEOUT_S, "the candidate's start")},
            ),  # fmt: skip
        ],
    )
    app.state.service = service
    app.state.writer = writer
    app.state.metrics = metrics
    app.state.student_name = student_name
    app.state.unwritable_none = unwritable_none
    # client keys and no admin keys: any client may promote (graduate serve warns)
    app.state.clients_can_promote = keys is not None and admin_keys is None

    # Read per request: a promotion may swap in a student of another kind (service.student_name is NAME:RUN_ID).
    def served_name() -> str:
        return service.student_name.rpartition(":")[0]

    def fingerprint(student: str | None = None) -> str:
        return f"graduate-{(student or service.student_name).rpartition(':')[2][:8]}"

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        if first.get("type") == "json_invalid":  # loc is ("body", character position): not a field
            at = first.get("loc", ("body", "?"))[-1]
            reason = (first.get("ctx") or {}).get("error", "invalid JSON")
            body = error_body(f"the body is not valid JSON ({reason} at character {at}); send a JSON object as application/json", "invalid_request_error", code="invalid_json")
            return _json(body, 422)
        if first.get("type") == "model_attributes_type" and tuple(first.get("loc", ())) == ("body",):
            body = error_body("the body must be a JSON object sent as Content-Type: application/json", "invalid_request_error", code="invalid_json")
            return _json(body, 422)
        param = _param(tuple(first.get("loc", ())))
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        body = error_body(f"{param}: {first.get('msg')}{more}", "invalid_request_error", param=param, code="invalid_value")
        return _json({**body, "detail": detail}, 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _json(error_body(str(exc.detail), "invalid_request_error", code=str(exc.status_code)), exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(StudentError)
    async def _student(request: Request, exc: StudentError) -> Response:
        return _json(error_body(str(exc), "server_error", code="student_unavailable"), 503, {"retry-after": "1"})

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        ready = state["ready"] and service.predictor.alive and writer.alive and not state["stopping"]
        body = {
            "ready": ready,
            "student": service.student_name,
            "mode": strategy.mode,
            "traffic_pending_rows": writer.pending,
            "traffic_spilled_rows": writer.spilled_rows,
            "worker_restarts": service.predictor.restarts,
            "teacher_circuit": service.breaker.state if service.breaker is not None and service.teacher is not None else None,
            "middle_circuit": service.middle_breaker.state if service.middle_breaker is not None and service.middle is not None else None,
        }
        return _json(body, 200 if ready else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        metrics.traffic_pending.set(writer.pending)
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.get("/v1/models")
    async def models() -> Response:
        data = [
            {"id": spec.teacher.model, "object": "model", "created": 0, "owned_by": f"graduate ({strategy.mode}: {served_name()})"},
            {"id": f"graduate/{served_name()}", "object": "model", "created": 0, "owned_by": "graduate"},
        ]
        return _json({"object": "list", "data": data})

    @app.post("/v1/classify")
    async def classify(body: ClassifyBody, request: Request) -> Response:
        info = RequestInfo("classify", request.scope.get("state", {}).get("client"), f"graduate/{served_name()}")
        if len(body.texts) > opts.max_batch:
            return _json(
                error_body(f"texts: {len(body.texts)} texts, at most {opts.max_batch} per request (serve.max_batch)", "invalid_request_error", param="texts", code="too_many_texts"),
                422,
            )
        results = await service.classify(body.texts)
        service.log(info, results, status=200, answers=[r.label for r in results])
        out = {
            "id": info.request_id,
            "object": "classification",
            "model": info.model,
            "results": [
                {"label": r.label, "probs": r.probs, "route": r.route, **({"labels": labelset.as_list(r.label, labels)} if spec.task.multi_label else {})} for r in results
            ],
        }
        # the student that predicted the request (a promotion may have swapped the served one since)
        return _json(out, headers={"x-request-id": info.request_id, "x-graduate-student": results[0].student or service.student_name})

    promoting = asyncio.Lock()

    @app.post("/admin/promote")
    async def promote(body: PromoteBody) -> Response:
        """Start promoting a trained run: shadow, canary, then full (graduate.serve.promotion)."""
        if body.project is not None and body.project != spec.task.name:
            return _json(error_body(
                f"this server serves project {spec.task.name!r} (task.name), not {body.project!r}: promote with the served project's directory, "
                "or to the server that serves this one", "invalid_request_error", code="wrong_project"), 409)  # fmt: skip
        # One promote request at a time, from "is one running?" to registering it: two requests for the
        # same new candidate at once both loaded it (its workers and memory twice) before either
        # registered; now the second waits here, then follows the first (200) like a rerun does.
        async with promoting:
            return await start_promotion(body)

    async def start_promotion(body: PromoteBody) -> Response:
        import random

        from graduate.serve.promotion import Candidate, Promotion
        from graduate.serve.service import PromotionError

        running = service.promotion if service.promotion is not None and service.promotion.active else None
        if running is not None:
            # The same candidate asked again (a `graduate promote` stopped with Ctrl-C, then rerun): follow
            # the promotion that runs (200) instead of refusing it; another candidate waits (409 below).
            try:
                asked = await asyncio.to_thread(_promoted_run, project, body, running.replaces)
            except (LookupError, GraduateError):
                asked = None
            if asked is not None and asked.id == running.candidate.run_id:
                return _json(running.as_dict(), 200)
            busy = service.promotion_busy()
            if asked is not None and busy is not None:
                # Another candidate: refused before its student loads and its workers start (for a large
                # student minutes, and its memory beside two others, only to be refused after).
                return _json(error_body(busy, "invalid_request_error", code="promotion_running"), 409)
        try:
            # In a thread: loading a student (and reading the runs) must not stall the event loop (/healthz, requests).
            cand_student, cand_run = await asyncio.to_thread(_candidate_run, project, body, service.student_name)
        except (LookupError, GraduateError) as exc:
            return _json(error_body(str(exc), "invalid_request_error", code="no_candidate"), 409)
        if list(cand_student.labels) != labels:
            return _json(error_body(f"run {cand_run.id[:8]} predicts labels {cand_student.labels}, the served student {labels}", "invalid_request_error", code="no_candidate"), 409)
        cand_predictor = Predictor(
            cand_student if opts.predict_workers == 0 else None, Path(cand_run.artifact_dir or "."), workers=opts.predict_workers,
            max_items=max(opts.max_batch, 256), labels=list(cand_student.labels),
        )  # fmt: skip
        try:
            await cand_predictor.start()  # stops whatever it started when it fails
        except Exception as exc:  # noqa: BLE001 - a worker that stopped, or (predict_workers 0) a warm-up prediction that raised
            why = str(exc) if isinstance(exc, StudentError) else " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            return _json(error_body(
                f"the candidate {cand_run.name}:{cand_run.id[:8]} could not start ({why}); nothing was promoted, the server still serves {service.student_name}",
                "invalid_request_error", code="candidate_failed"), 409)  # fmt: skip
        candidate = Candidate(f"{cand_run.name}:{cand_run.id}", cand_run.id, cand_predictor, cand_student.decision_rule())
        try:
            service.start_promotion(
                Promotion(
                    candidate, opts.promote, replaces=service.student_name, labels=labels, multi_label=spec.task.multi_label,
                    max_label_psi=opts.promote.max_label_psi if opts.promote.max_label_psi is not None else spec.monitor.max_label_psi,
                    rng=random.Random(spec.seed),
                )
            )
        except PromotionError as exc:
            # off the loop: closing joins the worker processes, and every other request would wait on it
            await asyncio.to_thread(cand_predictor.close)
            return _json(error_body(str(exc), "invalid_request_error", code="promotion_running"), 409)
        return _json(service.promotion.as_dict(), 202)  # type: ignore[union-attr]

    @app.get("/admin/promotion")
    async def promotion_state() -> Response:
        if service.promotion is None:
            return _json(error_body("no promotion yet: POST /admin/promote (graduate promote)", "invalid_request_error", code="no_promotion"), 404)
        return _json({**service.promotion.as_dict(), "serving": service.student_name})

    @app.post("/v1/feedback")
    async def feedback(body: FeedbackBody) -> Response:
        """A person's answer for an item this server answered: stored as a human label on the item's
        text, which wins over the teacher's in the next build (`graduate run`)."""
        if spec.task.multi_label:
            # read as a review file's or a label import's cell is (graduate.formats.labelset.read_cell)
            try:
                label = labelset.read_cell(body.label, labels, none_word=spec.task.parse.none, max_labels=spec.task.parse.max_labels)
            except labelset.CellError as exc:
                if exc.code == "too_many_labels":  # the client cannot raise parse.max_labels
                    return _json(error_body(f"label: {exc.problem}; give at most {spec.task.parse.max_labels}", "invalid_request_error", param="label", code="too_many_labels"), 422)
                return _json(error_body(f"label: {exc}", "invalid_request_error", param="label", code="unknown_label"), 422)
            if label is None:  # an empty string: no answer given
                return _json(error_body(
                    f"label: {labelset.shown(body.label.strip()) if isinstance(body.label, str) else repr(body.label)} names no label; give a list of labels of {labels}, or [] (or {labelset.NONE!r}) for none",
                    "invalid_request_error", param="label", code="unknown_label"), 422)  # fmt: skip
        else:
            if not isinstance(body.label, str):  # a list on a single-label task: say so, not "['ok'] is no label"
                return _json(error_body(f"label: give one label as a string, one of {labels} (a list is for multi-label tasks)", "invalid_request_error", param="label", code="unknown_label"), 422)
            if body.label not in labels:
                return _json(error_body(f"label: {[body.label]} is not one of {labels}", "invalid_request_error", param="label", code="unknown_label"), 422)
            label = body.label
        # A chat completion's id (what an OpenAI SDK shows as completion.id) is the request id with a prefix.
        request_id = body.request_id.removeprefix(COMPLETION_ID_PREFIX)
        row = None
        # A fresh request's rows may still be buffered in the writer (it flushes every traffic_flush_s;
        # a shadow item's row is queued with the answer, its teacher side filled in later): wait for
        # this request's rows, up to the request timeout, then answer 503 (retry), not 404. An id
        # the writer does not hold (mistyped, unknown) gets its 404 at once.
        deadline = asyncio.get_running_loop().time() + 0.8 * opts.request_timeout_s
        while True:
            # Read before the lookup: rows count as pending until committed, so when none of this
            # request's was pending then, a miss is final; read after it, a commit between the two
            # would read as a miss.
            waiting = writer.holds(request_id)
            row = await asyncio.to_thread(find_traffic, project.engine, request_id, body.item)
            if row is not None or not waiting:
                break
            if asyncio.get_running_loop().time() > deadline:
                return _json(
                    error_body("the traffic log is still writing this request's rows (the store is slow or locked); send the feedback again shortly", "server_error", param="request_id", code="not_written_yet"),
                    503,
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(0.1)
        if row is None:
            return _json(error_body(f"no item {body.item} of request {body.request_id!r} in the traffic log (the id is the response's id or its x-request-id)", "invalid_request_error", param="request_id", code="not_found"), 404)
        if row.text is None:
            return _json(error_body("the request's text is not kept (purged, or a chat request passed to the teacher unparsed): nothing to label", "invalid_request_error", param="request_id", code="no_text"), 409)
        if is_blank(row.text):  # zero-width spaces, a BOM ... pass strip() but show nothing: no item to learn from
            return _json(error_body(f"item {body.item} of request {body.request_id!r} is an empty text: nothing to learn from", "invalid_request_error", param="item", code="empty_text"), 422)
        status, example_id, teacher = await asyncio.to_thread(
            record_feedback, project.engine, row.text, label, body.reviewer.strip(), origin=f"feedback {request_id}/{body.item}", note=body.note
        )
        metrics.feedback.labels(status=status).inc()
        return _json({"object": "feedback", "request_id": body.request_id, "item": body.item, "example_id": example_id, "label": label, "status": status, "overrides_teacher": teacher})

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody, request: Request) -> Response:
        info = RequestInfo("chat", request.scope.get("state", {}).get("client"), body.model)
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        text = recover_text(spec.teacher, messages)
        headers = {"x-request-id": info.request_id}
        to_teacher = opts.fallback_to_teacher and service.teacher is not None
        if body.wants_tools() and not to_teacher:
            return _json(error_body(
                "tools: a student answers in the teacher's format and calls no tools; leave tools out (or tool_choice: none), "
                "or set serve.fallback_to_teacher to pass such requests to the teacher", "invalid_request_error", param="tools", code="unsupported_parameter"),
                422, headers)  # fmt: skip
        if body.logprobs and spec.task.multi_label and text is not None and spec.task.parse.kind != "json_booleans":
            return _json(error_body(
                f"logprobs: a multi-label answer has logprobs in the json_booleans spelling only (task.parse.kind is {spec.task.parse.kind}, "
                "where a label's absence is no token); POST /v1/classify returns each label's probability",
                "invalid_request_error", param="logprobs", code="unsupported_parameter"), 422, headers)  # fmt: skip
        if text is None or body.wants_tools():
            if not to_teacher:
                head, _, tail = spec.teacher.prompt.partition("{text}")
                roles = ["system", "user"] if spec.teacher.system else ["user"]
                return _json(
                    error_body(
                        f"messages do not match the project's prompt template: expected roles {roles}, the user message "
                        f"starting {head[:60]!r} and ending {tail[-60:]!r} (teacher.prompt); "
                        "set serve.fallback_to_teacher to pass such requests to the teacher",
                        "invalid_request_error",
                        param="messages",
                        code="template_mismatch",
                    ),
                    422,
                    headers,
                )
            model = body.model or spec.teacher.model  # as the teacher client sends it
            if service.teacher.unpriced(model):  # type: ignore[union-attr]
                return _json(error_body(
                    f"model: {model!r} has no price in graduate.yaml's prices, so a call to it cannot be held against teacher.budget_usd; "
                    f"add prices: {{{model!r}: {{input_per_1m: ..., output_per_1m: ...}}}}, or send model {spec.teacher.model!r}",
                    "invalid_request_error", param="model", code="unpriced_model"), 422, headers)  # fmt: skip
            answer, failed = await service.forward(body.model_dump(exclude_unset=True))
            if failed is not None or answer.response is None:
                service.log_forwarded(info, answer, failed or "teacher_failed", status=502)
                return _json(error_body(f"the teacher failed: {answer.error}", "server_error", code=failed), 502, headers)
            service.log_forwarded(info, answer, "template_mismatch" if text is None else "tools", status=200)
            reply = dict(answer.response)
            headers["x-graduate-route"] = "teacher"
            if body.stream:
                return StreamingResponse(iter(completion_chunks(_as_completion(reply, info.request_id, body.model, fingerprint()))), media_type="text/event-stream", headers=headers)
            return _json(reply, headers=headers)
        results = await service.classify([text])
        r = results[0]
        by_teacher = r.route == "teacher" and r.content is not None
        content = r.content if by_teacher else answer_for(r.label)  # type: ignore[arg-type]
        service.log(info, results, status=200, answers=[content])
        logprobs = None
        if body.logprobs:
            if by_teacher:  # the teacher's own, when its call asked for them (teacher.logprobs)
                choices = ((r.teacher.response if r.teacher is not None else None) or {}).get("choices") or [{}]
                logprobs = choices[0].get("logprobs") if isinstance(choices[0], dict) else None
            elif r.route == "middle" and not r.answer_probs:  # a middle tier asked without logprobs: none to give
                logprobs = None
            else:
                # the middle tier's answer carries its own probabilities, as the teacher's does; the student's its own
                probs = r.answer_probs if r.route == "middle" else r.probs
                if spec.task.multi_label:
                    logprobs = label_set_logprobs(spec.task, r.label, probs or {}, body.top_logprobs or 0)  # type: ignore[arg-type]
                else:
                    logprobs = answer_logprobs(spec.task, answer_for, r.label, probs or {}, body.top_logprobs or 0)  # type: ignore[arg-type]
        reply = completion_body(info.request_id, body.model, content, estimate_usage(messages, content), fingerprint(r.student), n=body.n, logprobs=logprobs)
        headers["x-graduate-route"] = r.route
        if body.stream:
            return StreamingResponse(iter(completion_chunks(reply)), media_type="text/event-stream", headers=headers)
        return _json(reply, headers=headers)

    return app


def _candidate_run(project: ServedProject, body: PromoteBody, serving: str) -> tuple[Any, Any]:
    """The student and run to promote; LookupError (one line) when there is none."""
    from graduate.students.registry import load_student

    run = _promoted_run(project, body, serving)
    return load_student(Path(run.artifact_dir or ".")), run


def _promoted_run(project: ServedProject, body: PromoteBody, serving: str) -> Any:
    """The training run a promote request names; LookupError (one line) when there is none."""
    from graduate.store.runs import get_runs

    served_name, _, served_id = serving.rpartition(":")
    finished = [r for r in get_runs(project.engine, kind="train", status="finished", root=project.root) if r.artifact_dir and (Path(r.artifact_dir) / "kind.json").exists()]
    if body.run_id:
        runs = [r for r in finished if r.id.startswith(body.run_id)]
        if len(runs) != 1:
            raise LookupError(f"run {body.run_id!r} names {len(runs)} finished training runs; give more of its id (graduate runs list)")
        if body.student is not None and runs[0].name != body.student:  # both named: they must agree, or one would be ignored
            raise LookupError(f"run {runs[0].id[:8]} is a run of {runs[0].name!r}, not {body.student!r}; give --run or --student, not both")
    else:
        name = body.student or served_name
        runs = [r for r in finished if r.name == name][-1:]  # its newest training
        if not runs:
            raise LookupError(f"no candidate: no finished training run of {name!r}; train one (graduate train --student KIND)")
    run = runs[0]
    if run.id == served_id:
        raise LookupError(f"no candidate: the server already serves run {run.id[:8]} of {run.name}; train a newer one (graduate run) or name a run")
    return run


def _as_completion(reply: dict[str, Any], request_id: str, model: str, fingerprint: str) -> dict[str, Any]:
    """The teacher's stored response in the shape ``completion_chunks`` streams: every choice, each
    with its content, refusal, tool calls, logprobs and finish reason."""
    body = completion_body(request_id, reply.get("model") or model, "", reply.get("usage") or {}, fingerprint)
    choices = [c for c in reply.get("choices") or [] if isinstance(c, dict)] or [{}]
    body["choices"] = []
    for n, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        calls = message.get("tool_calls") or None
        content = message_text(message.get("content"))
        out = {"role": "assistant", "content": content if content is not None or calls else ""}
        out.update({k: message[k] for k in ("refusal", "function_call") if message.get(k) is not None})
        if calls:
            out["tool_calls"] = calls
        body["choices"].append({"index": choice.get("index", n), "message": out, "logprobs": choice.get("logprobs"), "finish_reason": choice.get("finish_reason") or "stop"})
    return body
