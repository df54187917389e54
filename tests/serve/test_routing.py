"""Each routing mode over real HTTP, with a real fake-OpenAI teacher on 127.0.0.1, and the traffic
rows each leaves: who answered, why, the student's and the teacher's labels, and their agreement."""

from __future__ import annotations

import time
import uuid

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.serve.auth import client_id
from graduate.serve.routing import Canary, Shadow, make_strategy
from graduate.spec import ServeSpec
from graduate.store.schema import teacher_calls
from graduate.store.traffic import read_traffic
from servers import fake_openai_server
from servers.fake_openai import is_rude
from servers.graduate_server import AUTH, KEY, ThreadServer, comments, options, prompt_messages, set_teacher

NOVEL = [f"{w} {uuid.uuid4().hex[:6]}" for w in (
    "you are an idiot", "what a lovely garden", "shut up loser", "thanks for the edit", "this is stupid",
    "I like this article", "you moron", "great sources here", "dumb edit again", "see the talk page",
    "go away jerk", "nice work on the table",
)]


@pytest.fixture(scope="module")
def teacher():
    with fake_openai_server(latency=0.05) as server:
        yield server


def _live_calls(proj: Project) -> list:
    with proj.engine.connect() as conn:
        return conn.execute(select(teacher_calls).where(teacher_calls.c.source == "live")).all()


def test_student_mode_answers_everything_and_logs_every_item(served):
    proj = Project.load(served)
    app = create_app(proj, options(proj))
    texts = comments(served, 20)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        r = client.post("/v1/classify", json={"texts": texts})
        assert r.status_code == 200
        body = r.json()
        classify_id = r.headers["x-request-id"]
        assert body["id"] == classify_id and len(body["results"]) == 20
        chat_ids = []
        for text in ["you idiot", "have a nice day"]:
            c = client.post("/v1/chat/completions", json={"model": "gpt-4-1106-preview", "messages": prompt_messages(proj, text)})
            assert c.status_code == 200 and c.headers["x-graduate-route"] == "student"
            chat_ids.append(c.headers["x-request-id"])
    student, _ = proj.best_student()
    probs = student.predict_proba(texts)
    expected = [student.labels[i] for i in probs.argmax(axis=1)]
    assert [x["label"] for x in body["results"]] == expected
    assert all(x["route"] == "student" for x in body["results"])
    assert np.allclose([x["probs"]["bad"] for x in body["results"]], probs[:, student.labels.index("bad")])

    rows = read_traffic(proj.engine)
    assert len(rows) == 22
    classify_rows = sorted((r for r in rows if r.request_id == classify_id), key=lambda r: r.item)
    assert [r.text for r in classify_rows] == texts
    assert [r.label for r in classify_rows] == expected == [r.student_label for r in classify_rows]
    assert all(r.route == "student" and r.reason == "student" and r.mode == "student" and r.status == 200 for r in rows)
    assert all(r.teacher_label is None and r.agree is None and r.latency_ms > 0 for r in rows)
    chat_rows = [r for r in rows if r.endpoint == "chat"]
    assert sorted(r.request_id for r in chat_rows) == sorted(chat_ids)
    assert {r.text for r in chat_rows} == {"you idiot", "have a nice day"}
    with proj.engine.connect() as conn:
        from graduate.store.schema import traffic

        stored = conn.execute(select(traffic.c.client, traffic.c.answer, traffic.c.student).where(traffic.c.endpoint == "chat")).all()
    assert {s.client for s in stored} == {client_id(KEY)} and KEY not in str(stored)
    assert {s.answer for s in stored} <= {'{"is_bad": 0}', '{"is_bad": 1}'}
    assert all(s.student.startswith("tfidf-logreg:") for s in stored)


