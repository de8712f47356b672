"""Where the e2e tests' worker pods run, and the one thing they share with the test: a directory.

``JOBLINE_TEST_WORKERS`` chooses:

- ``local`` (the default on this repository's test cluster): the tainted local node ``jobline-local``, where
  the worker is ``jobline-worker`` of this checkout run as a process (a pod starts in milliseconds);
- ``real`` (the default on any other cluster, ``JOBLINE_TEST_KUBECONFIG``): a real kubelet, the worker image
  ``jobline-worker:<version>`` that ``make images`` builds (on this repository's cluster: ``jobline-node``).

Handlers that report to the test through a file (``record``, ``slow-first``, ``outcome``) write into
:func:`shared_dir`: a directory of this machine, mounted into real-node workers at the same path
(``hostPath``). That needs the node to share this machine's filesystem, so on an external cluster the
tests that need it are skipped, saying so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import jobline

REPO = Path(__file__).resolve().parents[2]
WORKER_IMAGE = f"jobline-worker:{jobline.__version__}"
LOCAL_NODE_TOLERATION = {"key": "jobline.dev/node", "value": "local", "effect": "NoSchedule"}
COMMAND = ["jobline-worker", "--import", "tests.e2e.handlers"]


class _Placement:
    mode = "local"  # "local" | "real"
    ours = True  # this repository's cluster (the real node shares this machine's filesystem)
    shared: Path | None = None


PLACEMENT = _Placement()


def configure(ours: bool) -> None:
    """Called once per session with the cluster (tests/e2e/conftest.py)."""
    mode = os.environ.get("JOBLINE_TEST_WORKERS") or ("local" if ours else "real")
    if mode not in ("local", "real"):
        raise ValueError(f"JOBLINE_TEST_WORKERS must be 'local' or 'real', not {mode!r}")
    PLACEMENT.mode, PLACEMENT.ours = mode, ours
    if ours:
        shared = Path(tempfile.mkdtemp(prefix="jobline-e2e-shared-"))
        shared.chmod(0o1777)  # the worker image runs as uid 65532
        PLACEMENT.shared = shared


def real() -> bool:
    return PLACEMENT.mode == "real"


def shared_dir() -> Path | None:
    """A directory both the test and its handlers see; None where no such directory can exist."""
    return PLACEMENT.shared


def worker_template(shared: bool = True, **extra: Any) -> dict[str, Any]:
    """A JobQueue template that runs this repository's test handlers where :data:`PLACEMENT` says.

    ``nodeSelector`` and ``tolerations`` given here are merged with the placement's own. ``shared``: mount
    :func:`shared_dir` (real-node workers only; off in namespaces that enforce Pod Security "restricted",
    which refuses ``hostPath``)."""
    selector = dict(extra.pop("nodeSelector", {}))
    tolerations = list(extra.pop("tolerations", []))
    if not real():
        return {
            "image": "local",  # the local node ignores images
            "command": COMMAND,
            "env": [{"name": "PYTHONPATH", "value": str(REPO)}],
            "nodeSelector": {"jobline.dev/node": "local", **selector},
            "tolerations": [LOCAL_NODE_TOLERATION, *tolerations],
            **extra,
        }
    template: dict[str, Any] = {
        "image": WORKER_IMAGE,
        "imagePullPolicy": "Never" if PLACEMENT.ours else "IfNotPresent",  # imported here, never pulled
        "command": COMMAND,
        "env": [{"name": "PYTHONPATH", "value": "/app"}],  # where the image has tests/e2e/handlers.py
        **extra,
    }
    if PLACEMENT.ours:
        selector = {"jobline.dev/node": "real", **selector}
    if selector:
        template["nodeSelector"] = selector
    if tolerations:
        template["tolerations"] = tolerations
    if shared and PLACEMENT.shared is not None:
        path = str(PLACEMENT.shared)
        template.setdefault("volumes", []).append(
            {"name": "e2e-shared", "hostPath": {"path": path, "type": "Directory"}}
        )
        template.setdefault("volumeMounts", []).append({"name": "e2e-shared", "mountPath": path})
    return template
