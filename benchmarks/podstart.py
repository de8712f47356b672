"""``python -m benchmarks.podstart [--count 20]``: how long a pod takes from created to Running, per node.

Side by side on one test cluster: the real node (``jobline-node``: kubelet, containerd, runc; the sandbox
image and the worker image) and the local node (``jobline-local``: processes). Pods are created one at a
time; each is timed from just before its create call to the watch event that shows it Running. Starts its
own cluster (real node + local node, no kwok) unless ``--kubeconfig`` names a running one, e.g. ``.dev``'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parents[1]
LOCAL = {
    "nodeSelector": {"jobline.dev/node": "local"},
    "tolerations": [{"key": "jobline.dev/node", "value": "local", "effect": "NoSchedule"}],
}
REAL = {"nodeSelector": {"jobline.dev/node": "real"}}


def _pod(name: str, image: str, command: list[str] | None, placement: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "podstart"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [container],
            **placement,
        },
    }


def time_pods(
    core: client.CoreV1Api,
    ns: str,
    count: int,
    image: str,
    command: list[str] | None,
    placement: dict[str, Any],
) -> list[float]:
    took: list[float] = []
    for i in range(count):
        name = f"p-{i}-{uuid.uuid4().hex[:4]}"
        w = watch.Watch()
        started = time.monotonic()
        core.create_namespaced_pod(ns, _pod(name, image, command, placement))
        for event in w.stream(
            core.list_namespaced_pod, ns, field_selector=f"metadata.name={name}", timeout_seconds=120
        ):
            if event["object"].status.phase in ("Running", "Succeeded", "Failed"):
                took.append(time.monotonic() - started)
                w.stop()
        core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
    return took


def summary(name: str, took: list[float]) -> dict[str, Any]:
    took = sorted(took)
    q = statistics.quantiles(took, n=10) if len(took) > 1 else took * 9
    return {
        "case": name,
        "n": len(took),
        "p50_s": round(statistics.median(took), 3),
        "p90_s": round(q[8], 3),
        "max_s": round(took[-1], 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.podstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--count", type=int, default=20)
    p.add_argument(
        "--kubeconfig", type=Path, default=None, help="a running test cluster (default: start one)"
    )
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.cluster.images import VERSION, built_archives, built_images
    from tests.cluster.realnode import PAUSE_IMAGE

    built = built_images()
    cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        from tests.cluster.build import ensure_binaries
        from tests.cluster.controlplane import Cluster

        cluster = Cluster(
            Path(tempfile.mkdtemp(prefix="jobline-podstart-")),
            ensure_binaries(),
            kwok_nodes=0,
            images=built_archives(),
        )
        cluster.start()
        print(f"cluster (real node included) ready in {cluster.startup_seconds:.1f}s", flush=True)
        kubeconfig = cluster.kubeconfig
    try:
        api = config.new_client_from_config(str(kubeconfig))
        core = client.CoreV1Api(api)
        ns = f"podstart-{uuid.uuid4().hex[:5]}"
        core.create_namespace({"metadata": {"name": ns}})
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_namespaced_service_account("default", ns)
                break
            except client.ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        cases = [
            ("real node, sandbox image (pause)", PAUSE_IMAGE, None, REAL),
            ("local node, a process", "local", ["sleep", "30"], LOCAL),
        ]
        if built:
            cases.insert(
                1,
                (
                    "real node, worker image (python)",
                    f"jobline-worker:{VERSION}",
                    ["python3", "-c", "import time; time.sleep(30)"],
                    REAL,
                ),
            )
        rows = [
            summary(name, time_pods(core, ns, args.count, image, command, placement))
            for name, image, command, placement in cases
        ]
        core.delete_namespace(ns)
    finally:
        if cluster is not None:
            cluster.stop()
    for row in rows:
        print(
            f"{row['case']:<36} n={row['n']:<3} p50 {row['p50_s']:.3f}s  p90 {row['p90_s']:.3f}s  "
            f"max {row['max_s']:.3f}s"
        )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
