"""Client SDK for JobSchedules: create one from application code, trigger, suspend and resume it.

Usage::

    from jobline.schedule_client import CronPatterns, create_schedule, trigger_schedule
    create_schedule("daily-cleanup", CronPatterns.DAILY_3AM, "cleanup-old-jobs", time_zone="Europe/Berlin")
    trigger_schedule("daily-cleanup")   # one run now
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from jobline import names
from jobline.client import _api, _raise_mapped, current_namespace
from jobline.core import actions
from jobline.core.cron import ScheduleError, parse_schedule
from jobline.core.models import DEFAULT_QUEUE, JobSchedule

__all__ = ["CronPatterns", "create_schedule", "resume_schedule", "suspend_schedule", "trigger_schedule"]

PLURAL: Final = JobSchedule.PLURAL


class CronPatterns:
    """Named schedules, like the old system's: pass them as ``schedule``."""

    EVERY_MINUTE: Final = "* * * * *"
    EVERY_5_MINUTES: Final = "*/5 * * * *"
    EVERY_15_MINUTES: Final = "*/15 * * * *"
    EVERY_30_MINUTES: Final = "*/30 * * * *"
    HOURLY: Final = "@hourly"
    EVERY_6_HOURS: Final = "0 */6 * * *"
    EVERY_12_HOURS: Final = "0 */12 * * *"
    DAILY_MIDNIGHT: Final = "@daily"
    DAILY_3AM: Final = "0 3 * * *"
    WEEKDAYS_9AM: Final = "0 9 * * 1-5"
    WEEKLY: Final = "@weekly"
    MONTHLY: Final = "@monthly"


def build_schedule(
    name: str,
    schedule: str,
    handler: str,
    payload: Any = None,
    *,
    namespace: str,
    time_zone: str = "UTC",
    queue: str = DEFAULT_QUEUE,
    suspend: bool = False,
    job_spec: Mapping[str, Any] | None = None,
    **spec: Any,
) -> JobSchedule:
    """The validated JobSchedule `create_schedule` would create (no API call). ``spec`` takes the other
    JobSchedule fields in camelCase (``missedRunPolicy``, ``concurrencyPolicy``, ``jitterSeconds``...)."""
    try:
        parse_schedule(schedule, time_zone)  # the cron grammar, DST zone: the same check as the webhook
    except ScheduleError as err:
        raise ValueError(err.message) from None
    template = {"handler": handler, "payload": payload, "queue": queue, **dict(job_spec or {})}
    body = {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": schedule,
            "timeZone": time_zone,
            "suspend": suspend,
            "jobTemplate": {"spec": template},
            **spec,
        },
    }
    try:
        return JobSchedule.model_validate(body)
    except ValidationError as exc:
        raise ValueError(f"invalid JobSchedule: {exc}") from None


def create_schedule(
    name: str,
    schedule: str,
    handler: str,
    payload: Any = None,
    *,
    namespace: str | None = None,
    api: Any = None,
    **options: Any,
) -> str:
    """Create a JobSchedule that enqueues `handler` with `payload` on `schedule`; returns its name.
    Raises ValueError (invalid schedule or spec, refused by the apiserver), PermissionError, JoblineError."""
    from kubernetes.client.exceptions import ApiException

    ns = namespace or current_namespace()
    obj = build_schedule(name, schedule, handler, payload, namespace=ns, **options)
    try:
        created = _api(api).create_namespaced_custom_object(
            names.GROUP, names.VERSION, ns, PLURAL, obj.to_manifest()
        )
    except ApiException as exc:
        _raise_mapped(exc, verb="create", namespace=ns, name=name, kind=JobSchedule.KIND)
    return str(created["metadata"]["name"])


def _patch(name: str, patch: Mapping[str, Any], verb: str, namespace: str | None, api: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    ns = namespace or current_namespace()
    try:
        _api(api).patch_namespaced_custom_object(names.GROUP, names.VERSION, ns, PLURAL, name, dict(patch))
    except ApiException as exc:
        _raise_mapped(exc, verb=verb, namespace=ns, name=name, kind=JobSchedule.KIND)


def trigger_schedule(name: str, *, namespace: str | None = None, api: Any = None) -> str:
    """Run the schedule once now (a fresh ``jobline.dev/trigger`` value); returns the value."""
    value = actions.fresh_value(datetime.now(UTC))
    _patch(name, actions.trigger(value), "trigger", namespace, api)
    return value


def suspend_schedule(name: str, *, namespace: str | None = None, api: Any = None) -> None:
    """Stop creating scheduled runs (running jobs go on; missed instants follow missedRunPolicy)."""
    _patch(name, actions.suspend_schedule(), "suspend", namespace, api)


def resume_schedule(name: str, *, namespace: str | None = None, api: Any = None) -> None:
    _patch(name, actions.resume_schedule(), "resume", namespace, api)