def test_cascade_sends_low_confidence_items_to_the_teacher(served, teacher):
    set_teacher(served, base_url=teacher.base_url)
    proj = Project.load(served)
    student, _ = proj.best_student()
    texts = comments(served, 10) + NOVEL
    conf = student.predict_proba(texts).max(axis=1)
    threshold = float(np.median(conf))
    app = create_app(proj, options(proj, mode="cascade", cascade_threshold=threshold))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        results = client.post("/v1/classify", json={"texts": texts}).json()["results"]
    to_teacher = conf < threshold
    assert [x["route"] for x in results] == ["teacher" if t else "student" for t in to_teacher]
    # the teacher's answers come back for its items: live ones follow the fake teacher's rule
    for text, x, t in zip(texts, results, to_teacher):
        if t and text in NOVEL:
            assert x["label"] == ("bad" if is_rude(text) else "ok")
    rows = sorted(read_traffic(proj.engine), key=lambda r: r.item)
    assert [r.reason for r in rows] == ["low_confidence" if t else "confident" for t in to_teacher]
    for r in rows:
        if r.route == "teacher":
            assert r.teacher_label is not None and r.agree == (r.teacher_label == r.student_label) and r.label == r.teacher_label
        else:
            assert r.teacher_label is None and r.agree is None
    # recorded answers are reused from the call log; only new texts cost a live call
    novel_to_teacher = sum(1 for text, t in zip(texts, to_teacher) if t and text in NOVEL)
    assert novel_to_teacher > 0
    assert len(_live_calls(proj)) == novel_to_teacher
    assert all(c.status == "ok" and c.cost_usd > 0 for c in _live_calls(proj))


def test_shadow_answers_with_the_student_and_compares_in_the_background(served):
    with fake_openai_server(latency=3.0) as slow_teacher:
        set_teacher(served, base_url=slow_teacher.base_url)
        proj = Project.load(served)
        app = create_app(proj, options(proj, mode="shadow", shadow_rate=1.0))
        with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            t0 = time.perf_counter()
            r = client.post("/v1/classify", json={"texts": NOVEL[:6]})
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200 and all(x["route"] == "student" for x in r.json()["results"])
            assert elapsed < 2.0  # the 3 s teacher is not waited for (slack for a loaded machine)
        # the server's shutdown waited for the comparisons and wrote their rows
        rows = read_traffic(proj.engine)
        assert slow_teacher.stats()["ok"] == 6
    assert len(rows) == 6
    assert all(r.shadow and r.reason == "shadow" and r.route == "student" for r in rows)
    assert all(r.teacher_label == ("bad" if is_rude(r.text) else "ok") for r in rows)
    assert all(r.agree == (r.teacher_label == r.student_label) for r in rows)
    assert all(r.latency_ms < 2000 for r in rows)  # the student's, not the 3 s teacher's


def test_canary_splits_traffic_and_each_side_answers(served, teacher):
    set_teacher(served, base_url=teacher.base_url)
    proj = Project.load(served)
    app = create_app(proj, options(proj, mode="canary", canary_share=0.5))
    texts = NOVEL * 3
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        results = client.post("/v1/classify", json={"texts": texts}).json()["results"]
    routes = [x["route"] for x in results]
    assert 0 < routes.count("teacher") < len(texts)
    # the same seed routes the same way
    strategy = make_strategy(ServeSpec(mode="canary", canary_share=0.5), seed=proj.spec.seed)
    assert isinstance(strategy, Canary)
    assert routes == [strategy.decide(0.5).route for _ in texts]
    rows = sorted(read_traffic(proj.engine), key=lambda r: r.item)
    for r, text in zip(rows, texts):
        assert r.reason == "canary"
        if r.route == "teacher":
            assert r.label == r.teacher_label == ("bad" if is_rude(text) else "ok") and r.agree is not None
        else:
            assert r.label == r.student_label and r.teacher_label is None


def test_chat_fallback_passes_unmatched_requests_to_the_teacher(served, teacher):
    set_teacher(served, base_url=teacher.base_url)
    proj = Project.load(served)
    other = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "is 'you idiot' rude?"}]
    with ThreadServer(create_app(proj, options(proj))) as server:
        r = httpx.post(f"{server.url}/v1/chat/completions", headers=AUTH, json={"model": "gpt-4-1106-preview", "messages": other}, timeout=60)
        assert r.status_code == 422 and r.json()["error"]["code"] == "template_mismatch"
    with ThreadServer(create_app(proj, options(proj, fallback_to_teacher=True))) as server:
        r = httpx.post(f"{server.url}/v1/chat/completions", headers=AUTH, json={"model": "gpt-4-1106-preview", "messages": other, "temperature": 0}, timeout=60)
        assert r.status_code == 200 and r.headers["x-graduate-route"] == "teacher"
        assert r.json()["choices"][0]["message"]["content"] == '{"is_bad": 1}'
    rows = read_traffic(proj.engine)
    assert [(r.route, r.reason, r.text, r.status) for r in rows] == [("teacher", "template_mismatch", None, 200)]
    assert len(_live_calls(proj)) == 1


