"""``python -m tests.cluster up|down|status|serve|load``: the test cluster in the background.

``up`` builds (or reuses) the binaries, starts a supervisor process that owns every component and
waits until the cluster is ready; it is idempotent. ``down`` stops the supervisor, which stops
the components. The supervisor's children die with it (PR_SET_PDEATHSIG), so nothing is orphaned.
``load`` imports the images ``make images`` built into the running cluster's real node.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import procs
from .build import BuildError, ensure_binaries
from .controlplane import REPO, Cluster, ClusterError, Ports
from .images import VERSION, built_archives
from .realnode import NODE_NAME

STATE = "state.json"


def _state(workdir: Path) -> dict[str, object]:
    try:
        return dict(json.loads((workdir / STATE).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _write_state(workdir: Path, **state: object) -> None:
    tmp = workdir / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, workdir / STATE)


def _running(workdir: Path) -> bool:
    pid = _state(workdir).get("pid")
    return isinstance(pid, int) and procs.pid_alive(pid)


def cmd_serve(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster = Cluster(
        workdir,
        Path(args.bin_dir),
        local_node=not args.no_localnode,
        kwok_nodes=args.kwok_nodes,
        ports=Ports(apiserver=args.apiserver_port),
        real_node=not args.no_realnode,
        pod_cidr=args.pod_cidr,
        images=built_archives(),
        image_aliases=published_aliases(VERSION),
    )
    try:
        cluster.start()
    except ClusterError as exc:
        _write_state(workdir, pid=os.getpid(), ready=False, error=str(exc))
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    _write_state(
        workdir,
        pid=os.getpid(),
        ready=True,
        server=cluster.server,
        kubeconfig=str(cluster.kubeconfig),
        components=cluster.pids(),
        startup_seconds=round(cluster.startup_seconds, 1),
    )
    print(f"cluster ready in {cluster.startup_seconds:.1f}s at {cluster.server}", flush=True)
    try:
        while not stopping:
            time.sleep(0.5)
            try:
                cluster._check_alive()
            except ClusterError as exc:
                print(f"{exc}\nstopping the cluster", file=sys.stderr, flush=True)
                stopping = True
    finally:
        cluster.stop()
        _write_state(workdir, pid=None, ready=False, stopped=True)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    if _running(workdir) and _state(workdir).get("ready"):
        print(f"cluster already running ({_state(workdir).get('server')})")
        print(f"export KUBECONFIG={kubeconfig}")
        return 0
    try:
        bin_dir = ensure_binaries()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    (workdir / STATE).unlink(missing_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    log = workdir / "logs" / "supervisor.log"
    argv = [
        sys.executable,
        "-m",
        "tests.cluster",
        "serve",
        "--workdir",
        str(workdir),
        "--bin-dir",
        str(bin_dir),
        "--kwok-nodes",
        str(args.kwok_nodes),
        "--apiserver-port",
        str(args.apiserver_port),
    ]
    if args.no_localnode:
        argv.append("--no-localnode")
    if args.no_realnode:
        argv.append("--no-realnode")
    if args.pod_cidr:
        argv += ["--pod-cidr", args.pod_cidr]
    with open(log, "ab") as out:
        sup = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()
    while True:
        state = _state(workdir)
        if state.get("ready"):
            break
        if state.get("error") or sup.poll() is not None:
            print(
                f"error: the cluster did not start.\n{state.get('error') or procs.tail(log)}", file=sys.stderr
            )
            return 1
        if time.monotonic() - started > 180:
            print(f"error: the cluster is not ready after 180s; see {workdir / 'logs'}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"cluster ready in {time.monotonic() - started:.1f}s; logs in {workdir / 'logs'}")
    print(f"export KUBECONFIG={kubeconfig}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.resolve()
    state = _state(workdir)
    pid = state.get("pid")
    if not isinstance(pid, int) or not procs.pid_alive(pid):
        print("cluster is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    if not procs.wait_pid_gone(pid, 60):
        os.kill(pid, signal.SIGKILL)
    # Belt and braces: anything the supervisor could not stop.
    components = state.get("components")
    if isinstance(components, dict):
        for cpid in components.values():
            if isinstance(cpid, int) and procs.pid_alive(cpid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(cpid, signal.SIGKILL)
    print("cluster stopped")
    return 0


# The names the published manifests use (the chart's default image, the examples' worker image): loaded
# under them too, as `kind load docker-image` would, so `kubectl apply -f manifests/...` runs here unchanged.
def published_aliases(version: str) -> dict[str, str]:
    return {
        f"jobline:{version}": f"ghcr.io/jobline/jobline:{version}",
        f"jobline-worker:{version}": f"ghcr.io/jobline/worker:{version}",
    }


def cmd_load(args: argparse.Namespace) -> int:
    """`kind load` for the real node: the images `make images` built, into its containerd."""
    from .images import built_images
    from .realnode import NodeError, load_images

    workdir: Path = args.workdir.resolve()
    if not (_running(workdir) and _state(workdir).get("ready")):
        if args.if_running:
            return 0
        print(f"error: no cluster is running in {workdir}: run `make cluster` first", file=sys.stderr)
        return 1
    node_dir = workdir / "node"
    if not (node_dir / "unshare.pid").exists():
        print(
            f"error: the cluster in {workdir} has no real node (started with --no-realnode)", file=sys.stderr
        )
        return 1
    built = built_images()
    if built is None:
        print("error: the images are not built: run `make images`", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        load_images(node_dir, [built.operator.archive, built.worker.archive], published_aliases(VERSION))
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    names = [built.operator.ref, built.worker.ref, *published_aliases(VERSION).values()]
    print(f"loaded into {NODE_NAME} in {time.monotonic() - started:.1f}s: {', '.join(names)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.resolve()
    if _running(workdir):
        print(json.dumps(_state(workdir), indent=2))
        return 0
    print("cluster is not running")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("up", "serve", "down", "status", "load"):
        p = sub.add_parser(name)
        p.add_argument("--workdir", type=Path, default=REPO / ".dev")
        if name in ("up", "serve"):
            p.add_argument("--no-localnode", action="store_true", help="do not start the local node")
            p.add_argument(
                "--no-realnode",
                action="store_true",
                help="do not start the real node (kubelet + containerd, needs root)",
            )
            p.add_argument(
                "--pod-cidr", default=None, help="the real node's pod CIDR (default: a free 10.244.<k>.0/24)"
            )
            p.add_argument("--kwok-nodes", type=int, default=2)
            p.add_argument(
                "--apiserver-port", type=int, default=0, help="fixed apiserver port (default: a free one)"
            )
        if name == "serve":
            p.add_argument("--bin-dir", required=True)
        if name == "load":
            p.add_argument("--if-running", action="store_true", help="do nothing when no cluster runs")
    args = parser.parse_args(argv)
    return {"up": cmd_up, "serve": cmd_serve, "down": cmd_down, "status": cmd_status, "load": cmd_load}[
        args.cmd
    ](args)


if __name__ == "__main__":
    sys.exit(main())
