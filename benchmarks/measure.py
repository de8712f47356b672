"""What the scenarios measure with: first-seen times per object, the apiserver's write counts, wall time.

Apart from the JSON client (``tests.kube``) because these are the benchmarks' own instruments, not a
way to talk to a cluster.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from tests.kube import Api

WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")


def write_counts(api: Api) -> dict[str, float]:
    """The apiserver's ``apiserver_request_total`` for write verbs, summed by verb/group/resource/subresource."""
    return parse_write_counts(api.raw("GET", "/metrics", timeout=30).decode())


_METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_write_counts(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        if labels.get("verb") not in WRITE_VERBS or labels.get("dry_run"):
            continue
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        group = labels.get("group") or "core"
        key = f"{labels['verb']} {group} {resource}"
        counts[key] = counts.get(key, 0.0) + float(m.group("value"))
    return counts


def diff_counts(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    out = {k: round(after.get(k, 0.0) - before.get(k, 0.0)) for k in set(before) | set(after)}
    return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0}


# ------------------------------------------------------------------------------------------ first-seen times
WALL_OFFSET = time.time() - time.monotonic()  # monotonic -> wall clock (for cron instants only)


def wall(mono: float) -> float:
    return mono + WALL_OFFSET


class Recorder:
    """First-seen monotonic times of marks ("created", "pod", "done", ...) per object, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.marks: dict[str, dict[str, float]] = {}
        self.data: dict[str, dict[str, Any]] = {}  # extra facts per mark/object (e.g. a nominal time)
        self.changed = threading.Condition(self.lock)

    def mark(self, what: str, key: str, at: float, datum: Any = None) -> None:
        with self.lock:
            marks = self.marks.setdefault(what, {})
            if key in marks:
                return
            marks[key] = at
            if datum is not None:
                self.data.setdefault(what, {})[key] = datum
            self.changed.notify_all()

    def get(self, what: str) -> dict[str, float]:
        with self.lock:
            return dict(self.marks.get(what, {}))

    def datum(self, what: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.data.get(what, {}))

    def count(self, what: str) -> int:
        with self.lock:
            return len(self.marks.get(what, {}))

    def wait_count(self, what: str, n: int, deadline: float) -> bool:
        """Until ``n`` objects have ``what`` or the monotonic ``deadline``; True when reached."""
        with self.lock:
            while len(self.marks.get(what, {})) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
            return True

    def wait_key(self, what: str, key: str, deadline: float) -> float | None:
        with self.lock:
            while key not in self.marks.get(what, {}):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(min(left, 1.0))
            return self.marks[what][key]
