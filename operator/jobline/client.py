"""Client SDK: enqueue QueuedJobs from application code, read them back, wait for them to finish.

Usage::

    import jobline
    name = jobline.enqueue("send-email", {"to": "a@example.com", "subject": "Hi", "body": "..."})
    job = jobline.client.wait(name, timeout=60)
    print(job.status.phase, job.status.result)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from pydantic import ValidationError

from jobline import kubeconfig, names
from jobline.core.models import (
    DEFAULT_QUEUE,
    FINISHED_PHASES,
    MAX_PAYLOAD_BYTES,
    QueuedJob,
    QueuedJobSpec,
    RetryPolicy,
    WorkerTemplate,
    payload_size,
)

__all__ = [
    "JobAlreadyExists",
    "JobNotFound",
    "JoblineError",
    "build",
    "cancel",
    "check_payload",
    "current_namespace",
    "custom_objects_api",
    "enqueue",
    "generate_name_prefix",
    "get",
    "list_jobs",
    "retry",
    "wait",
]

PLURAL: Final = QueuedJob.PLURAL
MAX_GENERATE_NAME_PREFIX: Final = 58  # the apiserver appends 5 random characters

# Indirections so tests can drive `wait` without real time passing.
_monotonic: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep


class JoblineError(Exception):
    """A Jobline API call failed."""


class JobNotFound(JoblineError, LookupError):
    """The QueuedJob (or the JobSchedule, for the schedule SDK) does not exist."""

    def __init__(self, name: str, namespace: str, kind: str = "QueuedJob") -> None:
        super().__init__(f"{kind} {namespace}/{name} not found")
        self.name = name
        self.namespace = namespace


class JobAlreadyExists(JoblineError):
    """A QueuedJob of that name already exists."""


# --- connection ------------------------------------------------------------------------------


def custom_objects_api() -> Any:
    """A `CustomObjectsApi` for the cluster :mod:`jobline.kubeconfig` finds (global config left alone)."""
    import kubernetes

    return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(kubeconfig.load()))


def current_namespace() -> str:
    """The namespace of the source :mod:`jobline.kubeconfig` chooses (context's or pod's), else ``default``."""
    return kubeconfig.current_namespace()


def _api(api: Any) -> Any:
    return custom_objects_api() if api is None else api


def server_message(exc: Any) -> str:
    """The apiserver's own message of an ApiException (its Status body), else its reason."""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str) and message:
            return message
    return str(getattr(exc, "reason", None) or exc)


def _raise_mapped(
    exc: Any, *, verb: str, namespace: str, name: str | None = None, kind: str = "QueuedJob"
) -> NoReturn:
    """Turn an ApiException into the matching Python error (re-raise it when none fits)."""
    status = getattr(exc, "status", None)
    message = server_message(exc)
    if status == 404:
        if name is not None:
            raise JobNotFound(name, namespace, kind) from exc
        raise JoblineError(
            f"cannot {verb} {kind}s in namespace {namespace!r}: not found "
            f"(is the Jobline CRD installed and does the namespace exist?): {message}"
        ) from exc
    if status in (401, 403):
        raise PermissionError(f"not allowed to {verb} {kind}s in namespace {namespace!r}: {message}") from exc
    if status == 409:
        raise JobAlreadyExists(f"{kind} {namespace}/{name} already exists: {message}") from exc
    if status in (400, 422):
        raise ValueError(f"the apiserver refused the {kind}: {message}") from exc
    raise exc


# --- enqueue ---------------------------------------------------------------------------------


def _utc(run_at: datetime | str) -> datetime:
    if isinstance(run_at, str):
        try:
            run_at = datetime.fromisoformat(run_at)
        except ValueError:
            raise ValueError(f"run_at {run_at!r} is not an RFC 3339 time") from None
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise ValueError("run_at must carry a time zone (e.g. datetime.now(UTC) or '...Z')")
    return run_at.astimezone(UTC)


def generate_name_prefix(handler: str) -> str:
    """``<handler>-`` made fit for a generateName (lowercase, [-a-z0-9.], at most 58 characters)."""
    base = re.sub(r"[^a-z0-9.-]+", "-", handler.lower()).strip("-.")[: MAX_GENERATE_NAME_PREFIX - 1]
    return f"{base.rstrip('-.') or 'job'}-"


