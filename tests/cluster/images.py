"""Build the project's container images with podman, offline, cached outside the repository.

No registry is reachable from these machines and nothing is pulled:

1. ``localhost/jobline-base:bookworm``: a Debian root filesystem made by ``mmdebstrap`` (the only step
   that needs the network: Debian's apt mirror), imported into podman. Kept as ``rootfs.tar`` in the
   cache, so a wiped podman store re-imports it without the network.
2. ``docker.io/library/jobline:<version>``: the repository's ``Dockerfile`` on that base. The jobline
   wheel and its dependencies are built on the host (``pip wheel``, PyPI) into a wheelhouse that the
   build installs with ``pip --no-index``; RUN steps have no network (``--network none``).
3. ``docker.io/library/jobline-worker:<version>``: ``tests/images/worker/Dockerfile``, the jobline image
   plus this repository's e2e test handlers (``jobline-worker --import tests.e2e.handlers``).

The two Kubernetes images are saved as docker-archives (``ctr images import`` loads them) under
``$JOBLINE_CACHE_DIR/images/<name>-<version>-<hash of the inputs>/<name>.tar``; an image is rebuilt only
when its inputs change. ``python -m tests.cluster.images`` builds (or reuses) them and prints the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster.build import cache_root

REPO = Path(__file__).resolve().parents[2]
WORKER_DOCKERFILE = REPO / "tests" / "images" / "worker" / "Dockerfile"


def read_version(pyproject: Path = REPO / "pyproject.toml") -> str:
    with pyproject.open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


VERSION: str = read_version()

BASE_REF = "localhost/jobline-base:bookworm"
OPERATOR_NAME = "jobline"
WORKER_NAME = "jobline-worker"
# Fully qualified, so the kubelet's normalisation of `image: jobline:<version>` matches the imported name.
REGISTRY_PREFIX = "docker.io/library/"
KEY_LABEL = "dev.jobline.cache-key"  # on every image: which inputs it was built from
KEEP_BUILDS = 2  # per image, the current build and one older (switching between two branches is cheap)

# The base: Debian's python3 (3.11 in bookworm, like the host's, so the host-built cp311 wheels fit).
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    # merged-/usr via usr-is-merged, not the usrmerge package (which pulls in perl: ~50 MB).
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    "--skip=output/dev",  # no device nodes in the image; the runtime provides /dev
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
BASE_CHANGES = (
    'CMD ["python3"]',
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "WORKDIR /",
    "LABEL org.opencontainers.image.title=jobline-base",
    "LABEL org.opencontainers.image.description=Debian bookworm minbase with python3, made by mmdebstrap",
)

# The runtime flags checked on these machines: crun refuses cgroup v1 hybrid mode, and the container's
# ulimits must stay within the host's hard limits (nofile 20000), or runc fails with EPERM.
RUNTIME = "runc"
BUILD_FLAGS = (
    "--pull=never",
    "--network=none",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1000:1000",
    "--layers=false",
    "--force-rm",
)
INSTALL_HINT = (
    "run `make images`, which installs them from Debian when run as root, or install them yourself: "
    "apt-get install podman buildah mmdebstrap runc uidmap"
)
MMDEBSTRAP_TIMEOUT = 20 * 60
BUILD_TIMEOUT = 20 * 60
WHEEL_TIMEOUT = 15 * 60


class ImageError(RuntimeError):
    """An image could not be built; the message says what failed and what to do."""


@dataclass(frozen=True)
class Image:
    ref: str  # fully qualified, e.g. docker.io/library/jobline:0.1.0
    archive: Path  # docker-archive (`podman save --format docker-archive`), for `ctr images import`


@dataclass(frozen=True)
class Images:
    operator: Image
    worker: Image


# ---------------------------------------------------------------------------------------------------
# Cache keys (pure: only files and constants)


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:12]


def base_key() -> str:
    """The base image's key: its suite, package list, apt sources, mmdebstrap options and config."""
    args = [DEBIAN_SUITE, *DEBIAN_PACKAGES, *DEBIAN_SOURCES, *MMDEBSTRAP_OPTIONS, *BASE_CHANGES]
    return f"base-{DEBIAN_SUITE}-" + _digest(("arg", a.encode()) for a in args)


def _is_excluded(rel: Path) -> bool:
    return any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts) or rel.suffix == ".pyc"


