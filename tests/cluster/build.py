"""Build the test cluster's binaries from Go modules and cache them outside the repository.

Binaries land in ``$JOBLINE_CACHE_DIR`` (default ``~/.cache/jobline``) under a directory named
after the pinned versions plus a hash of the wrapper modules, so they are rebuilt only when a pin
changes. Run ``python -m tests.cluster.build`` to build (or reuse) them and print the bin directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GO_DIR = HERE / "go"
VERSIONS_FILE = HERE / "versions.env"


class BuildError(RuntimeError):
    """A binary could not be built; the message says why and what to do."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


@dataclass(frozen=True)
class Component:
    module_dir: str  # wrapper module under go/
    packages: tuple[str, ...]  # main packages to build
    binaries: tuple[str, ...]  # resulting file names
    version_key: str


def components() -> list[Component]:
    return [
        Component(
            "k8s",
            (
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-scheduler",
                "k8s.io/kubernetes/cmd/kubelet",  # the real node (tests/cluster/realnode.py)
                "k8s.io/kubernetes/cmd/kube-proxy",
            ),
            ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"),
            "KUBERNETES_VERSION",
        ),
        Component("etcd", ("go.etcd.io/etcd/server/v3",), ("etcd",), "ETCD_VERSION"),
        Component("kwok", ("sigs.k8s.io/kwok/cmd/kwok",), ("kwok",), "KWOK_VERSION"),
        Component("helm", ("helm.sh/helm/v3/cmd/helm",), ("helm",), "HELM_VERSION"),
    ]


def cache_root() -> Path:
    env = os.environ.get("JOBLINE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jobline"


def cache_key() -> str:
    v = read_versions()
    digest = hashlib.sha256(VERSIONS_FILE.read_bytes())
    for comp in components():
        for name in ("go.mod", "go.sum"):
            f = GO_DIR / comp.module_dir / name
            digest.update(name.encode() + f.read_bytes())
    short = digest.hexdigest()[:10]
    return f"k8s-{v['KUBERNETES_VERSION']}_etcd-{v['ETCD_VERSION']}_kwok-{v['KWOK_VERSION']}_helm-{v['HELM_VERSION']}_{short}"


def bin_dir() -> Path:
    return cache_root() / cache_key() / "bin"


def _ldflags(comp: Component, versions: dict[str, str]) -> str:
    flags = ["-s", "-w"]
    if comp.module_dir == "k8s":
        full = versions["KUBERNETES_VERSION"]
        major, minor = full.lstrip("v").split(".")[:2]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {pkg}.gitVersion={full}",
                f"-X {pkg}.gitMajor={major}",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
                f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            ]
    elif comp.module_dir == "helm":
        flags.append(f"-X helm.sh/helm/v3/internal/version.version={versions['HELM_VERSION']}")
    elif comp.module_dir == "kwok":
        flags.append(f"-X sigs.k8s.io/kwok/pkg/consts.Version={versions['KWOK_VERSION']}")
    return " ".join(flags)


def _go() -> str:
    go = shutil.which("go")
    if not go:
        raise BuildError(
            "Go was not found on PATH. The test cluster is built from Go modules: install Go >= 1.25 "
            "(https://go.dev/doc/install), or point the suite at an existing cluster with "
            "JOBLINE_TEST_KUBECONFIG=/path/to/kubeconfig."
        )
    return go


def _build(comp: Component, out_dir: Path, versions: dict[str, str], step: str) -> None:
    go = _go()
    tmp = out_dir.parent / f".tmp-{comp.module_dir}-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=readonly", CGO_ENABLED="0")
    cmd = [go, "build", "-v", "-ldflags", _ldflags(comp, versions), "-o", str(tmp) + "/", *comp.packages]
    if len(comp.packages) == 1:
        cmd[-2] = str(tmp / comp.binaries[0])
    print(
        f"{step} building {', '.join(comp.binaries)} ({comp.version_key}={versions[comp.version_key]})",
        flush=True,
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=GO_DIR / comp.module_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    last_report = started
    for count, line in enumerate(proc.stdout, 1):
        tail = [*tail[-40:], line.rstrip()]
        now = time.monotonic()
        if now - last_report >= 15:
            print(f"    ... {count} packages compiled, {now - started:.0f}s, now {line.strip()}", flush=True)
            last_report = now
    rc = proc.wait()
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError(f"go build of {comp.module_dir} failed (exit {rc}):\n" + "\n".join(tail))
    for name in comp.binaries:
        os.replace(tmp / name, out_dir / name)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"    done in {time.monotonic() - started:.0f}s", flush=True)


def ensure_binaries(verbose: bool = True, only: tuple[str, ...] | None = None) -> Path:
    """Build what is missing from the cache and return the bin directory (``only``: these binaries)."""
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    comps = [c for c in components() if only is None or set(c.binaries) & set(only)]
    if all((out / b).exists() for c in comps for b in c.binaries):
        return out
    versions = read_versions()
    with open(out.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build waits for the first, then reuses it
        missing = [c for c in comps if not all((out / b).exists() for b in c.binaries)]
        if missing and verbose:
            print(
                f"Building the test cluster into {out} (cold build: about 15-25 minutes on 2 cores; "
                "cached afterwards).",
                flush=True,
            )
        for i, comp in enumerate(missing, 1):
            _build(comp, out, versions, f"[{i}/{len(missing)}]")
    return out


def main() -> int:
    try:
        print(ensure_binaries())
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
