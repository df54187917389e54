"""graduate promote against a real `graduate serve` process under load: a candidate that disagrees
is rolled back by the server itself; a retrained student goes shadow -> canary -> full and is
swapped in while requests keep coming, none of them failing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

from servers.graduate_server import AUTH, KEY, cli_env, comments, serve_process


class Load:
    """Clients sending /v1/classify back to back until stopped; every status is counted."""

    def __init__(self, url: str, texts: list[str], clients: int = 3):
        self.url, self.texts = url, texts
        self.statuses: Counter = Counter()
        self.students: Counter = Counter()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def run(self, k: int) -> None:
        with httpx.Client(timeout=30, headers=AUTH) as client:
            i = k
            while not self.stop.is_set():
                batch = [self.texts[(i + j) % len(self.texts)] for j in range(4)]
                try:
                    r = client.post(f"{self.url}/v1/classify", json={"texts": batch})
                    self.statuses[r.status_code] += 1
                    self.students[r.headers.get("x-graduate-student", "")] += 1
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                i += 3

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def graduate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, env=env, timeout=600)


def test_promote_rolls_back_a_disagreeing_candidate_and_swaps_in_a_good_one_without_failing_a_request(trained_copy: Path) -> None:
    path = trained_copy / "graduate.yaml"
    spec = yaml.safe_load(path.read_text())
    spec.setdefault("serve", {})["promote"] = {"min_items": 60, "min_agreement": 0.95, "canary_share": 0.5}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = cli_env(GRADUATE_API_KEYS=KEY, GRADUATE_API_KEY=KEY)
    texts = comments(trained_copy)
    with serve_process(trained_copy, "--student", "tfidf-logreg", env=env) as server:
        served = httpx.get(f"{server.url}/readyz", timeout=60).json()["student"]
        with Load(server.url, texts) as load:
            nothing = graduate("promote", str(trained_copy), "--server", server.url, env=env)
            assert nothing.returncode == 2 and "no candidate" in nothing.stderr and len(nothing.stderr.strip().splitlines()) == 1
            # on the server's machine its own key (GRADUATE_API_KEYS) is enough; a wrong key says where a key goes
            own = graduate("promote", str(trained_copy), "--server", server.url, env=cli_env(GRADUATE_API_KEYS=KEY))
            assert own.returncode == 2 and "no candidate" in own.stderr, own.stderr
            wrong = graduate("promote", str(trained_copy), "--server", server.url, env=cli_env(GRADUATE_API_KEY="not-the-key"))
            assert wrong.returncode == 2 and "HTTP 401" in wrong.stderr and "put a key the server accepts in GRADUATE_API_KEY" in wrong.stderr

            bad = graduate("promote", str(trained_copy), "--server", server.url, "--student", "majority", env=env)
            assert bad.returncode == 1 and "rolled back" in bad.stderr and "agreement" in bad.stderr, bad.stdout + bad.stderr
            assert httpx.get(f"{server.url}/readyz", timeout=60).json()["student"] == served

            # Retrained on the same data with one more iteration allowed: a new run, the same answers (an identical run would be reused).
            spec["students"] = [dict(s, params={**s.get("params", {}), "max_iter": 501}) if s["kind"] == "tfidf-logreg" else s for s in spec["students"]]
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            retrained = graduate("train", str(trained_copy), "--student", "tfidf-logreg", env=env)
            assert "tfidf-logreg" in retrained.stdout, retrained.stderr
            good = graduate("promote", str(trained_copy), "--server", server.url, env=env)
            assert good.returncode == 0, good.stdout + good.stderr
            assert "shadow: 60 items" in good.stdout and "canary:" in good.stdout and "promoted: the server now serves" in good.stdout
            now = httpx.get(f"{server.url}/readyz", timeout=60).json()["student"]
            assert now != served and now.startswith("tfidf-logreg:")
            before, deadline = sum(load.statuses.values()), time.monotonic() + 120
            while sum(load.statuses.values()) < before + 20:  # more requests on the new student
                assert time.monotonic() < deadline, load.statuses  # (it waited forever when the load had stopped)
                load.stop.wait(0.05)
        state = httpx.get(f"{server.url}/admin/promotion", headers=AUTH, timeout=60).json()
    assert state["outcome"] == "promoted" and [h["stage"] for h in state["history"]] == ["shadow", "canary"]
    assert set(load.statuses) == {200}, load.statuses  # not one request failed through two promotions and a swap
    assert load.students[now] >= 20 and load.students[served] >= 20


def promote_in_background(project: Path, url: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
    from teacher.live_teacher import as_at_a_terminal  # a test sends it Ctrl-C: CI may start the suite with SIGINT ignored

    return subprocess.Popen(
        [sys.executable, "-m", "graduate", "promote", str(project), "--server", url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=as_at_a_terminal,
    )


def test_promote_reports_a_rollback_before_any_item_was_compared(served: Path) -> None:
    """A candidate that fails on its first request is rolled back with no agreement (null): the
    CLI formatted it with :.3f and crashed (TypeError, internal error) instead of saying so."""
    import time

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    app = create_app(proj, options(proj))
    service = app.state.service
    with ThreadServer(app) as server:
        cli = promote_in_background(served, server.url, "--student", "majority", env=cli_env(GRADUATE_API_KEYS=KEY))
        deadline = time.monotonic() + 120
        while service.promotion is None:
            assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()
            time.sleep(0.05)
        service.promotion.candidate.predictor.close()  # the candidate stops: it fails on the next request
        assert httpx.post(f"{server.url}/v1/classify", json={"texts": ["a request the candidate fails on"]}, headers=AUTH, timeout=30).status_code == 200
        out, err = cli.communicate(timeout=120)
    assert service.promotion.outcome == "rolled_back" and service.promotion.history[-1]["agreement"] is None
    assert cli.returncode == 1, out + err
    assert "shadow: 0 items, agreement – FAILED" in out
    assert err.strip().startswith("rolled back: the candidate failed on a request") and len(err.strip().splitlines()) == 1, err


def test_promote_says_so_when_the_server_stops_while_it_follows_the_stages(served: Path) -> None:
    """The server killed while `graduate promote --wait` polled it: a ConnectError escaped as an
    internal error (exit 70). Now one line says it stopped answering and that the promotion is gone."""
    import signal
    import time

    env = cli_env(GRADUATE_API_KEYS=KEY)
    with serve_process(served, env=env) as server:
        # client keys and no admin keys: any client may promote, and the server says so once at start
        assert server.text.count("any client key can promote; set GRADUATE_ADMIN_KEYS") == 1, server.text
        cli = promote_in_background(served, server.url, "--student", "majority", env=env)  # no traffic: it stays in shadow
        deadline = time.monotonic() + 120
        while httpx.get(f"{server.url}/admin/promotion", headers=AUTH, timeout=60).status_code != 200:
            assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()
            time.sleep(0.1)
        server.stop(signal.SIGKILL)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 2, out + err
    (line,) = err.strip().splitlines()
    assert f"the server at {server.url} stopped answering while the promotion ran" in line, line
    assert "a promotion lives in the server's memory, so a restarted server has none" in line and "internal error" not in line


def test_after_promoting_a_student_of_another_kind_the_api_names_it(served: Path) -> None:
    """/v1/classify's model and /v1/models named the student served when the app was made (and chat's
    system_fingerprint its run), also after a promotion swapped in another kind."""
    import time

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options, prompt_messages

    proj = Project.load(served)
    easy = {"min_items": 8, "min_agreement": 0.0, "canary_share": 1.0, "max_label_psi": 1e9}  # whatever majority answers passes
    app = create_app(proj, options(proj, student="tfidf-logreg", promote=easy))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        assert client.post("/v1/classify", json={"texts": ["hello"]}).json()["model"] == "graduate/tfidf-logreg"
        started = client.post("/admin/promote", json={"student": "majority"})
        assert started.status_code == 202, started.text
        texts = comments(served, 8)
        deadline = time.monotonic() + 60
        while client.get("/admin/promotion").json()["outcome"] is None:
            assert time.monotonic() < deadline
            client.post("/v1/classify", json={"texts": texts})
        state = client.get("/admin/promotion").json()
        assert state["outcome"] == "promoted" and state["serving"].startswith("majority:"), state
        assert client.post("/v1/classify", json={"texts": ["hello"]}).json()["model"] == "graduate/majority"
        models = client.get("/v1/models").json()["data"]
        assert "graduate/majority" in {m["id"] for m in models} and "majority" in models[0]["owned_by"]
        chat = client.post("/v1/chat/completions", json={"model": "m", "messages": prompt_messages(proj, "hello")}).json()
        assert chat["system_fingerprint"] == f"graduate-{state['serving'].split(':')[1][:8]}"


def test_a_run_and_a_student_that_disagree_are_refused_not_one_ignored(served: Path) -> None:
    """--run ID --student NAME promoted the run whatever NAME said: the --student was ignored."""
    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.store.runs import get_runs
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    majority = next(r for r in get_runs(proj.engine, kind="train", status="finished", root=proj.root) if r.name == "majority")
    app = create_app(proj, options(proj, student="tfidf-logreg"))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        refused = client.post("/admin/promote", json={"run_id": majority.id[:8], "student": "tfidf-logreg"})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["message"] == f"run {majority.id[:8]} is a run of 'majority', not 'tfidf-logreg'; give --run or --student, not both"
        assert client.get("/admin/promotion").status_code == 404  # nothing started
        agreeing = client.post("/admin/promote", json={"run_id": majority.id[:8], "student": "majority"})
        assert agreeing.status_code == 202 and agreeing.json()["candidate"].startswith("majority:"), agreeing.text


def test_canary_answers_are_logged_with_the_candidates_name_and_confidence(served: Path) -> None:
    """A canary item the candidate answered was logged under the served student's name, with the
    served student's confidence beside the candidate's label and probabilities."""
    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    easy = {"min_items": 8, "min_agreement": 0.0, "canary_share": 1.0, "max_label_psi": 1e9}
    app = create_app(proj, options(proj, student="tfidf-logreg", promote=easy))
    texts = comments(served, 12)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        assert client.post("/admin/promote", json={"student": "majority"}).status_code == 202
        client.post("/v1/classify", json={"texts": texts[:8]})  # shadow judged: the canary starts
        assert client.get("/admin/promotion").json()["stage"] == "canary"
        canary_id = client.post("/v1/classify", json={"texts": texts[8:]}).headers["x-request-id"]  # 4 < 8: still canary
        state = client.get("/admin/promotion").json()
    assert state["stage"] == "canary" and state["outcome"] is None
    from sqlalchemy import select

    from graduate.store.schema import traffic

    with proj.engine.connect() as conn:
        rows = conn.execute(select(traffic.c.reason, traffic.c.student, traffic.c.confidence, traffic.c.probs).where(traffic.c.request_id == canary_id)).all()
    assert len(rows) == 4 and all(r.reason == "candidate" for r in rows)
    assert all(r.student == state["candidate"] for r in rows), [r.student for r in rows]
    assert all(abs(r.confidence - max(r.probs.values())) < 1e-9 for r in rows), [(r.confidence, r.probs) for r in rows]


def test_a_request_in_flight_across_the_swap_is_logged_under_the_student_that_answered_it(served: Path) -> None:
    """A request predicted by the old student that was still waiting (on a slow teacher, cascade)
    when a promotion swapped the student was logged, and named in x-graduate-student, as answered
    by the new one: the traffic row's student is read when the row is written, not when it predicted."""
    import time

    from sqlalchemy import select

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.store.schema import traffic
    from servers import fake_openai_server
    from servers.graduate_server import ThreadServer, options, set_teacher

    easy = {"min_items": 4, "min_agreement": 0.0, "canary_share": 1.0, "max_label_psi": 1e9}
    with fake_openai_server(latency=8.0) as slow_teacher:  # far slower than the promotion's two requests on a loaded machine
        set_teacher(served, base_url=slow_teacher.base_url)
        proj = Project.load(served)
        # every item goes to the teacher: the pool's texts are answered from the call log at once, a new text waits
        app = create_app(proj, options(proj, student="tfidf-logreg", mode="cascade", cascade_threshold=1.0, promote=easy))
        with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            old = client.get("/readyz").json()["student"]
            assert client.post("/admin/promote", json={"student": "majority"}).status_code == 202
            slow: dict = {}
            waiting = threading.Thread(target=lambda: slow.update(r=client.post("/v1/classify", json={"texts": ["a new text only the slow teacher answers"]})))
            waiting.start()
            deadline = time.monotonic() + 60
            while slow_teacher.stats()["requests"] == 0:  # predicted by the old student, now waiting for the teacher
                assert time.monotonic() < deadline
                time.sleep(0.05)
            texts = comments(served, 4)
            while client.get("/admin/promotion").json()["outcome"] is None:
                assert time.monotonic() < deadline
                assert client.post("/v1/classify", json={"texts": texts}).status_code == 200
            assert client.get("/admin/promotion").json()["outcome"] == "promoted"
            assert waiting.is_alive()  # the swap happened while that request waited
            waiting.join(60)
            r = slow["r"]
    assert r.status_code == 200 and r.headers["x-graduate-student"] == old, (r.headers.get("x-graduate-student"), old)
    with proj.engine.connect() as conn:
        (row,) = conn.execute(select(traffic.c.student, traffic.c.student_label).where(traffic.c.request_id == r.json()["id"])).all()
    assert row.student == old