def source_files(repo: Path = REPO, subdir: str = "operator") -> list[Path]:
    """Files under ``subdir`` that the image is built from (relative to ``repo``), sorted.

    In a git checkout: what git tracks plus what is untracked but not ignored; otherwise a walk.
    Either way without ``__pycache__``, ``*.pyc`` and ``*.egg-info``; files deleted from the work tree
    are left out.
    """
    files: set[Path] = set()
    git = shutil.which("git")
    listed = None
    if git and (repo / ".git").exists():
        proc = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", subdir],
            cwd=repo,
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            listed = [Path(p.decode()) for p in proc.stdout.split(b"\0") if p]
    if listed is None:
        listed = [p.relative_to(repo) for p in (repo / subdir).rglob("*")]
    for rel in listed:
        if not _is_excluded(rel) and (repo / rel).is_file():
            files.add(rel)
    return sorted(files)


def operator_inputs(repo: Path = REPO) -> list[Path]:
    """Everything the jobline image's build context holds (besides the host-built wheelhouse)."""
    return [
        Path("Dockerfile"),
        Path(".dockerignore"),
        Path("pyproject.toml"),
        Path("README.md"),
        *source_files(repo),
    ]


WORKER_FILES = (Path("tests/__init__.py"), Path("tests/e2e/__init__.py"), Path("tests/e2e/handlers.py"))


def _files_digest(repo: Path, files: Sequence[Path], *extra: str) -> str:
    parts = [(str(rel), (repo / rel).read_bytes()) for rel in files]
    parts += [("extra", e.encode()) for e in extra]
    return _digest(parts)


def operator_key(repo: Path = REPO, version: str | None = None, base: str | None = None) -> str:
    version = version or read_version(repo / "pyproject.toml")
    digest = _files_digest(repo, operator_inputs(repo), base or base_key(), *BUILD_FLAGS)
    return f"{OPERATOR_NAME}-{version}-{digest}"


def worker_key(repo: Path = REPO, version: str | None = None, operator: str | None = None) -> str:
    version = version or read_version(repo / "pyproject.toml")
    dockerfile = repo / "tests" / "images" / "worker" / "Dockerfile"
    parts = [("Dockerfile", dockerfile.read_bytes())]
    parts += [(str(rel), (repo / rel).read_bytes()) for rel in WORKER_FILES]
    parts += [("operator", (operator or operator_key(repo, version)).encode())]
    parts += [("flag", f.encode()) for f in BUILD_FLAGS]
    return f"{WORKER_NAME}-{version}-{_digest(parts)}"


def images_dir() -> Path:
    return cache_root() / "images"


def _planned(repo: Path = REPO) -> tuple[tuple[str, Image], tuple[str, Image]]:
    version = read_version(repo / "pyproject.toml")
    okey = operator_key(repo, version)
    wkey = worker_key(repo, version, okey)
    root = images_dir()
    op = Image(f"{REGISTRY_PREFIX}{OPERATOR_NAME}:{version}", root / okey / f"{OPERATOR_NAME}.tar")
    wk = Image(f"{REGISTRY_PREFIX}{WORKER_NAME}:{version}", root / wkey / f"{WORKER_NAME}.tar")
    return (okey, op), (wkey, wk)


def built_images() -> Images | None:
    """The current inputs' cached archives if both exist (nothing is built), else None."""
    (_, op), (_, wk) = _planned()
    if op.archive.is_file() and wk.archive.is_file():
        return Images(operator=op, worker=wk)
    return None


def built_archives() -> list[Path]:
    """What a real node imports at start: the built images' archives, or none when they are not built."""
    built = built_images()
    return [built.operator.archive, built.worker.archive] if built else []


# ---------------------------------------------------------------------------------------------------
# Running tools


def _tool(name: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).is_file()), None
    )
    if not path:
        raise ImageError(
            f"`{name}` was not found: the images are built with podman (Debian packages); {INSTALL_HINT}."
        )
    return path


