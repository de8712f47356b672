"""Asyncio client SDK: :mod:`jobline.client` and :mod:`jobline.schedule_client` for asyncio applications.

The same calls, models and errors as the synchronous SDK, awaited on the official client's
``kubernetes.aio`` (aiohttp), so a web handler can enqueue without blocking its event loop. Manifests
are built by the synchronous SDK's pure ``build`` functions: validation is identical, and an invalid
job or a too-large payload is refused before the kubeconfig is read or the network touched.

Usage::

    import jobline.aio

    async with jobline.aio.Client() as jobs:
        name = await jobs.enqueue("send-email", {"to": "a@example.com"})
        job = await jobs.wait(name, timeout=60)

    await jobline.aio.enqueue("send-email", {...})  # one call, one connection
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypedDict, Unpack

from jobline import client, names, schedule_client
from jobline.client import JobAlreadyExists, JoblineError, JobNotFound, _raise_mapped, check_payload
from jobline.core import actions
from jobline.core.models import FINISHED_PHASES, JobSchedule, QueuedJob, RetryPolicy, WorkerTemplate
from jobline.kubeconfig import SERVICE_ACCOUNT_DIR, current_namespace, kubeconfig_path

__all__ = [
    "Client",
    "CustomObjects",
    "EnqueueOptions",
    "JobAlreadyExists",
    "JobNotFound",
    "JoblineError",
    "cancel",
    "configuration",
    "enqueue",
    "get",
    "list_jobs",
    "retry",
    "wait",
]

QUEUEDJOBS: Final = QueuedJob.PLURAL
JOBSCHEDULES: Final = JobSchedule.PLURAL
MERGE_PATCH: Final = "application/merge-patch+json"

# Indirections so tests can drive `wait` without real time passing.
_monotonic: Callable[[], float] = time.monotonic
_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


class EnqueueOptions(TypedDict, total=False):
    """The keyword arguments of :func:`jobline.client.enqueue` besides ``namespace`` and ``api``."""

    queue: str
    priority: int | None
    run_at: datetime | str | None
    unique_key: str | None
    retry: RetryPolicy | Mapping[str, Any] | None
    name: str | None
    labels: Mapping[str, str] | None
    timeout_seconds: int | None
    depends_on: Sequence[str] | None
    template: WorkerTemplate | Mapping[str, Any] | None
    concurrency_key: str | None
    dependency_timeout_seconds: int | None
    ttl_seconds_after_finished: int | None
    suspend: bool
    annotations: Mapping[str, str] | None


class CustomObjects(Protocol):
    """The part of ``kubernetes.aio.client.CustomObjectsApi`` the client calls (tests pass a fake)."""

    async def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> Any: ...

    async def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...

    async def list_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> Any: ...

    async def patch_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: dict[str, Any],
        *,
        _content_type: str | None = None,
    ) -> Any: ...


async def configuration(path: str | None = None, context: str | None = None) -> Any:
    """A fresh ``kubernetes.aio.client.Configuration`` for the source :mod:`jobline.kubeconfig` chooses
    (its one order; the global default left alone). Raises ``ConfigException`` or OSError."""
    from kubernetes.aio import client as aio_client
    from kubernetes.aio import config as aio_config

    cfg = aio_client.Configuration()
    chosen = kubeconfig_path(path, context)
    if chosen is None:
        loader = aio_config.incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            environ=dict(os.environ),
        )
        loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
    else:
        await aio_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=chosen, context=context, client_configuration=cfg, persist_config=False
        )
    return cfg


def _selectors(
    queue: str | None, handler: str | None, phase: str | None, label_selector: str | None
) -> dict[str, str]:
    """The list filters as the sync SDK sends them: the selectable fields and a label selector."""
    fields = [
        f"{k}={v}"
        for k, v in (("spec.queue", queue), ("spec.handler", handler), ("status.phase", phase))
        if v is not None
    ]
    labels = [label_selector] if label_selector else []
    kwargs: dict[str, str] = {}
    if fields:
        kwargs["field_selector"] = ",".join(fields)
    if labels:
        kwargs["label_selector"] = ",".join(labels)
    return kwargs


class Client:
    """An asyncio connection to one namespace's Jobline objects.

    Connects on the first call (so invalid input is refused before the kubeconfig is read) and owns
    that ``ApiClient``: use ``async with`` or ``await close()``. ``namespace`` defaults to the
    kubeconfig's (or the pod's); every method takes ``namespace=`` to reach another one. ``api``
    replaces the connection with any :class:`CustomObjects` (not closed by the client).
    """

    def __init__(
        self,
        namespace: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        api: CustomObjects | None = None,
    ) -> None:
        self._namespace = namespace
        self._kubeconfig = kubeconfig
        self._context = context
        self._api = api
        self._api_client: Any = None  # the ApiClient this client made, and so closes
        self._connecting = asyncio.Lock()  # concurrent first calls share one ApiClient

    @property
    def namespace(self) -> str:
        """The default namespace (read from the kubeconfig on first use)."""
        if self._namespace is None:
            self._namespace = current_namespace(self._kubeconfig, self._context)
        return self._namespace

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection this client opened (idempotent)."""
        api_client, self._api_client = self._api_client, None
        if api_client is not None:
            self._api = None
            await api_client.close()

    async def _custom(self) -> CustomObjects:
        if self._api is None:
            async with self._connecting:
                if self._api is None:
                    from kubernetes.aio import client as aio_client

                    cfg = await configuration(self._kubeconfig, self._context)
                    self._api_client = aio_client.ApiClient(cfg)
                    self._api = aio_client.CustomObjectsApi(self._api_client)
        return self._api

    async def _call(
        self,
        request: Callable[[CustomObjects], Awaitable[Any]],
        *,
        verb: str,
        namespace: str,
        name: str | None = None,
        kind: str = QueuedJob.KIND,
    ) -> Any:
        """Await one API request, its ApiException mapped as the sync SDK maps it (one mapping)."""
        from kubernetes.aio.client.exceptions import ApiException

        custom = await self._custom()
        try:
            return await request(custom)
        except ApiException as exc:
            # A 404 on create is a missing namespace or CRD, not a missing object (as the sync enqueue).
            missing = None if verb == "create" and exc.status == 404 else name
            _raise_mapped(exc, verb=verb, namespace=namespace, name=missing, kind=kind)

    # --- QueuedJobs ---------------------------------------------------------------------------

    async def enqueue(
        self,
        handler: str,
        payload: Any = None,
        *,
        namespace: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str:
        """Create a QueuedJob running `handler` with `payload`; returns its name. Takes the keywords of
        :func:`jobline.client.enqueue` and raises its errors."""
        check_payload(payload)  # before anything touches the kubeconfig or the network
        # Validated before the default namespace is read from the kubeconfig (then filled in).
        job = client.build(handler, payload, namespace=namespace or "", **options)
        ns = namespace or self.namespace
        job.metadata["namespace"] = ns
        name = options.get("name")
        created = await self._call(
            lambda c: c.create_namespaced_custom_object(
                names.GROUP, names.VERSION, ns, QUEUEDJOBS, job.to_manifest()
            ),
            verb="create",
            namespace=ns,
            name=name,
        )
        return str(created["metadata"]["name"])

    async def get(self, name: str, *, namespace: str | None = None) -> QueuedJob:
        """The QueuedJob `name`, status parsed; raises JobNotFound or PermissionError."""
        ns = namespace or self.namespace
        obj = await self._call(
            lambda c: c.get_namespaced_custom_object(names.GROUP, names.VERSION, ns, QUEUEDJOBS, name),
            verb="read",
            namespace=ns,
            name=name,
        )
        return QueuedJob.from_object(obj)

    async def wait(
        self, name: str, timeout: float, poll_interval: float = 1.0, *, namespace: str | None = None
    ) -> QueuedJob:
        """Poll the QueuedJob until it is finished (Succeeded, Failed, Cancelled or Superseded); raises
        TimeoutError after `timeout` seconds. Other tasks run while it sleeps."""
        ns = namespace or self.namespace
        deadline = _monotonic() + timeout
        while True:
            job = await self.get(name, namespace=ns)
            phase = job.status.phase if job.status else None
            if phase in FINISHED_PHASES:
                return job
            remaining = deadline - _monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"QueuedJob {ns}/{name} still {phase or 'without a phase'} after {timeout}s"
                )
            await _sleep(min(poll_interval, remaining))

    async def list_jobs(
        self,
        *,
        namespace: str | None = None,
        queue: str | None = None,
        handler: str | None = None,
        phase: str | None = None,
        label_selector: str | None = None,
    ) -> list[QueuedJob]:
        """The namespace's QueuedJobs, filtered on the server: ``queue`` and ``handler`` through the CRD's
        selectable fields, ``phase`` through ``status.phase`` (a selectable field too), plus any ``label_selector``."""
        ns = namespace or self.namespace
        selectors = _selectors(queue, handler, phase, label_selector)
        listed = await self._call(
            lambda c: c.list_namespaced_custom_object(
                names.GROUP, names.VERSION, ns, QUEUEDJOBS, **selectors
            ),
            verb="list",
            namespace=ns,
        )
        return [QueuedJob.from_object(obj) for obj in listed.get("items", [])]

    async def retry(self, name: str, *, namespace: str | None = None) -> None:
        """Run a finished job again with a fresh retry budget (the ``jobline.dev/requeue`` annotation).
        Raises ValueError if it is unfinished or Superseded."""
        ns = namespace or self.namespace
        job = (await self.get(name, namespace=ns)).to_manifest()
        refusal = actions.retry_refusal(job)
        if refusal:
            raise ValueError(f"QueuedJob {ns}/{name} {refusal}")
        patch = actions.requeue(actions.fresh_value(datetime.now(UTC)), job)
        await self._patch(name, patch, verb="retry", namespace=ns, plural=QUEUEDJOBS)

    async def cancel(self, name: str, *, namespace: str | None = None) -> None:
        """Cancel an unfinished job (``spec.cancel: true``): a running attempt gets SIGTERM, the job ends
        Cancelled. Raises ValueError if it is already finished."""
        ns = namespace or self.namespace
        refusal = actions.cancel_refusal((await self.get(name, namespace=ns)).to_manifest())
        if refusal:
            raise ValueError(f"QueuedJob {ns}/{name} {refusal}")
        await self._patch(name, actions.cancel(), verb="cancel", namespace=ns, plural=QUEUEDJOBS)

    # --- JobSchedules -------------------------------------------------------------------------

    async def create_schedule(
        self,
        name: str,
        schedule: str,
        handler: str,
        payload: Any = None,
        *,
        namespace: str | None = None,
        **options: Any,
    ) -> str:
        """Create a JobSchedule (the options of :func:`jobline.schedule_client.build_schedule`); returns
        its name. An invalid cron expression or time zone is a ValueError before any call."""
        obj = schedule_client.build_schedule(
            name, schedule, handler, payload, namespace=namespace or "", **options
        )
        ns = namespace or self.namespace  # read from the kubeconfig only for a valid schedule
        obj.metadata["namespace"] = ns
        created = await self._call(
            lambda c: c.create_namespaced_custom_object(
                names.GROUP, names.VERSION, ns, JOBSCHEDULES, obj.to_manifest()
            ),
            verb="create",
            namespace=ns,
            name=name,
            kind=JobSchedule.KIND,
        )
        return str(created["metadata"]["name"])

    async def trigger_schedule(self, name: str, *, namespace: str | None = None) -> str:
        """Run the schedule once now (a fresh ``jobline.dev/trigger`` value); returns the value."""
        value = actions.fresh_value(datetime.now(UTC))
        await self._patch(name, actions.trigger(value), verb="trigger", namespace=namespace)
        return value

    async def suspend_schedule(self, name: str, *, namespace: str | None = None) -> None:
        """Stop creating scheduled runs (running jobs go on; missed instants follow missedRunPolicy)."""
        await self._patch(name, actions.suspend_schedule(), verb="suspend", namespace=namespace)

    async def resume_schedule(self, name: str, *, namespace: str | None = None) -> None:
        await self._patch(name, actions.resume_schedule(), verb="resume", namespace=namespace)

    async def _patch(
        self,
        name: str,
        patch: Mapping[str, Any],
        *,
        verb: str,
        namespace: str | None,
        plural: str = JOBSCHEDULES,
    ) -> None:
        """A JSON merge patch, its content type named: kubernetes 36's aio client would send a dict body as
        ``application/json-patch+json`` (37's defaults to merge patch), which the apiserver refuses."""
        ns = namespace or self.namespace
        kind = QueuedJob.KIND if plural == QUEUEDJOBS else JobSchedule.KIND
        await self._call(
            lambda c: c.patch_namespaced_custom_object(
                names.GROUP, names.VERSION, ns, plural, name, dict(patch), _content_type=MERGE_PATCH
            ),
            verb=verb,
            namespace=ns,
            name=name,
            kind=kind,
        )


