"""The Jobline dashboard: plain HTML/CSS/JS from package data and the JSON API under ``/api/``.

Served by the operator on its own port (``--dashboard-port``, default 127.0.0.1:8081). See
docs/operations.md for the API, auth and what each action needs in RBAC.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from . import openapi
from .api import Api, MemoSource, Source, dumps
from .auth import Auth, HttpError, NoAuth, Requester, TokenAuth

__all__ = ["Api", "MemoSource", "NoAuth", "Source", "TokenAuth", "create_app", "static_dir"]

log = logging.getLogger("jobline.dashboard")

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ClientFaults(logging.Filter):
    """aiohttp answers a request it cannot parse (a request line or header over 8 KiB, bytes that are no
    HTTP) with its own 400 and logs the exception with a traceback and the offending line, which may be an
    Authorization header. That is the client's fault, so: one warning naming the error, no traceback, no
    request text. Everything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "dashboard: refused a malformed HTTP request from %s (%s, %s)"
            record.args = (remote, type(exc).__name__, exc.code)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_http_log = logging.getLogger("jobline.dashboard.http")  # aiohttp's connection-level log for the dashboard
_http_log.addFilter(_ClientFaults())


def static_dir() -> Path:
    return Path(str(resources.files(__name__).joinpath("static")))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return _error(exc.status, exc.message)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception:
        log.exception("dashboard request %s %s failed", request.method, request.path)
        return _error(500, "internal error (see the operator log)")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, dumps=dumps)


def _secure(headers: MutableMapping[str, str], path: str) -> None:
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own 404/405 outside /api/ (its plain-text answer)
        _secure(exc.headers, request.path)
        raise
    _secure(response.headers, request.path)
    return response


def create_app(auth: Auth, source: Source, kube: Requester) -> web.Application:
    app = web.Application(
        middlewares=[_headers, _errors], client_max_size=64 * 1024, handler_args={"logger": _http_log}
    )
    api = Api(auth, source, kube)
    doc = json.dumps(openapi.document(), indent=1)
    root = static_dir()

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(root / "index.html")

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(text=doc, content_type="application/json")

    async def not_found(request: web.Request) -> web.Response:
        raise HttpError(404, f"no such API endpoint: {request.method} {request.path}")

    app.add_routes([web.get("/", index), web.get("/api/openapi.json", openapi_json), *api.routes()])
    app.router.add_route("*", "/api/{tail:.*}", not_found)
    app.router.add_static("/static/", root, follow_symlinks=False)
    return app


def make_auth(mode: str, kube: Requester) -> Auth:
    if mode == "none":
        return NoAuth()
    if mode == "token":
        return TokenAuth(kube)
    raise ValueError(f"unknown dashboard auth mode {mode!r}: token or none")


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of the API routes, for checking the OpenAPI document against the app."""
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info: Mapping[str, Any] = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if path.startswith("/api/") and route.method not in ("HEAD", "*"):
            out.add((route.method, path))
    return out
