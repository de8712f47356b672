"""The ``kubectl jobline`` commands. Each takes the parsed arguments and a Connection, returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from jobline import client as sdk
from jobline import names
from jobline.core import actions, readmodel
from jobline.core.timefmt import fmt, parse
from jobline.core.timefmt import now as utcnow

from .connection import (
    EXIT_FAILED,
    EXIT_FORBIDDEN,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
    Connection,
    api_error,
)
from .output import Progress, as_list, bar, dump, table

QJ = names.PLURAL_QUEUEDJOBS
QUEUES = names.PLURAL_JOBQUEUES
SCHEDULES = names.PLURAL_JOBSCHEDULES
QJ_REF = f"{names.KIND_QUEUEDJOB.lower()}.{names.GROUP}"  # as kubectl prints it: queuedjob.jobline.dev
SCHEDULE_REF = f"{names.KIND_JOBSCHEDULE.lower()}.{names.GROUP}"
QUEUE_REF = f"{names.KIND_JOBQUEUE.lower()}.{names.GROUP}"

# Indirections so unit tests run `wait` and `trigger --wait` without real time passing.
monotonic: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], datetime] = utcnow


class Io:
    """Where commands print (stdout for results, stderr for progress and errors)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")


# --- helpers ---------------------------------------------------------------------------------


def _payload(text: str | None) -> Any:
    """``--payload``: JSON text, ``@file`` or ``@-`` (stdin)."""
    if text is None:
        return None
    source = "--payload"
    if text.startswith("@"):
        path = text[1:]
        source = "stdin" if path == "-" else path
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CliError(f"cannot read the payload file: {exc}", EXIT_USAGE) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"the payload from {source} is not valid JSON: {exc}", EXIT_USAGE) from None


def _run_at(text: str | None) -> str | None:
    """RFC 3339, or ``+10m`` (that long from now)."""
    if text is None:
        return None
    if text.startswith("+"):
        try:
            return fmt((clock() + readmodel.parse_duration(text[1:])).replace(microsecond=0))
        except ValueError as exc:
            raise CliError(f"--run-at: {exc}", EXIT_USAGE) from None
    when = parse(text)
    if when is None or "T" not in text.upper():
        raise CliError(
            f"--run-at {text!r} is neither an RFC 3339 time (2025-01-31T12:00:00Z) nor +DURATION", EXIT_USAGE
        )
    return fmt(when)


def _duration(flag: str, text: str) -> timedelta:
    try:
        return readmodel.parse_duration(text)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}", EXIT_USAGE) from None


def _strip_kind(ref: str, kinds: Iterable[str]) -> str:
    """``qj/NAME`` or ``queuedjob/NAME`` -> NAME (a bare NAME too)."""
    if "/" in ref:
        kind, name = ref.split("/", 1)
        if kind.lower() not in kinds:
            raise CliError(f"{ref!r}: expected {'|'.join(sorted(kinds))}/NAME or NAME", EXIT_USAGE)
        return name
    return ref


def _kinds(kind: str, plural: str, *short: str) -> frozenset[str]:
    """How a user may name a kind: its short names, singular, plural and ``singular.group``."""
    return frozenset({*short, kind.lower(), plural, f"{kind.lower()}.{names.GROUP}"})


JOB_KINDS = _kinds(names.KIND_QUEUEDJOB, QJ, "qj", "job")
SCHEDULE_KINDS = _kinds(names.KIND_JOBSCHEDULE, SCHEDULES, "schedule")
QUEUE_KINDS = _kinds(names.KIND_JOBQUEUE, QUEUES, "queue")


