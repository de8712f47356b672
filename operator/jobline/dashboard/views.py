"""JSON shapes of the dashboard API, made from raw QueuedJob / JobQueue / JobSchedule objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jobline import names
from jobline.core import readmodel
from jobline.core.models import DEFAULT_QUEUE

LAST_ERROR_SUMMARY: Final = 300  # characters of lastError in list rows (the detail has it whole)


def job_summary(job: Mapping[str, Any], *, position: int | None, priority: int) -> dict[str, Any]:
    meta = job.get("metadata") or {}
    st = job.get("status") or {}
    error = st.get("lastError")
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "queue": readmodel.queue_of(job),
        "handler": readmodel.handler_of(job),
        "phase": readmodel.phase_of(job),
        "waitingReason": st.get("waitingReason"),
        "failureReason": readmodel.failure_reason(job),
        "priority": priority,
        "attempts": int(st.get("attempts") or 0),
        "progress": st.get("progress"),
        "position": position,
        "deadLettered": bool(st.get("deadLettered")),
        "suspended": bool((job.get("spec") or {}).get("suspend")),
        "createdAt": meta.get("creationTimestamp"),
        "startedAt": st.get("startedAt"),
        "completedAt": st.get("completedAt"),
        "nextAttemptAt": st.get("nextAttemptAt"),
        "lastError": error[:LAST_ERROR_SUMMARY] if isinstance(error, str) else None,
        "schedule": (meta.get("labels") or {}).get(names.LABEL_SCHEDULE),
    }


def job_detail(job: Mapping[str, Any], *, position: int | None, priority: int) -> dict[str, Any]:
    meta = job.get("metadata") or {}
    st = job.get("status") or {}
    spec = job.get("spec") or {}
    return {
        **job_summary(job, position=position, priority=priority),
        "lastError": st.get("lastError"),
        "uid": meta.get("uid"),
        "labels": meta.get("labels") or {},
        "annotations": {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k != "kubectl.kubernetes.io/last-applied-configuration"
        },
        "spec": spec,
        "result": st.get("result"),
        "attemptHistory": st.get("attemptHistory") or [],
        "olderAttempts": int(st.get("olderAttempts") or 0),
        "failedAttempts": int(st.get("failedAttempts") or 0),
        "podName": st.get("podName"),
        "duplicateOf": st.get("duplicateOf"),
        "conditions": st.get("conditions") or [],
    }


def schedule_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    template = (spec.get("jobTemplate") or {}).get("spec") or {}
    ready = next((c for c in st.get("conditions") or () if c.get("type") == "Ready"), None)
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "schedule": spec.get("schedule"),
        "timeZone": spec.get("timeZone") or "UTC",
        "enabled": not spec.get("suspend", False),
        "handler": template.get("handler"),
        "queue": template.get("queue") or DEFAULT_QUEUE,
        "concurrencyPolicy": spec.get("concurrencyPolicy") or "Allow",
        "lastScheduleTime": st.get("lastScheduleTime"),
        "nextScheduleTime": st.get("nextScheduleTime"),
        "lastSuccessfulTime": st.get("lastSuccessfulTime"),
        "runCount": int(st.get("runCount") or 0),
        "activeCount": int(st.get("activeCount") or len(st.get("active") or ())),
        "lastJob": st.get("lastJob"),
        "consecutiveFailures": int(st.get("consecutiveFailures") or 0),
        "missedRuns": int(st.get("missedRuns") or 0),
        "message": ready.get("message") if ready and ready.get("status") != "True" else None,
    }
