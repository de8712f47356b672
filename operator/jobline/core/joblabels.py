"""The labels the operator keeps on a QueuedJob, written once, when the job finishes.

``jobline.dev/phase`` (with ``/queue`` and ``/handler``) on a finished job lets ``kubectl get qj -l
jobline.dev/phase=Failed`` list the dead letters, and label-based tooling (retention scripts, Argo,
kube-state-metrics) select finished jobs. A label cannot be written through the status subresource, so
keeping it on every phase cost two more writes (and two more watch events) per job; live phases are
selected through the CRD's selectable field ``status.phase`` instead (``--field-selector``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobline import names
from jobline.core.models import DEFAULT_QUEUE, FINISHED_PHASES


def label_patch(
    labels: Mapping[str, str], spec: Mapping[str, Any], phase: str | None, *, pooled: bool = False
) -> dict[str, str | None]:
    """The merge patch of ``metadata.labels`` a job needs ({} when none): on a finished job the phase,
    queue and handler labels; on an unfinished one no phase label (a retried dead letter loses its
    ``Failed``; ``None`` deletes the label in a merge patch).

    ``pooled``: the job's last attempt ran on a pool worker. A pool exists to make a job cost a few
    writes, and the label patch is the dearest of them, so a pooled job that **succeeded** is not labelled
    (``--field-selector status.phase=Succeeded`` selects it); a pooled job that failed, was cancelled or
    superseded is, as in PodPerAttempt mode: those are the ones people and tools look for."""
    if pooled and phase == "Succeeded":
        return {names.LABEL_PHASE: None} if names.LABEL_PHASE in labels else {}
    if phase in FINISHED_PHASES:
        want: dict[str, str | None] = {
            names.LABEL_PHASE: phase,
            names.LABEL_QUEUE: spec.get("queue") or DEFAULT_QUEUE,
            names.LABEL_HANDLER: spec.get("handler"),
        }
        return {k: v for k, v in want.items() if v and labels.get(k) != v}
    return {names.LABEL_PHASE: None} if names.LABEL_PHASE in labels else {}