def test_budget_and_teacher_failure_fall_back_to_the_student(served, teacher):
    set_teacher(served, base_url=teacher.base_url, budget_usd=0.0)
    proj = Project.load(served)
    before = teacher.stats()["requests"]
    app = create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0))
    with ThreadServer(app) as server:
        r = httpx.post(f"{server.url}/v1/classify", headers=AUTH, json={"texts": NOVEL[:3]}, timeout=60)
        assert r.status_code == 200 and [x["route"] for x in r.json()["results"]] == ["student"] * 3
    assert teacher.stats()["requests"] == before  # nothing was sent past the budget
    assert {r.reason for r in read_traffic(proj.engine)} == {"budget"}

    set_teacher(served, base_url="http://127.0.0.1:9/v1", budget_usd=5.0, max_retries=0, timeout_s=2)
    proj = Project.load(served)
    app = create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0))
    with ThreadServer(app) as server:
        r = httpx.post(f"{server.url}/v1/classify", headers=AUTH, json={"texts": NOVEL[3:5]}, timeout=60)
        assert r.status_code == 200 and [x["route"] for x in r.json()["results"]] == ["student"] * 2
    rows = [r for r in read_traffic(proj.engine) if r.reason != "budget"]
    assert [r.reason for r in rows] == ["teacher_failed"] * 2 and all("connect" in (r.teacher_error or "") for r in rows)
    assert [c.status for c in _live_calls(proj)] == ["error", "error"]


def test_a_slow_teacher_is_waited_for_at_most_teacher_wait_s_and_its_answer_still_logged(served):
    """A teacher slower than serve.teacher_wait_s: the student answers (teacher_timeout) well inside
    the request timeout, and the calls end in the background and are logged (a later request for
    the same text is answered from the call log)."""
    with fake_openai_server(latency=6.0) as slow:
        set_teacher(served, base_url=slow.base_url, budget_usd=5.0)
        proj = Project.load(served)
        app = create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0, teacher_wait_s=0.5))
        with ThreadServer(app) as server:
            started = time.perf_counter()
            r = httpx.post(f"{server.url}/v1/classify", headers=AUTH, json={"texts": NOVEL[5:7]}, timeout=30)
            took = time.perf_counter() - started
            assert r.status_code == 200 and [x["route"] for x in r.json()["results"]] == ["student"] * 2
            assert took < 4.0, took  # not the teacher's 6 s (teacher_wait_s 0.5, slack for a loaded machine)
        # the server's shutdown let the two calls finish: both logged as answered
        assert [c.status for c in _live_calls(proj)] == ["ok", "ok"]
        rows = [t for t in read_traffic(proj.engine) if t.reason == "teacher_timeout"]
        assert len(rows) == 2 and all("serve.teacher_wait_s" in (t.teacher_error or "") for t in rows)


def test_strategies_route_by_confidence_and_rate():
    import random

    assert make_strategy(ServeSpec(mode="student")).decide(0.01).route == "student"
    cascade = make_strategy(ServeSpec(mode="cascade", cascade_threshold=0.8))
    assert cascade.decide(0.8).route == "student" and cascade.decide(0.79).route == "teacher"
    assert all(Shadow(1.0, random.Random(0)).decide(0.9).shadow for _ in range(20))
    assert not any(Shadow(0.0, random.Random(0)).decide(0.9).shadow for _ in range(20))
    canary = Canary(0.3, random.Random(1))
    shares = [canary.decide(0.5).route for _ in range(2000)]
    assert 0.25 < shares.count("student") / 2000 < 0.35


