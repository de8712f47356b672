"""The Jobline dashboard: plain HTML/CSS/JS from package data and the JSON API under ``/api/``.

Served by the operator on its own port (``--dashboard-port``, default 127.0.0.1:8081). See
docs/operations.md for the API, auth and what each action needs in RBAC.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from . import openapi
from .api import Api, MemoSource, Source
from .auth import Auth, HttpError, NoAuth, Requester, TokenAuth

__all__ = ["Api", "MemoSource", "NoAuth", "Source", "TokenAuth", "create_app", "static_dir"]

log = logging.getLogger("jobline.dashboard")

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def static_dir() -> Path:
    return Path(str(resources.files(__name__).joinpath("static")))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return web.json_response({"error": exc.message, "status": exc.status}, status=exc.status)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status)
    except Exception:
        log.exception("dashboard request %s %s failed", request.method, request.path)
        return web.json_response(
            {"error": "internal error (see the operator log)", "status": 500}, status=500
        )


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app(auth: Auth, source: Source, kube: Requester) -> web.Application:
    app = web.Application(middlewares=[_headers, _errors], client_max_size=64 * 1024)
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
