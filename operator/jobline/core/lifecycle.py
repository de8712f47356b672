"""The QueuedJob state machine: from a job, its attempt pods and the world, the job's next status.

Pure: no Kubernetes client, no clock (``now`` is an input). The adapter applies the outcome —
a status patch, events, pods to delete, the job to delete — and asks again at ``wake_at``.

Phases: Pending (ready, waiting for a slot), Waiting (Delayed by runAt, Blocked by dependsOn,
BackingOff between attempts, Debounced), Running, Suspended; final: Succeeded, Failed (dead-lettered
when it ran out of retries or failed permanently), Cancelled (spec.cancel), Superseded (a newer job
with its uniqueKey replaced it under the queue's debounce).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobline import names

from . import failurepolicy
from .backoff import backoff_seconds
from .flowcontrol import REASON_CONCURRENCY, REASON_KEY_LIMIT, REASON_RATE_LIMITED
from .models import (
    FINISHED_PHASES,
    MAX_ATTEMPT_HISTORY,
    MAX_PAYLOAD_BYTES,
    QueuedJobSpec,
    ResolvedRetry,
    payload_size,
)
from .models.queuedjob import DEFAULT_DEPENDENCY_TIMEOUT_SECONDS
from .podrefusal import TRANSIENT_REASONS
from .timefmt import fmt, parse

DISPATCH_REASONS = frozenset({REASON_CONCURRENCY, REASON_KEY_LIMIT, REASON_RATE_LIMITED})

TIMEOUT_GRACE_SECONDS = 30  # after timeoutSeconds, the operator stops a pod its node did not stop


@dataclass(frozen=True)
class PodView:
    """What the state machine needs to know of one attempt pod."""

    name: str
    attempt: int
    phase: str
    deleting: bool = False
    deletion_deadline: datetime | None = None  # metadata.deletionTimestamp: the end of its grace period
    created: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    pod_reason: str | None = None
    pod_message: str | None = None  # the pod's own status.message (an eviction says why)
    waiting_reason: str | None = None  # the worker container's state.waiting (kubelet / runtime)
    waiting_message: str | None = None
    disruption: str | None = None  # the DisruptionTarget condition's reason (eviction, preemption, ...)
    conditions: frozenset[tuple[str, str]] = frozenset()  # the pod's conditions, (type, status)

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def pod_view(pod: Mapping[str, Any]) -> PodView | None:
    """Read an attempt pod; None when it is not one of ours."""
    meta = pod.get("metadata", {})
    try:
        attempt = int(meta.get("labels", {}).get(names.LABEL_ATTEMPT, ""))
    except ValueError:
        return None
    status = pod.get("status", {})
    disruption = next(
        (
            str(c.get("reason") or "DisruptionTarget")
            for c in status.get("conditions") or ()
            if c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        ),
        "Evicted" if status.get("reason") == "Evicted" else None,
    )
    term: Mapping[str, Any] = {}
    waiting: Mapping[str, Any] = {}
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == names.WORKER_CONTAINER:
            term = (cs.get("state") or {}).get("terminated") or {}
            waiting = (cs.get("state") or {}).get("waiting") or {}
    return PodView(
        name=meta.get("name", ""),
        attempt=attempt,
        phase=status.get("phase") or "Pending",
        deleting=bool(meta.get("deletionTimestamp")),
        deletion_deadline=parse(meta.get("deletionTimestamp")),
        created=parse(meta.get("creationTimestamp")),
        started=parse(status.get("startTime")),
        finished=parse(term.get("finishedAt")),
        exit_code=term.get("exitCode"),
        reason=term.get("reason"),
        message=term.get("message"),
        pod_reason=status.get("reason"),
        pod_message=status.get("message"),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        disruption=disruption,
        conditions=frozenset(
            (str(c.get("type")), str(c.get("status")))
            for c in status.get("conditions") or ()
            if c.get("type")
        ),
    )


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


# Waiting reasons of a container that will not start by waiting (image pull errors that may clear by
# themselves, ErrImagePull/ImagePullBackOff/CreateContainerConfigError, are left to timeoutSeconds).
CANNOT_START = frozenset(
    {"ErrImageNeverPull", "InvalidImageName", "CreateContainerError", "RunContainerError"}
)


@dataclass(frozen=True)
class World:
    """Everything outside the job that decides its fate."""

    now: datetime
    retry: ResolvedRetry
    timeout_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    queue_paused: bool = False
    deps: Mapping[str, str | None] = field(default_factory=dict)  # name -> phase (None: not found)
    duplicate_of: str | None = None
    cycle: tuple[str, ...] | None = None  # the dependsOn cycle the job is on, start to start
    created: datetime | None = None  # the job's creationTimestamp (a missing dependency's deadline)
    spec_error: str | None = None  # the spec could not be read
    seed: str = ""  # spreads the backoff jitter per job (its uid)
    superseded_by: str | None = None  # the queue's debounce: a newer unstarted twin replaces this job
    debounce_until: datetime | None = None  # the debounce's quiet spell ends
    debounce_behind: str | None = None  # a running twin of the uniqueKey this job waits for
    revision: int | None = None  # recorded as status.enqueueRevision (orders a debounce burst)


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    delete_pods: list[str] = field(default_factory=list)
    delete_job: bool = False
    runnable: bool = False
    wake_at: datetime | None = None

    @property
    def phase(self) -> str | None:
        phase = self.status.get("phase")
        return phase if isinstance(phase, str) else None


# ------------------------------------------------------------------------------------ helpers
def set_condition(
    status: dict[str, Any],
    type_: str,
    value: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> None:
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    text = "True" if value else "False"
    for cond in conditions:
        if cond["type"] == type_:
            if cond["status"] != text:
                cond["lastTransitionTime"] = fmt(now)
            cond.update(status=text, reason=reason, message=message[:32768])
            if generation is not None:
                cond["observedGeneration"] = generation
            return
    new: dict[str, Any] = {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": fmt(now),
    }
    if generation is not None:
        new["observedGeneration"] = generation
    conditions.append(new)


def _history_entry(status: dict[str, Any], attempt: int) -> dict[str, Any] | None:
    for rec in status.get("attemptHistory", []):
        if rec.get("attempt") == attempt:
            entry: dict[str, Any] = rec  # the live entry: callers update it in place
            return entry
    return None


def _append_history(status: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    history: list[dict[str, Any]] = status.setdefault("attemptHistory", [])
    history.append(record)
    overflow = len(history) - MAX_ATTEMPT_HISTORY
    if overflow > 0:
        del history[:overflow]
        status["olderAttempts"] = int(status.get("olderAttempts", 0)) + overflow
    return record


def _result(message: str | None) -> Any:
    if not message:
        return None
    try:
        return json.loads(message)
    except ValueError:
        return message


def start_attempt(
    status: Mapping[str, Any] | None, *, attempt: int, pod: str, now: datetime, generation: int | None
) -> tuple[dict[str, Any], Event]:
    """The status after the dispatcher created the pod of ``attempt``."""
    st = copy.deepcopy(dict(status or {}))
    st.update(
        phase="Running", attempts=attempt, podName=pod, waitingReason=None, nextAttemptAt=None, progress=None
    )
    st.setdefault("startedAt", fmt(now))
    st["startedAt"] = st["startedAt"] or fmt(now)
    if _history_entry(st, attempt) is None:
        _append_history(st, {"attempt": attempt, "pod": pod, "startedAt": fmt(now)})
    st["observedGeneration"] = generation
    return st, Event("Normal", "Started", f"attempt {attempt} started in pod {pod}")


# ------------------------------------------------------------------------------ state machine
def reconcile(
    *,
    name: str,
    uid: str,
    generation: int | None,
    annotations: Mapping[str, str],
    spec: QueuedJobSpec | None,
    status: Mapping[str, Any] | None,
    pods: list[PodView],
    world: World,
) -> Outcome:
    """Decide the job's next status (a full status dict; the adapter diffs it against the old one)."""
    now = world.now
    st: dict[str, Any] = copy.deepcopy(dict(status or {}))
    out = Outcome(status=st)
    st["observedGeneration"] = generation
    phase = st.get("phase")

    if spec is None:  # unreadable spec: fail clearly once, never crash
        if phase not in FINISHED_PHASES:
            finish_failed(
                out,
                now,
                generation,
                "InvalidSpec",
                world.spec_error or "the spec cannot be read",
                dead_letter=False,
            )
        return out

    # A new value of the requeue annotation runs a finished job again, with a fresh retry budget.
    token = annotations.get(names.ANNOTATION_REQUEUE)
    if token and token != st.get("requeueToken"):
        st["requeueToken"] = token
        if phase == "Superseded":
            out.events.append(
                Event(
                    "Warning",
                    "RequeueRefused",
                    f"superseded by {st.get('supersededBy') or 'a newer job'}: that job runs instead",
                )
            )
        elif phase in FINISHED_PHASES:
            st.update(
                phase=None,
                failedAttempts=0,
                deadLettered=False,
                completedAt=None,
                nextAttemptAt=None,
                result=None,
                progress=None,
                duplicateOf=None,
                waitingReason=None,
            )
            _clear_condition(st, "Cancelled", now, generation, "Requeued", f"requeued (token {token})")
            for type_ in ("Complete", "Failed"):
                set_condition(
                    st,
                    type_,
                    False,
                    "Requeued",
                    f"requeued ({names.ANNOTATION_REQUEUE}={token})",
                    now,
                    generation,
                )
            out.events.append(
                Event("Normal", "Requeued", f"requeued with a fresh retry budget (token {token!r})")
            )
            phase = None

    attempts = int(st.get("attempts", 0))
    latest = max(pods, key=lambda p: p.attempt, default=None)
    if latest is not None and latest.attempt > attempts and phase not in FINISHED_PHASES:
        # A pod the last operator created but could not record (it died in between): adopt it.
        attempts = latest.attempt
        st.update(attempts=attempts, podName=latest.name, phase="Running")
        if _history_entry(st, attempts) is None:
            _append_history(
                st, {"attempt": attempts, "pod": latest.name, "startedAt": fmt(latest.created or now)}
            )
        st.setdefault("startedAt", fmt(latest.created or now))
        out.events.append(Event("Normal", "Adopted", f"adopted pod {latest.name} of attempt {attempts}"))

    if phase in FINISHED_PHASES:
        _expire(out, world)
        return out

    current = latest if latest is not None and latest.attempt == attempts else None
    record = _history_entry(st, attempts) if attempts else None
    open_attempt = record is not None and not record.get("finishedAt")

    if spec.cancel:
        return _cancel(out, record if open_attempt else None, current, spec, world, generation)

    if open_attempt and record is not None:
        if current is not None and current.disruption and not record.get("disruption"):
            record["disruption"] = current.disruption  # remembered if the pod is gone before we look again
        disruption = (current.disruption if current is not None else None) or record.get("disruption")
        verdict = None
        if (current is None or current.terminal) and (current is None or current.phase != "Succeeded"):
            verdict = failurepolicy.judge(
                world.retry.rules,
                exit_code=current.exit_code if current is not None else None,
                conditions=current.conditions if current is not None else (),
                disruption=disruption,
                non_retryable_exit_codes=world.retry.non_retryable_exit_codes,
            )
            if (
                verdict.action == "Ignore"
                and not spec.suspend
                and _retry_ignored(out, record, world, verdict, disruption, current)
            ):
                return _after_attempt(out, spec, world, generation)
        if current is None:
            _attempt_failed(
                out,
                record,
                spec,
                world,
                generation,
                reason="PodDeleted",
                exit_code=None,
                message=f"pod {record.get('pod')} disappeared before the attempt finished",
                verdict=verdict,
            )
            return _after_attempt(out, spec, world, generation)
        if current.terminal:
            _attempt_ended(out, record, current, spec, world, generation, verdict)
            return _after_attempt(out, spec, world, generation)
        # The attempt is still running.
        if spec.suspend:
            _close_record(
                record,
                now,
                reason="Suspended",
                exit_code=None,
                message="stopped by spec.suspend; not counted as a failure",
            )
            out.delete_pods.append(current.name)
            return _suspend(out, phase, now, generation)
        timeout = world.timeout_seconds
        began = current.started or current.created or parse(record.get("startedAt")) or now
        if timeout and now >= began + timedelta(seconds=timeout + TIMEOUT_GRACE_SECONDS):
            out.delete_pods.append(current.name)
            _attempt_failed(
                out,
                record,
                spec,
                world,
                generation,
                reason="Timeout",
                exit_code=None,
                message=f"attempt exceeded timeoutSeconds={timeout}",
            )
            return _after_attempt(out, spec, world, generation)
        if current.deleting:
            st.update(phase="Running")
            return out
        if current.waiting_reason in CANNOT_START:
            # The container can never start as it is (no such image here, the runtime refused it): fail
            # the attempt with the kubelet's / runtime's own words instead of waiting for a timeout.
            out.delete_pods.append(current.name)
            _attempt_failed(
                out,
                record,
                spec,
                world,
                generation,
                reason=current.waiting_reason,
                exit_code=None,
                message=current.waiting_message or f"the worker container of {current.name} cannot start",
            )
            return _after_attempt(out, spec, world, generation)
        st.update(phase="Running", waitingReason=None)
        if timeout:
            out.wake_at = began + timedelta(seconds=timeout + TIMEOUT_GRACE_SECONDS)
        return out

    return _idle(out, phase, spec, world, generation)


