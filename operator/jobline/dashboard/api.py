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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web

from jobline import names
from jobline.core import actions, readmodel
from jobline.core.timefmt import now as utcnow
from jobline.kube import MERGE, KubeError, job_path

from . import views
from .auth import Auth, HttpError, Requester, User, readable, require

log = logging.getLogger("jobline.dashboard")

QJ: Final = names.PLURAL_QUEUEDJOBS
QUEUES: Final = names.PLURAL_JOBQUEUES
SCHEDULES: Final = names.PLURAL_JOBSCHEDULES
KINDS: Final = {
    QJ: names.KIND_QUEUEDJOB.lower(),
    QUEUES: names.KIND_JOBQUEUE.lower(),
    SCHEDULES: names.KIND_JOBSCHEDULE.lower(),
}  # in messages: "queuedjob ns/name not found"
MAX_LIMIT: Final = 200
DEFAULT_LIMIT: Final = 25
SORTS: Final = ("newest", "oldest", "name", "priority")
# Used with fullmatch: re.match with "$" let "dead\n" through (to the API server's URL, a 500).
_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
MAX_NAMESPACE: Final = 63  # a DNS label
MAX_NAME: Final = 253  # a DNS subdomain
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")  # ASCII digits only (int() also takes "1_000" and other scripts)

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


class StoreView(Protocol):
    """What the dashboard reads of the controller's store (:class:`jobline.controller.store.Store`)."""

    @property
    def jobs(self) -> Mapping[Key, Mapping[str, Any]]: ...

    @property
    def queues(self) -> Mapping[Key, Mapping[str, Any]]: ...


class ControllerView(Protocol):
    """What the dashboard reads of the controller loop (:class:`jobline.controller.loop.Controller`)."""

    @property
    def store(self) -> StoreView: ...

    @property
    def active(self) -> bool: ...  # False on an HA standby replica: its watches are paused

    @property
    def synced(self) -> bool: ...

    @property
    def namespaces(self) -> Sequence[str] | None: ...  # None: every namespace


class SchedulesView(Protocol):
    """What the dashboard reads of the schedule loop (:class:`jobline.controller.schedules.ScheduleLoop`)."""

    @property
    def schedules(self) -> Mapping[Key, Mapping[str, Any]]: ...

    @property
    def active(self) -> bool: ...

    @property
    def synced(self) -> bool: ...


class RuntimeView(Protocol):
    """The running operator as the dashboard sees it (:class:`jobline.runtime.Runtime`).

    Either loop is None until startup has made it (and the schedule loop when it is disabled).
    """

    @property
    def controller(self) -> ControllerView | None: ...

    @property
    def schedules(self) -> SchedulesView | None: ...


class MemoSource:
    """The running operator: ``runtime.controller.store`` and ``runtime.schedules`` (the schedule loop).

    An HA standby replica's watches are paused, so its memory is stale: there the view is listed
    from the API server instead (cached for a few seconds). So is everything before the controller
    exists, for :meth:`synced` is False until then.
    """

    STANDBY_CACHE_SECONDS: Final = 3.0

    def __init__(self, runtime: RuntimeView, kube: Requester) -> None:
        self.runtime = runtime
        self.kube = kube
        self._standby: tuple[float, View] | None = None

    def synced(self) -> bool:
        controller = self.runtime.controller
        return controller is not None and (controller.synced or not controller.active)

    async def _list(self, plural: str) -> list[Mapping[str, Any]]:
        base = f"/apis/{names.GROUP}/{names.VERSION}"
        controller = self.runtime.controller
        spaces: Sequence[str | None] = (controller.namespaces if controller is not None else None) or [None]
        items: list[Mapping[str, Any]] = []
        for ns in spaces:
            answer = await self.kube.request(
                "GET", f"{base}/namespaces/{ns}/{plural}" if ns else f"{base}/{plural}"
            )
            items += (answer or {}).get("items") or ()
        return items

    async def view(self) -> View:
        controller = self.runtime.controller
        if controller is not None and controller.active:
            return View(list(controller.store.jobs.values()), dict(controller.store.queues))
        now = time.monotonic()
        if self._standby is None or self._standby[0] < now:
            try:
                jobs, queues = await self._list(QJ), await self._list(QUEUES)
            except KubeError as exc:
                raise _kube_error(exc, QJ, "", None) from None
            self._standby = (
                now + self.STANDBY_CACHE_SECONDS,
                View(jobs, {readmodel.ns_name(q): q for q in queues}),
            )
        return self._standby[1]

    async def schedules(self, namespace: str | None) -> list[Mapping[str, Any]]:
        loop = self.runtime.schedules
        if loop is not None and loop.synced and loop.active:
            return [s for (ns, _), s in list(loop.schedules.items()) if namespace is None or ns == namespace]
        base = f"/apis/{names.GROUP}/{names.VERSION}"
        path = f"{base}/namespaces/{namespace}/{SCHEDULES}" if namespace else f"{base}/{SCHEDULES}"
        answer = await self.kube.request("GET", path)
        return list((answer or {}).get("items") or ())


