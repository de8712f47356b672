"""The dashboard's JSON API under ``/api/`` (documented in ``/api/openapi.json``).

Reads come from the operator's in-memory view (the controller's watch-fed store of QueuedJobs and
JobQueues, the schedule loop's JobSchedules), so a refresh every 5 s by many browsers costs the API
server nothing; JobSchedules are listed from the API server when the schedule loop is not there.
Actions are written through the API server with the operator's credentials after a
SubjectAccessReview for the user's own rights.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web

from jobline import names
from jobline.cli import ops
from jobline.core.models import FINISHED_PHASES
from jobline.core.timefmt import now as utcnow
from jobline.kube import MERGE, KubeError, job_path

from . import views
from .auth import Auth, HttpError, Requester, User, readable, require

log = logging.getLogger("jobline.dashboard")

QJ: Final = names.PLURAL_QUEUEDJOBS
QUEUES: Final = names.PLURAL_JOBQUEUES
SCHEDULES: Final = names.PLURAL_JOBSCHEDULES
MAX_LIMIT: Final = 200
DEFAULT_LIMIT: Final = 25
SORTS: Final = ("newest", "oldest", "name", "priority")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

Key = tuple[str, str]


@dataclass(frozen=True)
class View:
    """The QueuedJobs and JobQueues one request works on."""

    jobs: list[Mapping[str, Any]]
    queues: Mapping[Key, Mapping[str, Any]]


class Source(Protocol):
    """Where reads come from (the operator's memory; a fake in unit tests)."""

    def synced(self) -> bool: ...

    async def view(self) -> View: ...

    async def schedules(self, namespace: str | None) -> list[Mapping[str, Any]]: ...


class MemoSource:
    """The running operator: ``memo.controller.store`` and ``memo.schedules`` (the schedule loop).

    An HA standby replica's watches are paused, so its memory is stale: there the view is listed
    from the API server instead (cached for a few seconds).
    """

    STANDBY_CACHE_SECONDS: Final = 3.0

    def __init__(self, memo: Any, kube: Requester) -> None:
        self.memo = memo
        self.kube = kube
        self._standby: tuple[float, View] | None = None

    def _controller(self) -> Any:
        return getattr(self.memo, "controller", None)

    def synced(self) -> bool:
        controller = self._controller()
        return bool(controller is not None and (controller.synced or not controller.active))

    async def _list(self, plural: str) -> list[Mapping[str, Any]]:
        base = f"/apis/{names.GROUP}/{names.VERSION}"
        spaces = getattr(self._controller(), "namespaces", None) or [None]
        items: list[Mapping[str, Any]] = []
        for ns in spaces:
            answer = await self.kube.request("GET", f"{base}/namespaces/{ns}/{plural}" if ns else f"{base}/{plural}")
            items += (answer or {}).get("items") or ()
        return items

    async def view(self) -> View:
        controller = self._controller()
        if controller.active:
            return View(list(controller.store.jobs.values()), dict(controller.store.queues))
        now = time.monotonic()
        if self._standby is None or self._standby[0] < now:
            try:
                jobs, queues = await self._list(QJ), await self._list(QUEUES)
            except KubeError as exc:
                raise _kube_error(exc, QJ, "", None) from None
            self._standby = (now + self.STANDBY_CACHE_SECONDS,
                             View(jobs, {ops.ns_name(q): q for q in queues}))
        return self._standby[1]

    async def schedules(self, namespace: str | None) -> list[Mapping[str, Any]]:
        loop = getattr(self.memo, "schedules", None)
        held = getattr(loop, "schedules", None)
        if loop is not None and getattr(loop, "synced", False) and getattr(loop, "active", True) \
                and isinstance(held, dict):
            return [s for (ns, _), s in list(held.items()) if namespace is None or ns == namespace]
        base = f"/apis/{names.GROUP}/{names.VERSION}"
        path = f"{base}/namespaces/{namespace}/{SCHEDULES}" if namespace else f"{base}/{SCHEDULES}"
        answer = await self.kube.request("GET", path)
        return list((answer or {}).get("items") or ())


# --- request helpers -------------------------------------------------------------------------


def _ns_param(request: web.Request) -> str | None:
    value = request.query.get("namespace", "").strip()
    if value and not _NAME.match(value):
        raise HttpError(400, f"namespace {value!r} is not a valid namespace name")
    return value or None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise HttpError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=json.loads)
    except ValueError as exc:
        raise HttpError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HttpError(400, "the request body must be a JSON object")
    return data