def _cancel(
    out: Outcome,
    record: dict[str, Any] | None,
    pod: PodView | None,
    spec: QueuedJobSpec,
    world: World,
    generation: int | None,
) -> Outcome:
    """spec.cancel: stop the open attempt gracefully (delete its pod: SIGTERM, then the grace period),
    and once the pod has stopped, or at once when none runs, end the job Cancelled. An attempt that
    succeeds within its grace period is a success: the work was done."""
    st, now = out.status, world.now
    if record is not None:
        if pod is not None and pod.phase == "Succeeded":
            _attempt_ended(out, record, pod, spec, world, generation)
            _expire(out, world)
            return out
        if pod is not None and not pod.terminal:
            if not pod.deleting:
                out.delete_pods.append(pod.name)
                out.events.append(
                    Event(
                        "Normal",
                        "Cancelling",
                        f"spec.cancel: stopping attempt {record['attempt']} (pod {pod.name} gets SIGTERM, "
                        "then its grace period)",
                    )
                )
            set_condition(
                st,
                "Cancelled",
                False,
                "Cancelling",
                f"stopping attempt {record['attempt']} (pod {pod.name})",
                now,
                generation,
            )
            st.update(phase="Running", waitingReason=None)
            deadline = pod.deletion_deadline
            if deadline is None or now < deadline + timedelta(seconds=TIMEOUT_GRACE_SECONDS):
                if deadline is not None:
                    out.wake_at = deadline + timedelta(seconds=TIMEOUT_GRACE_SECONDS)
                return out
            # The pod outlived its grace period by far (its node is gone?): the job is cancelled anyway.
        stopped = pod is not None and pod.terminal
        _close_record(
            record,
            now,
            reason="Cancelled",
            exit_code=pod.exit_code if pod is not None else None,
            message="stopped by spec.cancel"
            + (
                ""
                if stopped or pod is None
                else f"; pod {pod.name} had not stopped by the end of its grace period"
            ),
            finished=pod.finished if pod is not None else None,
        )
    what = (
        f"attempt {record['attempt']} stopped"
        if record is not None
        else "before it ran"
        if not st.get("attempts")
        else "between attempts"
    )
    st.update(phase="Cancelled", completedAt=fmt(now), nextAttemptAt=None, waitingReason=None)
    set_condition(st, "Cancelled", True, "SpecCancel", f"cancelled by spec.cancel ({what})", now, generation)
    set_condition(st, "Complete", False, "Cancelled", "", now, generation)
    out.events.append(Event("Normal", "Cancelled", f"cancelled by spec.cancel ({what})"))
    _expire(out, world)
    return out


