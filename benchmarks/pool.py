"""``python -m benchmarks.pool [--quick | --smoke]``: pool mode against pod-per-attempt and the Job controller,
where code really runs (the real node: kubelet, containerd, runc), side by side in one run.

Scenarios (issue 16):

- **dispatch**, one job at a time: created -> handler started, for a Jobline Pool queue (warm: one worker),
  a Jobline PodPerAttempt queue and batch/v1 Job (created -> its container seen running). Jobline's handler
  returns ``time.time()`` when it starts (same host clock as the client); every side also gets
  created -> container running from a pod watch where it has a pod per attempt.
- **throughput**: N trivial jobs created at once, until all finished: jobs/s, the apiserver's writes per job
  counted as scenario 2 of ``python -m benchmarks`` counts them (the controller's and the worker's, Events
  included; not our own creates), the operator's CPU per 1,000 jobs.
- **ceiling**: scenario 5's trivial custom-resource writes per second in the same run, so the pool's
  throughput can be put against the physical limit: ceiling jobs/s = 1 / (creates/job / create rate +
  other writes/job / patch rate).

The Job controller runs with kube-controller-manager's defaults and with its limits raised (``--peer-limits``).
Results: ``benchmarks/results/<date>-pool.json``; the table is printed and goes into benchmarks/README.md by
hand (the README explains it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kube import Api, Bulk, Request, Watch, Watches, install_crds, kubectl

from . import env as benv
from .measure import Recorder, diff_counts, write_counts
from .scenarios import BENCH_LABELS, CONTROLLER_WRITES, GROUP, VERSION, Ctx, Sizes, ceiling
from .stats import ratio, summary

WORKER_IMAGE_NAME = "jobline-worker"
REAL = {"nodeSelector": {"jobline.dev/node": "real"}}
RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pool-worker}
rules:
  - {apiGroups: [jobline.dev], resources: [queuedjobs], verbs: [get, list, watch]}
  - {apiGroups: [jobline.dev], resources: [queuedjobs/status], verbs: [get, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pool-worker}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pool-worker}
subjects: [{kind: ServiceAccount, name: default, namespace: NS}]
"""


@dataclass(frozen=True)
class PoolSizes:
    dispatch_n: int
    pool_n: int  # jobs of the pool's throughput run
    pod_n: int  # jobs of the pod-per-attempt and Job throughput runs (a container start each)
    ceiling_n: int
    max_replicas: int
    slots: int


SIZES = {
    "full": PoolSizes(dispatch_n=30, pool_n=2000, pod_n=200, ceiling_n=1000, max_replicas=2, slots=8),
    "quick": PoolSizes(dispatch_n=15, pool_n=500, pod_n=60, ceiling_n=500, max_replicas=2, slots=8),
    "smoke": PoolSizes(dispatch_n=3, pool_n=20, pod_n=3, ceiling_n=20, max_replicas=1, slots=2),
}
SIDES = ("pool", "pod", "job", "job-raised")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def worker_image() -> str:
    import jobline

    return f"{WORKER_IMAGE_NAME}:{jobline.__version__}"


def template() -> dict[str, Any]:
    return {
        "image": worker_image(),
        "imagePullPolicy": "Never",
        "command": ["jobline-worker", "--import", "tests.e2e.handlers"],
        **REAL,
    }


def queue_body(mode: str, sizes: PoolSizes, min_replicas: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template()}
    if mode == "pool":
        spec["workers"] = {
            "mode": "Pool",
            "minReplicas": min_replicas,
            "maxReplicas": sizes.max_replicas,
            "slotsPerWorker": sizes.slots,
            "scaleDownAfterSeconds": 300,
        }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobQueue",
        "metadata": {"name": "bench"},
        "spec": spec,
    }


def qj_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "QueuedJob",
        "metadata": {"name": name},
        "spec": {"handler": "stamp", "queue": "bench", "payload": {}},
    }


def job_body(name: str) -> dict[str, Any]:
    container = {
        "name": "worker",
        "image": worker_image(),
        "imagePullPolicy": "Never",
        "command": ["python3", "-c", "import time; print(time.time())"],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container], **REAL}},
        },
    }


def _path(side: str, ns: str) -> str:
    if side in ("pool", "pod"):
        return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/queuedjobs"
    return f"/apis/batch/v1/namespaces/{ns}/jobs"


def _owner(side: str, pod: dict[str, Any]) -> str | None:
    meta = pod.get("metadata") or {}
    if side == "pod":
        return (meta.get("annotations") or {}).get("jobline.dev/job-name")
    labels = meta.get("labels") or {}
    return labels.get("batch.kubernetes.io/job-name")


