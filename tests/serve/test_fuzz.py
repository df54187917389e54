"""Issue 12 acceptance: arbitrary bodies on /v1/classify and /v1/chat/completions (any JSON, any
Unicode including lone surrogates, sizes up to the limits) get a defined status, the server stays
ready, and afterwards the traffic table holds one row per answered item."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.store.traffic import count_traffic
from servers.graduate_server import AUTH, ThreadServer, options, prompt_messages

DEFINED = {200, 400, 413, 422}
MAX_BATCH = 64
MAX_BODY = 64 * 1024

# Every code point, surrogates included (hypothesis leaves out category Cs unless told).
chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
texts = st.one_of(st.text(chars, max_size=40), st.text(chars, min_size=500, max_size=2000))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=20,
)
classify_bodies = st.fixed_dictionaries({"texts": st.lists(texts, min_size=0, max_size=MAX_BATCH + 2)}) | json_values
content = texts | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=3) | json_values
chat_bodies = (
    st.fixed_dictionaries(
        {"model": texts, "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", ""]), "content": content}), max_size=3)},
        optional={
            "stream": st.booleans(), "temperature": json_values,
            # the parameters the server honours or refuses: in range, at the limits, past them, of any type
            "n": st.integers(-2, 130) | json_values, "logprobs": st.booleans() | json_values, "top_logprobs": st.integers(-1, 22) | json_values,
            "tools": st.lists(json_values, max_size=2) | json_values, "tool_choice": st.sampled_from(["none", "auto"]) | json_values,
        },
    )
    | json_values
)


def encode(body: object, raw_utf8: bool) -> bytes:
    if raw_utf8:  # lone surrogates as their (invalid) UTF-8 bytes rather than \\u escapes
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(body).encode()


def test_any_body_gets_a_defined_answer_and_every_answered_item_is_logged(served):
    proj = Project.load(served)
    app = create_app(proj, options(proj, predict_workers=1, max_batch=MAX_BATCH, max_body_bytes=MAX_BODY))
    answered = 0
    statuses: set[int] = set()
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers={**AUTH, "content-type": "application/json"}, timeout=60) as client:

        def post(path: str, data: bytes) -> httpx.Response:
            r = client.post(path, content=data)
            assert r.status_code in DEFINED, (path, r.status_code, r.text[:300], data[:200])
            assert r.headers["content-type"].startswith(("application/json", "text/event-stream"))
            statuses.add(r.status_code)
            return r

        @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(body=classify_bodies, raw=st.booleans())
        def classify(body: object, raw: bool) -> None:
            nonlocal answered
            r = post("/v1/classify", encode(body, raw))
            if r.status_code == 200:
                answered += len(r.json()["results"])

        @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(body=chat_bodies, raw=st.booleans(), text=texts)
        def chat(body: object, raw: bool, text: str) -> None:
            nonlocal answered
            r = post("/v1/chat/completions", encode(body, raw))
            if r.status_code == 200:
                answered += 1
            # The same text inside the project's own prompt: answered by the student.
            r = post("/v1/chat/completions", encode({"model": "m", "messages": prompt_messages(proj, text)}, raw))
            assert r.status_code == 200, r.text[:300]
            answered += 1

        classify()
        chat()
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
    assert {200, 422} <= statuses
    assert count_traffic(Project.load(served).engine) == answered


def test_any_promote_body_gets_a_defined_answer_and_never_starts_a_promotion(served):
    # No other run of the served student exists: whatever the body names, there is no candidate (409) or it is
    # malformed (422); the server keeps serving.
    proj = Project.load(served)
    app = create_app(proj, options(proj))
    promote_bodies = (
        st.fixed_dictionaries({}, optional={"run_id": texts | json_values, "student": texts | json_values}) | json_values
    )
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers={**AUTH, "content-type": "application/json"}, timeout=60) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(body=promote_bodies, raw=st.booleans())
        def check(body: object, raw: bool) -> None:
            r = client.post("/admin/promote", content=encode(body, raw))
            assert r.status_code in {400, 409, 422}, (r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/json")

        check()
        assert client.get("/admin/promotion").status_code == 404
        # a promotion meant for another project's server is refused, naming both
        other = client.post("/admin/promote", json={"project": "not-toxicity"})
        assert other.status_code == 409 and other.json()["error"]["code"] == "wrong_project"
        assert f"serves project {proj.spec.task.name!r} (task.name), not 'not-toxicity'" in other.json()["error"]["message"]
        assert client.get("/admin/promotion").status_code == 404
        assert client.get("/readyz").status_code == 200


def test_a_body_nested_as_deep_as_the_json_parser_allows_gets_a_defined_answer(served):
    """Lone-surrogate scrubbing walked the body by recursion: about 320 levels of nesting were a
    plain-text 500 (RecursionError) on both endpoints before validation could answer."""
    from graduate.serve.schemas import MAX_DEPTH
    from servers import fake_openai_server
    from servers.graduate_server import set_teacher

    with fake_openai_server() as teacher:
        set_teacher(served, base_url=teacher.base_url)
        proj = Project.load(served)
        # fallback_to_teacher: a chat that is not the project's prompt is hashed, logged and forwarded as written
        app = create_app(proj, options(proj, max_body_bytes=MAX_BODY, fallback_to_teacher=True))
        with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers={**AUTH, "content-type": "application/json"}, timeout=60) as client:
            check_deep_bodies(client, MAX_DEPTH)


def check_deep_bodies(client: httpx.Client, max_depth: int) -> None:
    """Bodies nested 1 to 20,000 levels, in every place a body can nest: each gets a JSON answer."""

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(depth=st.integers(1, 20_000), kind=st.sampled_from("[{"), leaf=st.sampled_from(['"x"', '"\\ud800"', "1", "null"]), where=st.integers(0, 3))
    def deep(depth: int, kind: str, leaf: str, where: int) -> None:
        close = "]" if kind == "[" else "}"
        opener = kind if kind == "[" else '{"k":'
        nested = opener * depth + leaf + close * depth
        bodies = {
            "/v1/classify": ['{"texts":' + nested + "}", nested, '{"texts":["a"],"extra":' + nested + "}", '{"texts":[' + nested + "]}"][where],
            "/v1/chat/completions": [
                '{"model":"gpt-4-1106-preview","messages":' + nested + "}", nested, '{"model":"gpt-4-1106-preview","messages":[{"role":"user","content":"hi"}],"temperature":' + nested + "}",
                '{"model":"gpt-4-1106-preview","messages":[{"role":"user","content":[{"type":"text","text":' + nested + "}]}]}",
            ][where],
        }
        for path, body in bodies.items():
            if len(body) > MAX_BODY:
                continue
            r = client.post(path, content=body.encode())
            assert r.status_code in DEFINED, (path, depth, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/json"), (path, depth, r.text[:200])
            if max_depth < depth + 1 < 900:  # past the limit, short of what Python's JSON parser refuses (400)
                assert r.status_code == 422 and f"levels deep, at most {max_depth}" in r.json()["error"]["message"], r.text[:200]

    for depth in (320, 1_000, 10_000, max_depth - 2):  # the reported depth, past it, and one that is forwarded
        for where in range(4):
            deep.hypothesis.inner_test(depth=depth, kind="[", leaf='"\\ud800"', where=where)
    deep()
    assert client.get("/readyz").status_code == 200


def test_any_method_path_and_query_gets_a_defined_json_answer(served):
    """Fuzz the rest of the server's surface: any method on any path (the GET endpoints /healthz,
    /readyz, /metrics, /v1/models, the admin and feedback routes, unknown ones), any query string
    and Authorization header: a defined status, JSON (except /metrics' text), and the server stays ready."""
    from urllib.parse import quote

    proj = Project.load(served)
    app = create_app(proj, options(proj))
    known = ["/healthz", "/readyz", "/metrics", "/v1/models", "/v1/classify", "/v1/chat/completions", "/v1/feedback", "/admin/promote", "/admin/promotion"]
    segment = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)
    paths = st.sampled_from(known) | st.lists(segment.filter(bool), min_size=1, max_size=3).map(lambda parts: "/" + "/".join(quote(p, safe="") for p in parts)) | st.sampled_from(known).map(lambda p: p + "/x")
    auth = st.sampled_from([AUTH["Authorization"], "Bearer wrong", "", "Basic abc", "bearer " + AUTH["Authorization"].split()[-1]]) | st.text(st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=20)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:

        @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]), path=paths, query=st.dictionaries(segment, segment, max_size=3), token=auth)
        def check(method: str, path: str, query: dict, token: str) -> None:
            r = client.request(method, path, params=query, headers={"authorization": token.strip().encode("latin-1")} if token.strip() else {})
            assert r.status_code in {200, 400, 401, 404, 405, 409, 422, 503}, (method, path, r.status_code, r.text[:200])
            if method != "HEAD" and not (path == "/metrics" and r.status_code == 200):
                assert r.headers["content-type"].startswith("application/json"), (method, path, r.status_code, r.text[:200])

        check()
        assert client.get("/readyz").status_code == 200