def _retry_ignored(
    out: Outcome,
    record: dict[str, Any],
    world: World,
    verdict: failurepolicy.Verdict,
    disruption: str | None,
    pod: PodView | None,
) -> bool:
    """An attempt the rules Ignore (by default: a pod disruption): retried at once without using a retry,
    at most ``retry.disruptionLimit`` times (then it counts as a failure). -> whether it was handled."""
    st, now = out.status, world.now
    done = int(st.get("disruptedAttempts", 0))
    if done >= world.retry.disruption_limit:
        return False
    detail = (pod.pod_message or pod.message) if pod is not None else None
    what = disruption if disruption and verdict.rule is None else verdict.why
    _close_record(
        record,
        now,
        reason=verdict.reason,
        exit_code=pod.exit_code if pod is not None else None,
        message=f"{what}" + (f": {detail}" if detail else "") + "; not counted as a failure",
        finished=pod.finished if pod is not None else None,
    )
    if disruption:
        record["disruption"] = disruption
    st["disruptedAttempts"] = done + 1
    st["nextAttemptAt"] = None
    ended = f"was disrupted ({disruption})" if disruption else f"failed, ignored: {verdict.why}"
    out.events.append(
        Event(
            "Normal",
            verdict.reason,
            f"attempt {record['attempt']} {ended}; retrying without using a retry "
            f"({done + 1} of at most {world.retry.disruption_limit})",
        )
    )
    return True


