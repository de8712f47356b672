"""Exec shim that the local node (:mod:`tests.cluster.localnode`) puts in front of every container.

Usage::

    python podexec.py --term-file F --term-path P [--mount SRC:DST[:ro]]... [--cwd D] [--status-fd N] \\
        [--parent-pid PID] -- argv...

(``python -m tests.cluster.podexec ...`` works too; the node runs the file by path with ``-I -S`` so the
shim does not depend on the container's working directory or ``PYTHON*`` variables.)

What it does, then replaces itself with the workload (``os.execvpe``, so the container's pid is the
workload's pid):

1. ``unshare(CLONE_NEWNS)`` and make every mount in the new namespace private (``MS_REC|MS_PRIVATE``),
   so nothing below leaks to the host or to other containers.
2. Bind-mounts every ``--mount SRC:DST[:ro]`` (the pod's volumes, prepared by the node), parents before
   children (sorted by the depth of ``DST``), then remounts the ``:ro`` ones read-only (keeping their
   ``nosuid``/``nodev``/``noexec`` flags). ``:`` and ``\\`` inside a path are escaped as ``\\:`` and
   ``\\\\``. A missing ``DST`` is created **on the host file system** first: a directory (with parents)
   when ``SRC`` is a directory, else an empty regular file; it is left in place (empty, since every
   container sees its own bind mount there). Any failure here is fatal (the workload would otherwise
   see the wrong files): it is reported like a failed ``exec``.
3. Bind-mounts the container's own termination-message file ``F`` over ``P`` (its
   ``terminationMessagePath``, by default ``/dev/termination-log``). Two containers writing
   ``/dev/termination-log`` at the same time therefore write to two different files.
   A bind mount needs an existing target: **if ``P`` does not exist on the host, an empty regular file
   (and any missing parent directories) is created there, on the host file system** (the node runs as
   root). It is left in place afterwards; it stays empty because every container writes through its
   own bind mount.
4. ``chdir(D)`` (after the mounts, so a working directory inside a volume works); restores
   ``SIGPIPE``/``SIGXFSZ`` to their default actions (Python ignores them, and ignored signals survive
   ``exec``); ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` so the workload dies with
   the node (the kernel sends it when the node thread that forked us exits), and exits at once if that
   parent is already gone.
5. ``execvpe(argv[0], argv, environ)``, looking ``argv[0]`` up in the container's own ``PATH``.

The optional ``--status-fd`` is a pipe to the node: it is close-on-exec, so a successful ``exec``
closes it without a byte written; if anything fails before ``exec`` the reason is written to it (and
to stderr, i.e. the container log) and the shim exits with 127.

If the mount namespace cannot be set up (not root, no ``CAP_SYS_ADMIN``) the shim prints a warning to
stderr and runs the workload anyway; the termination message is then not captured. A container with
volume mounts does not start then (podexec fails as above).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import errno
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
EXIT_EXEC_FAILED = 127

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def private_mount_namespace() -> None:
    """Enter a new mount namespace whose mounts never propagate back to the host."""
    lib = libc()
    _check(lib.unshare(ctypes.c_int(CLONE_NEWNS)), "unshare(CLONE_NEWNS)")
    _check(
        lib.mount(b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None),
        "mount(/, MS_REC|MS_PRIVATE)",
    )


def ensure_bind_target(path: str) -> None:
    """Create an empty regular file at ``path`` (and its parents) when nothing is there yet."""
    if os.path.lexists(path):
        return
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:  # another container created it at the same moment
        return
    os.close(fd)


def bind_mount(source: str, target: str, recursive: bool = False) -> None:
    flags = MS_BIND | (MS_REC if recursive else 0)
    _check(
        libc().mount(source.encode(), target.encode(), None, ctypes.c_ulong(flags), None),
        f"bind mount {source} -> {target}",
    )


def remount_read_only(target: str) -> None:
    """Make the bind mount at ``target`` read-only, keeping its nosuid/nodev/noexec flags."""
    keep = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)  # ST_* have the MS_* values
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | keep
    _check(
        libc().mount(b"none", target.encode(), None, ctypes.c_ulong(flags), None),
        f"remount {target} read-only",
    )


def split_mount(spec: str) -> tuple[str, str, bool]:
    """``SRC:DST[:ro|:rw]`` (``\\:`` and ``\\\\`` escape ``:`` and ``\\``) as (source, target, read_only)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if ch == "\\" and i + 1 < len(spec):
            cur.append(spec[i + 1])
            i += 2
            continue
        if ch == ":":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        return parts[0], parts[1], parts[2] == "ro"
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"invalid --mount {spec!r}: want SRC:DST[:ro]")
    return parts[0], parts[1], False


def join_mount(source: str, target: str, read_only: bool = False) -> str:
    """The ``--mount`` argument for a bind mount (the inverse of :func:`split_mount`)."""

    def esc(path: str) -> str:
        return path.replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(source)}:{esc(target)}" + (":ro" if read_only else "")