def test_promote_rerun_after_ctrl_c_follows_the_promotion_that_runs(served: Path) -> None:
    """`graduate promote` stopped with Ctrl-C while it followed the stages leaves the promotion
    running on the server; running the same command again was refused (409 "a promotion is
    running", exit 2), with no way to follow it. Now the same candidate is followed; another waits."""
    import signal

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    app = create_app(proj, options(proj, student="tfidf-logreg"))
    env = cli_env(GRADUATE_API_KEYS=KEY)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        cli = promote_in_background(served, server.url, "--student", "majority", env=env)  # no traffic: it stays in shadow
        deadline = time.monotonic() + 120
        while client.get("/admin/promotion").status_code != 200:
            assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()
            time.sleep(0.1)
        cli.send_signal(signal.SIGINT)
        cli.communicate(timeout=60)
        again = graduate("promote", str(served), "--server", server.url, "--student", "majority", "--no-wait", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "(already running: following it): shadow" in again.stdout
        state = client.get("/admin/promotion").json()
        assert state["outcome"] is None and state["candidate"].startswith("majority:")
        other = client.post("/admin/promote", json={"student": "tfidf-logreg", "run_id": None})  # the served student: still no candidate
        assert other.status_code == 409


def test_another_candidate_asked_while_a_promotion_runs_is_refused_before_its_workers_start(served: Path) -> None:
    """While a promotion ran, POST /admin/promote for another run loaded that run and started its
    prediction workers (for a large student minutes, and its memory beside two others) only to
    refuse it then with 409 "a promotion is running". Now it is refused first: nothing starts."""
    import multiprocessing
    import threading

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.store.runs import finish_run, get_runs, start_run
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    majority = next(r for r in get_runs(proj.engine, kind="train", status="finished", root=proj.root) if r.name == "majority")
    other = start_run(proj.engine, kind="train", name="majority", spec={}, seed=1)  # a retrained majority (its files shared)
    finish_run(proj.engine, other, metrics={}, artifact_dir=str(majority.artifact_dir))
    app = create_app(proj, options(proj, student="tfidf-logreg", predict_workers=1))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as client:
        first = client.post("/admin/promote", json={"run_id": majority.id})  # no traffic: it stays in shadow
        assert first.status_code == 202, first.text
        before = {p.pid for p in multiprocessing.active_children()}
        reply: dict = {}
        asking = threading.Thread(target=lambda: reply.update(r=client.post("/admin/promote", json={"run_id": other})))
        asking.start()
        started = set()
        while asking.is_alive():  # a worker lives for seconds (it imports and loads the student): a poll sees it
            started |= {p.pid for p in multiprocessing.active_children()} - before
            time.sleep(0.005)
        asking.join()
        r = reply["r"]
        assert r.status_code == 409 and r.json()["error"]["code"] == "promotion_running", r.text
        assert f"majority:{majority.id}" in r.json()["error"]["message"]
        assert not started, "the refused candidate's workers were started"
        assert client.get("/admin/promotion").json()["candidate"] == f"majority:{majority.id}"


def test_a_candidate_whose_saved_files_are_damaged_is_refused_in_one_line_not_a_500(served: Path, tmp_path: Path) -> None:
    """A candidate run whose artifact no longer loads (a half-copied or edited file) made
    POST /admin/promote a bare 500 "Internal Server Error" with a traceback in the server's log."""
    import shutil

    from sqlalchemy import update

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.store.runs import get_runs
    from graduate.store.schema import runs
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    majority = next(r for r in get_runs(proj.engine, kind="train", status="finished", root=proj.root) if r.name == "majority")
    damaged = tmp_path / "damaged"
    shutil.copytree(majority.artifact_dir, damaged)  # the artifacts are shared with other tests: damage a copy
    for f in damaged.iterdir():
        if f.name != "kind.json":
            f.write_text("{not json")
    with proj.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == majority.id).values(artifact_dir=str(damaged)))
    with ThreadServer(create_app(proj, options(proj, student="tfidf-logreg"))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        r = client.post("/admin/promote", json={"student": "majority"})
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert str(damaged) in message and "cannot load" in message and "\n" not in message
        assert client.get("/admin/promotion").status_code == 404
        assert client.post("/v1/classify", json={"texts": ["still served"]}).status_code == 200


def test_a_candidate_that_loads_but_fails_its_warm_up_is_refused_in_one_line_not_a_500(served: Path, tmp_path: Path) -> None:
    """With serve.predict_workers 0 the candidate's start predicts a warm-up text in the server
    process: a student whose files load but do not predict (an edited artifact) made POST
    /admin/promote a bare 500 with a traceback, as only StudentError was caught there."""
    import shutil

    import joblib

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.store.runs import finish_run, get_runs, start_run
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    tfidf = next(r for r in get_runs(proj.engine, kind="train", status="finished", root=proj.root) if r.name == "tfidf-logreg")
    edited = tmp_path / "edited"
    shutil.copytree(tfidf.artifact_dir, edited)  # the artifacts are shared with other tests: edit a copy
    joblib.dump({"not": "a pipeline"}, edited / "pipeline.joblib")
    run = start_run(proj.engine, kind="train", name="tfidf-logreg", spec={}, seed=1)
    finish_run(proj.engine, run, metrics={}, artifact_dir=str(edited))
    with ThreadServer(create_app(proj, options(proj, student="tfidf-logreg", predict_workers=0))) as server:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            r = client.post("/admin/promote", json={"run_id": run})
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "candidate_failed" and "could not start" in r.json()["error"]["message"], r.text
            assert client.get("/admin/promotion").status_code == 404
            assert client.post("/v1/classify", json={"texts": ["still served"]}).status_code == 200


def test_promote_sends_the_admin_key_to_a_server_with_admin_keys(served: Path) -> None:
    """With GRADUATE_ADMIN_KEYS set on the server, a client key may not promote (403); graduate
    promote sends GRADUATE_ADMIN_KEY, or on the server's machine the first of GRADUATE_ADMIN_KEYS."""
    admin = "admin-key-1"
    with serve_process(served, "--student", "tfidf-logreg", env=cli_env(GRADUATE_API_KEYS=KEY, GRADUATE_ADMIN_KEYS=admin)) as server:
        assert "GRADUATE_ADMIN_KEYS" not in server.text  # no warning: admin keys are set
        client = graduate("promote", str(served), "--server", server.url, "--no-wait", env=cli_env(GRADUATE_API_KEYS=KEY, GRADUATE_API_KEY=KEY))
        assert client.returncode == 2 and "HTTP 403" in client.stderr and "put an admin key in GRADUATE_ADMIN_KEY " in client.stderr, client.stderr
        assert len(client.stderr.strip().splitlines()) == 1, client.stderr
        # reached the handler: the served run is no candidate
        sent = graduate("promote", str(served), "--server", server.url, "--no-wait", env=cli_env(GRADUATE_API_KEY=KEY, GRADUATE_ADMIN_KEY=admin))
        assert sent.returncode == 2 and "no candidate" in sent.stderr, sent.stderr
        own = graduate("promote", str(served), "--server", server.url, "--no-wait", env=cli_env(GRADUATE_API_KEYS=KEY, GRADUATE_ADMIN_KEYS=f"{admin},other"))
        assert own.returncode == 2 and "no candidate" in own.stderr, own.stderr
        # --api-key-env named: that variable's key is sent, not GRADUATE_ADMIN_KEY
        named = graduate("promote", str(served), "--server", server.url, "--no-wait", "--api-key-env", "MY_KEY", env=cli_env(MY_KEY=KEY, GRADUATE_ADMIN_KEY=admin))
        assert named.returncode == 2 and "HTTP 403" in named.stderr and "put an admin key in MY_KEY " in named.stderr, named.stderr


def test_a_candidate_whose_workers_fail_to_start_is_refused_and_nothing_is_left_running(served: Path) -> None:
    """A candidate's prediction worker that died while loading made POST /admin/promote a 503, and
    the candidate's other workers, already started, were left running. Now: 409 naming the
    candidate, every worker it started stopped, the served student untouched."""
    import multiprocessing
    import threading

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    app = create_app(proj, options(proj, student="tfidf-logreg", predict_workers=2))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as client:
        serving = {p.pid for p in multiprocessing.active_children()}
        reply: dict = {}
        asking = threading.Thread(target=lambda: reply.update(r=client.post("/admin/promote", json={"student": "majority"})))
        asking.start()
        deadline = time.monotonic() + 120
        while not (new := [p for p in multiprocessing.active_children() if p.pid not in serving]):
            assert asking.is_alive() and time.monotonic() < deadline, reply
            time.sleep(0.005)
        started = list(new)
        started[0].kill()  # dies while it loads the student (loading takes far longer than this poll)
        asking.join(120)
        r = reply["r"]
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert r.json()["error"]["code"] == "candidate_failed" and "\n" not in message
        assert message.startswith("the candidate majority:") and "could not start" in message and "still serves tfidf-logreg:" in message, message
        later = [p for p in multiprocessing.active_children() if p.pid not in serving]
        deadline = time.monotonic() + 60
        while any(p.is_alive() for p in started + later):
            assert time.monotonic() < deadline, [p for p in started + later if p.is_alive()]
            time.sleep(0.05)
        assert client.get("/admin/promotion").status_code == 404
        assert client.post("/v1/classify", json={"texts": ["still served"]}).status_code == 200


def test_a_candidate_slower_to_start_than_the_request_timeout_is_still_promoted(served: Path) -> None:
    """POST /admin/promote was held to serve.request_timeout_s (30 s by default): a candidate whose
    workers take longer to load (a large encoder, lora-llm) got a 504 every time and could never be
    promoted. It has its own deadline now (PROMOTE_TIMEOUT_S); classify keeps the short one."""
    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from graduate.serve.limits import PROMOTE_TIMEOUT_S
    from servers.graduate_server import ThreadServer, options

    from graduate.serve.predictor import STARTUP_TIMEOUT_S

    assert PROMOTE_TIMEOUT_S > STARTUP_TIMEOUT_S  # a worker given its whole start-up time is not cut short
    proj = Project.load(served)
    # A worker process takes well over 0.3 s to start and load a student (imports alone).
    app = create_app(proj, options(proj, student="tfidf-logreg", predict_workers=1, request_timeout_s=0.3, teacher_wait_s=0.2))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as client:
        r = client.post("/admin/promote", json={"student": "majority"})
        assert r.status_code == 202, r.text
        assert client.get("/admin/promotion").json()["stage"] in ("shadow", "canary", "promoted")


def test_two_promotes_of_the_same_new_candidate_at_once_load_it_once_and_both_follow_it(served: Path) -> None:
    """Two POST /admin/promote for the same candidate at once (a retried request, two terminals)
    both loaded it and started its workers before either registered the promotion: the second was
    then refused (409 "a promotion is running") and its copy closed. Now the second waits for the
    first and follows the promotion it started (200): one load, one set of workers."""
    import multiprocessing
    import threading

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options

    proj = Project.load(served)
    app = create_app(proj, options(proj, student="tfidf-logreg", predict_workers=1))
    with ThreadServer(app) as server:
        serving = {p.pid for p in multiprocessing.active_children()}
        together = threading.Barrier(2)
        replies: dict[int, httpx.Response] = {}

        def ask(k: int) -> None:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as client:
                together.wait(60)
                replies[k] = client.post("/admin/promote", json={"student": "majority"})

        asking = [threading.Thread(target=ask, args=(k,)) for k in range(2)]
        for t in asking:
            t.start()
        started = set()
        while any(t.is_alive() for t in asking):  # a worker lives for seconds (it imports and loads the student): a poll sees it
            started |= {p.pid for p in multiprocessing.active_children()} - serving
            time.sleep(0.005)
        assert len(started) == 1, f"the candidate was loaded {len(started)} times"
        assert sorted(r.status_code for r in replies.values()) == [200, 202], [r.text for r in replies.values()]
        assert len({r.json()["candidate"] for r in replies.values()}) == 1
        assert httpx.get(f"{server.url}/admin/promotion", headers=AUTH, timeout=60).json()["candidate"].startswith("majority:")


def test_a_server_url_without_http_or_with_the_openai_v1_path_is_the_server_not_a_wrong_fix(served: Path) -> None:
    """--server 127.0.0.1:8000 said "the server does not answer ...; start it with `graduate serve`"
    (it was running: the URL lacked http://), and --server http://...:8000/v1 (the base URL an OpenAI
    client is given) said "invalid API key" for a key the server accepts."""
    admin = "admin-key-1"
    env = cli_env(GRADUATE_API_KEYS=KEY, GRADUATE_ADMIN_KEY=admin)
    with serve_process(served, "--student", "tfidf-logreg", env=cli_env(GRADUATE_API_KEYS=KEY, GRADUATE_ADMIN_KEYS=admin)) as server:
        bare = graduate("promote", str(served), "--server", server.url.removeprefix("http://"), "--no-wait", env=env)
        said = " ".join(bare.stderr.split())
        assert bare.returncode == 2 and len(bare.stderr.strip().splitlines()) == 1, bare.stderr
        assert f"--server {server.url.removeprefix('http://')!r} has no http:// or https://; give {server.url}" in said, said
        for typed, fix in (("http://", "names no host"), ("http:/127.0.0.1:8000", "give http://127.0.0.1:8000"), ("ftp://h:1", "give http://h:1")):
            wrong = graduate("promote", str(served), "--server", typed, "--no-wait", env=env)
            assert wrong.returncode == 2 and fix in " ".join(wrong.stderr.split()) and "http://http" not in wrong.stderr, (typed, wrong.stderr)
        padded = graduate("promote", str(served), "--server", server.url, "--run", " " + "a" * 64 + " ", "--no-wait", env=env)
        # checked and sent stripped: the server reads the 64 characters (no run has them), not a 422 on run_id
        assert padded.returncode == 2 and f"run {'a' * 64!r} names 0 finished training runs" in padded.stderr and "run_id" not in padded.stderr, padded.stderr
        for url in (f"{server.url}/v1", f"{server.url}/v1/"):
            v1 = graduate("promote", str(served), "--server", url, "--no-wait", env=env)
            assert v1.returncode == 2 and "no candidate" in v1.stderr and "API key" not in v1.stderr, v1.stderr  # reached the handler