def _after_attempt(out: Outcome, spec: QueuedJobSpec, world: World, generation: int | None) -> Outcome:
    phase = out.status.get("phase")
    if phase in FINISHED_PHASES:
        _expire(out, world)
        return out
    if phase == "Suspended":
        return out
    return _idle(out, None, spec, world, generation)


def _idle(
    out: Outcome, previous: str | None, spec: QueuedJobSpec, world: World, generation: int | None
) -> Outcome:
    """No attempt is running: decide whether the job waits, fails, or may start."""
    st, now = out.status, world.now
    if spec.suspend:
        return _suspend(out, previous, now, generation)
    if previous == "Suspended":
        out.events.append(Event("Normal", "Resumed", "spec.suspend cleared; the job may run again"))
    _clear_condition(st, "Suspended", now, generation, "Resumed", "spec.suspend is false")
    if world.duplicate_of:
        st["duplicateOf"] = world.duplicate_of
        finish_failed(
            out,
            now,
            generation,
            "Duplicate",
            f"duplicate of {world.duplicate_of}: uniqueKey {spec.unique_key!r} already has an unfinished job "
            f"in queue {spec.queue}",
            dead_letter=False,
        )
        return out
    if world.superseded_by and int(st.get("attempts", 0)) == 0:
        _supersede(out, spec, world, generation)
        return out
    if world.revision is not None and not st.get("enqueueRevision"):
        st["enqueueRevision"] = world.revision
    size = payload_size(spec.payload)
    if size > MAX_PAYLOAD_BYTES:
        finish_failed(
            out,
            now,
            generation,
            "PayloadTooLarge",
            f"spec.payload is {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed",
            dead_letter=False,
        )
        return out
    if world.cycle and int(st.get("attempts", 0)) == 0:
        finish_failed(
            out,
            now,
            generation,
            "DependencyCycle",
            "dependency cycle: " + " -> ".join(world.cycle),
            dead_letter=False,
        )
        return out
    blocked: list[str] = []
    missing: list[str] = []
    for dep in spec.depends_on or []:
        dep_phase = world.deps.get(dep)
        if dep_phase in ("Failed", "Cancelled"):
            finish_failed(
                out,
                now,
                generation,
                "DependencyFailed",
                f"dependency {dep} {'failed' if dep_phase == 'Failed' else 'was cancelled'}",
                dead_letter=True,
            )
            return out
        if dep_phase is None:
            missing.append(dep)
        if dep_phase != "Succeeded":
            blocked.append(dep if dep_phase is not None else f"{dep} (not found)")
    if missing and world.created is not None:
        timeout = timedelta(seconds=spec.dependency_timeout_seconds or DEFAULT_DEPENDENCY_TIMEOUT_SECONDS)
        if now >= world.created + timeout:
            finish_failed(
                out,
                now,
                generation,
                "DependencyMissing",
                f"dependency {', '.join(missing)} does not exist {int(timeout.total_seconds())}s after "
                "the job was created (spec.dependencyTimeoutSeconds)",
                dead_letter=True,
            )
            return out
        out.wake_at = world.created + timeout
    if blocked:
        st.update(phase="Waiting", waitingReason="Blocked", nextAttemptAt=None)
        set_condition(
            st,
            "Blocked",
            True,
            "WaitingForDependencies",
            "waiting for " + ", ".join(blocked),
            now,
            generation,
        )
        return out
    _clear_condition(st, "Blocked", now, generation)
    if spec.run_at is not None and spec.run_at > now and int(st.get("attempts", 0)) == 0:
        st.update(phase="Waiting", waitingReason="Delayed", nextAttemptAt=fmt(spec.run_at))
        out.wake_at = spec.run_at
        return out
    if int(st.get("attempts", 0)) == 0 and (
        (world.debounce_until is not None and world.debounce_until > now) or world.debounce_behind
    ):
        until = world.debounce_until if world.debounce_until and world.debounce_until > now else None
        st.update(phase="Waiting", waitingReason="Debounced", nextAttemptAt=fmt(until) if until else None)
        out.wake_at = until  # a running twin that finishes wakes it through its uniqueKey
        return out
    if st.get("waitingReason") == "Debounced":
        st["nextAttemptAt"] = None  # the quiet spell is over (it is the debounce's, not a backoff)
    next_at = parse(st.get("nextAttemptAt"))
    if next_at is not None and next_at > now:
        # A refused pod (a full quota, ...) keeps its reason while it waits to try again.
        keep = st.get("waitingReason") in TRANSIENT_REASONS
        st.update(phase="Waiting", waitingReason=st.get("waitingReason") if keep else "BackingOff")
        out.wake_at = next_at
        return out
    if world.queue_paused:
        reason: str | None = "QueuePaused"
    else:  # the dispatcher's reasons (ConcurrencyLimit, RateLimited, ...) are its to change
        previous = st.get("waitingReason") if st.get("phase") == "Pending" else None
        reason = previous if previous in DISPATCH_REASONS else None
    st.update(phase="Pending", waitingReason=reason, nextAttemptAt=None)
    out.runnable = not world.queue_paused
    return out


