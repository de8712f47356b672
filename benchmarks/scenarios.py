"""The five scenarios (dispatch, throughput, cron, scale, ceiling), each run for Jobline and then for its peer in the controller-manager.

Every time is a client-side monotonic time taken by this process's watches when it first sees
an object in a state (API timestamps have one-second resolution). Each wait has a deadline.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kube import MERGE, Api, Bulk, Request, Watch, Watches, kubectl, wait_for

from .env import (
    KWOK_SELECTOR,
    KWOK_TOLERATION,
    ClusterEnv,
    Operator,
    Profiler,
    kubectl_seconds,
    proc_cpu_seconds,
)
from .measure import Recorder, diff_counts, wall, write_counts
from .stats import ratio, read_profile, summary

GROUP, VERSION = "jobline.dev", "v1alpha1"
BENCH_GROUP = "bench.jobline.dev"
BENCH_LABELS = {"jobline.dev/bench": "true"}  # on every namespace the benchmarks make
CRD_FILE = Path(__file__).with_name("bench-crd.yaml")
JOB_NAME_ANNOTATION = "jobline.dev/job-name"
JOBLINE_SCHEDULED = "jobline.dev/scheduled-time"
CRONJOB_SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


@dataclass(frozen=True)
class Sizes:
    mode: str
    dispatch_n: int  # scenario 1: jobs measured one at a time (after the warm-up ones)
    dispatch_warmup: int
    throughput_n: int  # scenario 2: jobs created at once
    drain_n: int
    drain_concurrency: int
    cron_m: int  # scenario 3: schedules
    cron_fires: int  # runs per schedule measured
    cron_schedule: str  # "* * * * *" (every minute) or "@every 5s" (smoke)
    cron_grace: float  # seconds after the last instant before runs count as missed
    scale_n: int  # scenario 4: pending jobs in one queue
    scale_window: float  # seconds of draining measured
    scale_first_deadline: float
    ceiling_n: int  # scenario 5: objects created, then status-patched
    kubectl_runs: int


SIZES = {
    "full": Sizes(
        "full",
        dispatch_n=50,
        dispatch_warmup=2,
        throughput_n=1000,
        drain_n=1000,
        drain_concurrency=50,
        cron_m=200,
        cron_fires=3,
        cron_schedule="* * * * *",
        cron_grace=60,
        scale_n=10_000,
        scale_window=60,
        scale_first_deadline=900,
        ceiling_n=3000,
        kubectl_runs=3,
    ),
    "quick": Sizes(
        "quick",
        dispatch_n=20,
        dispatch_warmup=2,
        throughput_n=200,
        drain_n=200,
        drain_concurrency=50,
        cron_m=200,
        cron_fires=1,
        cron_schedule="* * * * *",
        cron_grace=45,
        scale_n=2000,
        scale_window=20,
        scale_first_deadline=300,
        ceiling_n=1000,
        kubectl_runs=2,
    ),
    "smoke": Sizes(
        "smoke",
        dispatch_n=3,
        dispatch_warmup=1,
        throughput_n=5,
        drain_n=5,
        drain_concurrency=2,
        cron_m=2,
        cron_fires=1,
        cron_schedule="@every 5s",
        cron_grace=40,
        scale_n=50,
        scale_window=3,
        scale_first_deadline=60,
        ceiling_n=20,
        kubectl_runs=1,
    ),
}


@dataclass
class Ctx:
    env: ClusterEnv
    api: Api
    bulk: Bulk
    sizes: Sizes
    workdir: Path
    log: Callable[[str], None]
    profile: bool = True
    peers: tuple[str, ...] = ("job", "job-raised")  # the Job controller at its defaults / limits raised
    results: dict[str, Any] = field(default_factory=dict)

    def operator(self, namespace: str, tag: str) -> Operator:
        return Operator(self.env.kubeconfig, self.workdir / f"operator-{tag}.log", namespace)

    def component_cpu(self) -> dict[str, float]:
        return {name: proc_cpu_seconds(pid) for name, pid in self.env.pids().items()}


# ------------------------------------------------------------------------------------------ objects
def worker_template() -> dict[str, Any]:
    return {
        "image": "bench",
        "command": ["true"],
        "nodeSelector": dict(KWOK_SELECTOR),
        "tolerations": [dict(KWOK_TOLERATION)],
    }


def pod_spec() -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "nodeSelector": dict(KWOK_SELECTOR),
        "tolerations": [dict(KWOK_TOLERATION)],
        "containers": [{"name": "worker", "image": "bench", "command": ["true"]}],
    }


def queue_body(name: str, concurrency: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": worker_template()}
    if concurrency is not None:
        spec["concurrency"] = concurrency
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "JobQueue", "metadata": {"name": name}, "spec": spec}


def qj_spec() -> dict[str, Any]:
    return {"handler": "bench", "queue": "bench", "payload": {}}


def qj_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "QueuedJob",
        "metadata": {"name": name},
        "spec": qj_spec(),
    }


def job_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec()}},
    }


def path_of(side: str, ns: str, plural: str | None = None) -> str:
    if side == "jobline":
        return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural or 'queuedjobs'}"
    return f"/apis/batch/v1/namespaces/{ns}/{plural or 'jobs'}"


PEER = {
    "jobline": "Jobline",
    "job": "batch/v1 Job (kube-controller-manager at its defaults)",
    "job-raised": "batch/v1 Job (kube-controller-manager, limits raised)",
}


def kind(side: str) -> str:
    """``jobline`` or ``job``: the peer's sides (defaults, limits raised) share its objects."""
    return "jobline" if side == "jobline" else "job"