def _check_keys(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise HttpError(400, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _target(request: web.Request) -> Key:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    if not _NAME.match(ns) or not _NAME.match(name):
        raise HttpError(400, "invalid namespace or name")
    return ns, name


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":")))


class Api:
    """Handlers of ``/api/*``; `auth` decides, `source` reads, `kube` writes."""

    def __init__(self, auth: Auth, source: Source, kube: Requester) -> None:
        self.auth = auth
        self.source = source
        self.kube = kube

    # --- plumbing --------------------------------------------------------------------------

    async def user(self, request: web.Request) -> User:
        return await self.auth.authenticate(request.headers.get("Authorization"))

    async def _view(self) -> View:
        if not self.source.synced():
            raise HttpError(503, "the operator is still loading its view of the cluster; try again shortly")
        return await self.source.view()

    @staticmethod
    def _namespaces_held(view: View) -> set[str]:
        return {ops.ns_name(j)[0] for j in view.jobs} | {ns for ns, _ in view.queues}

    @staticmethod
    def _in(scope: set[str] | None, namespace: str) -> bool:
        return scope is None or namespace in scope

    async def _patch(self, plural: str, ns: str, name: str, body: Mapping[str, Any]) -> Any:
        try:
            return await self.kube.request("PATCH", job_path(ns, name, plural), body, content_type=MERGE,
                                           query={"fieldManager": names.FIELD_MANAGER_DASHBOARD})
        except KubeError as exc:
            raise _kube_error(exc, plural, ns, name) from None

    async def _get(self, plural: str, ns: str, name: str) -> Mapping[str, Any]:
        try:
            obj: Mapping[str, Any] = await self.kube.request("GET", job_path(ns, name, plural))
        except KubeError as exc:
            raise _kube_error(exc, plural, ns, name) from None
        return obj

    async def _delete(self, plural: str, ns: str, name: str) -> None:
        try:
            await self.kube.request("DELETE", job_path(ns, name, plural), {"propagationPolicy": "Background"})
        except KubeError as exc:
            raise _kube_error(exc, plural, ns, name) from None

    # --- public ----------------------------------------------------------------------------

    async def config(self, request: web.Request) -> web.Response:
        return _json({"auth": self.auth.mode, "refreshSeconds": 5, "phases": list(ops.COUNT_KEYS)})

    async def whoami(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        return _json({"username": user.username, "groups": list(user.groups), "auth": self.auth.mode})

    async def namespaces(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        view = await self._view()
        held = self._namespaces_held(view) | {s.get("metadata", {}).get("namespace", "")
                                           for s in await self.source.schedules(None)}
        held.discard("")
        scope = await readable(self.auth, user, "list", QJ, None, held, strict=False)
        return _json({"items": sorted(held if scope is None else held & scope)})

    # --- reads -----------------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        namespace = _ns_param(request)
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        qscope = await readable(self.auth, user, "list", QUEUES, namespace, self._namespaces_held(view),
                                strict=False)
        jobs = self._visible_jobs(view, scope, namespace)
        queues = [q for (ns, _), q in view.queues.items()
                  if self._in(scope, ns) and self._in(qscope, ns) and (namespace is None or ns == namespace)]
        rows = ops.queue_stats(jobs, queues, utcnow())
        return _json({"totals": ops.totals(rows), "queues": rows})

    def _visible_jobs(self, view: View, scope: set[str] | None, namespace: str | None) -> list[Mapping[str, Any]]:
        return [j for j in view.jobs if self._in(scope, ops.ns_name(j)[0])
                and (namespace is None or ops.ns_name(j)[0] == namespace)]

    async def jobs(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        namespace = _ns_param(request)
        try:
            phases = ops.normalize_phases(request.query.getall("phase", []))
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        queue = request.query.get("queue") or None
        handler = request.query.get("handler") or None
        search = (request.query.get("q") or "").strip().lower()
        sort = request.query.get("sort") or "newest"
        if sort not in SORTS:
            raise HttpError(400, f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        page = _int_param(request, "page", 1, 1, 1_000_000)
        limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        visible = self._visible_jobs(view, scope, namespace)
        queues = view.queues
        positions = ops.positions(visible, queues)

        def keep(job: Mapping[str, Any]) -> bool:
            if phases and ops.phase_of(job) not in phases:
                return False
            if queue and ops.queue_of(job) != queue:
                return False
            if handler and ops.handler_of(job) != handler:
                return False
            if search:
                st = job.get("status") or {}
                hay = " ".join(str(x) for x in (*ops.ns_name(job), ops.queue_of(job), ops.handler_of(job),
                                                (job.get("spec") or {}).get("uniqueKey") or "",
                                                st.get("lastError") or "", ops.phase_of(job))).lower()
                return search in hay
            return True

        matched = [j for j in visible if keep(j)]

        def created(j: Mapping[str, Any]) -> str:
            return str((j.get("metadata") or {}).get("creationTimestamp") or "")

        if sort == "newest":
            matched.sort(key=lambda j: (created(j), ops.ns_name(j)), reverse=True)
        elif sort == "oldest":
            matched.sort(key=lambda j: (created(j), ops.ns_name(j)))
        elif sort == "name":
            matched.sort(key=lambda j: (ops.ns_name(j)[1], ops.ns_name(j)[0]))
        else:
            matched.sort(key=lambda j: (-ops.priority_of(j, queues.get((ops.ns_name(j)[0], ops.queue_of(j)))),
                                        created(j), ops.ns_name(j)))
        total = len(matched)
        pages = max(1, -(-total // limit))
        window = matched[(page - 1) * limit: page * limit]
        items = [views.job_summary(j, position=positions.get(ops.ns_name(j)),
                                   priority=ops.priority_of(j, queues.get((ops.ns_name(j)[0], ops.queue_of(j)))))
                 for j in window]
        return _json({"items": items, "total": total, "page": page, "limit": limit, "pages": pages})

    async def job(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        view = await self._view()
        await require(self.auth, user, "get", QJ, ns, name)
        held = [j for j in view.jobs if ops.ns_name(j)[0] == ns]
        job = next((j for j in held if ops.ns_name(j)[1] == name), None)
        if job is None:
            raise HttpError(404, f"queuedjob {ns}/{name} not found")
        queues = view.queues
        positions = ops.positions(held, queues)
        return _json(views.job_detail(job, position=positions.get((ns, name)),
                                      priority=ops.priority_of(job, queues.get((ns, ops.queue_of(job))))))

    async def schedules(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        namespace = _ns_param(request)
        await self._view()
        try:
            found = await self.source.schedules(namespace)
        except KubeError as exc:
            raise _kube_error(exc, SCHEDULES, namespace or "", None) from None
        held = {str((s.get("metadata") or {}).get("namespace") or "") for s in found}
        scope = await readable(self.auth, user, "list", SCHEDULES, namespace, held)
        rows = [views.schedule_row(s) for s in found if self._in(scope, str(s["metadata"].get("namespace")))]
        rows.sort(key=lambda r: (r["namespace"], r["name"]))
        return _json({"items": rows})

    # --- actions ---------------------------------------------------------------------------

    async def retry(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        await require(self.auth, user, "patch", QJ, ns, name)
        job = await self._get(QJ, ns, name)
        if not ops.is_finished(job):
            raise HttpError(409, f"queuedjob {ns}/{name} is {ops.phase_of(job)}: only a finished job can be retried")
        value = ops.requeue_value(utcnow())
        await self._patch(QJ, ns, name, {"metadata": {"annotations": {names.ANNOTATION_REQUEUE: value}}})
        log.info("dashboard: %s requeued queuedjob %s/%s", user.username, ns, name)
        return _json({"namespace": ns, "name": name, "requeued": True, names.ANNOTATION_REQUEUE: value})

    async def delete(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        await require(self.auth, user, "delete", QJ, ns, name)
        await self._delete(QJ, ns, name)
        log.info("dashboard: %s deleted queuedjob %s/%s", user.username, ns, name)
        return _json({"namespace": ns, "name": name, "deleted": True})

    async def _bulk_scope(self, user: User, verb: str, targets: Iterable[Mapping[str, Any]]) -> None:
        """403 naming every namespace of `targets` where `user` may not `verb` queuedjobs (nothing done)."""
        spaces = sorted({ops.ns_name(t)[0] for t in targets})
        denied = [ns for ns in spaces if not await self.auth.allowed(user, verb, QJ, ns)]
        if denied:
            raise HttpError(403, f"forbidden: {user.username} may not {verb} queuedjobs in namespace(s) "
                                 f"{', '.join(denied)}; nothing was changed")

    async def cleanup(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        body = await _body(request)
        _check_keys(body, ("namespace", "olderThan", "phases", "queue", "dryRun"))
        namespace = body.get("namespace") or None
        if namespace is not None and (not isinstance(namespace, str) or not _NAME.match(namespace)):
            raise HttpError(400, "namespace must be a namespace name")
        older_text = body.get("olderThan", "7d")
        if not isinstance(older_text, str):
            raise HttpError(400, "olderThan must be a string such as 7d or 12h")
        try:
            older = ops.parse_duration(older_text)
            phases = ops.normalize_phases(body.get("phases") or ["Succeeded", "Failed"])
        except (ValueError, AttributeError, TypeError) as exc:
            raise HttpError(400, str(exc)) from None
        if not set(phases) <= FINISHED_PHASES:
            raise HttpError(400, "phases may only be Succeeded and Failed")
        queue = body.get("queue") or None
        if queue is not None and not isinstance(queue, str):
            raise HttpError(400, "queue must be a string")
        dry_run = body.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise HttpError(400, "dryRun must be true or false")
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        victims = ops.cleanup_candidates(self._visible_jobs(view, scope, namespace), older_than=older, now=utcnow(),
                                         phases=phases, queue=queue)
        await self._bulk_scope(user, "delete", victims)
        items = [{"namespace": ops.ns_name(v)[0], "name": ops.ns_name(v)[1], "phase": ops.phase_of(v),
                  "completedAt": (v.get("status") or {}).get("completedAt")} for v in victims]
        if not dry_run:
            for v in victims:
                ns, name = ops.ns_name(v)
                try:
                    await self._delete(QJ, ns, name)
                except HttpError as exc:
                    if exc.status != 404:
                        raise
            log.info("dashboard: %s cleaned up %d finished queuedjob(s) older than %s",
                     user.username, len(victims), older_text)
        return _json({"dryRun": dry_run, "count": len(items), "items": items})

    async def retry_failed(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        body = await _body(request)
        _check_keys(body, ("namespace", "queue", "dryRun"))
        namespace = body.get("namespace") or None
        if namespace is not None and (not isinstance(namespace, str) or not _NAME.match(namespace)):
            raise HttpError(400, "namespace must be a namespace name")
        queue = body.get("queue") or None
        dry_run = body.get("dryRun", False)
        if not isinstance(dry_run, bool) or (queue is not None and not isinstance(queue, str)):
            raise HttpError(400, "queue must be a string and dryRun true or false")
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        targets = [j for j in self._visible_jobs(view, scope, namespace)
                   if ops.is_dead_letter(j) and (queue is None or ops.queue_of(j) == queue)]
        await self._bulk_scope(user, "patch", targets)
        if not dry_run:
            for job in targets:
                ns, name = ops.ns_name(job)
                value = ops.requeue_value(utcnow())
                await self._patch(QJ, ns, name, {"metadata": {"annotations": {names.ANNOTATION_REQUEUE: value}}})
            log.info("dashboard: %s requeued %d dead-lettered queuedjob(s)", user.username, len(targets))
        items = [{"namespace": ops.ns_name(j)[0], "name": ops.ns_name(j)[1]} for j in targets]
        return _json({"dryRun": dry_run, "count": len(items), "items": items})

    async def trigger(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        await require(self.auth, user, "patch", SCHEDULES, ns, name)
        await self._get(SCHEDULES, ns, name)
        value = ops.requeue_value(utcnow())
        await self._patch(SCHEDULES, ns, name, {"metadata": {"annotations": {names.ANNOTATION_TRIGGER: value}}})
        log.info("dashboard: %s triggered jobschedule %s/%s", user.username, ns, name)
        return _json({"namespace": ns, "name": name, "triggered": True, names.ANNOTATION_TRIGGER: value})

    def _switch(self, plural: str, field: str, value: bool, verb_done: str) -> Callable[
            [web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            user = await self.user(request)
            ns, name = _target(request)
            await require(self.auth, user, "patch", plural, ns, name)
            await self._get(plural, ns, name)
            await self._patch(plural, ns, name, {"spec": {field: value}})
            log.info("dashboard: %s %s %s %s/%s", user.username, verb_done, plural, ns, name)
            return _json({"namespace": ns, "name": name, field: value})

        return handle

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/config", self.config),
            web.get("/api/whoami", self.whoami),
            web.get("/api/namespaces", self.namespaces),
            web.get("/api/stats", self.stats),
            web.get("/api/jobs", self.jobs),
            web.get("/api/jobs/{namespace}/{name}", self.job),
            web.delete("/api/jobs/{namespace}/{name}", self.delete),
            web.post("/api/jobs/{namespace}/{name}/retry", self.retry),
            web.post("/api/retry-failed", self.retry_failed),
            web.post("/api/cleanup", self.cleanup),
            web.get("/api/schedules", self.schedules),
            web.post("/api/schedules/{namespace}/{name}/trigger", self.trigger),
            web.post("/api/schedules/{namespace}/{name}/enable", self._switch(SCHEDULES, "suspend", False, "enabled")),
            web.post("/api/schedules/{namespace}/{name}/disable", self._switch(SCHEDULES, "suspend", True, "disabled")),
            web.post("/api/queues/{namespace}/{name}/pause", self._switch(QUEUES, "paused", True, "paused")),
            web.post("/api/queues/{namespace}/{name}/resume", self._switch(QUEUES, "paused", False, "resumed")),
        ]


def _kube_error(exc: KubeError, plural: str, ns: str, name: str | None) -> HttpError:
    kind = plural.rstrip("s")
    what = f"{kind} {ns}/{name}" if name else plural
    if exc.status == 404:
        return HttpError(404, f"{what} not found")
    if exc.status == 409:
        return HttpError(409, f"{what} changed meanwhile; try again")
    if exc.status in (400, 422):
        return HttpError(400, f"the API server refused the change to {what}: {exc.message}")
    if exc.status == 403:
        log.error("the operator may not change %s (%s): check its RBAC", what, exc.message)
        return HttpError(500, f"the operator itself is not allowed to change {what}: check its RBAC")
    log.error("API call on %s failed: %s", what, exc)
    return HttpError(502, f"the Kubernetes API call on {what} failed ({exc.status})")
