"""``python -m benchmarks.writecost [--count 400]``: the apiserver's CPU per write, by kind of write.

Issue 15's measurement of where a job's cost at the apiserver goes: on a fresh control plane (no node, no
operator) with Jobline's CRDs installed, ``count`` writes of each kind are sent as fast as 2 processes x 8
threads can (the runner's ``Bulk``), and kube-apiserver's CPU seconds (``/proc``) over each batch are
divided by ``count``: QueuedJob create, its status patch (a first attempt), a label patch on it (the
whole object is validated again, CEL rules included), a suspended Job's create, a Job status patch, a
ConfigMap create. Also the operator's client alone: the same mix sent through ``jobline.kube.Kube``
(aiohttp), with the client's and the apiserver's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.kube import MERGE, Api, Bulk, Request, install_crds

from .env import REPO, ClusterEnv, proc_cpu_seconds

QJ = "/apis/jobline.dev/v1alpha1/namespaces/bench/queuedjobs"
JOBS = "/apis/batch/v1/namespaces/bench/jobs"
STARTED = "2026-12-03T15:00:00Z"


def batches(n: int) -> list[tuple[str, list[Request]]]:
    qj = {"apiVersion": "jobline.dev/v1alpha1", "kind": "QueuedJob", "spec": {"handler": "h", "queue": "q"}}
    job_spec = {
        "suspend": True,
        "backoffLimit": 0,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "b"}]}},
    }
    running = {"phase": "Running", "attempts": 1, "startedAt": STARTED}
    return [
        ("QueuedJob create", [Request("POST", QJ, {**qj, "metadata": {"name": f"j{i}"}}) for i in range(n)]),
        (
            "QueuedJob status patch (Running, attempt 1)",
            [
                Request(
                    "PATCH",
                    f"{QJ}/j{i}/status",
                    {
                        "status": {
                            **running,
                            "podName": f"j{i}-1",
                            "attemptHistory": [{"attempt": 1, "pod": f"j{i}-1", "startedAt": STARTED}],
                        }
                    },
                    MERGE,
                )
                for i in range(n)
            ],
        ),
        (
            "QueuedJob label patch",
            [
                Request(
                    "PATCH", f"{QJ}/j{i}", {"metadata": {"labels": {"jobline.dev/phase": "Succeeded"}}}, MERGE
                )
                for i in range(n)
            ],
        ),
        (
            "Job create (suspended)",
            [
                Request(
                    "POST",
                    JOBS,
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "metadata": {"name": f"j{i}"},
                        "spec": job_spec,
                    },
                )
                for i in range(n)
            ],
        ),
        (
            "Job status patch",
            [Request("PATCH", f"{JOBS}/j{i}/status", {"status": {"active": 0}}, MERGE) for i in range(n)],
        ),
        (
            "ConfigMap create",
            [
                Request(
                    "POST",
                    "/api/v1/namespaces/bench/configmaps",
                    {"metadata": {"name": f"c{i}"}, "data": {"a": "b"}},
                )
                for i in range(n)
            ],
        ),
    ]


async def operator_client(kubeconfig: Path, apiserver: int, n: int) -> dict[str, Any]:
    """``n`` ConfigMap creates and ``n`` patches through the operator's client, 50 in flight."""
    from jobline.kube import Kube, load_config

    kube = Kube(load_config(str(kubeconfig)))
    gate = asyncio.Semaphore(50)
    path = "/api/v1/namespaces/bench/configmaps"

    async def one(i: int) -> None:
        async with gate:
            await kube.request("POST", path, {"metadata": {"name": f"k{i}"}, "data": {"a": "x" * 2000}})
            await kube.request("PATCH", f"{path}/k{i}", {"data": {"b": "y"}}, content_type=MERGE)

    c0, a0, t0 = time.process_time(), proc_cpu_seconds(apiserver), time.monotonic()
    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await kube.close()
    c1, a1, t1 = time.process_time(), proc_cpu_seconds(apiserver), time.monotonic()
    return {
        "requests": 2 * n,
        "seconds": round(t1 - t0, 2),
        "client_ms_cpu_per_request": round((c1 - c0) * 1000 / (2 * n), 3),
        "apiserver_ms_cpu_per_request": round((a1 - a0) * 1000 / (2 * n), 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.writecost", description=__doc__)
    p.add_argument("--count", type=int, default=400)
    args = p.parse_args(argv)
    env = ClusterEnv(kwok_nodes=0)
    env.start()
    out: dict[str, Any] = {"count": args.count, "writes": {}}
    try:
        install_crds(env.kubeconfig, REPO / "crds")
        Api(env.kubeconfig).ensure_namespace("bench", {})
        bulk = Bulk(env.kubeconfig)
        try:
            for name, reqs in batches(args.count):
                pid = env.pids()["kube-apiserver"]
                a0 = proc_cpu_seconds(pid)
                res = bulk.run(reqs)
                a1 = proc_cpu_seconds(pid)
                out["writes"][name] = {
                    "apiserver_ms_cpu_each": round((a1 - a0) * 1000 / len(reqs), 2),
                    "per_s": round(len(reqs) / res.seconds, 1) if res.seconds else None,
                    "errors": len(res.errors),
                }
                print(f"{name}: {out['writes'][name]}", flush=True)
        finally:
            bulk.close()
        out["operator_client"] = asyncio.run(
            operator_client(env.kubeconfig, env.pids()["kube-apiserver"], args.count)
        )
        print(f"operator client (aiohttp): {out['operator_client']}", flush=True)
    finally:
        env.stop()
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