def suffix(side: str) -> str:
    """The key suffix of a peer's ratios: ``ratio_p50`` against the defaults, ``ratio_raised_p50``."""
    return "_raised" if side == "job-raised" else ""


# ------------------------------------------------------------------------------------------ watch handlers
def object_handler(rec: Recorder, side: str) -> Callable[[str, dict[str, Any], float], None]:
    """QueuedJobs or Jobs: "obj" when first seen, "done" when finished well, "failed" when not."""

    def handle(kind: str, obj: dict[str, Any], t: float) -> None:
        if kind == "DELETED":
            return
        name = obj["metadata"]["name"]
        rec.mark("obj", name, t)
        status = obj.get("status") or {}
        if side == "jobline":
            phase = status.get("phase")
            if phase == "Succeeded":
                rec.mark("done", name, t)
            elif phase == "Failed":
                rec.mark("failed", name, t)
        else:
            for cond in status.get("conditions") or []:
                if cond.get("status") == "True" and cond.get("type") == "Complete":
                    rec.mark("done", name, t)
                elif cond.get("status") == "True" and cond.get("type") == "Failed":
                    rec.mark("failed", name, t)

    return handle


def pod_owner(side: str, pod: dict[str, Any]) -> str | None:
    meta = pod.get("metadata") or {}
    if side == "jobline":
        return (meta.get("annotations") or {}).get(JOB_NAME_ANNOTATION)
    labels = meta.get("labels") or {}
    return labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")


POD_SELECTOR = {"jobline": "jobline.dev/job", "job": "batch.kubernetes.io/job-name"}


def pod_handler(rec: Recorder, side: str) -> Callable[[str, dict[str, Any], float], None]:
    def handle(kind: str, obj: dict[str, Any], t: float) -> None:
        owner = pod_owner(side, obj)
        if owner is None or kind == "DELETED":
            return
        rec.mark("pod", owner, t)
        if (obj.get("status") or {}).get("phase") == "Succeeded":
            rec.mark("pod_done", owner, t)

    return handle