def check_payload(payload: Any) -> None:
    """Raise ValueError unless `payload` is JSON of at most MAX_PAYLOAD_BYTES (compact UTF-8)."""
    try:
        size = payload_size(payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the payload is not JSON-serializable: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"the payload is {size} bytes as compact JSON, more than the {MAX_PAYLOAD_BYTES} a QueuedJob "
            "accepts: store large data elsewhere (a bucket, a database) and pass a reference"
        )


def build(
    handler: str,
    payload: Any = None,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int | None = None,
    run_at: datetime | str | None = None,
    unique_key: str | None = None,
    retry: RetryPolicy | Mapping[str, Any] | None = None,
    namespace: str,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    timeout_seconds: int | None = None,
    depends_on: Sequence[str] | None = None,
    template: WorkerTemplate | Mapping[str, Any] | None = None,
    concurrency_key: str | None = None,
    dependency_timeout_seconds: int | None = None,
    ttl_seconds_after_finished: int | None = None,
    suspend: bool = False,
    annotations: Mapping[str, str] | None = None,
) -> QueuedJob:
    """The validated QueuedJob `enqueue` would create (no API call)."""
    check_payload(payload)
    metadata: dict[str, Any] = {"namespace": namespace}
    if name is not None:
        metadata["name"] = name
    else:
        metadata["generateName"] = generate_name_prefix(handler)
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    try:
        spec = QueuedJobSpec(
            queue=queue,
            handler=handler,
            payload=payload,
            priority=priority,
            run_at=None if run_at is None else _utc(run_at),
            unique_key=unique_key,
            retry=retry if isinstance(retry, RetryPolicy | None) else RetryPolicy.model_validate(dict(retry)),
            timeout_seconds=timeout_seconds,
            depends_on=None if depends_on is None else list(depends_on),
            concurrency_key=concurrency_key,
            dependency_timeout_seconds=dependency_timeout_seconds,
            ttl_seconds_after_finished=ttl_seconds_after_finished,
            suspend=suspend,
            template=(
                template
                if isinstance(template, WorkerTemplate | None)
                else WorkerTemplate.model_validate(dict(template))
            ),
        )
        return QueuedJob(metadata=metadata, spec=spec)
    except ValidationError as exc:
        raise ValueError(f"invalid QueuedJob: {exc}") from None


def enqueue(
    handler: str,
    payload: Any = None,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int | None = None,
    run_at: datetime | str | None = None,
    unique_key: str | None = None,
    retry: RetryPolicy | Mapping[str, Any] | None = None,
    namespace: str | None = None,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    timeout_seconds: int | None = None,
    depends_on: Sequence[str] | None = None,
    template: WorkerTemplate | Mapping[str, Any] | None = None,
    concurrency_key: str | None = None,
    dependency_timeout_seconds: int | None = None,
    ttl_seconds_after_finished: int | None = None,
    suspend: bool = False,
    annotations: Mapping[str, str] | None = None,
    api: Any = None,
) -> str:
    """Create a QueuedJob running `handler` with `payload`; returns its name.

    Raises ValueError (invalid job, payload over MAX_PAYLOAD_BYTES, refused by the apiserver),
    PermissionError, JobAlreadyExists or JoblineError.
    """
    check_payload(payload)  # before anything touches the kubeconfig or the network
    ns = namespace or current_namespace()
    job = build(
        handler,
        payload,
        queue=queue,
        priority=priority,
        run_at=run_at,
        unique_key=unique_key,
        retry=retry,
        namespace=ns,
        name=name,
        labels=labels,
        timeout_seconds=timeout_seconds,
        depends_on=depends_on,
        template=template,
        concurrency_key=concurrency_key,
        dependency_timeout_seconds=dependency_timeout_seconds,
        ttl_seconds_after_finished=ttl_seconds_after_finished,
        suspend=suspend,
        annotations=annotations,
    )
    from kubernetes.client.exceptions import ApiException

    custom = _api(api)
    try:
        created = custom.create_namespaced_custom_object(
            names.GROUP, names.VERSION, ns, PLURAL, job.to_manifest()
        )
    except ApiException as exc:
        _raise_mapped(exc, verb="create", namespace=ns, name=None if exc.status == 404 else name)
    return str(created["metadata"]["name"])


