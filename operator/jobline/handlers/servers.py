"""The operator's HTTP servers: ``/healthz`` + ``/metrics`` (health port) and the dashboard (its own port).

kopf's own liveness endpoint is not used: it owns its port and cannot serve ``/metrics`` beside
``/healthz``. The ports are the runtime's settings (``jobline-operator --help``); port 0 is off.
``/readyz`` is what a test or a rollout waits on: ready once both loops have listed everything.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

import kopf
from aiohttp import web

from jobline import metrics, runtime
from jobline.kube import Kube, load_config
from jobline.runtime import Runtime

log = logging.getLogger("jobline")


def _tasks_alive(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    """The controller (and schedule) loops are running; their state for /healthz and /readyz."""
    info: dict[str, Any] = {}
    ok = True
    for name, task in rt.tasks().items():
        alive = not task.done()
        info[name] = "running" if alive else "stopped"
        ok = ok and alive
    info["synced"] = bool(rt.controller is not None and rt.controller.synced)
    if rt.schedules is not None:
        info["schedules_synced"] = rt.schedules.synced
    return ok and rt.controller is not None, info


def health_app(rt: Runtime, *, with_metrics: bool, with_health: bool = True) -> web.Application:
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        ok, info = _tasks_alive(rt)
        return web.json_response({"status": "ok" if ok else "failing", **info}, status=200 if ok else 503)

    async def readyz(request: web.Request) -> web.Response:
        # Ready once the loops have listed everything: before that their answers (webhook
        # uniqueness, dashboard, metrics, schedules) would come from a partial view.
        ok, info = _tasks_alive(rt)
        ready = ok and bool(info.get("synced")) and info.get("schedules_synced", True) is True
        return web.json_response(
            {"status": "ready" if ready else "not ready", **info}, status=200 if ready else 503
        )

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


def leading_jobs(rt: runtime.Runtime) -> Any:
    """The jobs the queue-depth gauges count: the controller's store, on the replica that leads only.
    A standby's store froze when it stepped down: it exports no queue depths rather than stale ones."""
    controller = rt.controller
    return controller.store.jobs.values() if controller is not None and controller.active else None


@kopf.on.startup()
async def start_servers(memo: object, **_: Any) -> None:
    # Everything reads the runtime's controller lazily (at request time), so the order of startup
    # handlers does not matter; the dashboard has its own API client for TokenReviews, SARs and actions.
    rt = runtime.of(memo)
    own = rt.settings
    metrics.watch_jobs(lambda: leading_jobs(rt))
    health, metrics_port = own.health_port, own.metrics_port
    if health:
        rt.server_runners.append(
            await _serve(
                health_app(rt, with_metrics=metrics_port == health),
                own.health_host,
                health,
                "/healthz" + (" and /metrics" if metrics_port == health else ""),
            )
        )
    if metrics_port and metrics_port != health:
        rt.server_runners.append(
            await _serve(
                health_app(rt, with_metrics=True, with_health=False),
                own.health_host,
                metrics_port,
                "/metrics",
            )
        )
    if not own.dashboard_port:
        return
    from jobline.dashboard import MemoSource, create_app, make_auth

    mode, addr = own.dashboard_auth, own.dashboard_addr
    if mode == "none":
        log.warning(
            "DASHBOARD AUTHENTICATION IS OFF (--dashboard-auth=none): whoever reaches %s:%d can read "
            "every job and retry, delete and trigger without any Kubernetes rights. "
            "For local development only.",
            addr,
            own.dashboard_port,
        )
        if not _loopback(addr):
            log.warning("the unauthenticated dashboard listens on %s, which is NOT a loopback address", addr)
    kube = Kube(load_config(own.kubeconfig), connections=4)
    rt.dashboard_kube = kube
    app = create_app(make_auth(mode, kube), MemoSource(rt, kube), kube)
    rt.server_runners.append(await _serve(app, addr, own.dashboard_port, f"the dashboard (auth: {mode})"))


@kopf.on.cleanup()
async def stop_servers(memo: object, **_: Any) -> None:
    rt = runtime.of(memo)
    for runner in reversed(rt.server_runners):
        await runner.cleanup()
    if rt.dashboard_kube is not None:
        await rt.dashboard_kube.close()