def _supersede(out: Outcome, spec: QueuedJobSpec, world: World, generation: int | None) -> None:
    st, now, newer = out.status, world.now, world.superseded_by
    message = f"superseded by {newer}, a newer job with uniqueKey {spec.unique_key!r} (the queue's debounce)"
    st.update(
        phase="Superseded", supersededBy=newer, completedAt=fmt(now), nextAttemptAt=None, waitingReason=None
    )
    set_condition(st, "Superseded", True, "Debounced", message, now, generation)
    set_condition(st, "Complete", False, "Superseded", "", now, generation)
    out.events.append(Event("Normal", "Superseded", message))
    _expire(out, world)


def status_reason(st: Mapping[str, Any]) -> str | None:
    """``status.reason``, one word for the REASON column: the waiting reason while Pending or Waiting,
    the Failed condition's reason once Failed, else none."""
    phase = st.get("phase")
    if phase in ("Pending", "Waiting"):
        reason = st.get("waitingReason")
        return reason if isinstance(reason, str) else None
    if phase == "Running":
        cancelling = any(
            c.get("type") == "Cancelled" and c.get("reason") == "Cancelling"
            for c in st.get("conditions") or ()
        )
        return "Cancelling" if cancelling else None
    if phase == "Failed":
        for cond in st.get("conditions") or ():
            if cond.get("type") == "Failed" and cond.get("status") == "True":
                return str(cond.get("reason")) if cond.get("reason") else None
    return None