def test_a_middle_tier_answers_what_the_student_is_unsure_of_before_the_teacher(served, teacher):
    set_teacher(served, base_url=teacher.base_url)
    with fake_openai_server(latency=0.02) as middle, fake_openai_server(p500=1.0) as broken:
        proj = Project.load(served)
        texts = NOVEL
        before = teacher.stats()["requests"]
        # A sure middle tier (threshold 0: its parsed answer is taken): every low-confidence item stops there.
        opts = options(proj, mode="cascade", cascade_threshold=1.0, middle={"teacher": {"base_url": middle.base_url, "max_retries": 0}, "threshold": 0.0})
        with ThreadServer(create_app(proj, opts)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            results = client.post("/v1/classify", json={"texts": texts}).json()["results"]
        assert [x["route"] for x in results] == ["middle"] * len(texts)
        assert [x["label"] for x in results] == ["bad" if is_rude(t) else "ok" for t in texts]
        assert middle.stats()["ok"] == len(texts) and teacher.stats()["requests"] == before  # the teacher was never asked
        rows = [r for r in read_traffic(proj.engine) if r.route == "middle"]
        assert len(rows) == len(texts) and all(r.reason == "middle_confident" and r.teacher_label is None for r in rows)

        # A middle tier that fails, or one whose answers carry no probability to clear a threshold, passes the item on.
        for base_url, threshold in ((broken.base_url, 0.0), (middle.base_url, 0.9)):
            other = [f"{t} {uuid.uuid4().hex[:4]}" for t in texts[:4]]
            opts = options(proj, mode="cascade", cascade_threshold=1.0, middle={"teacher": {"base_url": base_url, "max_retries": 0}, "threshold": threshold})
            with ThreadServer(create_app(proj, opts)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
                results = client.post("/v1/classify", json={"texts": other}).json()["results"]
            assert [x["route"] for x in results] == ["teacher"] * 4
            assert [x["label"] for x in results] == ["bad" if is_rude(t) else "ok" for t in other]


def test_a_teacher_that_keeps_failing_rests_behind_a_circuit_breaker_and_is_tried_again_later(served):
    """serve.teacher_breaker_failures calls in a row fail: later items fall back to the student at
    once (teacher_unavailable) without a call; after teacher_breaker_reset_s one call tries again,
    and a teacher that is back closes the circuit."""
    with fake_openai_server() as gone:
        url, port = gone.base_url, httpx.URL(gone.base_url).port
    set_teacher(served, base_url=url, max_retries=0, budget_usd=5.0)  # nothing listens there now
    proj = Project.load(served)
    app = create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0, teacher_breaker_failures=3, teacher_breaker_reset_s=5.0))
    texts = [f"{w} {uuid.uuid4().hex[:6]}" for w in ["you fool", "kind words", "go away", "nice photo", "stop it", "thanks", "idiot"]]
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        def route(text: str) -> str:
            return client.post("/v1/classify", json={"texts": [text]}).json()["results"][0]["route"]

        routes = [route(t) for t in texts[:3]]
        opened = time.monotonic()  # the third failure opened the circuit: it rests 5 s from (before) now
        routes += [route(t) for t in texts[3:5]]  # well within the 5 s, even on a loaded machine
        assert routes == ["student"] * 5
        assert client.get("/readyz").json()["teacher_circuit"] == "open"
        assert "graduate_teacher_circuit_open 1.0" in client.get("/metrics").text
        with fake_openai_server(port=port) as back:
            time.sleep(max(0.0, opened + 5.1 - time.monotonic()))
            r = client.post("/v1/classify", json={"texts": [texts[5]]}).json()["results"][0]
            assert r["route"] == "teacher" and r["label"] == ("bad" if is_rude(texts[5]) else "ok")
            assert client.get("/readyz").json()["teacher_circuit"] == "closed"
            assert "graduate_teacher_circuit_open 0.0" in client.get("/metrics").text
            assert back.stats()["requests"] == 1
    reasons = {t.text: t.reason for t in read_traffic(proj.engine)}
    assert [reasons[t] for t in texts[:5]] == ["teacher_failed"] * 3 + ["teacher_unavailable"] * 2
    assert "serve.teacher_breaker_" in next(t.teacher_error for t in read_traffic(proj.engine) if t.text == texts[3])
    assert [c.status for c in _live_calls(proj)] == ["error"] * 3 + ["ok"]  # no call while the circuit was open


