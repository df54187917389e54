"""API keys: every route but the health checks answers 401 without a valid key (all routes of the
app are walked, so a route added later is covered), and the keys come from the environment or the spec."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from graduate.errors import SpecError
from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.serve.auth import PUBLIC_PATHS, resolve_keys
from servers.graduate_server import ThreadServer

from servers.graduate_server import AUTH, options


def _routes(app) -> list[tuple[str, str]]:
    out = []
    for r in app.routes:
        if isinstance(r, (APIRoute, Route)):
            for method in sorted(r.methods or []):
                if method != "HEAD":
                    out.append((method, r.path))
    return out


def test_every_route_but_health_needs_a_key(served):
    proj = Project.load(served)
    app = create_app(proj, options(proj))
    routes = _routes(app)
    paths = {p for _, p in routes}
    # The walk sees the whole API, health checks included.
    assert {"/v1/chat/completions", "/v1/classify", "/v1/models", "/metrics", "/healthz", "/readyz"} <= paths
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic dGVzdA=="}):
                r = client.request(method, path, headers=headers, json={"texts": ["x"]} if method == "POST" else None)
                if path in PUBLIC_PATHS:
                    assert r.status_code == 200, (method, path, r.text)
                else:
                    assert r.status_code == 401, (method, path, headers, r.text)
                    assert r.headers["www-authenticate"] == "Bearer"
                    assert r.json()["error"]["type"] == "authentication_error"
        # a path that does not exist is refused before routing: no way to probe the API without a key
        assert client.get("/v1/unknown").status_code == 401
        assert client.get("/v1/unknown", headers=AUTH).status_code == 404
        # and with the key every route is reachable
        for method, path in routes:
            r = client.request(method, path, headers=AUTH, json={"texts": ["you idiot"]} if path == "/v1/classify" else None)
            assert r.status_code not in (401, 403), (method, path, r.text)
        metrics = client.get("/metrics", headers=AUTH).text
        assert 'graduate_rejected_total{reason="auth"}' in metrics


def test_keys_from_environment_win_over_spec():
    assert resolve_keys("K", ["spec-key"], auth=True, env={"K": " a, b ,,"}) == ["a", "b"]
    assert resolve_keys("K", ["spec-key"], auth=True, env={}) == ["spec-key"]
    assert resolve_keys("K", [], auth=False, env={}) is None
    with pytest.raises(SpecError, match="no API keys: set K=KEY1,KEY2"):
        resolve_keys("K", [], auth=True, env={"K": " , "})


def test_spec_keys_work_when_the_environment_has_none(served, monkeypatch):
    monkeypatch.delenv("GRADUATE_API_KEYS")
    proj = Project.load(served)
    app = create_app(proj, options(proj, api_keys=["from-spec"]))
    with ThreadServer(app) as server:
        assert httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer from-spec"}, timeout=60).status_code == 200
        assert httpx.get(f"{server.url}/v1/models", headers=AUTH, timeout=60).status_code == 401


ADMIN = "admin-key-1"


def test_admin_keys_keep_the_admin_routes_to_admins(served, monkeypatch):
    """Any client key in GRADUATE_API_KEYS could POST /admin/promote and swap the served student.
    With GRADUATE_ADMIN_KEYS set, /admin/* takes only those keys (a client key gets 403) and the
    admin keys open /admin/* only."""
    monkeypatch.setenv("GRADUATE_ADMIN_KEYS", f" {ADMIN} ,, other-admin ")
    proj = Project.load(served)
    app = create_app(proj, options(proj))
    admin_routes = [(m, p) for m, p in _routes(app) if p.startswith("/admin/")]
    assert {p for _, p in admin_routes} == {"/admin/promote", "/admin/promotion"}
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path in [*admin_routes, ("GET", "/admin/unknown")]:
            client_key = client.request(method, path, headers=AUTH, json={} if method == "POST" else None)
            assert client_key.status_code == 403, (method, path, client_key.text)
            error = client_key.json()["error"]
            assert error["type"] == "permission_error" and error["code"] == "admin_key_required"
            assert "GRADUATE_ADMIN_KEYS" in error["message"] and "\n" not in error["message"]
            for headers in ({}, {"Authorization": "Bearer wrong-key"}):
                r = client.request(method, path, headers=headers, json={} if method == "POST" else None)
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (method, path, r.text)
                assert "GRADUATE_ADMIN_KEYS" in r.json()["error"]["message"]
        admin = {"Authorization": "Bearer other-admin"}
        assert client.get("/admin/promotion", headers=admin).status_code == 404  # reached: no promotion yet
        assert client.get("/admin/unknown", headers=admin).status_code == 404
        assert client.post("/admin/promote", headers={"Authorization": f"Bearer {ADMIN}"}, json={"student": "no-such"}).json()["error"]["code"] == "no_candidate"
        # client routes are as before: client keys only
        assert client.get("/v1/models", headers=AUTH).status_code == 200
        assert client.get("/v1/models", headers=admin).status_code == 401
        metrics = client.get("/metrics", headers=AUTH).text
        # a known client at /admin/* is counted apart from wrong or missing keys (3 routes refused it)
        assert 'graduate_rejected_total{reason="admin"} 3.0' in metrics, [m for m in metrics.splitlines() if "rejected" in m]


def test_admin_keys_hold_without_client_keys(served, monkeypatch):
    """serve.auth: false (--no-auth) opens the client routes; admin keys, when set, still guard /admin/*."""
    monkeypatch.setenv("GRADUATE_ADMIN_KEYS", ADMIN)
    proj = Project.load(served)
    with ThreadServer(create_app(proj, options(proj, auth=False))) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/admin/promotion").status_code == 401
        assert client.get("/admin/promotion", headers=AUTH).status_code == 401  # no client keys: any other key is just wrong
        assert client.get("/admin/promotion", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404


def test_admin_keys_come_from_the_environment():
    from graduate.serve.auth import resolve_admin_keys

    assert resolve_admin_keys(env={"GRADUATE_ADMIN_KEYS": " a, b ,,"}) == ["a", "b"]
    assert resolve_admin_keys(env={"GRADUATE_ADMIN_KEYS": " , "}) is None
    assert resolve_admin_keys(env={}) is None