# --- read ------------------------------------------------------------------------------------


def get(name: str, *, namespace: str | None = None, api: Any = None) -> QueuedJob:
    """The QueuedJob `name`, status parsed; raises JobNotFound or PermissionError."""
    from kubernetes.client.exceptions import ApiException

    ns = namespace or current_namespace()
    custom = _api(api)
    try:
        obj = custom.get_namespaced_custom_object(names.GROUP, names.VERSION, ns, PLURAL, name)
    except ApiException as exc:
        _raise_mapped(exc, verb="read", namespace=ns, name=name)
    return QueuedJob.from_object(obj)


def wait(
    name: str, *, timeout: float, namespace: str | None = None, api: Any = None, poll_interval: float = 1.0
) -> QueuedJob:
    """Poll the QueuedJob until it is finished (Succeeded, Failed, Cancelled or Superseded); raises
    TimeoutError after `timeout` seconds."""
    ns = namespace or current_namespace()
    custom = _api(api)
    deadline = _monotonic() + timeout
    while True:
        job = get(name, namespace=ns, api=custom)
        phase = job.status.phase if job.status else None
        if phase in FINISHED_PHASES:
            return job
        remaining = deadline - _monotonic()
        if remaining <= 0:
            raise TimeoutError(f"QueuedJob {ns}/{name} still {phase or 'without a phase'} after {timeout}s")
        _sleep(min(poll_interval, remaining))


def list_jobs(
    *,
    namespace: str | None = None,
    queue: str | None = None,
    handler: str | None = None,
    phase: str | None = None,
    label_selector: str | None = None,
    api: Any = None,
) -> list[QueuedJob]:
    """The namespace's QueuedJobs, filtered on the server: ``queue`` and ``handler`` through the CRD's
    selectable fields, ``phase`` through ``status.phase`` (a selectable field too), plus any ``label_selector``."""
    from kubernetes.client.exceptions import ApiException

    ns = namespace or current_namespace()
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
    try:
        listed = _api(api).list_namespaced_custom_object(names.GROUP, names.VERSION, ns, PLURAL, **kwargs)
    except ApiException as exc:
        _raise_mapped(exc, verb="list", namespace=ns)
    return [QueuedJob.from_object(obj) for obj in listed.get("items", [])]


def retry(name: str, *, namespace: str | None = None, api: Any = None) -> None:
    """Run a finished job again with a fresh retry budget (the ``jobline.dev/requeue`` annotation, as
    ``kubectl jobline retry`` and the dashboard do). Raises ValueError if it is not finished."""
    from kubernetes.client.exceptions import ApiException

    from jobline.core import actions

    ns = namespace or current_namespace()
    custom = _api(api)
    job = get(name, namespace=ns, api=custom)
    refusal = actions.retry_refusal(job.to_manifest())
    if refusal:
        raise ValueError(f"QueuedJob {ns}/{name} {refusal}")
    try:
        custom.patch_namespaced_custom_object(
            names.GROUP,
            names.VERSION,
            ns,
            PLURAL,
            name,
            actions.requeue(actions.fresh_value(datetime.now(UTC)), job.to_manifest()),
        )
    except ApiException as exc:
        _raise_mapped(exc, verb="retry", namespace=ns, name=name)


def cancel(name: str, *, namespace: str | None = None, api: Any = None) -> None:
    """Cancel an unfinished job (``spec.cancel: true``, as ``kubectl jobline cancel`` and the dashboard
    do): a running attempt gets SIGTERM, then its grace period; the job ends Cancelled, its history kept.
    Raises ValueError if it is already finished, JobNotFound, PermissionError."""
    from kubernetes.client.exceptions import ApiException

    from jobline.core import actions

    ns = namespace or current_namespace()
    custom = _api(api)
    refusal = actions.cancel_refusal(get(name, namespace=ns, api=custom).to_manifest())
    if refusal:
        raise ValueError(f"QueuedJob {ns}/{name} {refusal}")
    try:
        custom.patch_namespaced_custom_object(names.GROUP, names.VERSION, ns, PLURAL, name, actions.cancel())
    except ApiException as exc:
        _raise_mapped(exc, verb="cancel", namespace=ns, name=name)
