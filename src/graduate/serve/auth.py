"""API keys: from ``GRADUATE_API_KEYS`` (comma-separated) or the spec, sent as ``Authorization:
Bearer KEY``. Every path but the health checks needs one; the check is an ASGI middleware, so a
route added later is protected without doing anything.

Admin keys: from ``GRADUATE_ADMIN_KEYS`` (comma-separated). When set, ``/admin/*`` (a promotion
swaps the served student) takes only those, and a client key there gets 403; unset, a client key
opens ``/admin/*`` too, as before there were admin keys."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from graduate.errors import SpecError
from graduate.serve.errors import send_error

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
ADMIN_KEYS_ENV = "GRADUATE_ADMIN_KEYS"
ADMIN_PREFIX = "/admin/"


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX.rstrip("/") or path.startswith(ADMIN_PREFIX)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def client_id(key: str) -> str:
    """What the traffic log keeps of a caller: a short hash of its key, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def resolve_keys(api_keys_env: str, spec_keys: list[str], *, auth: bool, env: dict[str, str] | None = None) -> list[str] | None:
    """The accepted keys, or None when auth is off. No keys with auth on is an error: a server
    reachable by anyone must be a decision, not an accident."""
    if not auth:
        return None
    env = os.environ if env is None else env
    raw = env.get(api_keys_env, "")
    keys = [k.strip() for k in raw.split(",") if k.strip()] or [k for k in spec_keys if k]
    if not keys:
        raise SpecError(
            f"no API keys: set {api_keys_env}=KEY1,KEY2 (or serve.api_keys), or serve.auth: false / --no-auth for local testing",
            field="serve.api_keys",
        )
    return keys


def resolve_admin_keys(env: dict[str, str] | None = None) -> list[str] | None:
    """The admin keys, or None when ``GRADUATE_ADMIN_KEYS`` holds none (client keys open /admin/*)."""
    env = os.environ if env is None else env
    return [k.strip() for k in env.get(ADMIN_KEYS_ENV, "").split(",") if k.strip()] or None


def _matches(given: bytes, digests: list[bytes]) -> bool:
    # Compare against every key in constant time: no early exit that times which one matched.
    ok = False
    for d in digests:
        ok |= hmac.compare_digest(given, d)
    return ok


class AuthMiddleware:
    def __init__(
        self, app: Any, *, keys: list[str] | None, admin_keys: list[str] | None = None, on_reject: Any = None, public: frozenset[str] = PUBLIC_PATHS
    ):
        self.app = app
        self.digests = [_digest(k) for k in keys] if keys is not None else None
        self.admin_digests = [_digest(k) for k in admin_keys] if admin_keys else None
        self.public = public
        self.on_reject = on_reject

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.public:
            return await self.app(scope, receive, send)
        given_headers = [value for name, value in scope["headers"] if name == b"authorization"]
        if len(given_headers) > 1:
            # Proxies and servers disagree on which of two headers counts: refuse to guess.
            if self.on_reject:
                self.on_reject("auth")
            return await send_error(
                send, 400, f"{len(given_headers)} Authorization headers: send exactly one", "invalid_request_error", code="ambiguous_authorization"
            )
        admin = self.admin_digests is not None and is_admin_path(scope["path"])
        if self.digests is None and not admin:
            return await self.app(scope, receive, send)
        token = None
        if given_headers:
            scheme, _, rest = given_headers[0].decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                token = rest.strip()
        given = _digest(token) if token is not None else None
        if given is not None and _matches(given, self.admin_digests if admin else self.digests):  # type: ignore[arg-type]
            scope.setdefault("state", {})["client"] = client_id(token)  # type: ignore[arg-type]
            return await self.app(scope, receive, send)
        client_key_on_admin = admin and given is not None and self.digests is not None and _matches(given, self.digests)
        if self.on_reject:  # a known client at /admin/* is no intruder: counted apart
            self.on_reject("admin" if client_key_on_admin else "auth")
        if client_key_on_admin:
            return await send_error(
                send, 403, f"a client key cannot use /admin/*: send one of the server's admin keys ({ADMIN_KEYS_ENV})", "permission_error", code="admin_key_required"
            )
        if admin:
            message = f"missing admin key: /admin/* needs Authorization: Bearer KEY with a key of {ADMIN_KEYS_ENV}" if token is None else f"invalid admin key: /admin/* needs a key of {ADMIN_KEYS_ENV}"
        else:
            message = "missing API key: send Authorization: Bearer KEY" if token is None else "invalid API key"
        await send_error(send, 401, message, "authentication_error", code="invalid_api_key", headers={"www-authenticate": "Bearer"})
