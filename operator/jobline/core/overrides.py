"""What a job may override: the queue's ``jobOverrides`` judged against a job's spec.

Creating a QueuedJob creates the pod it makes, so without this check ``create queuedjobs`` would be
``create pods`` with any image, ServiceAccount, volume or security context. The queue owner decides;
admission refuses at apply time with the field named, and the dispatcher judges again at each start (the
webhook fails open, and a queue may narrow its list after a job was created). Pure: one function, both
callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobline.core.models.jobqueue import DEFAULT_JOB_OVERRIDES

REASON = "OverrideNotAllowed"

_VALUE_FROM_REFS = ("secretKeyRef", "configMapKeyRef")


@dataclass(frozen=True)
class Refusal:
    """One field the job sets that its queue does not let it set."""

    field: str  # e.g. "spec.template.image"
    needs: str  # the jobOverrides entry that would allow it


def allowed(job_overrides: Iterable[str] | None) -> frozenset[str]:
    """The queue's list, or the default when it has none."""
    return frozenset(DEFAULT_JOB_OVERRIDES if job_overrides is None else job_overrides)


def refusals(
    template: Mapping[str, Any] | None,
    payload_from: Any,
    job_overrides: Iterable[str] | None,
    prefix: str = "spec",
) -> list[Refusal]:
    """Every field of the job's ``template`` (camelCase, as in the manifest) and ``payloadFrom`` the
    queue does not allow, in field order. An env entry that takes its value from a Secret or ConfigMap
    needs ``envFrom``: reading those is what envFrom allows. ``prefix``: where the job's spec is
    (``spec.jobTemplate.spec`` in a JobSchedule)."""
    ok = allowed(job_overrides)
    out: list[Refusal] = []
    for field, value in (template or {}).items():
        if value is None:
            continue
        if field not in ok:
            out.append(Refusal(f"{prefix}.template.{field}", field))
        elif field == "env" and "envFrom" not in ok:
            for i, var in enumerate(value or ()):
                source = (var or {}).get("valueFrom") or {}
                for ref in _VALUE_FROM_REFS:
                    if source.get(ref) is not None:
                        out.append(Refusal(f"{prefix}.template.env[{i}].valueFrom.{ref}", "envFrom"))
    if payload_from is not None and "payloadFrom" not in ok:
        out.append(Refusal(f"{prefix}.payloadFrom", "payloadFrom"))
    return out


def message(
    found: Sequence[Refusal], queue: str, job_overrides: Iterable[str] | None, queue_exists: bool = True
) -> str:
    """One sentence naming the first refused field, what the queue allows, and the rest."""
    first = found[0]
    listed = ", ".join(sorted(allowed(job_overrides))) or "nothing"
    default = " (the default)" if job_overrides is None else ""
    if queue_exists:
        text = (
            f"{first.field}: JobQueue {queue} does not let its jobs set {first.needs} "
            f"(its spec.jobOverrides allows {listed}{default})"
        )
    else:
        text = (
            f"{first.field}: there is no JobQueue {queue}, and a job without one may set only "
            f"{listed}; create the queue, with {first.needs} in its spec.jobOverrides"
        )
    if len(found) > 1:
        text += "; also " + ", ".join(r.field for r in found[1:])
    return text
