"""``python -m tests.cluster.localnode``: run the local node in the foreground until SIGTERM/SIGINT.

The launcher (:mod:`tests.cluster.controlplane`) starts it with cwd = the repository root::

    python -m tests.cluster.localnode --kubeconfig PATH --node-name jobline-local --state-dir DIR \\
        --port PORT --tls-cert CERT.pem --tls-key KEY.pem

Logs go to stderr (UTC timestamps); on SIGTERM every pod process group is stopped and it exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from tests.cluster import localnode
from tests.cluster.localnode.api import Kube
from tests.cluster.localnode.identity import LOCAL_IP
from tests.cluster.localnode.logserver import LogServer
from tests.cluster.localnode.node import LocalNode

log = logging.getLogger("localnode")


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)-7s %(threadName)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.cluster.localnode", description=(localnode.__doc__ or "").split("\n")[0]
    )
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--node-name", default="jobline-local")
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--port", required=True, type=int, help="HTTPS port for kubectl logs (127.0.0.1)")
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _setup_logging(args.verbose)
    state_dir: Path = args.state_dir.resolve()
    (state_dir / "pods").mkdir(parents=True, exist_ok=True)
    node = LocalNode(Kube(args.kubeconfig), args.node_name, state_dir, args.port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()
        node.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = LogServer(node, args.port, args.tls_cert, args.tls_key)
    log.info(
        "local node %s starting (state %s, logs on https://%s:%d, pid %d)",
        args.node_name,
        state_dir,
        LOCAL_IP,
        args.port,
        os.getpid(),
    )
    node.start(server)
    while not stop.wait(0.5):
        pass
    node.shutdown()
    log.info("local node %s stopped", args.node_name)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