def watch_side(ctx: Ctx, watches: Watches, rec: Recorder, side: str, ns: str, objects: bool = True) -> None:
    if objects:
        watches.add(Watch(ctx.api, path_of(side, ns), object_handler(rec, side), name=f"{side}-objects"))
    watches.add(
        Watch(
            ctx.api,
            f"/api/v1/namespaces/{ns}/pods",
            pod_handler(rec, side),
            label_selector=POD_SELECTOR[kind(side)],
            name=f"{side}-pods",
        )
    )


def setup_side(ctx: Ctx, side: str, ns: str, concurrency: int | None = None) -> None:
    ctx.api.ensure_namespace(ns, BENCH_LABELS)
    if side != "jobline":
        restart = ctx.env.peer_limits(side == "job-raised")
        if restart:
            ctx.log(f"  kube-controller-manager restarted for {side} in {restart:.1f}s")
    if side == "jobline":
        try:
            ctx.api.request("POST", path_of("jobline", ns, "jobqueues"), queue_body("bench", concurrency))
        except Exception as exc:
            if "409" not in str(exc):
                raise


def _ratios(res: dict[str, Any], key: str, peers: tuple[str, ...] = ("job",)) -> None:
    """Jobline's p50 and p99 of ``key`` over each peer's (``ratio_p50``, ``ratio_raised_p50``)."""
    for peer in peers:
        for p in ("p50", "p99"):
            res[f"ratio{suffix(peer)}_{p}"] = ratio(res["jobline"][key][p], res[peer][key][p])


def _check_operator(op: Operator | None, out: dict[str, Any]) -> None:
    if op is not None:
        out["operator_tracebacks"] = op.tracebacks()