def test_teacher_calls_cancelled_while_they_hang_count_against_the_breaker_not_for_it(served):
    """A teacher call cancelled while it hung (the request's deadline, serve.request_timeout_s,
    passed first, or the server stopped) counted as a success for pybreaker: it reset the failures
    in a row, so a teacher that hung past every request's deadline never rested. Now it counts as
    a timed-out call: serve.teacher_breaker_failures of them in a row open the circuit."""
    import asyncio

    with fake_openai_server(phang=1.0, hang_s=60) as hanging:
        set_teacher(served, base_url=hanging.base_url, max_retries=0, budget_usd=5.0)
        proj = Project.load(served)
        app = create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0, teacher_breaker_failures=2, teacher_breaker_reset_s=60.0, shutdown_timeout_s=1))
        service = app.state.service
        texts = [f"{w} {uuid.uuid4().hex[:6]}" for w in ["you fool", "kind words", "go away"]]

        async def run() -> list:
            async with app.router.lifespan_context(app):
                for n, text in enumerate(texts[:2], 1):
                    # cancelled as RequestTimeout cancels a request: while its teacher call hangs
                    request = asyncio.ensure_future(service.classify([text]))
                    deadline = time.monotonic() + 60
                    while hanging.stats()["hangs"] < n:
                        assert time.monotonic() < deadline and not request.done()
                        await asyncio.sleep(0.05)
                    request.cancel()
                    await asyncio.gather(request, return_exceptions=True)
                assert service.breaker.state == "open"
                assert b"graduate_teacher_circuit_open 1.0" in app.state.metrics.render()[0]
                later = await service.classify([texts[2]])
            # The stop's drain (shutdown_timeout_s) ended the hanging calls the cancelled requests left:
            # they were not tracked, and ran on after the server had stopped.
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
            assert not left, left
            return later

        (later,) = asyncio.run(run())
        assert (later.route, later.reason) == ("student", "teacher_unavailable")
        assert hanging.stats()["requests"] == 2  # not asked while its circuit is open


def test_breaker_options_are_checked():
    with pytest.raises(ValueError, match="teacher_breaker_reset_s"):
        ServeSpec(teacher_breaker_reset_s=0)
    with pytest.raises(ValueError, match="teacher_breaker_failures"):
        ServeSpec(teacher_breaker_failures=-1)
    assert ServeSpec(teacher_breaker_failures=0).teacher_breaker_failures == 0


