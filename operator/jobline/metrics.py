"""Prometheus metrics of the operator (``/metrics``), fed by one-line calls from the controller.

Every metric lives in :data:`REGISTRY` (not the global default one), so tests and embedders get
exactly Jobline's families plus the process collector. The calls below never raise: a metric must
not break a reconcile.

=================================================  ==========  ===========================================
name                                               type        labels
=================================================  ==========  ===========================================
``jobline_jobs_started_total``                     counter     namespace, queue, handler (one per attempt)
``jobline_jobs_finished_total``                    counter     namespace, queue, handler, outcome
``jobline_attempt_duration_seconds``               histogram   namespace, queue, handler, outcome
``jobline_queue_depth``                            gauge       namespace, queue, phase
``jobline_dispatch_latency_seconds``               histogram   namespace, queue
``jobline_schedule_runs_total``                    counter     namespace, schedule, trigger
``jobline_schedule_lateness_seconds``              histogram   namespace, schedule
``jobline_reconcile_errors_total``                 counter     stage
=================================================  ==========  ===========================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from jobline import names
from jobline.core import readmodel
from jobline.core.models import FINISHED_PHASES, PHASES
from jobline.core.timefmt import now as utcnow
from jobline.core.timefmt import parse

log = logging.getLogger("jobline.metrics")

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: noise for counters that start with the process
REGISTRY: Final = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

JOBS_STARTED: Final = Counter(
    "jobline_jobs_started",
    "Attempts started (worker pods created); a retried job counts once per attempt.",
    ["namespace", "queue", "handler"],
    registry=REGISTRY,
)
JOBS_FINISHED: Final = Counter(
    "jobline_jobs_finished",
    "Jobs that reached a final phase (outcome: succeeded, failed, cancelled, superseded).",
    ["namespace", "queue", "handler", "outcome"],
    registry=REGISTRY,
)
ATTEMPT_DURATION: Final = Histogram(
    "jobline_attempt_duration_seconds",
    "Duration of finished attempts (outcome: succeeded, failed, stopped = suspended or cancelled, "
    "disrupted = retried without using a retry).",
    ["namespace", "queue", "handler", "outcome"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
DISPATCH_LATENCY: Final = Histogram(
    "jobline_dispatch_latency_seconds",
    "From when a job could first run (creation, or runAt when later) to its first worker pod's creation.",
    ["namespace", "queue"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SCHEDULE_RUNS: Final = Counter(
    "jobline_schedule_runs",
    "QueuedJobs created by JobSchedules (trigger: scheduled, manual).",
    ["namespace", "schedule", "trigger"],
    registry=REGISTRY,
)
SCHEDULE_LATENESS: Final = Histogram(
    "jobline_schedule_lateness_seconds",
    "From a scheduled run's nominal time to the creation of its QueuedJob (manual runs not included).",
    ["namespace", "schedule"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RECONCILE_ERRORS: Final = Counter(
    "jobline_reconcile_errors",
    "Failed reconciles (stage: reconcile, start, schedule) that will be retried.",
    ["stage"],
    registry=REGISTRY,
)
for _stage in ("reconcile", "start", "schedule"):
    RECONCILE_ERRORS.labels(stage=_stage)  # every series exists from the start (0), for rate() and alerts
WATCH_RELISTS: Final = Counter(
    "jobline_watch_relists",
    "Watches whose resourceVersion expired (410 Gone) and were listed again; each is followed by a full "
    "list of the operator's objects.",
    ["resource"],
    registry=REGISTRY,
)


def _labels(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return readmodel.ns_name(obj)[0], readmodel.queue_of(obj), readmodel.handler_of(obj)


def _safely(fn: Callable[..., None]) -> Callable[..., None]:
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # a metric must never break the controller
            log.exception("recording metric %s failed", fn.__name__)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_safely
def attempt_started(obj: Mapping[str, Any], attempt: int, at: datetime) -> None:
    """An attempt's pod was created at `at` (the first attempt also feeds the dispatch latency)."""
    namespace, queue, handler = _labels(obj)
    JOBS_STARTED.labels(namespace, queue, handler).inc()
    if attempt != 1:
        return
    created = parse((obj.get("metadata") or {}).get("creationTimestamp"))
    run_at = parse((obj.get("spec") or {}).get("runAt"))
    ready = max(t for t in (created, run_at) if t is not None) if created or run_at else None
    if ready is not None:
        DISPATCH_LATENCY.labels(namespace, queue).observe(max(0.0, (at - ready).total_seconds()))


def _attempt_outcome(reason: object) -> str:
    if reason == "Completed":
        return "succeeded"
    if reason in ("Suspended", "Cancelled"):
        return "stopped"
    if reason in ("Disrupted", "Ignored", "WorkerLost"):  # retried without using a retry
        return "disrupted"
    return "failed"