def _jobs(
    conn: Connection, *, queue: str | None = None, handler: str | None = None, phases: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """QueuedJobs in scope (-n / -A), filtered by queue and handler on the server, by phase here."""
    selectors = []
    if queue:
        selectors.append(f"spec.queue={queue}")
    if handler:
        selectors.append(f"spec.handler={handler}")
    wanted = set(phases)
    items = conn.list(QJ, namespace=conn.scope(), field_selector=",".join(selectors) or None)
    return [j for j in items if not wanted or readmodel.phase_of(j) in wanted]


def _job_ref(job: Mapping[str, Any], conn: Connection) -> str:
    ns, name = readmodel.ns_name(job)
    return f"{ns}/{name}" if conn.all_namespaces else name


def _summary(
    job: Mapping[str, Any], positions: Mapping[tuple[str, str], int] | None = None
) -> dict[str, Any]:
    """The job as -o json/yaml of `list` prints it: the object, position added for Pending jobs."""
    out = dict(job)
    if positions is not None:
        pos = positions.get(readmodel.ns_name(job))
        if pos is not None:
            out["status"] = {**(job.get("status") or {}), "position": pos}
    return out


# --- enqueue ---------------------------------------------------------------------------------


def enqueue(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    payload = _payload(args.payload)
    run_at = _run_at(args.run_at)
    ns = conn.ns()
    try:
        name = sdk.enqueue(
            args.handler,
            payload,
            queue=args.queue,
            priority=args.priority,
            run_at=run_at,
            unique_key=args.unique_key,
            namespace=ns,
            name=args.name,
            api=conn.custom,
        )
    except PermissionError as exc:
        raise CliError(f"forbidden: {exc}", EXIT_FORBIDDEN) from None
    except sdk.JobAlreadyExists as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except sdk.JoblineError as exc:
        raise CliError(str(exc), EXIT_NOT_FOUND) from None
    except Exception as exc:
        if getattr(exc, "status", None) is not None:
            raise api_error(exc, verb="create", plural=QJ, namespace=ns) from None
        raise
    if args.output:
        io.print(dump(conn.get(QJ, ns, name), args.output))
    else:
        io.print(f"{QJ_REF}/{name} created")
    if args.wait:
        return _wait(
            conn, io, ns, name, timeout=_duration("--timeout", args.timeout) if args.timeout else None
        )
    return EXIT_OK


# --- stats -----------------------------------------------------------------------------------


def stats(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    scope = conn.scope()
    queues = list(conn.list(QUEUES, namespace=scope))
    jobs = list(conn.list(QJ, namespace=scope))
    rows = readmodel.queue_stats(jobs, queues, clock())
    if args.output:
        io.print(dump({"queues": rows, "totals": readmodel.totals(rows)}, args.output))
        return EXIT_OK
    if not rows:
        io.warn("No queues and no jobs found" + (f" in namespace {scope}." if scope else "."))
        return EXIT_OK
    headers = [
        "QUEUE",
        "PAUSED",
        "CONCURRENCY",
        "PENDING",
        "WAITING",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "SUSPENDED",
        "OLDEST-PENDING",
    ]
    if conn.all_namespaces:
        headers.insert(0, "NAMESPACE")
    body = []
    for r in rows:
        oldest = r["oldestPendingSeconds"]
        line = [
            r["queue"] + ("" if r["exists"] else " (no JobQueue)"),
            "yes" if r["paused"] else "no",
            r["concurrency"] if r["concurrency"] is not None else "-",
            r["pending"],
            r["waiting"],
            r["running"],
            r["succeeded"],
            r["failed"],
            r["suspended"],
            readmodel.age(clock() - timedelta(seconds=oldest), clock()) if oldest is not None else "-",
        ]
        if conn.all_namespaces:
            line.insert(0, r["namespace"])
        body.append(line)
    io.print(table(headers, body))
    return EXIT_OK


# --- list ------------------------------------------------------------------------------------


def list_jobs(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    try:
        phases = readmodel.normalize_phases(args.phase or ())
    except ValueError as exc:
        raise CliError(f"--phase: {exc}", EXIT_USAGE) from None
    jobs = _jobs(conn, queue=args.queue, handler=args.handler, phases=phases)
    jobs.sort(
        key=lambda j: (
            readmodel.ns_name(j)[0],
            str((j.get("metadata") or {}).get("creationTimestamp") or ""),
            readmodel.ns_name(j)[1],
        )
    )
    queues = {
        readmodel.ns_name(q): q for q in conn.list(QUEUES, namespace=conn.scope())
    }  # default priorities
    positions: dict[tuple[str, str], int] = {}
    if any(
        readmodel.phase_of(j) == "Pending" for j in jobs
    ):  # positions count every pending job of the queue
        pending = _jobs(conn, queue=args.queue, phases=["Pending"]) if args.handler or phases else jobs
        positions = readmodel.positions(pending, queues)
    if args.output == "name":
        for j in jobs:
            io.print(f"{QJ_REF}/{readmodel.ns_name(j)[1]}")
        return EXIT_OK
    if args.output:
        io.print(dump(as_list([_summary(j, positions) for j in jobs]), args.output))
        return EXIT_OK
    if not jobs:
        io.warn("No jobs found" + (f" in namespace {conn.scope()}." if conn.scope() else "."))
        return EXIT_OK
    now = clock()
    headers = ["NAME", "QUEUE", "HANDLER", "PRIORITY", "PHASE", "REASON", "ATTEMPTS", "PROGRESS", "AGE"]
    if conn.all_namespaces:
        headers.insert(0, "NAMESPACE")
    body = []
    for j in jobs:
        ns, name = readmodel.ns_name(j)
        st = j.get("status") or {}
        phase = readmodel.phase_of(j)
        reason = st.get("waitingReason") or readmodel.failure_reason(j) or ""
        if phase == "Pending" and (ns, name) in positions:
            reason = f"#{positions[(ns, name)]} in queue"
        progress = st.get("progress")
        line = [
            name,
            readmodel.queue_of(j),
            readmodel.handler_of(j),
            readmodel.effective_priority(j, queues),
            phase,
            reason or "-",
            st.get("attempts", 0),
            f"{progress}%" if progress is not None else "-",
            readmodel.age(readmodel.created_at(j), now),
        ]
        if conn.all_namespaces:
            line.insert(0, ns)
        body.append(line)
    io.print(table(headers, body))
    return EXIT_OK


# --- retry -----------------------------------------------------------------------------------


def _requeue(conn: Connection, job: Mapping[str, Any]) -> None:
    ns, name = readmodel.ns_name(job)
    conn.patch(QJ, ns, name, actions.requeue(actions.fresh_value(clock()), job))


def retry(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    if args.all_failed and args.jobs:
        raise CliError("give job names or --all-failed, not both", EXIT_USAGE)
    if not args.all_failed and not args.jobs:
        raise CliError("retry needs job names or --all-failed", EXIT_USAGE)
    if args.queue and not args.all_failed:
        raise CliError("--queue goes with --all-failed", EXIT_USAGE)
    code = EXIT_OK
    if args.all_failed:
        targets = readmodel.dead_letters(_jobs(conn, queue=args.queue, phases=["Failed"]), args.queue)
        if not targets:
            io.warn("No dead-lettered jobs found" + (f" in queue {args.queue}." if args.queue else "."))
            return EXIT_OK
    else:
        targets = []
        for ref in args.jobs:
            try:
                targets.append(conn.get(QJ, conn.ns(), _strip_kind(ref, JOB_KINDS)))
            except CliError as exc:
                io.warn(f"error: {exc.message}")
                code = max(code, exc.code)
    for job in targets:
        ref = _job_ref(job, conn)
        refusal = actions.retry_refusal(job)
        if refusal is not None:
            io.warn(f"error: {QJ_REF}/{ref} {refusal}")
            code = max(code, EXIT_FAILED)
            continue
        if args.dry_run:
            io.print(f"{QJ_REF}/{ref} would be requeued (dry run)")
            continue
        try:
            _requeue(conn, job)
        except CliError as exc:
            io.warn(f"error: {exc.message}")
            code = max(code, exc.code)
            continue
        io.print(f"{QJ_REF}/{ref} requeued")
    return code


# --- cancel ----------------------------------------------------------------------------------


def cancel(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    """Cancel = ``spec.cancel: true``: a running attempt gets SIGTERM, then its grace period, and the job
    ends Cancelled with its history (``kubectl delete`` removes a job)."""
    code = EXIT_OK
    for ref in args.jobs:
        name = _strip_kind(ref, JOB_KINDS)
        try:
            job = conn.get(QJ, conn.ns(), name)
            refusal = actions.cancel_refusal(job)
            if refusal is not None:
                io.warn(f"error: {QJ_REF}/{name} {refusal}")
                code = max(code, EXIT_FAILED)
                continue
            conn.patch(QJ, conn.ns(), name, actions.cancel())
        except CliError as exc:
            io.warn(f"error: {exc.message}")
            code = max(code, exc.code)
            continue
        running = readmodel.phase_of(job) == "Running"
        io.print(
            f"{QJ_REF}/{name} cancelled" + (" (its running attempt is being stopped)" if running else "")
        )
    return code


# --- cleanup ---------------------------------------------------------------------------------


def cleanup(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    if not args.finished:
        raise CliError("cleanup removes finished jobs only: say so with --finished", EXIT_USAGE)
    older = _duration("--older-than", args.older_than)
    try:
        phases = actions.cleanup_phases(args.phase or ())
    except ValueError as exc:
        raise CliError(f"--phase: {exc}", EXIT_USAGE) from None
    now = clock()
    victims = readmodel.cleanup_candidates(
        _jobs(conn, queue=args.queue), older_than=older, now=now, phases=phases, queue=args.queue
    )
    if args.output:
        io.print(dump(as_list([dict(v) for v in victims]), args.output))
    elif not victims:
        io.warn(f"No finished jobs older than {args.older_than}.")
    elif args.dry_run:
        headers = ["NAME", "QUEUE", "PHASE", "FINISHED"]
        if conn.all_namespaces:
            headers.insert(0, "NAMESPACE")
        body = []
        for v in victims:
            line = [
                readmodel.ns_name(v)[1],
                readmodel.queue_of(v),
                readmodel.phase_of(v),
                readmodel.age(readmodel.finished_at(v), now) + " ago",
            ]
            if conn.all_namespaces:
                line.insert(0, readmodel.ns_name(v)[0])
            body.append(line)
        io.print(table(headers, body))
        io.warn(f"{len(victims)} job(s) would be deleted (dry run: nothing deleted)")
    if args.dry_run:
        return EXIT_OK
    code = EXIT_OK
    for v in victims:
        ns, name = readmodel.ns_name(v)
        try:
            conn.delete(QJ, ns, name)
        except CliError as exc:
            if exc.code == EXIT_NOT_FOUND:
                continue  # gone meanwhile (TTL, retention): what we wanted
            io.warn(f"error: {exc.message}")
            code = max(code, exc.code)
            continue
        if not args.output:
            io.print(f"{QJ_REF}/{_job_ref(v, conn)} deleted")
    return code


# --- schedules and queues --------------------------------------------------------------------


def trigger(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    name = _strip_kind(args.schedule, SCHEDULE_KINDS)
    ns = conn.ns()
    value = actions.fresh_value(clock())
    conn.get(SCHEDULES, ns, name)  # a clear "not found" before anything is written
    conn.patch(SCHEDULES, ns, name, actions.trigger(value))
    io.print(f"{SCHEDULE_REF}/{name} triggered ({names.ANNOTATION_TRIGGER}={value})")
    if not args.wait:
        return EXIT_OK
    deadline = monotonic() + _duration("--timeout", args.timeout).total_seconds()
    while True:
        for job in conn.list(QJ, namespace=ns, label_selector=names.LABEL_SCHEDULE):
            annotations = (job.get("metadata") or {}).get("annotations") or {}
            if annotations.get(names.ANNOTATION_MANUAL_TRIGGER) == value:
                io.print(f"{QJ_REF}/{readmodel.ns_name(job)[1]} created")
                return EXIT_OK
        if monotonic() >= deadline:
            raise CliError(
                f"no job of schedule {name} appeared within {args.timeout} (is the operator running?)",
                EXIT_TIMEOUT,
            )
        sleep(0.5)


def suspend(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    """``suspend|resume schedule/NAME|queue/NAME|qj/NAME``."""
    on = args.command == "suspend"
    code = EXIT_OK
    for ref in args.targets:
        kind, _, name = ref.partition("/")
        kind = kind.lower()
        if not name:
            raise CliError(
                f"{ref!r}: say what to {args.command}: schedule/NAME, queue/NAME or qj/NAME", EXIT_USAGE
            )
        if kind in SCHEDULE_KINDS:
            plural, label = SCHEDULES, f"{SCHEDULE_REF}/{name}"
        elif kind in QUEUE_KINDS:
            plural, label = QUEUES, f"{QUEUE_REF}/{name}"
        elif kind in JOB_KINDS:
            plural, label = QJ, f"{QJ_REF}/{name}"
        else:
            raise CliError(f"{ref!r}: unknown kind {kind!r}: schedule, queue or qj", EXIT_USAGE)
        try:
            conn.get(plural, conn.ns(), name)
            conn.patch(plural, conn.ns(), name, actions.hold(plural, on))
        except CliError as exc:
            io.warn(f"error: {exc.message}")
            code = max(code, exc.code)
            continue
        io.print(
            f"{label} {'suspended' if on else 'resumed'}"
            if plural != QUEUES
            else f"{label} {'paused' if on else 'resumed'}"
        )
    return code


# --- wait ------------------------------------------------------------------------------------


def _status_line(name: str, job: Mapping[str, Any]) -> str:
    st = job.get("status") or {}
    phase = readmodel.phase_of(job)
    detail = st.get("waitingReason") or ""
    if phase == "Running":
        detail = f"attempt {st.get('attempts', 1)}"
    return f"{name} {bar(st.get('progress'))} {phase}" + (f" ({detail})" if detail else "")


def _wait(
    conn: Connection, io: Io, ns: str, name: str, *, timeout: timedelta | None, interval: float = 1.0
) -> int:
    progress = Progress(io.err)
    deadline = None if timeout is None else monotonic() + timeout.total_seconds()
    while True:
        job = conn.get(QJ, ns, name)
        progress.show(_status_line(name, job))
        phase = readmodel.phase_of(job)
        if readmodel.is_finished(job):
            progress.done()
            st = job.get("status") or {}
            if phase == "Succeeded":
                result = st.get("result")
                io.print(
                    f"{QJ_REF}/{name} succeeded" + (f": {json.dumps(result)}" if result is not None else "")
                )
                return EXIT_OK
            if phase in ("Cancelled", "Superseded"):
                newer = st.get("supersededBy")
                io.print(f"{QJ_REF}/{name} {phase.lower()}" + (f" by {newer}" if newer else ""))
                return EXIT_FAILED
            reason = readmodel.failure_reason(job) or "Failed"
            error = (st.get("lastError") or "").strip().splitlines()
            io.print(
                f"{QJ_REF}/{name} failed ({reason}"
                + (", dead-lettered" if st.get("deadLettered") else "")
                + ")"
                + (f": {error[-1]}" if error else "")
            )
            return EXIT_FAILED
        if deadline is not None and monotonic() >= deadline:
            progress.done()
            raise CliError(f"timed out waiting for {QJ_REF}/{name} (still {phase})", EXIT_TIMEOUT)
        sleep(interval if deadline is None else max(0.0, min(interval, deadline - monotonic())))


def wait(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    name = _strip_kind(args.job, JOB_KINDS)
    return _wait(
        conn, io, conn.ns(), name, timeout=_duration("--timeout", args.timeout) if args.timeout else None
    )


# --- logs ------------------------------------------------------------------------------------


def _pod_of(conn: Connection, job: Mapping[str, Any], attempt: int | None) -> str:
    ns, name = readmodel.ns_name(job)
    st = job.get("status") or {}
    if attempt is None:
        if st.get("podName"):
            return str(st["podName"])
        if not st.get("attempts"):
            raise CliError(
                f"{QJ_REF}/{name} has not started an attempt yet ({readmodel.phase_of(job)})", EXIT_NOT_FOUND
            )
        attempt = int(st["attempts"])
    for record in st.get("attemptHistory") or ():
        if record.get("attempt") == attempt and record.get("pod"):
            return str(record["pod"])
    from kubernetes.client.exceptions import ApiException

    try:
        pods = conn.core.list_namespaced_pod(
            ns, label_selector=f"{names.LABEL_JOB}={name},{names.LABEL_ATTEMPT}={attempt}"
        ).items
    except ApiException as exc:
        raise api_error(exc, verb="list", plural="pods", namespace=ns) from None
    if pods:
        return str(pods[0].metadata.name)
    started = int(st.get("attempts") or 0)
    if attempt > started or attempt < 1:
        raise CliError(
            f"{QJ_REF}/{name} has no attempt {attempt} (attempts so far: {started})", EXIT_NOT_FOUND
        )
    raise CliError(f"the pod of attempt {attempt} of {QJ_REF}/{name} no longer exists", EXIT_NOT_FOUND)


def logs(args: argparse.Namespace, conn: Connection, io: Io) -> int:
    from kubernetes.client.exceptions import ApiException

    name = _strip_kind(args.job, JOB_KINDS)
    ns = conn.ns()
    job = conn.get(QJ, ns, name)
    pod = _pod_of(conn, job, args.attempt)
    kwargs: dict[str, Any] = {"container": names.WORKER_CONTAINER}
    if args.tail is not None:
        kwargs["tail_lines"] = args.tail
    try:
        if args.follow:
            resp = conn.core.read_namespaced_pod_log(pod, ns, follow=True, _preload_content=False, **kwargs)
            for chunk in resp.stream(1024):
                io.out.write(chunk.decode(errors="replace"))
                io.out.flush()
            return EXIT_OK
        text = conn.core.read_namespaced_pod_log(pod, ns, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            raise CliError(f"pod {pod} of {QJ_REF}/{name} no longer exists", EXIT_NOT_FOUND) from None
        if exc.status == 400:
            raise CliError(f"no logs for pod {pod} yet: {exc.reason}", EXIT_FAILED) from None
        raise api_error(exc, verb="read logs of", plural="pods", namespace=ns, name=pod) from None
    io.out.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Connection, Io], int]] = {
    "enqueue": enqueue,
    "stats": stats,
    "list": list_jobs,
    "retry": retry,
    "cancel": cancel,
    "cleanup": cleanup,
    "trigger": trigger,
    "suspend": suspend,
    "resume": suspend,
    "wait": wait,
    "logs": logs,
}
