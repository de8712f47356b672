"""Percentiles and the reading of py-spy's collapsed stacks."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float], digits: int = 4) -> dict[str, Any]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
        "min": r(min(values) if values else None),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


# ------------------------------------------------------------------------------------------ profiles
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Buckets for "where the time goes", matched against file paths / function names in a stack.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    # First, so the decoding of kopf's watch lines (jobline.handlers.watchjson -> kube.loads) counts as
    # the watch streams', and the API calls' own cost is not counted in the controller step awaiting them.
    ("kopf: watch streams (aiohttp, JSON decode)", ("kopf/_cogs/clients/watching.py", "watchjson.py:")),
    ("operator: API calls (aiohttp, orjson)", ("kube.py:Kube.request", "kube.py:dumps", "kube.py:loads")),
    ("operator: Controller.dispatch (pick the next jobs)", ("loop.py:Controller.dispatch",)),
    ("operator: Controller._write_queue_status", ("loop.py:Controller._write_queue_status",)),
    ("operator: Controller.sync (initial list)", ("loop.py:Controller.sync",)),
    ("operator: Controller.start (build pod + apply)", ("loop.py:Controller.start",)),
    (
        "operator: Controller.plan/apply (state machine + writes)",
        ("loop.py:Controller.plan", "loop.py:Controller._apply_safely", "loop.py:Controller._apply_deferred"),
    ),
    ("operator: Controller.on_job/on_pod (feed the store)", ("loop.py:Controller.on_",)),
    ("operator: ScheduleLoop", ("schedules.py:ScheduleLoop",)),
    ("kube client: HTTP+TLS+JSON in the thread pool", ("kube.py:Kube.request_sync",)),
    ("kopf: event processing", ("kopf/_core/reactor/",)),
    ("startup: imports", ("importlib._bootstrap",)),
    ("asyncio loop / other", ("",)),
]


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for part in stack.split(";"):
        m = _FRAME.match(part.strip())
        if m:
            out.append((m.group("func"), m.group("file")))
        else:
            out.append((part.strip(), ""))
    return out


def _key(func: str, file: str) -> str:
    base = file.rsplit("/site-packages/", 1)[-1].rsplit("/operator/", 1)[-1]
    return f"{base}:{func}"


def read_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Summarise a py-spy raw (collapsed) profile: buckets, top self time, top inclusive jobline frames."""
    total = 0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = _frames(stack)
        keys = [_key(f, file) for f, file in frames]
        if keys:
            self_time[keys[-1]] += n
        for k in set(keys):
            if "jobline/" in k or k.startswith(("kube.py", "controller/")):
                inclusive[k] += n
        joined = ";".join(f"{file}:{f}" for f, file in frames)
        for name, needles in BUCKETS:
            if any(needle in joined for needle in needles):
                buckets[name] += n
                break

    def pct(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "buckets": [{"where": k, "pct": pct(v)} for k, v in buckets.most_common()],
        "top_self": [{"where": k, "pct": pct(v)} for k, v in self_time.most_common(top)],
        "top_jobline_inclusive": [{"where": k, "pct": pct(v)} for k, v in inclusive.most_common(top)],
    }