def _run(
    cmd: Sequence[str],
    what: str,
    *,
    timeout: float,
    verbose: bool,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``cmd``; on failure (or timeout) raise ImageError with the last 40 lines of its output."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise ImageError(f"{what}: could not start {cmd[0]}: {exc}") from exc
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, _kill)
    timer.daemon = True
    timer.start()
    out: list[str] = []
    tail: deque[str] = deque(maxlen=40)
    last_report = started
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            tail.append(line.rstrip())
            now = time.monotonic()
            if verbose and now - last_report >= 15:
                print(f"    ... {now - started:.0f}s: {line.strip()[:120]}", flush=True)
                last_report = now
        rc = proc.wait()
    except BaseException:
        _kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise ImageError(
            f"{what} did not finish within {timeout:.0f}s and was stopped; its last output:\n"
            + "\n".join(tail)
        )
    if rc != 0:
        raise ImageError(
            f"{what} failed (exit {rc}): `{' '.join(cmd)}`; its last output:\n" + "\n".join(tail)
        )
    return "".join(out)


@dataclass
class _Podman:
    verbose: bool
    exe: str = field(default_factory=lambda: _tool("podman"))

    def run(self, *args: str, what: str, timeout: float = 600, cwd: Path | None = None) -> str:
        return _run([self.exe, *args], what, timeout=timeout, verbose=self.verbose, cwd=cwd)

    def quiet(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.exe, *args],
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
                timeout=120,
            )
        except subprocess.TimeoutExpired as exc:
            raise ImageError(
                f"`podman {' '.join(args)}` did not answer within 120s: is another podman "
                "holding the store's lock (`ps -ef | grep podman`)?"
            ) from exc

    def label(self, ref: str) -> str | None:
        """The image's cache-key label, or None if the store has no such image."""
        proc = self.quiet("image", "inspect", "--format", '{{index .Labels "' + KEY_LABEL + '"}}', ref)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def image_id(self, ref: str) -> str | None:
        proc = self.quiet("image", "inspect", "--format", "{{.Id}}", ref)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def size_mb(self, ref: str) -> float:
        proc = self.quiet("image", "inspect", "--format", "{{.Size}}", ref)
        try:
            return int(proc.stdout.strip()) / 1e6
        except ValueError:
            return float("nan")

    def remove_if_unused(self, image_id: str | None, keep: str | None) -> None:
        """Drop an image a rebuild replaced (best effort: in use or a parent of another, it stays)."""
        if image_id and image_id != keep:
            self.quiet("image", "rm", image_id)


# ---------------------------------------------------------------------------------------------------
# Building


@dataclass
class _Report:
    ref: str
    how: str  # built / reused / loaded / imported
    seconds: float
    size_mb: float = 0.0
    archive: Path | None = None