def _clear_condition(
    st: dict[str, Any],
    type_: str,
    now: datetime,
    generation: int | None,
    reason: str = "DependenciesSucceeded",
    message: str = "all dependencies succeeded",
) -> None:
    if any(c["type"] == type_ and c["status"] == "True" for c in st.get("conditions", [])):
        set_condition(st, type_, False, reason, message, now, generation)


def _suspend(out: Outcome, previous: str | None, now: datetime, generation: int | None) -> Outcome:
    out.status.update(phase="Suspended", waitingReason=None)
    if previous != "Suspended":
        out.events.append(Event("Normal", "Suspended", "spec.suspend is set; the job is held"))
    set_condition(out.status, "Suspended", True, "SpecSuspend", "spec.suspend is true", now, generation)
    return out


def _close_record(
    record: dict[str, Any],
    now: datetime,
    *,
    reason: str,
    exit_code: int | None,
    message: str | None,
    finished: datetime | None = None,
) -> None:
    record["finishedAt"] = fmt(finished or now)
    record["reason"] = reason
    if exit_code is not None:
        record["exitCode"] = exit_code
    if message:
        record["message"] = message[:1024]


def _attempt_ended(
    out: Outcome,
    record: dict[str, Any],
    pod: PodView,
    spec: QueuedJobSpec,
    world: World,
    generation: int | None,
    verdict: failurepolicy.Verdict | None = None,
) -> None:
    st, now = out.status, world.now
    if pod.phase == "Succeeded":
        _close_record(
            record,
            now,
            reason="Completed",
            exit_code=pod.exit_code if pod.exit_code is not None else 0,
            message=None,
            finished=pod.finished,
        )
        st.update(
            phase="Succeeded",
            completedAt=fmt(now),
            result=_result(pod.message),
            progress=100,
            nextAttemptAt=None,
            waitingReason=None,
        )
        set_condition(
            st, "Complete", True, "Succeeded", f"attempt {record['attempt']} succeeded", now, generation
        )
        set_condition(st, "Failed", False, "Succeeded", "", now, generation)
        out.events.append(Event("Normal", "Succeeded", f"attempt {record['attempt']} succeeded"))
        return
    if spec.suspend:
        _close_record(
            record,
            now,
            reason="Suspended",
            exit_code=pod.exit_code,
            message="stopped by spec.suspend; not counted as a failure",
            finished=pod.finished,
        )
        _suspend(out, None, now, generation)
        return
    if pod.pod_reason == "DeadlineExceeded":
        reason, message = "Timeout", f"attempt exceeded timeoutSeconds={world.timeout_seconds}"
    elif pod.pod_reason == "Evicted":
        reason, message = "Evicted", pod.message or pod.pod_message or "the pod was evicted"
    elif pod.deleting:
        reason, message = "PodDeleted", f"pod {pod.name} was deleted before the attempt finished"
    else:
        reason, message = (pod.reason or "Error"), (pod.message or "")
    _attempt_failed(
        out,
        record,
        spec,
        world,
        generation,
        reason=reason,
        exit_code=pod.exit_code,
        message=message,
        finished=pod.finished,
        verdict=verdict,
    )