# --- one call, one connection -------------------------------------------------------------------


async def enqueue(
    handler: str,
    payload: Any = None,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    **options: Unpack[EnqueueOptions],
) -> str:
    """:meth:`Client.enqueue` on a connection of its own (an application enqueuing often keeps a Client)."""
    check_payload(payload)
    async with Client(namespace, kubeconfig, context) as c:
        return await c.enqueue(handler, payload, **options)


async def get(
    name: str, *, namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> QueuedJob:
    async with Client(namespace, kubeconfig, context) as c:
        return await c.get(name)


async def wait(
    name: str,
    timeout: float,
    poll_interval: float = 1.0,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> QueuedJob:
    async with Client(namespace, kubeconfig, context) as c:
        return await c.wait(name, timeout, poll_interval)


async def list_jobs(
    *,
    namespace: str | None = None,
    queue: str | None = None,
    handler: str | None = None,
    phase: str | None = None,
    label_selector: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[QueuedJob]:
    async with Client(namespace, kubeconfig, context) as c:
        return await c.list_jobs(queue=queue, handler=handler, phase=phase, label_selector=label_selector)


async def retry(
    name: str, *, namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> None:
    async with Client(namespace, kubeconfig, context) as c:
        await c.retry(name)


async def cancel(
    name: str, *, namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> None:
    async with Client(namespace, kubeconfig, context) as c:
        await c.cancel(name)