# ------------------------------------------------------------------------------------------ 1 dispatch latency
def dispatch_latency(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    res: dict[str, Any] = {
        "n": s.dispatch_n,
        "warmup": s.dispatch_warmup,
        "what": "object first seen by a client watch -> its worker pod first seen, one job at a time",
    }
    for side in ("jobline", *ctx.peers):
        ns = f"bench-dispatch-{side}"
        setup_side(ctx, side, ns)
        rec = Recorder()
        op = ctx.operator(ns, "dispatch") if side == "jobline" else None
        out: dict[str, Any] = {}
        try:
            if op is not None:
                op.start()
            with Watches() as watches:
                watch_side(ctx, watches, rec, side, ns)
                lat: list[float] = []
                from_post: list[float] = []
                missing = 0
                for i in range(s.dispatch_warmup + s.dispatch_n):
                    name = f"d-{i}"
                    body = qj_body(name) if side == "jobline" else job_body(name)
                    sent = time.monotonic()
                    ctx.api.request("POST", path_of(side, ns), body)
                    t_pod = rec.wait_key("pod", name, sent + 30)
                    t_obj = rec.wait_key("obj", name, time.monotonic() + 5)
                    if t_pod is None or t_obj is None:
                        missing += 1
                        continue
                    if i >= s.dispatch_warmup:
                        lat.append(t_pod - t_obj)
                        from_post.append(t_pod - sent)
                    time.sleep(0.25)
            out.update(latency_s=summary(lat), from_post_s=summary(from_post), missing=missing)
            _check_operator(op, out)
        finally:
            if op is not None:
                op.stop()
        res[side] = out
        ctx.log(f"  dispatch {side}: p50 {out['latency_s']['p50']}s p99 {out['latency_s']['p99']}s")
    _ratios(res, "latency_s", ctx.peers)
    return res


# ------------------------------------------------------------------------------------------ 2 throughput
# Writes made by the controller under test (the rest: our own creates, the scheduler's bindings and
# events, kwok's pod/node status and leases).
CONTROLLER_WRITES = {
    "jobline": lambda k: (
        (f" {GROUP} " in k and k != f"POST {GROUP} queuedjobs")
        or k in ("POST core pods", "DELETE core pods", "POST core events", "PATCH core events")
    ),
    "job": lambda k: (
        (" batch " in k and k != "POST batch jobs")
        or k
        in (
            "POST core pods",
            "PATCH core pods",
            "PUT core pods",
            "DELETE core pods",
            "POST core events",
            "PATCH core events",
        )
    ),
}


def run_batch(
    ctx: Ctx, side: str, ns: str, n: int, concurrency: int | None = None, profile_tag: str | None = None
) -> dict[str, Any]:
    """Create ``n`` jobs at once; until all finished. Counts the apiserver's writes meanwhile."""
    setup_side(ctx, side, ns, concurrency)
    rec = Recorder()
    op = ctx.operator(ns, ns) if side == "jobline" else None
    prof: Profiler | None = None
    out: dict[str, Any] = {"n": n, "concurrency": concurrency}
    try:
        if op is not None:
            op.start()
            if profile_tag and ctx.profile:
                prof = Profiler(op.pid, ctx.workdir / f"profile-{profile_tag}.txt")
                time.sleep(0.5)
        with Watches() as watches:
            watch_side(ctx, watches, rec, side, ns)
            before = write_counts(ctx.api)
            cpu0 = ctx.component_cpu()
            op_cpu0 = op.cpu_seconds() if op else 0.0
            requests = [
                Request(
                    "POST", path_of(side, ns), qj_body(f"t-{i}") if side == "jobline" else job_body(f"t-{i}")
                )
                for i in range(n)
            ]
            bulk = ctx.bulk.run(requests)
            deadline = bulk.started + 120 + n * 1.0
            complete = rec.wait_count("done", n, deadline)
            t_end = time.monotonic()
            time.sleep(3)  # Events posted in the background, the queue's status (every 2 s)
            after = write_counts(ctx.api)
            cpu1 = ctx.component_cpu()
            op_cpu1 = op.cpu_seconds() if op else 0.0
        done, pods, objs = rec.get("done"), rec.get("pod"), rec.get("obj")
        last = max(done.values()) if done else t_end
        seconds = last - bulk.started
        writes = diff_counts(before, after)
        controller = {k: v for k, v in writes.items() if CONTROLLER_WRITES[kind(side)](k)}
        out.update(
            complete=complete,
            finished=len(done),
            failed=rec.count("failed"),
            create_errors=len(bulk.errors),
            create_seconds=round(bulk.seconds, 3),
            seconds_to_all_finished=round(seconds, 3),
            jobs_per_s=round(len(done) / seconds, 2) if seconds > 0 else None,
            seconds_to_all_pods=round(max(pods.values()) - bulk.started, 3) if pods else None,
            pod_latency_s=summary([pods[k] - objs[k] for k in pods if k in objs]),
            writes_total=sum(writes.values()),
            writes_per_job=round(sum(writes.values()) / n, 2),
            controller_writes_per_job=round(sum(controller.values()) / n, 2),
            writes=writes,
            controller_writes=controller,
            cpu_seconds={k: round(cpu1.get(k, 0) - v, 2) for k, v in cpu0.items()},
        )
        if op is not None:
            out["cpu_seconds"]["jobline-operator"] = round(op_cpu1 - op_cpu0, 2)
            out["operator_memory_mb"] = op.memory()
        # The controller's CPU per job: the operator's, or kube-controller-manager's (all its controllers,
        # which idle apart from the Job controller and the garbage collector), from /proc.
        controller_cpu = out["cpu_seconds"].get("jobline-operator" if op else "kube-controller-manager")
        out["controller_cpu_ms_per_job"] = round(controller_cpu * 1000 / n, 2) if controller_cpu else None
        if bulk.errors:
            out["create_error_sample"] = bulk.errors[:3]
        _check_operator(op, out)
    finally:
        if prof is not None:
            raw = prof.stop()
            out["profile"] = read_profile(raw) if raw else {"error": prof.error}
        if op is not None:
            op.stop()
    return out


def throughput(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    res: dict[str, Any] = {
        "n": s.throughput_n,
        "what": "N no-op jobs created at once (no concurrency limit) -> all finished",
    }
    res["jobline"] = run_batch(ctx, "jobline", "bench-tput-jobline", s.throughput_n, profile_tag="throughput")
    ctx.log(
        f"  throughput jobline: {res['jobline']['seconds_to_all_finished']}s ({res['jobline']['jobs_per_s']}/s)"
    )
    for peer in ctx.peers:
        res[peer] = run_batch(ctx, peer, f"bench-tput-{peer}", s.throughput_n)
        ctx.log(f"  throughput {peer}: {res[peer]['seconds_to_all_finished']}s ({res[peer]['jobs_per_s']}/s)")
    res["jobline_drain"] = run_batch(
        ctx, "jobline", "bench-drain-jobline", s.drain_n, concurrency=s.drain_concurrency
    )
    ctx.log(f"  drain (concurrency {s.drain_concurrency}): {res['jobline_drain']['jobs_per_s']}/s")
    for peer in ctx.peers:
        jl, other = res["jobline"], res[peer]
        res[f"ratio{suffix(peer)}_jobs_per_s"] = ratio(jl["jobs_per_s"], other["jobs_per_s"])
        res[f"ratio{suffix(peer)}_pod_latency_p50"] = ratio(
            jl["pod_latency_s"]["p50"], other["pod_latency_s"]["p50"]
        )
        res[f"ratio{suffix(peer)}_controller_cpu"] = ratio(
            jl["controller_cpu_ms_per_job"], other["controller_cpu_ms_per_job"]
        )
    return res


# ------------------------------------------------------------------------------------------ 3 cron lateness
def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        base, _, frac = text.rstrip("Z").partition(".")
        seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return seconds + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return None


def run_handler(rec: Recorder, side: str) -> Callable[[str, dict[str, Any], float], None]:
    """Runs of schedules: "run" when first seen, with (schedule, nominal instant) as datum."""

    def handle(kind: str, obj: dict[str, Any], t: float) -> None:
        if kind == "DELETED":
            return
        meta = obj["metadata"]
        annotations = meta.get("annotations") or {}
        owner = next((o.get("name") for o in meta.get("ownerReferences") or []), None)
        if side == "jobline":
            nominal = _epoch(annotations.get(JOBLINE_SCHEDULED))
        else:
            nominal = _epoch(annotations.get(CRONJOB_SCHEDULED))
            if nominal is None:  # <cronjob>-<unix minutes>
                suffix = meta["name"].rsplit("-", 1)[-1]
                nominal = int(suffix) * 60.0 if suffix.isdigit() else None
        if owner and nominal is not None:
            rec.mark("run", meta["name"], t, (owner, nominal))

    return handle


def _every_seconds(schedule: str) -> float | None:
    if not schedule.startswith("@every "):
        return None
    total, num = 0.0, ""
    for ch in schedule[len("@every ") :]:
        if ch.isdigit():
            num += ch
        else:
            total += int(num or 0) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total


def _counted(
    rec: Recorder, m: int, fires: int, created_wall: float, boundaries: list[float] | None
) -> dict[str, float]:
    """The runs that count: nominal after the schedules were made; per schedule its first ``fires`` runs
    (every-minute schedules: only the expected minute boundaries). -> run name: lateness (s)."""
    seen = rec.get("run")
    data = rec.datum("run")
    per_owner: dict[str, list[tuple[float, str]]] = {}
    for name, (owner, nominal) in data.items():
        if nominal < created_wall - 1:
            continue
        if boundaries is not None and not any(abs(nominal - b) < 0.5 for b in boundaries):
            continue
        per_owner.setdefault(owner, []).append((nominal, name))
    out: dict[str, float] = {}
    for runs in per_owner.values():
        for nominal, name in sorted(runs)[:fires]:
            out[name] = wall(seen[name]) - nominal
    return out


def cron_lateness(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    every = _every_seconds(s.cron_schedule)
    res: dict[str, Any] = {
        "m": s.cron_m,
        "fires": s.cron_fires,
        "schedule": s.cron_schedule,
        "what": "scheduled instant -> the run's job first seen by a client watch",
    }
    for side in ("jobline", "job"):
        ns = f"bench-cron-{side}"
        setup_side(ctx, side, ns)
        rec = Recorder()
        op = ctx.operator(ns, "cron") if side == "jobline" else None
        out: dict[str, Any] = {}
        plural = "jobschedules" if side == "jobline" else "cronjobs"
        try:
            if op is not None:
                op.start()
            with Watches() as watches:
                watches.add(Watch(ctx.api, path_of(side, ns), run_handler(rec, side), name=f"{side}-runs"))
                if every is None:  # minute schedules: all made well before the next boundary
                    sec = time.time() % 60
                    if sec > 35:
                        time.sleep(61 - sec)
                created_wall = time.time()
                reqs = []
                for i in range(s.cron_m):
                    if side == "jobline":
                        body = {
                            "apiVersion": f"{GROUP}/{VERSION}",
                            "kind": "JobSchedule",
                            "metadata": {"name": f"s-{i}"},
                            "spec": {"schedule": s.cron_schedule, "jobTemplate": {"spec": qj_spec()}},
                        }
                    else:
                        body = {
                            "apiVersion": "batch/v1",
                            "kind": "CronJob",
                            "metadata": {"name": f"s-{i}"},
                            "spec": {
                                "schedule": s.cron_schedule,
                                "jobTemplate": {
                                    "spec": {"backoffLimit": 0, "template": {"spec": pod_spec()}}
                                },
                            },
                        }
                    reqs.append(Request("POST", path_of(side, ns, plural), body))
                bulk = ctx.bulk.run(reqs)
                made_wall = time.time()
                boundaries: list[float] | None = None
                if every is None:
                    first = math.floor(made_wall / 60) * 60 + 60
                    boundaries = [first + 60 * k for k in range(s.cron_fires)]
                    end_wall = boundaries[-1] + s.cron_grace
                else:
                    end_wall = made_wall + every * s.cron_fires + s.cron_grace
                expected = s.cron_m * s.cron_fires
                while time.time() < end_wall:
                    if len(_counted(rec, s.cron_m, s.cron_fires, created_wall, boundaries)) >= expected:
                        break
                    time.sleep(0.25)
                time.sleep(0.5)
                late = _counted(rec, s.cron_m, s.cron_fires, created_wall, boundaries)
            # Stop the firing: the operator (Jobline), suspend every CronJob (no cascade of deletions).
            if op is not None:
                _check_operator(op, out)
                op.stop()
                op = None
            else:
                ctx.bulk.run(
                    [
                        Request(
                            "PATCH", f"{path_of(side, ns, plural)}/s-{i}", {"spec": {"suspend": True}}, MERGE
                        )
                        for i in range(s.cron_m)
                    ]
                )
            values = list(late.values())
            out.update(
                lateness_s=summary(values, 3),
                expected=expected,
                seen=len(values),
                missed=expected - len(values),
                create_seconds=round(bulk.seconds, 2),
                create_errors=len(bulk.errors),
                instants=boundaries,
            )
        finally:
            if op is not None:
                op.stop()
        res[side] = out
        ctx.log(f"  cron {side}: {out['lateness_s']} missed {out['missed']}")
    _ratios(res, "lateness_s")
    return res


# ------------------------------------------------------------------------------------------ 4 scale
def scale(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    ns = "bench-scale"
    n = s.scale_n
    res: dict[str, Any] = {
        "n": n,
        "queue_concurrency": s.drain_concurrency,
        "what": "N pending QueuedJobs in one queue, created while the operator is down; then it starts",
    }
    setup_side(ctx, "jobline", ns, s.drain_concurrency)
    bulk = ctx.bulk.run([Request("POST", path_of("jobline", ns), qj_body(f"p-{i}")) for i in range(n)])
    res["create_seconds"] = round(bulk.seconds, 2)
    res["create_errors"] = len(bulk.errors)
    res["kubectl_get_qj_s_before"] = [
        round(kubectl_seconds(ctx.env.kubeconfig, "get", "qj", "-n", ns)[0], 2) for _ in range(s.kubectl_runs)
    ]
    rec = Recorder()
    op = ctx.operator(ns, "scale")
    prof: Profiler | None = None
    rss: list[float] = []
    try:
        with Watches() as watches:
            watch_side(ctx, watches, rec, "jobline", ns, objects=False)
            op.start(wait=False)
            if ctx.profile:
                time.sleep(0.3)
                prof = Profiler(op.pid, ctx.workdir / "profile-scale.txt")
            deadline = op.started + s.scale_first_deadline
            while rec.count("pod") == 0 and time.monotonic() < deadline:
                if "rss_mb_at_sync" not in res and op.poll_ready() is not None:
                    res["rss_mb_at_sync"] = op.memory().get("VmRSS")  # within 0.2 s of /readyz saying ready
                rss.append(op.memory().get("VmRSS", 0.0))
                if op.proc is not None and op.proc.poll() is not None:
                    raise RuntimeError(f"the operator exited; see {op.log}")
                time.sleep(0.2)
            pods = rec.get("pod")
            conc = s.drain_concurrency
            if pods:
                first = min(pods.values())
                res["seconds_start_to_synced"] = round(op.ready_at - op.started, 2) if op.ready_at else None
                res["seconds_start_to_first_dispatch"] = round(first - op.started, 2)
                # The first batch (`concurrency` pods) starts at once; the refill of the queue comes
                # after the operator's first step ends. Draining is measured from that refill on.
                while rec.count("pod") <= conc and time.monotonic() < deadline:
                    rss.append(op.memory().get("VmRSS", 0.0))
                    time.sleep(0.2)
                times = sorted(rec.get("pod").values())
                if len(times) > conc:
                    refill = times[conc]
                    res["seconds_first_dispatch_to_refill"] = round(refill - first, 2)
                    end = refill + s.scale_window
                    while time.monotonic() < end and rec.count("pod") < n:
                        rss.append(op.memory().get("VmRSS", 0.0))
                        time.sleep(0.5)
                    window = [t for t in rec.get("pod").values() if refill <= t <= end]
                    span = (max(window) - refill) if rec.count("pod") >= n else s.scale_window
                    res["dispatched_in_window"] = len(window)
                    res["window_s"] = round(span, 2)
                    res["dispatch_per_s"] = round(len(window) / span, 2) if span > 0 else None
                else:
                    res["error"] = f"the queue was not refilled within {s.scale_first_deadline}s"
            else:
                res["seconds_start_to_first_dispatch"] = None
                res["error"] = f"no dispatch within {s.scale_first_deadline}s"
            mem = op.memory()
            res["rss_mb_peak_sampled"] = max(rss) if rss else None
            res["rss_mb_end"] = mem.get("VmRSS")
            res["rss_mb_hwm"] = mem.get("VmHWM")
            res["operator_cpu_s"] = round(op.cpu_seconds(), 2)
            _check_operator(op, res)
    finally:
        if prof is not None:
            raw = prof.stop()
            res["profile"] = read_profile(raw) if raw else {"error": prof.error}
        op.stop()
    res["kubectl_get_qj_s_after"] = [
        round(kubectl_seconds(ctx.env.kubeconfig, "get", "qj", "-n", ns)[0], 2) for _ in range(s.kubectl_runs)
    ]
    ctx.log(
        f"  scale: first dispatch {res.get('seconds_start_to_first_dispatch')}s, "
        f"{res.get('dispatch_per_s')}/s, RSS {res.get('rss_mb_hwm')} MB"
    )
    return res


# ------------------------------------------------------------------------------------------ 5 ceiling
def ceiling(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    n = s.ceiling_n
    ns = "bench-ceiling"
    kubectl(ctx.env.kubeconfig, "apply", "--server-side", "-f", str(CRD_FILE), timeout=120)
    kubectl(
        ctx.env.kubeconfig,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/benchitems.{BENCH_GROUP}",
        timeout=120,
    )
    ctx.api.ensure_namespace(ns, BENCH_LABELS)
    base = f"/apis/{BENCH_GROUP}/v1/namespaces/{ns}/benchitems"
    # The discovery cache of the apiserver needs a moment for a new CRD: the first create proves it is served.
    wait_for(
        lambda: ctx.api.request(
            "POST",
            base,
            {
                "apiVersion": f"{BENCH_GROUP}/v1",
                "kind": "BenchItem",
                "metadata": {"name": "warm"},
                "spec": {"n": -1},
            },
        ),
        30,
        "the bench CRD to be served",
    )
    res: dict[str, Any] = {
        "n": n,
        "client": f"{ctx.bulk.processes} processes x {ctx.bulk.threads} threads",
        "what": "a trivial namespaced custom resource with a status subresource",
    }
    for what, reqs in (
        (
            "create",
            [
                Request(
                    "POST",
                    base,
                    {
                        "apiVersion": f"{BENCH_GROUP}/v1",
                        "kind": "BenchItem",
                        "metadata": {"name": f"b-{i}"},
                        "spec": {"n": i},
                    },
                )
                for i in range(n)
            ],
        ),
        (
            "status_patch",
            [
                Request("PATCH", f"{base}/b-{i}/status", {"status": {"phase": "Done", "n": i}}, MERGE)
                for i in range(n)
            ],
        ),
    ):
        cpu0 = ctx.component_cpu()
        r = ctx.bulk.run(reqs)
        cpu1 = ctx.component_cpu()
        res[what] = {
            "per_s": round(n / r.seconds, 1),
            "seconds": round(r.seconds, 2),
            "errors": len(r.errors),
            "cpu_seconds": {
                k: round(cpu1.get(k, 0) - v, 2) for k, v in cpu0.items() if k in ("kube-apiserver", "etcd")
            },
            "client_cpu_seconds": round(r.client_cpu_seconds, 2),
        }
        ctx.log(f"  ceiling {what}: {res[what]['per_s']}/s")
    return res


def combine_ceiling(results: dict[str, Any]) -> None:
    """Throughput as a fraction of the physical limit: the ceiling's write rates over the writes a job needs."""
    tput, ceil = results.get("throughput"), results.get("ceiling")
    if not isinstance(tput, dict) or not isinstance(ceil, dict) or "error" in tput or "error" in ceil:
        return
    create_rate = ceil["create"]["per_s"]
    patch_rate = ceil["status_patch"]["per_s"]
    out = {}
    for side in ("jobline", "job", "job-raised"):
        if side not in tput:
            continue
        writes = tput[side]["writes"]
        creates = sum(v for k, v in writes.items() if k.startswith("POST "))
        others = sum(v for k, v in writes.items() if not k.startswith("POST "))
        n = tput[side]["n"]
        seconds_per_job = (creates / n) / create_rate + (others / n) / patch_rate
        limit = 1 / seconds_per_job if seconds_per_job > 0 else None
        out[side] = {
            "writes_per_job": tput[side]["writes_per_job"],
            "controller_writes_per_job": tput[side]["controller_writes_per_job"],
            "ceiling_jobs_per_s": round(limit, 1) if limit else None,
            "fraction_of_ceiling": ratio(tput[side]["jobs_per_s"], limit),
        }
    ceil["per_job"] = out


SCENARIOS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "ceiling": ceiling,
    "dispatch": dispatch_latency,
    "throughput": throughput,
    "cron": cron_lateness,
    "scale": scale,
}
NUMBERS = {"dispatch": "1", "throughput": "2", "cron": "3", "scale": "4", "ceiling": "5"}
