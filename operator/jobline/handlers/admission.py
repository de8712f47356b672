"""Admission checks the CRD schema cannot express: the payload cap, uniqueKey, what a job may override
(its queue's jobOverrides), and schedules.

The webhook's failurePolicy is Ignore, so an operator that is down never blocks job creation;
the controllers enforce every rule again (PayloadTooLarge, Duplicate; a schedule's Ready=False
InvalidSchedule/InvalidTimeZone) for anything that slips by.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf

from jobline import names, runtime
from jobline.core import overrides
from jobline.core.cron import ScheduleError, parse_schedule
from jobline.core.models import DEFAULT_QUEUE, FINISHED_PHASES, MAX_PAYLOAD_BYTES, payload_size
from jobline.core.models.queuedjob import IMMUTABLE_MESSAGE, PAYLOAD_EXCLUSIVE_MESSAGE
from jobline.kube import KubeError, collection_path
from jobline.webhook import write_pair

log = logging.getLogger("jobline.admission")


@kopf.on.startup()
async def configure_admission(settings: kopf.OperatorSettings, memo: object, **_: Any) -> None:
    own = runtime.of(memo).settings
    if not own.webhook_port:
        return
    addr, host, service = own.webhook_addr, own.advertised_webhook_host, own.webhook_service
    certdir = Path(own.webhook_cert_dir) if own.webhook_cert_dir else None
    if certdir is not None and (certdir / "webhook.crt").exists() and (certdir / "webhook.key").exists():
        # A certificate shared by all replicas (the chart's Secret), signed by ca.crt.
        certfile, keyfile = certdir / "webhook.crt", certdir / "webhook.key"
        ca = certdir / "ca.crt"
        cadata = (ca if ca.exists() else certfile).read_bytes()
    else:
        names_ = [host, addr, "localhost"]
        if service:
            ns, _sep, svc = service.partition("/")
            names_ += [f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
        certfile, keyfile, cadata = write_pair(Path(tempfile.mkdtemp(prefix="jobline-webhook-")), names_)
    cls = ServiceWebhookServer if service else kopf.WebhookServer
    server = cls(
        addr=addr,
        port=own.webhook_port,
        host=host,
        certfile=str(certfile),
        pkeyfile=str(keyfile),
        cadata=cadata,
    )
    if isinstance(server, ServiceWebhookServer) and service:
        server.service = service
    settings.admission.server = server
    # None: kopf leaves the configuration alone (the chart owns it, with the CA of its certificate).
    settings.admission.managed = own.webhook_configuration or None


class ServiceWebhookServer(kopf.WebhookServer):
    """In a cluster the apiserver reaches the webhook through its Service, not a URL it may not resolve."""

    service: str = ""

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        ns, _, name = self.service.partition("/")
        async for config in super().__call__(fn):
            yield {
                "caBundle": config.get("caBundle"),
                # kopf appends "/<handler id>": the base path must not end in "/" ("//queuedjob"
                # is refused by the apiserver: "segment[0] may not be empty").
                "service": {
                    "namespace": ns,
                    "name": name,
                    "port": self.port,
                    "path": (self.path or "").rstrip("/"),
                },
            }


def register() -> None:
    """Serve the webhook (only when a port is set: kopf refuses validators without a server)."""
    kopf.on.validate(
        names.GROUP,
        names.VERSION,
        names.PLURAL_QUEUEDJOBS,
        id="queuedjob",
        operations=["CREATE", "UPDATE"],
        ignore_failures=True,
    )(validate_queuedjob)
    kopf.on.validate(
        names.GROUP,
        names.VERSION,
        names.PLURAL_JOBSCHEDULES,
        id="jobschedule",
        operations=["CREATE", "UPDATE"],
        ignore_failures=True,
    )(validate_jobschedule)


async def validate_jobschedule(spec: kopf.Spec, namespace: str | None, memo: object, **_: Any) -> None:
    """Refuse at apply time what the schema's pattern cannot tell: reversed ranges, a day that never
    comes (``0 0 30 2 *``), an unknown time zone (the same check as the schedule loop's), and a job
    template that sets what its queue does not let jobs set (each run's job would be refused)."""
    job = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if namespace is not None and isinstance(job, dict):
        await _check_overrides(runtime.of(memo), namespace, job, "spec.jobTemplate.spec")
    schedule = spec.get("schedule")
    if not isinstance(schedule, str):
        return  # the schema refuses it
    time_zone = spec.get("timeZone")
    try:
        parse_schedule(schedule, time_zone if isinstance(time_zone, str) else None)
    except ScheduleError as err:
        field = "spec.timeZone" if err.reason == "InvalidTimeZone" else "spec.schedule"
        raise kopf.AdmissionError(f"{field}: {err.message}", code=422) from err


async def validate_queuedjob(
    spec: kopf.Spec, namespace: str | None, name: str, memo: object, **kwargs: Any
) -> None:
    operation = kwargs.get("operation")
    old = kwargs.get("old")
    if operation == "UPDATE" and old is not None:
        started = int((old.get("status") or {}).get("attempts") or 0) > 0
        if started and (old.get("spec") or {}).get("payload") != spec.get("payload"):
            raise kopf.AdmissionError(IMMUTABLE_MESSAGE.format(field="spec.payload"), code=422)
    size = payload_size(spec.get("payload"))
    if size > MAX_PAYLOAD_BYTES:
        raise kopf.AdmissionError(
            f"spec.payload: {size} bytes of JSON, more than the {MAX_PAYLOAD_BYTES} allowed; "
            "store large inputs elsewhere and pass a reference",
            code=422,
        )
    if spec.get("payloadFrom") is not None and spec.get("payload") is not None:
        raise kopf.AdmissionError(PAYLOAD_EXCLUSIVE_MESSAGE, code=422)
    if namespace is None:
        return
    rt = runtime.of(memo)
    queue = str(spec.get("queue") or DEFAULT_QUEUE)
    before = (old or {}).get("spec") or {} if operation == "UPDATE" else None
    if before is None or any(before.get(f) != spec.get(f) for f in ("template", "payloadFrom", "queue")):
        # Judged when what a job sets changes, so a queue that narrows its list later does not block
        # a cancel or a suspend of its admitted jobs (the dispatcher refuses to start those).
        await _check_overrides(rt, namespace, spec, "spec")
    unique = spec.get("uniqueKey")
    if operation != "CREATE" or not unique:
        return
    looked_up = await _unique_twins(rt, namespace, queue, str(unique))
    if looked_up is None:
        return  # nothing to ask: the controller's Duplicate backstop decides
    debounced, twins = looked_up
    if debounced:
        return  # the queue's debounce: a newer job replaces the unstarted one
    for twin, phase in sorted(twins):
        if twin != name and phase not in FINISHED_PHASES:
            raise kopf.AdmissionError(
                f"spec.uniqueKey: {unique!r} is taken in queue {queue} by the unfinished job {twin}", code=409
            )


async def _check_overrides(rt: runtime.Runtime, namespace: str, job: Any, prefix: str) -> None:
    """Refuse (403, the field named) a job spec that sets what its queue's jobOverrides does not allow.
    A queue that does not exist (yet) is judged when the job starts: its list is not known here."""
    template, payload_from = job.get("template"), job.get("payloadFrom")
    if not (template or payload_from is not None) or not isinstance(template, dict | None):
        return  # nothing to judge, or a shape the schema refuses
    queue = str(job.get("queue") or DEFAULT_QUEUE)
    known, qspec = await _queue(rt, namespace, queue)
    if known and qspec is not None:
        if template and ((qspec.get("workers") or {}).get("mode")) == "Pool":
            raise kopf.AdmissionError(
                f"{prefix}.template: queue {queue} runs its jobs on a pool of worker pods "
                "(spec.workers.mode Pool), made from the queue's template: a job cannot set its own",
                code=422,
            )
        job_overrides = qspec.get("jobOverrides")
        refused = overrides.refusals(template, payload_from, job_overrides, prefix)
        if refused:
            raise kopf.AdmissionError(overrides.message(refused, queue, job_overrides), code=403)


def escape_field_value(value: str) -> str:
    """A field selector value as the apiserver parses it (``\\``, ``\\,`` and ``\\=`` escaped)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


async def _unique_twins(
    rt: runtime.Runtime, namespace: str, queue: str, unique: str
) -> tuple[bool, list[tuple[str, str | None]]] | None:
    """(the queue debounces, [(job, phase)] with this uniqueKey in the queue), from current state: the
    active replica's store, which its watches keep current; on a standby, whose store froze when it
    stepped down, or before the first list, from the apiserver (``spec.uniqueKey`` is a selectable
    field). None when neither can answer."""
    controller = rt.controller
    if controller is not None and controller.active and controller.synced:
        qspec_ = controller.store.queue_spec(namespace, queue)
        found = []
        for twin in controller.store.by_unique.get((namespace, queue, unique), ()):
            obj = controller.store.jobs.get((namespace, twin))
            if obj is not None:
                found.append((twin, (obj.get("status") or {}).get("phase")))
        return qspec_ is not None and qspec_.debounce is not None, found
    if rt.kube is None:
        return None
    known, qspec = await _queue(rt, namespace, queue)
    if not known:
        return None
    listed = await rt.kube.request(
        "GET",
        collection_path(names.PLURAL_QUEUEDJOBS, namespace),
        query={"fieldSelector": f"spec.uniqueKey={escape_field_value(unique)}"},
    )
    found = [
        (str(obj["metadata"]["name"]), (obj.get("status") or {}).get("phase"))
        for obj in (listed or {}).get("items", ())
        if ((obj.get("spec") or {}).get("queue") or DEFAULT_QUEUE) == queue
    ]
    return bool((qspec or {}).get("debounce")), found


async def _queue(rt: runtime.Runtime, namespace: str, queue: str) -> tuple[bool, dict[str, Any] | None]:
    """(known, the JobQueue's spec as applied, or None when there is no such queue), from current state:
    the active replica's store; on a standby or before the first list, the apiserver. known is False
    when neither can answer (the controller's backstops decide then)."""
    controller = rt.controller
    if controller is not None and controller.active and controller.synced:
        obj = controller.store.queues.get((namespace, queue))
        return True, (None if obj is None else dict(obj.get("spec") or {}))
    if rt.kube is None:
        return False, None
    try:
        jq = await rt.kube.get_object(names.PLURAL_JOBQUEUES, namespace, queue)
    except KubeError as exc:
        if exc.not_found:
            return True, None
        log.warning("admission: cannot read JobQueue %s/%s: %s", namespace, queue, exc.message)
        return False, None
    return True, dict((jq or {}).get("spec") or {})