def _handlers(rec: Recorder, side: str) -> tuple[Any, Any]:
    def on_object(kind: str, obj: dict[str, Any], t: float) -> None:
        if kind == "DELETED":
            return
        name, st = obj["metadata"]["name"], obj.get("status") or {}
        rec.mark("obj", name, t)
        if side in ("pool", "pod"):
            if st.get("phase") == "Succeeded":
                rec.mark("done", name, t, (st.get("result") or {}).get("t"))
            elif st.get("phase") == "Failed":
                rec.mark("failed", name, t)
        else:
            for c in st.get("conditions") or ():
                if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
                    rec.mark("done" if c["type"] == "Complete" else "failed", name, t)

    def on_pod(kind: str, pod: dict[str, Any], t: float) -> None:
        owner = _owner(side, pod)
        if owner is None or kind == "DELETED":
            return
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            state = cs.get("state") or {}
            if state.get("running") or state.get("terminated"):
                rec.mark("running", owner, t, time.time())

    return on_object, on_pod


class Bench:
    def __init__(self, sizes: PoolSizes, mode: str, workdir: Path) -> None:
        self.sizes, self.mode = sizes, mode
        self.env = benv.ClusterEnv(kwok_nodes=0, real_node=True, workdir=workdir)
        self.results: dict[str, Any] = {}

    def setup(self, side: str, ns: str, min_replicas: int = 0) -> None:
        self.api.ensure_namespace(ns, BENCH_LABELS)
        if side in ("job", "job-raised"):
            took = self.env.peer_limits(side == "job-raised")
            if took:
                _log(f"  kube-controller-manager restarted for {side} in {took:.1f}s")
            return
        kubectl(self.env.kubeconfig, "apply", "-n", ns, "-f", "-", input=RBAC.replace("NS", ns))
        self.api.request(
            "POST",
            f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/jobqueues",
            queue_body(side, self.sizes, min_replicas),
        )

    def operator(self, ns: str, tag: str) -> benv.Operator:
        return benv.Operator(self.env.kubeconfig, self.env.workdir / "bench" / f"operator-{tag}.log", ns)

    def watches(self, watches: Watches, rec: Recorder, side: str, ns: str) -> None:
        on_object, on_pod = _handlers(rec, side)
        watches.add(Watch(self.api, _path(side, ns), on_object, name=f"{side}-objects"))
        if side != "pool":
            selector = "jobline.dev/job" if side == "pod" else "batch.kubernetes.io/job-name"
            watches.add(
                Watch(
                    self.api,
                    f"/api/v1/namespaces/{ns}/pods",
                    on_pod,
                    label_selector=selector,
                    name=f"{side}-pods",
                )
            )

    def ready_workers(self, ns: str, want: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = self.api.request("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/jobqueues/bench")
            if ((q.get("status") or {}).get("workers") or {}).get("ready", 0) >= want:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{want} ready pool workers in {ns}")

    # ------------------------------------------------------------------------------ dispatch
    def dispatch(self) -> dict[str, Any]:
        n = self.sizes.dispatch_n
        res: dict[str, Any] = {
            "n": n,
            "what": "created (POST sent) -> handler started / container running, one at a time",
        }
        for side in SIDES:
            ns = f"pool-dispatch-{side}"
            self.setup(side, ns, min_replicas=1)
            op = self.operator(ns, f"dispatch-{side}") if side in ("pool", "pod") else None
            rec = Recorder()
            handler, container = [], []
            try:
                if op is not None:
                    op.start()
                if side == "pool":
                    self.ready_workers(ns, 1)
                with Watches() as watches:
                    self.watches(watches, rec, side, ns)
                    for i in range(n + 2):  # two warm-up jobs (image caches, imports, connections)
                        name = f"d-{i}"
                        body = qj_body(name) if side in ("pool", "pod") else job_body(name)
                        sent = time.time()
                        self.api.request("POST", _path(side, ns), body)
                        if rec.wait_key("done", name, time.monotonic() + 120) is None:
                            raise TimeoutError(f"{side}: job {name} did not finish")
                        if i < 2:
                            continue
                        t = rec.datum("done").get(name)
                        if isinstance(t, int | float):
                            handler.append(t - sent)
                        running = rec.datum("running").get(name)
                        if isinstance(running, int | float):
                            container.append(running - sent)
                        time.sleep(0.2)
            finally:
                if op is not None:
                    op.stop()
            res[side] = {"handler_started_s": summary(handler), "container_running_s": summary(container)}
            _log(
                f"  dispatch {side}: handler p50 {res[side]['handler_started_s']['p50']}s, container p50 {res[side]['container_running_s']['p50']}s"
            )
        job = res["job"]["container_running_s"]
        for side in ("pool", "pod"):
            mine = res[side]["handler_started_s"]
            for peer in ("job", "job-raised"):
                tag = "_raised" if peer == "job-raised" else ""
                res[f"ratio_{side}{tag}_p50"] = ratio(mine["p50"], res[peer]["container_running_s"]["p50"])
                res[f"ratio_{side}{tag}_p99"] = ratio(mine["p99"], res[peer]["container_running_s"]["p99"])
        res["target_pool_p50_s"] = 0.05
        res["pool_p50_vs_job"] = ratio(res["pool"]["handler_started_s"]["p50"], job["p50"])
        return res

    # ---------------------------------------------------------------------------- throughput
    def batch(self, side: str, n: int) -> dict[str, Any]:
        ns = f"pool-tput-{side}"
        self.setup(side, ns, min_replicas=self.sizes.max_replicas if side == "pool" else 0)
        op = self.operator(ns, f"tput-{side}") if side in ("pool", "pod") else None
        rec = Recorder()
        out: dict[str, Any] = {"n": n}
        try:
            if op is not None:
                op.start()
            if side == "pool":  # warm: the pool at maxReplicas, as a busy queue would have it
                self.ready_workers(ns, self.sizes.max_replicas)
            with Watches() as watches:
                self.watches(watches, rec, side, ns)
                before = write_counts(self.api)
                cpu0 = {k: benv.proc_cpu_seconds(p) for k, p in self.env.pids().items()}
                op0 = op.cpu_seconds() if op else 0.0
                body = qj_body if side in ("pool", "pod") else job_body
                result = self.bulk.run([Request("POST", _path(side, ns), body(f"t-{i}")) for i in range(n)])
                complete = rec.wait_count("done", n, result.started + 300 + n * 2.0)
                time.sleep(3)  # Events posted in the background, the queue's status
                after = write_counts(self.api)
                cpu1 = {k: benv.proc_cpu_seconds(p) for k, p in self.env.pids().items()}
                op1 = op.cpu_seconds() if op else 0.0
            done = rec.get("done")
            seconds = (max(done.values()) - result.started) if done else None
            writes = diff_counts(before, after)
            controller = {
                k: v
                for k, v in writes.items()
                if CONTROLLER_WRITES["jobline" if side in ("pool", "pod") else "job"](k)
            }
            cpu = {k: round(cpu1.get(k, 0) - v, 2) for k, v in cpu0.items()}
            if op is not None:
                cpu["jobline-operator"] = round(op1 - op0, 2)
            controller_cpu = cpu.get("jobline-operator" if op else "kube-controller-manager")
            out.update(
                complete=complete,
                finished=len(done),
                failed=rec.count("failed"),
                create_errors=len(result.errors),
                seconds=round(seconds, 2) if seconds else None,
                jobs_per_s=round(len(done) / seconds, 2) if seconds else None,
                writes_per_job=round(sum(controller.values()) / n, 2),
                writes=controller,
                all_writes_per_job=round(sum(writes.values()) / n, 2),
                cpu_seconds=cpu,
                controller_cpu_s_per_1000=round(controller_cpu * 1000 / n, 2) if controller_cpu else None,
            )
            if op is not None:
                out["operator_tracebacks"] = op.tracebacks()
        finally:
            if op is not None:
                op.stop()
        return out

    def throughput(self) -> dict[str, Any]:
        s = self.sizes
        res: dict[str, Any] = {
            "what": "N trivial jobs created at once -> all finished",
            "pool_workers": f"{s.max_replicas} x {s.slots} slots (warm)",
        }
        for side in SIDES:
            res[side] = self.batch(side, s.pool_n if side == "pool" else s.pod_n)
            _log(
                f"  throughput {side}: {res[side]['jobs_per_s']}/s, {res[side]['writes_per_job']} writes/job"
            )
        res["pool_vs_pod"] = ratio(res["pool"]["jobs_per_s"], res["pod"]["jobs_per_s"])
        for peer in ("job", "job-raised"):
            res[f"pool_vs_{peer}"] = ratio(res["pool"]["jobs_per_s"], res[peer]["jobs_per_s"])
        return res

    def run(self) -> dict[str, Any]:
        from tests.cluster.images import built_images

        built = built_images()
        if built is None:
            raise SystemExit("the worker image is not built: run `make images` first")
        self.env.cluster.images = [built.operator.archive, built.worker.archive]
        _log(f"cluster up in {self.env.start():.1f}s ({self.env.workdir})")
        (self.env.workdir / "bench").mkdir(parents=True, exist_ok=True)
        install_crds(self.env.kubeconfig, benv.REPO / "crds")
        self.api = Api(self.env.kubeconfig)
        self.bulk = Bulk(self.env.kubeconfig)
        try:
            for name, fn in (
                ("dispatch", self.dispatch),
                ("throughput", self.throughput),
                ("ceiling", self.ceiling),
            ):
                _log(f"scenario {name}")
                t0 = time.monotonic()
                try:
                    self.results[name] = fn()
                except Exception as exc:
                    self.results[name] = {
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc(),
                    }
                    _log(f"  failed: {exc}")
                self.results[name]["duration_s"] = round(time.monotonic() - t0, 1)
        finally:
            self.bulk.close()
        self.combine()
        return self.results

    def ceiling(self) -> dict[str, Any]:
        sizes = Sizes(**{**benv_sizes_defaults(), "ceiling_n": self.sizes.ceiling_n})
        ctx = Ctx(
            env=self.env,
            api=self.api,
            bulk=self.bulk,
            sizes=sizes,
            workdir=self.env.workdir / "bench",
            log=_log,
        )
        return ceiling(ctx)

    def combine(self) -> None:
        tput, ceil = self.results.get("throughput") or {}, self.results.get("ceiling") or {}
        if "error" in tput or "error" in ceil or not tput or not ceil:
            return
        out = {}
        for side in SIDES:
            writes, n = tput[side]["writes"], tput[side]["n"]
            creates = sum(v for k, v in writes.items() if k.startswith("POST ")) + n  # our creates too
            others = sum(v for k, v in writes.items() if not k.startswith("POST "))
            per_job = (creates / n) / ceil["create"]["per_s"] + (others / n) / ceil["status_patch"]["per_s"]
            limit = 1 / per_job if per_job > 0 else None
            out[side] = {
                "ceiling_jobs_per_s": round(limit, 1) if limit else None,
                "fraction_of_ceiling": ratio(tput[side]["jobs_per_s"], limit),
            }
        tput["ceiling"] = out


def benv_sizes_defaults() -> dict[str, Any]:
    from .scenarios import SIZES as MAIN_SIZES

    return dict(MAIN_SIZES["smoke"].__dict__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pool", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--smoke", action="store_true")
    p.add_argument("--out-dir", type=Path, default=benv.BENCH / "results")
    p.add_argument("--keep-workdir", action="store_true")
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="jobline-bench-pool-"))
    bench = Bench(SIZES[mode], mode, workdir)
    started = time.monotonic()
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "command": "python -m benchmarks.pool " + " ".join(sys.argv[1:] if argv is None else argv),
        "sizes": SIZES[mode].__dict__,
        "raised_limits": benv.RAISED_LIMITS,
        "machine": benv.machine(),
        "versions": benv.versions(bench.env.bin_dir),
    }
    failed = True
    try:
        results = bench.run()
        failed = any("error" in v for v in results.values() if isinstance(v, dict))
    finally:
        bench.env.stop(keep_logs=args.keep_workdir or failed)
    meta["duration_s"] = round(time.monotonic() - started, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    day = meta["date"][:10]
    path = args.out_dir / f"{day}-pool.json"
    k = 2
    while path.exists():
        path = args.out_dir / f"{day}-pool-{k}.json"
        k += 1
    path.write_text(json.dumps({"meta": meta, "scenarios": results}, indent=1) + "\n")
    _log(f"wrote {path}")
    print(table(results))
    return 1 if failed else 0


def table(results: dict[str, Any]) -> str:
    """The summary rows of a run, as markdown."""
    d, t = results.get("dispatch") or {}, results.get("throughput") or {}
    rows = ["| | Pool | PodPerAttempt | Job (defaults) | Job (raised) |", "|---|---|---|---|---|"]
    if "pool" in d:

        def lat(side: str, key: str, p: str) -> str:
            v = d[side][key][p]
            return f"{v * 1000:.0f} ms" if isinstance(v, int | float) else "-"

        for p in ("p50", "p99"):
            rows.append(
                f"| created -> handler started, {p} | {lat('pool', 'handler_started_s', p)} | "
                f"{lat('pod', 'handler_started_s', p)} | - | - |"
            )
            rows.append(
                f"| created -> container running, {p} | - | {lat('pod', 'container_running_s', p)} | "
                f"{lat('job', 'container_running_s', p)} | {lat('job-raised', 'container_running_s', p)} |"
            )
    if "pool" in t:

        def cell(side: str, key: str) -> str:
            v = t[side].get(key)
            return "-" if v is None else str(v)

        rows.append("| jobs | " + " | ".join(cell(s, "n") for s in SIDES) + " |")
        rows.append("| jobs/s | " + " | ".join(cell(s, "jobs_per_s") for s in SIDES) + " |")
        rows.append("| writes/job | " + " | ".join(cell(s, "writes_per_job") for s in SIDES) + " |")
        rows.append(
            "| controller CPU-s per 1,000 jobs | "
            + " | ".join(cell(s, "controller_cpu_s_per_1000") for s in SIDES)
            + " |"
        )
        if "ceiling" in t:
            rows.append(
                "| fraction of the write ceiling | "
                + " | ".join(str(t["ceiling"][s]["fraction_of_ceiling"]) for s in SIDES)
                + " |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