@_safely
def job_transition(obj: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """The controller wrote `new` over `old` (statuses of `obj`): count finished attempts and jobs."""
    namespace, queue, handler = _labels(obj)
    before = {r.get("attempt"): r for r in old.get("attemptHistory") or ()}
    for record in new.get("attemptHistory") or ():
        if not record.get("finishedAt") or (before.get(record.get("attempt")) or {}).get("finishedAt"):
            continue
        started, finished = parse(record.get("startedAt")), parse(record.get("finishedAt"))
        if started and finished:
            ATTEMPT_DURATION.labels(
                namespace, queue, handler, _attempt_outcome(record.get("reason"))
            ).observe(max(0.0, (finished - started).total_seconds()))
    phase = new.get("phase")
    if phase in FINISHED_PHASES and old.get("phase") != phase:
        JOBS_FINISHED.labels(namespace, queue, handler, str(phase).lower()).inc()


@_safely
def job_seen(event: str | None, obj: Mapping[str, Any]) -> None:
    """A QueuedJob watch event: a job a JobSchedule created (``ADDED``) counts as a schedule run."""
    if event != "ADDED":
        return
    meta = obj.get("metadata") or {}
    schedule = (meta.get("labels") or {}).get(names.LABEL_SCHEDULE)
    if not schedule:
        return
    annotations = meta.get("annotations") or {}
    namespace = str(meta.get("namespace", ""))
    if names.ANNOTATION_MANUAL_TRIGGER in annotations:
        SCHEDULE_RUNS.labels(namespace, schedule, "manual").inc()
        return
    SCHEDULE_RUNS.labels(namespace, schedule, "scheduled").inc()
    nominal = parse(annotations.get(names.ANNOTATION_SCHEDULED_TIME))
    created = parse(meta.get("creationTimestamp"))
    if nominal and created:
        SCHEDULE_LATENESS.labels(namespace, schedule).observe(max(0.0, (created - nominal).total_seconds()))


@_safely
def reconcile_error(stage: str) -> None:
    """A reconcile (``reconcile``), an attempt start (``start``) or a schedule step (``schedule``) failed
    and will be retried."""
    RECONCILE_ERRORS.labels(stage=stage).inc()


@_safely
def watch_relisted(resource: str) -> None:
    """kopf listed ``resource`` again after its watch expired; the loop lists everything again."""
    WATCH_RELISTS.labels(resource=resource).inc()


# --- queue depth: read from the controller's store at scrape time --------------------------------


JobSource = Callable[[], Iterable[Mapping[str, Any]] | None]


class QueueDepthCollector(Collector):
    """``jobline_queue_depth{namespace,queue,phase}``: jobs per phase, counted when scraped.

    `source` returns the jobs the operator holds (None before the controller exists); they are
    counted by :func:`jobline.core.readmodel.queue_summaries`, as the dashboard and the JobQueue
    status count them. Every phase of a queue with jobs has a series, 0 included.
    """

    def __init__(self, source: JobSource) -> None:
        self.source = source

    def describe(self) -> Iterable[Metric]:
        return [
            GaugeMetricFamily(
                "jobline_queue_depth",
                "QueuedJobs per queue and phase.",
                labels=["namespace", "queue", "phase"],
            )
        ]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "jobline_queue_depth", "QueuedJobs per queue and phase.", labels=["namespace", "queue", "phase"]
        )
        for (namespace, queue), summary in readmodel.queue_summaries(
            list(self.source() or ()), utcnow()
        ).items():
            for phase in PHASES:
                family.add_metric([namespace, queue, phase], summary.counts[phase.lower()])
        return [family]


LEADER: Final = Gauge(
    "jobline_leader",
    "1 while this replica leads (its loops run; always 1 without peering), 0 while it is a standby.",
    registry=REGISTRY,
)


def set_leader(active: bool) -> None:
    LEADER.set(1 if active else 0)


_depth: QueueDepthCollector | None = None


def watch_jobs(source: JobSource) -> None:
    """Count queue depth from `source` (replaces an earlier source)."""
    global _depth
    if _depth is not None:
        _depth.source = source
        return
    _depth = QueueDepthCollector(source)
    REGISTRY.register(_depth)


def exposition() -> bytes:
    """The text exposition of :data:`REGISTRY` (what ``/metrics`` returns)."""
    return generate_latest(REGISTRY)


__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "QueueDepthCollector",
    "attempt_started",
    "exposition",
    "job_seen",
    "job_transition",
    "reconcile_error",
    "set_leader",
    "watch_jobs",
]