# --- request helpers -------------------------------------------------------------------------


def _is_name(value: str, longest: int) -> bool:
    return len(value) <= longest and _NAME.fullmatch(value) is not None


def _shown(value: str, limit: int = 80) -> str:
    """`value` quoted for an error message, cut short: a message echoes no 64 KiB of the request."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + "..."


def _ns_param(request: web.Request) -> str | None:
    value = request.query.get("namespace", "").strip()
    if value and not _is_name(value, MAX_NAMESPACE):
        raise HttpError(400, f"namespace {_shown(value)} is not a valid namespace name")
    return value or None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw.strip()):
        raise HttpError(400, f"{name} must be an integer, got {_shown(raw)}")
    value = int(raw) if len(raw.strip()) <= 18 else None  # no 5000-digit conversions
    if value is None or not low <= value <= high:
        raise HttpError(400, f"{name} must be between {low} and {high}, got {_shown(raw.strip())}")
    return value


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body ({} without one). JSON is UTF-8 (RFC 8259), whatever charset the
    Content-Type claims; a body over ``client_max_size`` is a 413 (aiohttp's, answered by `_errors`)."""
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." deeper than Python recurses
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise HttpError(400, f"the request body is not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise HttpError(400, "the request body must be a JSON object")
    return data


def _check_keys(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        listed = ", ".join(k if len(k) <= 40 else k[:40] + "..." for k in unknown[:10])
        listed += ", ..." if len(unknown) > 10 else ""
        if not allowed:
            raise HttpError(400, f"this action takes no request body fields, got {listed}")
        raise HttpError(400, f"unknown field(s) {listed}; allowed: {', '.join(sorted(allowed))}")


async def _no_fields(request: web.Request) -> None:
    """The single-object actions take no options: an empty body or ``{}``, else 400 (413 when oversized),
    so that e.g. ``DELETE`` with ``{"dryRun": true}`` is refused instead of deleting."""
    _check_keys(await _body(request), ())


def _optional_str(body: Mapping[str, Any], key: str, what: str) -> str | None:
    """``body[key]`` as a string ("" and null: not given); 400 for any other type (``0``, ``[]`` or ``false``
    must not widen a bulk action to every namespace or queue)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise HttpError(400, f"{key} must be {what}")
    return value


def _body_namespace(body: Mapping[str, Any]) -> str | None:
    namespace = _optional_str(body, "namespace", "a namespace name")
    if namespace is not None and not _is_name(namespace, MAX_NAMESPACE):
        raise HttpError(400, "namespace must be a namespace name")
    return namespace


def _target(request: web.Request) -> Key:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    if not _is_name(ns, MAX_NAMESPACE) or not _is_name(name, MAX_NAME):
        raise HttpError(400, "invalid namespace or name")
    return ns, name


def dumps(data: Any) -> str:
    """Compact JSON with ``<``, ``>`` and ``&`` escaped (``\\u003c``...): a reflected ``<script>`` is no
    markup to any client that sniffs or embeds the answer. Valid JSON: those only occur inside strings."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


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
        return {readmodel.ns_name(j)[0] for j in view.jobs} | {ns for ns, _ in view.queues}

    @staticmethod
    def _in(scope: set[str] | None, namespace: str) -> bool:
        return scope is None or namespace in scope

    async def _patch(self, plural: str, ns: str, name: str, body: Mapping[str, Any]) -> Any:
        try:
            return await self.kube.request(
                "PATCH",
                job_path(ns, name, plural),
                body,
                content_type=MERGE,
                query={"fieldManager": names.FIELD_MANAGER_DASHBOARD},
            )
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
        return _json({"auth": self.auth.mode, "refreshSeconds": 5, "phases": list(readmodel.COUNT_KEYS)})

    async def whoami(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        return _json({"username": user.username, "groups": list(user.groups), "auth": self.auth.mode})

    async def namespaces(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        view = await self._view()
        held = self._namespaces_held(view) | {
            s.get("metadata", {}).get("namespace", "") for s in await self.source.schedules(None)
        }
        held.discard("")
        scope = await readable(self.auth, user, "list", QJ, None, held, strict=False)
        return _json({"items": sorted(held if scope is None else held & scope)})

    # --- reads -----------------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        namespace = _ns_param(request)
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        qscope = await readable(
            self.auth, user, "list", QUEUES, namespace, self._namespaces_held(view), strict=False
        )
        jobs = self._visible_jobs(view, scope, namespace)
        queues = [
            q
            for (ns, _), q in view.queues.items()
            if self._in(scope, ns) and self._in(qscope, ns) and (namespace is None or ns == namespace)
        ]
        rows = readmodel.queue_stats(jobs, queues, utcnow())
        return _json({"totals": readmodel.totals(rows), "queues": rows})

    def _visible_jobs(
        self, view: View, scope: set[str] | None, namespace: str | None
    ) -> list[Mapping[str, Any]]:
        return [
            j
            for j in view.jobs
            if self._in(scope, readmodel.ns_name(j)[0])
            and (namespace is None or readmodel.ns_name(j)[0] == namespace)
        ]

    async def jobs(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        namespace = _ns_param(request)
        try:
            phases = readmodel.normalize_phases(request.query.getall("phase", []))
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
        positions = readmodel.positions(visible, queues)

        def keep(job: Mapping[str, Any]) -> bool:
            if phases and readmodel.phase_of(job) not in phases:
                return False
            if queue and readmodel.queue_of(job) != queue:
                return False
            if handler and readmodel.handler_of(job) != handler:
                return False
            if search:
                st = job.get("status") or {}
                hay = " ".join(
                    str(x)
                    for x in (
                        *readmodel.ns_name(job),
                        readmodel.queue_of(job),
                        readmodel.handler_of(job),
                        (job.get("spec") or {}).get("uniqueKey") or "",
                        st.get("lastError") or "",
                        readmodel.phase_of(job),
                    )
                ).lower()
                return search in hay
            return True

        matched = [j for j in visible if keep(j)]

        def created(j: Mapping[str, Any]) -> str:
            return str((j.get("metadata") or {}).get("creationTimestamp") or "")

        if sort == "newest":
            matched.sort(key=lambda j: (created(j), readmodel.ns_name(j)), reverse=True)
        elif sort == "oldest":
            matched.sort(key=lambda j: (created(j), readmodel.ns_name(j)))
        elif sort == "name":
            matched.sort(key=lambda j: (readmodel.ns_name(j)[1], readmodel.ns_name(j)[0]))
        else:
            matched.sort(
                key=lambda j: (-readmodel.effective_priority(j, queues), created(j), readmodel.ns_name(j))
            )
        total = len(matched)
        pages = max(1, -(-total // limit))
        window = matched[(page - 1) * limit : page * limit]
        items = [
            views.job_summary(
                j,
                position=positions.get(readmodel.ns_name(j)),
                priority=readmodel.effective_priority(j, queues),
            )
            for j in window
        ]
        return _json({"items": items, "total": total, "page": page, "limit": limit, "pages": pages})

    async def job(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        view = await self._view()
        await require(self.auth, user, "get", QJ, ns, name)
        held = [j for j in view.jobs if readmodel.ns_name(j)[0] == ns]
        job = next((j for j in held if readmodel.ns_name(j)[1] == name), None)
        if job is None:
            raise HttpError(404, f"{KINDS[QJ]} {ns}/{name} not found")
        queues = view.queues
        positions = readmodel.positions(held, queues)
        return _json(
            views.job_detail(
                job, position=positions.get((ns, name)), priority=readmodel.effective_priority(job, queues)
            )
        )

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
        await _no_fields(request)
        await require(self.auth, user, "patch", QJ, ns, name)
        job = await self._get(QJ, ns, name)
        refusal = actions.retry_refusal(job)
        if refusal is not None:
            raise HttpError(409, f"{KINDS[QJ]} {ns}/{name} {refusal}")
        value = actions.fresh_value(utcnow())
        await self._patch(QJ, ns, name, actions.requeue(value, job))
        log.info("dashboard: %s requeued %s %s/%s", user.username, KINDS[QJ], ns, name)
        return _json({"namespace": ns, "name": name, "requeued": True, names.ANNOTATION_REQUEUE: value})

    async def cancel(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        await _no_fields(request)
        await require(self.auth, user, "patch", QJ, ns, name)
        refusal = actions.cancel_refusal(await self._get(QJ, ns, name))
        if refusal is not None:
            raise HttpError(409, f"{KINDS[QJ]} {ns}/{name} {refusal}")
        await self._patch(QJ, ns, name, actions.cancel())
        log.info("dashboard: %s cancelled %s %s/%s", user.username, KINDS[QJ], ns, name)
        return _json({"namespace": ns, "name": name, "cancelled": True})

    async def delete(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        await _no_fields(request)
        await require(self.auth, user, "delete", QJ, ns, name)
        await self._delete(QJ, ns, name)
        log.info("dashboard: %s deleted %s %s/%s", user.username, KINDS[QJ], ns, name)
        return _json({"namespace": ns, "name": name, "deleted": True})

    async def _bulk_scope(self, user: User, verb: str, targets: Iterable[Mapping[str, Any]]) -> None:
        """403 naming every namespace of `targets` where `user` may not `verb` queuedjobs (nothing done)."""
        spaces = sorted({readmodel.ns_name(t)[0] for t in targets})
        denied = [ns for ns in spaces if not await self.auth.allowed(user, verb, QJ, ns)]
        if denied:
            raise HttpError(
                403,
                f"forbidden: {user.username} may not {verb} {QJ} in namespace(s) "
                f"{', '.join(denied)}; nothing was changed",
            )

    async def cleanup(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        body = await _body(request)
        _check_keys(body, ("namespace", "olderThan", "phases", "queue", "dryRun"))
        namespace = _body_namespace(body)
        older_text = body.get("olderThan", "7d")
        if not isinstance(older_text, str):
            raise HttpError(400, "olderThan must be a string such as 7d or 12h")
        if len(older_text) > 64:  # no duration is that long; spares int() thousands of digits
            raise HttpError(400, f"olderThan {_shown(older_text)} is not a duration such as 7d, 12h or 1d12h")
        given = body.get("phases")
        if given is None:
            given = []
        if not isinstance(given, list) or not all(isinstance(p, str) for p in given):
            raise HttpError(400, 'phases must be a list of phase names such as ["Succeeded", "Failed"]')
        try:
            older = readmodel.parse_duration(older_text)
            phases = actions.cleanup_phases(given)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        except OverflowError:  # "99999999999999d": more than a timedelta holds
            raise HttpError(400, f"olderThan {_shown(older_text)} is too long a duration") from None
        queue = _optional_str(body, "queue", "a string")
        dry_run = body.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise HttpError(400, "dryRun must be true or false")
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        victims = readmodel.cleanup_candidates(
            self._visible_jobs(view, scope, namespace),
            older_than=older,
            now=utcnow(),
            phases=phases,
            queue=queue,
        )
        await self._bulk_scope(user, "delete", victims)
        items = [
            {
                "namespace": readmodel.ns_name(v)[0],
                "name": readmodel.ns_name(v)[1],
                "phase": readmodel.phase_of(v),
                "completedAt": (v.get("status") or {}).get("completedAt"),
            }
            for v in victims
        ]
        if not dry_run:
            for v in victims:
                ns, name = readmodel.ns_name(v)
                try:
                    await self._delete(QJ, ns, name)
                except HttpError as exc:
                    if exc.status != 404:
                        raise
            log.info(
                "dashboard: %s cleaned up %d finished %s(s) older than %s",
                user.username,
                len(victims),
                KINDS[QJ],
                older_text,
            )
        return _json({"dryRun": dry_run, "count": len(items), "items": items})

    async def retry_failed(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        body = await _body(request)
        _check_keys(body, ("namespace", "queue", "dryRun"))
        namespace = _body_namespace(body)
        queue = _optional_str(body, "queue", "a string")
        dry_run = body.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise HttpError(400, "dryRun must be true or false")
        view = await self._view()
        scope = await readable(self.auth, user, "list", QJ, namespace, self._namespaces_held(view))
        targets = readmodel.dead_letters(self._visible_jobs(view, scope, namespace), queue)
        await self._bulk_scope(user, "patch", targets)
        if not dry_run:
            for job in targets:
                ns, name = readmodel.ns_name(job)
                await self._patch(QJ, ns, name, actions.requeue(actions.fresh_value(utcnow())))
            log.info("dashboard: %s requeued %d dead-lettered %s(s)", user.username, len(targets), KINDS[QJ])
        items = [{"namespace": readmodel.ns_name(j)[0], "name": readmodel.ns_name(j)[1]} for j in targets]
        return _json({"dryRun": dry_run, "count": len(items), "items": items})

    async def trigger(self, request: web.Request) -> web.Response:
        user = await self.user(request)
        ns, name = _target(request)
        await _no_fields(request)
        await require(self.auth, user, "patch", SCHEDULES, ns, name)
        await self._get(SCHEDULES, ns, name)
        value = actions.fresh_value(utcnow())
        await self._patch(SCHEDULES, ns, name, actions.trigger(value))
        log.info("dashboard: %s triggered %s %s/%s", user.username, KINDS[SCHEDULES], ns, name)
        return _json({"namespace": ns, "name": name, "triggered": True, names.ANNOTATION_TRIGGER: value})

    def _switch(
        self, plural: str, on: bool, verb_done: str
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Suspend (`on`) or resume a JobSchedule, pause or resume a JobQueue."""

        async def handle(request: web.Request) -> web.Response:
            user = await self.user(request)
            ns, name = _target(request)
            await _no_fields(request)
            await require(self.auth, user, "patch", plural, ns, name)
            await self._get(plural, ns, name)
            await self._patch(plural, ns, name, actions.hold(plural, on))
            log.info("dashboard: %s %s %s %s/%s", user.username, verb_done, plural, ns, name)
            return _json({"namespace": ns, "name": name, actions.hold_field(plural): on})

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
            web.post("/api/jobs/{namespace}/{name}/cancel", self.cancel),
            web.post("/api/retry-failed", self.retry_failed),
            web.post("/api/cleanup", self.cleanup),
            web.get("/api/schedules", self.schedules),
            web.post("/api/schedules/{namespace}/{name}/trigger", self.trigger),
            web.post("/api/schedules/{namespace}/{name}/enable", self._switch(SCHEDULES, False, "enabled")),
            web.post("/api/schedules/{namespace}/{name}/disable", self._switch(SCHEDULES, True, "disabled")),
            web.post("/api/queues/{namespace}/{name}/pause", self._switch(QUEUES, True, "paused")),
            web.post("/api/queues/{namespace}/{name}/resume", self._switch(QUEUES, False, "resumed")),
        ]


def _kube_error(exc: KubeError, plural: str, ns: str, name: str | None) -> HttpError:
    kind = KINDS.get(plural, plural)
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