def _attempt_failed(
    out: Outcome,
    record: dict[str, Any],
    spec: QueuedJobSpec,
    world: World,
    generation: int | None,
    *,
    reason: str,
    exit_code: int | None,
    message: str,
    finished: datetime | None = None,
    verdict: failurepolicy.Verdict | None = None,
) -> None:
    """A failed attempt: FailJob when the `verdict` (retry.rules and the built-in rules) says so, else
    counted against retry.limit and retried after a backoff."""
    st, now, retry = out.status, world.now, world.retry
    _close_record(record, now, reason=reason, exit_code=exit_code, message=message, finished=finished)
    attempt = int(record["attempt"])
    failed = int(st.get("failedAttempts", 0)) + 1
    st["failedAttempts"] = failed
    detail = f"exit code {exit_code}" if exit_code is not None else reason
    st["lastError"] = f"attempt {attempt}: {reason} ({detail})" + (f": {message}" if message else "")
    st["lastError"] = st["lastError"][:4096]
    out.events.append(Event("Warning", "AttemptFailed", st["lastError"][:1024]))
    if verdict is not None and verdict.action == "FailJob":
        message = st["lastError"] if verdict.rule is None else f"{verdict.why}; {st['lastError']}"
        finish_failed(out, now, generation, verdict.reason, message, dead_letter=True)
        return
    if failed > retry.limit:
        finish_failed(
            out,
            now,
            generation,
            "RetriesExhausted",
            f"failed {failed} times (retry.limit {retry.limit}); last: {st['lastError']}",
            dead_letter=True,
        )
        return
    delay = backoff_seconds(failed, retry, seed=world.seed)
    next_at = now + timedelta(seconds=delay)  # from when the failure was seen: never early
    st.update(phase="Waiting", waitingReason="BackingOff", nextAttemptAt=fmt(next_at))
    out.wake_at = next_at
    out.events.append(
        Event(
            "Normal",
            "Retrying",
            f"retrying in {delay:.0f}s (attempt {attempt + 1} of at most {attempt + 1 + retry.limit - failed})",
        )
    )


def finish_failed(
    out: Outcome, now: datetime, generation: int | None, reason: str, message: str, *, dead_letter: bool
) -> None:
    st = out.status
    st.update(
        phase="Failed", completedAt=fmt(now), nextAttemptAt=None, waitingReason=None, deadLettered=dead_letter
    )
    if reason not in ("RetriesExhausted",) and not st.get("lastError"):
        st["lastError"] = message[:4096]
    set_condition(st, "Failed", True, reason, message, now, generation)
    set_condition(st, "Complete", False, reason, "", now, generation)
    out.events.append(Event("Warning", "Failed", f"{reason}: {message}"[:1024]))
    if dead_letter:
        out.events.append(
            Event(
                "Warning",
                "DeadLettered",
                f"dead-lettered; `kubectl annotate qj <name> {names.ANNOTATION_REQUEUE}=<new value>` retries it",
            )
        )


def _expire(out: Outcome, world: World) -> None:
    ttl = world.ttl_seconds_after_finished
    done = parse(out.status.get("completedAt"))
    if ttl is None or done is None:
        return
    expiry = done + timedelta(seconds=ttl)
    if world.now >= expiry:
        out.delete_job = True
    else:
        out.wake_at = expiry
