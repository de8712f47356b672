"""The operator's HTTP servers: ``/healthz`` + ``/metrics`` (health port) and the dashboard (its own port).

kopf's own liveness endpoint is not used: it owns its port and cannot serve ``/metrics`` beside
``/healthz``. ``jobline-operator`` passes the ports through the environment (see main.py); without
them (e.g. under ``kopf run``) nothing is started.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from typing import Any

import kopf
from aiohttp import web

from jobline import metrics, names
from jobline.kube import Kube, load_config

log = logging.getLogger("jobline")


def _port(env: str) -> int:
    try:
        return int(os.environ.get(env, "0") or 0)
    except ValueError:
        raise kopf.PermanentError(f"{env} must be a port number") from None


def _tasks_alive(memo: Any) -> tuple[bool, dict[str, Any]]:
    """The controller (and schedule) loops are running; their state for /healthz."""
    info: dict[str, Any] = {}
    ok = True
    for attr in ("controller_task", "schedules_task"):
        task = getattr(memo, attr, None)
        if task is None:
            continue
        alive = not task.done()
        info[attr.removesuffix("_task")] = "running" if alive else "stopped"
        ok = ok and alive
    controller = getattr(memo, "controller", None)
    info["synced"] = bool(controller is not None and controller.synced)
    return ok and controller is not None, info


def health_app(memo: Any, *, with_metrics: bool, with_health: bool = True) -> web.Application:
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        ok, info = _tasks_alive(memo)
        return web.json_response({"status": "ok" if ok else "failing", **info}, status=200 if ok else 503)

    async def readyz(request: web.Request) -> web.Response:
        # Ready once the controller has listed everything: before that its answers (webhook
        # uniqueness, dashboard, metrics) would come from a partial view.
        ok, info = _tasks_alive(memo)
        ready = ok and bool(info.get("synced"))
        return web.json_response({"status": "ready" if ready else "not ready", **info}, status=200 if ready else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    if with_health:
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
    if with_metrics:
        app.router.add_get("/metrics", metrics_page)
    return app


async def _serve(app: web.Application, addr: str, port: int, what: str) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, addr, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise kopf.PermanentError(f"cannot serve {what} on {addr}:{port}: {exc.strerror or exc}") from None
    log.info("serving %s on http://%s:%d", what, addr, port)
    return runner


def _loopback(addr: str) -> bool:
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


@kopf.on.startup()
async def start_servers(memo: kopf.Memo, **_: Any) -> None:
    # Everything reads memo.controller lazily (at request time), so the order of startup handlers
    # does not matter; the dashboard has its own API client for TokenReviews, SARs and actions.
    metrics.watch_jobs(lambda: memo.controller.store.jobs.values() if getattr(memo, "controller", None) else None)
    runners: list[web.AppRunner] = []
    memo.server_runners = runners
    health_addr = os.environ.get(names.ENV_HEALTH_ADDR, "127.0.0.1")
    health_port = _port(names.ENV_HEALTH_PORT)
    metrics_port = _port(names.ENV_METRICS_PORT)
    if health_port:
        runners.append(await _serve(health_app(memo, with_metrics=metrics_port == health_port), health_addr,
                                    health_port, "/healthz" + (" and /metrics" if metrics_port == health_port else "")))
    if metrics_port and metrics_port != health_port:
        runners.append(await _serve(health_app(memo, with_metrics=True, with_health=False), health_addr,
                                    metrics_port, "/metrics"))
    dashboard_port = _port(names.ENV_DASHBOARD_PORT)
    if not dashboard_port:
        return
    from jobline.dashboard import MemoSource, create_app, make_auth

    mode = os.environ.get(names.ENV_DASHBOARD_AUTH, "token")
    addr = os.environ.get(names.ENV_DASHBOARD_ADDR, "127.0.0.1")
    if mode == "none":
        log.warning("DASHBOARD AUTHENTICATION IS OFF (--dashboard-auth=none): whoever reaches %s:%d can read "
                    "every job and retry, delete and trigger without any Kubernetes rights. "
                    "For local development only.", addr, dashboard_port)
        if not _loopback(addr):
            log.warning("the unauthenticated dashboard listens on %s, which is NOT a loopback address", addr)
    kube = Kube(load_config(os.environ.get("JOBLINE_KUBECONFIG") or None), workers=4)
    memo.dashboard_kube = kube
    app = create_app(make_auth(mode, kube), MemoSource(memo, kube), kube)
    runners.append(await _serve(app, addr, dashboard_port, f"the dashboard (auth: {mode})"))


@kopf.on.cleanup()
async def stop_servers(memo: kopf.Memo, **_: Any) -> None:
    for runner in reversed(getattr(memo, "server_runners", None) or []):
        await runner.cleanup()
    kube: Kube | None = getattr(memo, "dashboard_kube", None)
    if kube is not None:
        kube.close()
