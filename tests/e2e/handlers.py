"""Handlers the end-to-end tests run in real worker pods (``jobline-worker --import tests.e2e.handlers``)."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from typing import Any

from jobline.worker import PermanentError, handler


def _record(path: str, line: str) -> None:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")


@handler("echo")
def echo(payload: Any, ctx: Any) -> Any:
    return payload


@handler("stamp")
def stamp(payload: Any, ctx: Any) -> Any:
    """Return when the handler started (the host's clock): the pool benchmark's created -> started."""
    return {"t": time.time()}


@handler("dependencies")
def dependencies(payload: Any, ctx: Any) -> Any:
    """Return what the job's dependsOn jobs returned (ctx.dependencies)."""
    return {"seen": dict(ctx.dependencies)}


@handler("flaky")
def flaky(payload: dict[str, Any], ctx: Any) -> Any:
    """Fails until attempt ``succeedOn``."""
    if ctx.attempt < int(payload["succeedOn"]):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


@handler("fail")
def fail(payload: Any, ctx: Any) -> Any:
    raise RuntimeError("always fails")


@handler("permanent")
def permanent(payload: Any, ctx: Any) -> Any:
    raise PermanentError("this input can never work")


@handler("exit")
def exit_with(payload: dict[str, Any], ctx: Any) -> Any:
    sys.stderr.write(f"exiting with {payload['code']}\n")
    sys.stderr.flush()
    os._exit(int(payload["code"]))


@handler("sleep")
def sleep(payload: dict[str, Any], ctx: Any) -> Any:
    seconds = float(payload.get("seconds", 1))
    steps = int(payload.get("steps", 1))
    for i in range(steps):
        time.sleep(seconds / steps)
        ctx.progress(int(100 * (i + 1) / steps))
    return {"slept": seconds}


@handler("record")
def record(payload: dict[str, Any], ctx: Any) -> Any:
    """Append start/end lines to a shared file, to check order and overlap from the test. While it runs it
    holds a lock of its job: a second run of the job while one still runs (its lock is held: a killed run
    releases it with its process) writes ``twice <job>``."""
    path = payload["file"]
    with open(f"{path}.{ctx.job}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _record(path, f"twice {ctx.job} {time.time():.6f}")
        _record(path, f"start {ctx.job} {time.time():.6f}")
        time.sleep(float(payload.get("seconds", 0.5)))
        _record(path, f"end {ctx.job} {time.time():.6f}")
    return {"ok": True}


@handler("slow-first")
def slow_first(payload: dict[str, Any], ctx: Any) -> Any:
    """The first attempt runs long (to be suspended, deleted or killed); later ones finish at once."""
    if payload.get("file"):
        _record(payload["file"], f"attempt {ctx.job} {ctx.attempt}")
    if ctx.attempt == 1:
        time.sleep(float(payload.get("seconds", 60)))
    return {"attempt": ctx.attempt}


@handler("outcome")
def outcome(payload: dict[str, Any], ctx: Any) -> Any:
    """Succeed or fail as the file ``payload["file"]`` says ("ok" / "fail") when the attempt runs
    (the JobSchedule tests steer the outcome of runs that share one payload)."""
    with open(payload["file"]) as f:
        wanted = f.read().strip()
    if wanted == "fail":
        raise RuntimeError("failing as asked")
    return {"outcome": wanted}


@handler("allocate")
def allocate(payload: dict[str, Any], ctx: Any) -> Any:
    """Hold ``mb`` MiB, every page written, to run into the pod's memory limit (the real node's OOM killer)."""
    held = [b"\x01" * (1024 * 1024) for _ in range(int(payload["mb"]))]
    return {"allocated": len(held)}


@handler("graceful")
def graceful(payload: dict[str, Any], ctx: Any) -> Any:
    """Run long; on SIGTERM (cancel, suspend, timeout) the worker SDK unwinds the handler: note it."""
    _record(payload["file"], f"start {ctx.job} {ctx.attempt}")
    try:
        time.sleep(float(payload.get("seconds", 300)))
    finally:
        _record(payload["file"], f"cleanup {ctx.job} {ctx.attempt}")
    return {"slept": True}


@handler("note")
def note(payload: dict[str, Any], ctx: Any) -> Any:
    """Append ``run <job> <attempt> <payload["value"]>`` to ``payload["file"]``: which payload ran, how often."""
    _record(payload["file"], f"run {ctx.job} {ctx.attempt} {payload['value']}")
    return {"value": payload["value"]}


@handler("slow-cleanup")
def slow_cleanup(payload: dict[str, Any], ctx: Any) -> Any:
    """Run long; on SIGTERM note it, take ``cleanupSeconds`` to clean up (within the pod's grace period),
    note that, and let the termination go on (the worker exits 143)."""
    _record(payload["file"], f"start {ctx.job} {ctx.attempt}")
    try:
        time.sleep(float(payload.get("seconds", 300)))
    except BaseException:
        _record(payload["file"], f"sigterm {ctx.job} {ctx.attempt}")
        time.sleep(float(payload.get("cleanupSeconds", 5)))
        _record(payload["file"], f"cleaned {ctx.job} {ctx.attempt}")
        raise
    return {"slept": True}


@handler("finish-on-sigterm")
def finish_on_sigterm(payload: dict[str, Any], ctx: Any) -> Any:
    """Run long; on SIGTERM finish the work at once and succeed (exit 0 within the grace period)."""
    _record(payload["file"], f"start {ctx.job} {ctx.attempt}")
    try:
        time.sleep(float(payload.get("seconds", 300)))
    except BaseException:
        _record(payload["file"], f"finished {ctx.job} {ctx.attempt}")
        return {"finished": "on SIGTERM"}
    return {"finished": "in time"}


@handler("digest")
def digest(payload: Any, ctx: Any) -> Any:
    """Return the SHA-256 of the payload as compact JSON, and its keys: proves what arrived, not what it is."""
    import hashlib
    import json

    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "keys": sorted(payload or {})}