def test_a_forwarded_call_is_priced_by_the_model_it_was_sent_with(served, teacher):
    """Forwards were priced at the project teacher's price whatever model the client named: a
    gpt-3.5-turbo call logged at gpt-4's price. A model with no price is refused while the budget
    is enforced, and logged with cost unknown (None) when the teacher itself is unpriced."""
    import yaml

    set_teacher(served, base_url=teacher.base_url)
    proj = Project.load(served)
    other = [{"role": "user", "content": f"is 'you idiot' rude? {uuid.uuid4()}"}]
    with ThreadServer(create_app(proj, options(proj, fallback_to_teacher=True))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        for model in ("gpt-3.5-turbo", "gpt-4-1106-preview"):
            r = client.post("/v1/chat/completions", json={"model": model, "messages": other})
            assert r.status_code == 200 and r.headers["x-graduate-route"] == "teacher", r.text
        unpriced = client.post("/v1/chat/completions", json={"model": "some-unpriced-model", "messages": other})
        assert unpriced.status_code == 422 and unpriced.json()["error"]["code"] == "unpriced_model" and unpriced.json()["error"]["param"] == "model"
        assert "'some-unpriced-model' has no price in graduate.yaml's prices" in unpriced.json()["error"]["message"]
    calls = {c.model: c for c in _live_calls(proj)}
    assert set(calls) == {"gpt-3.5-turbo", "gpt-4-1106-preview"}  # the refused one was never sent
    for model, call in calls.items():
        assert call.cost_usd == pytest.approx(proj.spec.price_for(model).cost(call.input_tokens, call.output_tokens)), model
    assert calls["gpt-3.5-turbo"].cost_usd < calls["gpt-4-1106-preview"].cost_usd

    path = served / "graduate.yaml"  # no price for the teacher either: the budget holds nothing, the cost is unknown
    raw = yaml.safe_load(path.read_text())
    raw["prices"] = {}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(served)
    with ThreadServer(create_app(proj, options(proj, fallback_to_teacher=True))) as server:
        r = httpx.post(f"{server.url}/v1/chat/completions", headers=AUTH, json={"model": "some-unpriced-model", "messages": other}, timeout=30)
        assert r.status_code == 200, r.text
    (call,) = [c for c in _live_calls(proj) if c.model == "some-unpriced-model"]
    assert call.status == "ok" and call.cost_usd is None


def test_a_hanging_middle_tier_passes_the_item_on_within_the_teacher_wait_not_a_504(served, teacher):
    """The middle tier was awaited without serve.teacher_wait_s: a local LLM that hangs turned every
    unsure item into a 504 at request_timeout_s. Now it and the teacher share the wait: the middle
    tier gets half, the item goes on to the teacher, and the middle's call ends in the background."""
    set_teacher(served, base_url=teacher.base_url)
    with fake_openai_server(phang=1.0, hang_s=60) as hanging:
        proj = Project.load(served)
        opts = options(proj, mode="cascade", cascade_threshold=1.0, request_timeout_s=8, shutdown_timeout_s=1, teacher_breaker_failures=2,
                       middle={"teacher": {"base_url": hanging.base_url, "max_retries": 0}, "threshold": 0.0})  # fmt: skip
        texts = [f"{t} {uuid.uuid4().hex[:4]}" for t in NOVEL[:2]]
        with ThreadServer(create_app(proj, opts), graceful_s=1) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            started = time.monotonic()
            r = client.post("/v1/classify", json={"texts": texts})
            took = time.monotonic() - started
            # Two timeouts in a row opened the middle tier's circuit: the next item does not wait on it.
            later = client.post("/v1/classify", json={"texts": [f"{NOVEL[2]} {uuid.uuid4().hex[:4]}"]}).json()["results"][0]
            assert later["route"] == "teacher" and client.get("/readyz").json()["middle_circuit"] == "open"
        assert hanging.stats()["hangs"] == hanging.stats()["requests"] == 2
    assert r.status_code == 200, r.text
    assert [x["route"] for x in r.json()["results"]] == ["teacher"] * 2
    assert [x["label"] for x in r.json()["results"]] == ["bad" if is_rude(t) else "ok" for t in texts]
    assert took < 8


def test_a_middle_tier_that_keeps_failing_is_skipped_behind_its_own_breaker_and_tried_again_later(served, teacher):
    """A middle tier that errors (or hangs) cost every unsure item its call, forever. It now rests
    behind its own breaker with the teacher's settings: after serve.teacher_breaker_failures
    failures in a row, items go straight to the teacher (reason middle_unavailable) without a call,
    until serve.teacher_breaker_reset_s lets one trial call through to the middle tier."""
    set_teacher(served, base_url=teacher.base_url)
    with fake_openai_server(p500=1.0) as broken:
        proj = Project.load(served)
        opts = options(proj, mode="cascade", cascade_threshold=1.0, teacher_breaker_failures=2, teacher_breaker_reset_s=4.0,
                       middle={"teacher": {"base_url": broken.base_url, "max_retries": 0}, "threshold": 0.0})  # fmt: skip
        texts = [f"{t} {uuid.uuid4().hex[:4]}" for t in NOVEL[:5]]
        with ThreadServer(create_app(proj, opts)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            def ask(text: str) -> dict:
                return client.post("/v1/classify", json={"texts": [text]}).json()["results"][0]

            assert "graduate_middle_circuit_open 0.0" in client.get("/metrics").text
            results = [ask(t) for t in texts[:2]]
            opened = time.monotonic()  # the second failure opened the middle's circuit: it rests 4 s from (before) now
            results += [ask(t) for t in texts[2:4]]  # well within the 4 s, even on a loaded machine
            assert broken.stats()["requests"] == 2  # no call to the middle tier while its circuit is open
            assert client.get("/readyz").json()["middle_circuit"] == "open"
            metrics = client.get("/metrics").text
            assert 'graduate_teacher_calls_total{outcome="middle_circuit_open"} 2.0' in metrics
            # the middle tier's own gauge, beside the teacher's (whose circuit stays closed)
            assert "graduate_middle_circuit_open 1.0" in metrics and "graduate_teacher_circuit_open 0.0" in metrics
            time.sleep(max(0.0, opened + 4.1 - time.monotonic()))
            results.append(ask(texts[4]))
            assert broken.stats()["requests"] == 3  # the trial call
            assert "graduate_middle_circuit_open 1.0" in client.get("/metrics").text  # it failed: open again
        assert [x["route"] for x in results] == ["teacher"] * 5  # the teacher answered every item
        assert [x["label"] for x in results] == ["bad" if is_rude(t) else "ok" for t in texts]
    reasons = {t.text: t.reason for t in read_traffic(proj.engine)}
    assert [reasons[t] for t in texts] == ["low_confidence"] * 2 + ["middle_unavailable"] * 2 + ["low_confidence"]