def ensure_mount_target(source: str, target: str) -> None:
    """Create ``target`` (a directory, or an empty file when ``source`` is not a directory) if missing."""
    if os.path.lexists(target):
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        ensure_bind_target(target)


def mount_volumes(mounts: list[tuple[str, str, bool]]) -> None:
    """Bind every (source, target, read_only), parents first; then the read-only remounts."""
    ordered = sorted(mounts, key=lambda m: len([p for p in os.path.normpath(m[1]).split("/") if p]))
    for source, target, _ in ordered:
        if not os.path.exists(source):
            raise OSError(errno.ENOENT, f"volume source {source} does not exist")
        ensure_mount_target(source, target)
        bind_mount(source, target, recursive=True)
    for _, target, read_only in ordered:
        if read_only:
            remount_read_only(target)


def set_parent_death_signal(parent_pid: int | None) -> None:
    _check(
        libc().prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL), 0, 0, 0),
        "prctl(PR_SET_PDEATHSIG)",
    )
    if parent_pid is not None and os.getppid() != parent_pid:
        # The node died between fork and prctl: the death signal will never come, so go now.
        sys.stderr.write(
            f"podexec: parent {parent_pid} is gone (parent is now {os.getppid()}); not starting\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_EXEC_FAILED)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="podexec", description="local-node container shim")
    p.add_argument("--term-file", required=True, help="this container's own termination-message file")
    p.add_argument("--term-path", default="/dev/termination-log", help="terminationMessagePath to bind over")
    p.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="SRC:DST[:ro]",
        help="bind-mount SRC at DST (repeatable; ':ro' makes it read-only)",
    )
    p.add_argument("--cwd", default=None, help="working directory of the workload")
    p.add_argument(
        "--status-fd", type=int, default=None, help="close-on-exec pipe to report exec failures on"
    )
    p.add_argument(
        "--parent-pid", type=int, default=None, help="pid of the node (exit if it is already gone)"
    )
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")
    ns = p.parse_args(argv)
    try:
        ns.mounts = [split_mount(m) for m in ns.mount]
    except ValueError as exc:
        p.error(str(exc))
    if ns.argv and ns.argv[0] == "--":
        ns.argv = ns.argv[1:]
    if not ns.argv:
        p.error("no command given after --")
    return ns


def _describe(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc.strerror or exc)


def _fail(status_fd: int | None, message: str) -> None:
    line = f"podexec: {message}\n"
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except OSError:
        pass
    if status_fd is not None:
        with contextlib.suppress(OSError):
            os.write(status_fd, line.encode(errors="replace"))
    os._exit(EXIT_EXEC_FAILED)


def main(argv: list[str] | None = None) -> None:
    ns = _parse(sys.argv[1:] if argv is None else argv)
    status_fd: int | None = ns.status_fd
    if status_fd is not None:
        os.set_inheritable(status_fd, False)  # closed by a successful exec: "no news is good news"

    try:
        private_mount_namespace()
    except OSError as exc:
        if ns.mounts:
            _fail(status_fd, f"cannot mount volumes: no private mount namespace ({exc})")
        sys.stderr.write(
            f"podexec: warning: no private mount namespace ({exc}); termination message not captured\n"
        )
    else:
        try:
            mount_volumes(ns.mounts)
        except OSError as exc:
            _fail(status_fd, f"cannot mount volumes: {_describe(exc)}")
        try:
            ensure_bind_target(ns.term_path)
            bind_mount(os.path.abspath(ns.term_file), ns.term_path)
        except OSError as exc:
            sys.stderr.write(f"podexec: warning: cannot bind {ns.term_file} over {ns.term_path}: {exc}\n")

    if ns.cwd:
        try:
            os.makedirs(ns.cwd, exist_ok=True)
            os.chdir(ns.cwd)
        except OSError as exc:
            _fail(status_fd, f"cannot change to working directory {ns.cwd!r}: {exc.strerror or exc}")

    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        set_parent_death_signal(ns.parent_pid)
    except OSError as exc:
        sys.stderr.write(f"podexec: warning: {exc}\n")
    sys.stderr.flush()
    sys.stdout.flush()

    program = ns.argv[0]
    try:
        os.execvpe(program, ns.argv, dict(os.environ))
    except FileNotFoundError:
        where = "" if "/" in program else " in $PATH"
        _fail(status_fd, f'exec: "{program}": executable file not found{where}')
    except PermissionError:
        _fail(status_fd, f'exec: "{program}": permission denied')
    except OSError as exc:
        if exc.errno == errno.ENOEXEC:
            _fail(status_fd, f'exec: "{program}": exec format error')
        _fail(status_fd, f'exec: "{program}": {exc.strerror or exc}')


if __name__ == "__main__":
    main()