def _copy_files(repo: Path, files: Iterable[Path], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _prune_old(root: Path, pattern: str, current: str) -> None:
    """Keep the newest KEEP_BUILDS cache directories whose names match ``pattern`` (always ``current``).

    Directories without an archive are leftovers of an interrupted build and go (the caller holds the lock).
    """
    others = [d for d in root.iterdir() if d.is_dir() and re.fullmatch(pattern, d.name) and d.name != current]
    complete = [
        d for d in others if any(f.suffix == ".tar" and not f.name.startswith(".") for f in d.iterdir())
    ]
    complete.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    keep = set(complete[: KEEP_BUILDS - 1])
    for old in others:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _cleanup_on_failure(cache: Path) -> Iterator[None]:
    """A failed (or interrupted) build leaves no half-made cache directory behind."""
    try:
        yield
    except BaseException:
        shutil.rmtree(cache, ignore_errors=True)
        raise


class _Builder:
    def __init__(self, verbose: bool, repo: Path = REPO) -> None:
        self.verbose = verbose
        self.repo = repo
        self.root = images_dir()
        self.version = read_version(repo / "pyproject.toml")
        self.podman = _Podman(verbose)
        _tool(RUNTIME)
        self.reports: list[_Report] = []
        self.base_ready = False

    def say(self, msg: str) -> None:
        if self.verbose:
            print(msg, flush=True)

    # -- the Debian base ---------------------------------------------------------------------------

    def ensure_base(self) -> None:
        if self.base_ready:
            return
        key = base_key()
        started = time.monotonic()
        if self.podman.label(BASE_REF) == key:
            self.reports.append(_Report(BASE_REF, "reused", 0.0, self.podman.size_mb(BASE_REF)))
            self.base_ready = True
            return
        cache = self.root / key
        rootfs = cache / "rootfs.tar"
        how = "imported"
        if not rootfs.is_file():
            mmdebstrap = _tool("mmdebstrap")
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache / f".rootfs-{os.getpid()}.tar"
            self.say(
                f"building {BASE_REF}: mmdebstrap {DEBIAN_SUITE} with {', '.join(DEBIAN_PACKAGES)} "
                "(needs Debian's apt mirror; about 1-3 minutes)"
            )
            try:
                _run(
                    [
                        mmdebstrap,
                        *MMDEBSTRAP_OPTIONS,
                        "--include=" + ",".join(DEBIAN_PACKAGES),
                        DEBIAN_SUITE,
                        str(tmp),
                        *DEBIAN_SOURCES,
                    ],
                    "mmdebstrap (the Debian base image's root filesystem)",
                    timeout=MMDEBSTRAP_TIMEOUT,
                    verbose=self.verbose,
                )
                os.replace(tmp, rootfs)
            except ImageError as exc:
                raise ImageError(
                    f"{exc}\nmmdebstrap needs Debian's apt mirror (deb.debian.org) and root."
                ) from exc
            finally:
                tmp.unlink(missing_ok=True)
            how = "built"
        else:
            self.say(f"importing {BASE_REF} from the cached {rootfs}")
        old = self.podman.image_id(BASE_REF)
        changes = [arg for c in (*BASE_CHANGES, f"LABEL {KEY_LABEL}={key}") for arg in ("--change", c)]
        self.podman.run("import", *changes, str(rootfs), BASE_REF, what=f"podman import of {rootfs}")
        self.podman.remove_if_unused(old, self.podman.image_id(BASE_REF))
        self.reports.append(_Report(BASE_REF, how, time.monotonic() - started, self.podman.size_mb(BASE_REF)))
        self.base_ready = True
        _prune_old(self.root, rf"base-{DEBIAN_SUITE}-[0-9a-f]+", key)

    # -- jobline and jobline-worker ----------------------------------------------------------------

    def _reuse_or_load(self, key: str, image: Image) -> bool:
        """True if the store has the image built from ``key`` (after loading the cached archive if need be)."""
        started = time.monotonic()
        if image.archive.is_file() and self.podman.label(image.ref) == key:
            self.reports.append(
                _Report(image.ref, "reused", 0.0, self.podman.size_mb(image.ref), image.archive)
            )
            return True
        if image.archive.is_file():
            self.say(
                f"loading {image.ref} from the cached {image.archive} (the podman store has no image built from these inputs)"
            )
            old = self.podman.image_id(image.ref)
            self.podman.run("load", "-i", str(image.archive), what=f"podman load of {image.archive}")
            if self.podman.label(image.ref) == key:
                self.podman.remove_if_unused(old, self.podman.image_id(image.ref))
                self.reports.append(
                    _Report(
                        image.ref,
                        "loaded",
                        time.monotonic() - started,
                        self.podman.size_mb(image.ref),
                        image.archive,
                    )
                )
                return True
        return False

    def _podman_build(
        self, key: str, image: Image, context: Path, dockerfile: Path, args: dict[str, str], started: float
    ) -> None:
        old = self.podman.image_id(image.ref)
        build_args = [a for k, v in args.items() for a in ("--build-arg", f"{k}={v}")]
        self.say(f"building {image.ref} (podman build, {RUNTIME}, no network)")
        self.podman.run(
            "build",
            f"--runtime={RUNTIME}",
            *BUILD_FLAGS,
            *build_args,
            "--label",
            f"{KEY_LABEL}={key}",
            "-t",
            image.ref,
            "-f",
            str(dockerfile),
            str(context),
            what=f"podman build of {image.ref}",
            timeout=BUILD_TIMEOUT,
        )
        self.podman.remove_if_unused(old, self.podman.image_id(image.ref))
        tmp = image.archive.with_name(f".{image.archive.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            self.podman.run(
                "save",
                "--format",
                "docker-archive",
                "-o",
                str(tmp),
                image.ref,
                what=f"podman save of {image.ref}",
            )
            os.replace(tmp, image.archive)
        finally:
            tmp.unlink(missing_ok=True)
        self.reports.append(
            _Report(
                image.ref, "built", time.monotonic() - started, self.podman.size_mb(image.ref), image.archive
            )
        )

    def ensure_operator(self, key: str, image: Image) -> None:
        if self._reuse_or_load(key, image):
            return
        self.ensure_base()
        with _cleanup_on_failure(image.archive.parent):
            self._build_operator(key, image)
        _prune_old(self.root, rf"{OPERATOR_NAME}-\d.*", key)  # not jobline-worker-*

    def _build_operator(self, key: str, image: Image) -> None:
        started = time.monotonic()
        cache = image.archive.parent
        cache.mkdir(parents=True, exist_ok=True)
        _check_python()
        inputs = operator_inputs(self.repo)
        # The wheels are built on the host (PyPI is reachable here, not inside the build) from a copy of
        # the sources, so nothing (build/, *.egg-info) is written into the repository.
        src = _fresh_dir(cache / "src")
        _copy_files(self.repo, inputs, src)
        context = _fresh_dir(cache / "context")
        wheelhouse = context / "wheelhouse"
        self.say(
            f"building the wheelhouse for {image.ref} on the host (pip wheel: jobline and its dependencies)"
        )
        try:
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "--disable-pip-version-check",
                    "--wheel-dir",
                    str(wheelhouse),
                    str(src),
                ],
                "pip wheel (jobline and its dependencies, on the host)",
                timeout=WHEEL_TIMEOUT,
                verbose=self.verbose,
            )
        except ImageError as exc:
            raise ImageError(
                f"{exc}\nThe wheels are built on the host and need PyPI (or a pip mirror)."
            ) from exc
        finally:
            shutil.rmtree(src, ignore_errors=True)
        _copy_files(self.repo, inputs, context)
        self._podman_build(
            key,
            image,
            context,
            context / "Dockerfile",
            {"BASE": BASE_REF, "WHEELHOUSE": "wheelhouse", "VERSION": self.version},
            started,
        )
        shutil.rmtree(context, ignore_errors=True)  # the archive and the key are what is kept

    def ensure_worker(self, key: str, image: Image, operator: Image) -> None:
        if self._reuse_or_load(key, image):
            return
        with _cleanup_on_failure(image.archive.parent):
            self._build_worker(key, image, operator)
        _prune_old(self.root, rf"{WORKER_NAME}-\d.*", key)

    def _build_worker(self, key: str, image: Image, operator: Image) -> None:
        started = time.monotonic()
        cache = image.archive.parent
        cache.mkdir(parents=True, exist_ok=True)
        context = _fresh_dir(cache / "context")
        shutil.copy2(self.repo / WORKER_DOCKERFILE.relative_to(REPO), context / "Dockerfile")
        _copy_files(self.repo, WORKER_FILES, context)
        self._podman_build(key, image, context, context / "Dockerfile", {"BASE_IMAGE": operator.ref}, started)
        shutil.rmtree(context, ignore_errors=True)


def _check_python() -> None:
    # The wheels are built by this interpreter and installed into Debian bookworm's python3 (3.11).
    if sys.version_info[:2] != (3, 11):
        raise ImageError(
            f"the image's python is 3.11 (Debian {DEBIAN_SUITE}) but this is python "
            f"{sys.version_info.major}.{sys.version_info.minor}, whose wheels would not fit: run it with the "
            "repository's venv (`make images`, or .venv/bin/python -m tests.cluster.images)."
        )


def _ensure(verbose: bool) -> tuple[Images, list[_Report]]:
    (okey, op), (wkey, wk) = _planned()
    builder = _Builder(verbose)
    root = images_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run waits for the first, then reuses what it built
        builder.ensure_operator(okey, op)
        builder.ensure_worker(wkey, wk, op)
    return Images(operator=op, worker=wk), builder.reports


def ensure_images(verbose: bool = True) -> Images:
    """Build (or reuse, or reload from the cached archives) the images; return their refs and archives."""
    images, _ = _ensure(verbose)
    return images


def main() -> int:
    started = time.monotonic()
    try:
        images, reports = _ensure(verbose=True)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"\nimages ({time.monotonic() - started:.1f}s in all):")
    for r in reports:
        took = f"{r.seconds:.0f}s" if r.how != "reused" else "-"
        print(f"  {r.ref:<46} {r.how:<8} {took:>5} {r.size_mb:7.1f} MB")
    print("archives (docker-archive, for `ctr images import`):")
    for img in (images.operator, images.worker):
        print(f"  {img.ref:<46} {img.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
