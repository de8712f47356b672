"""A JobQueue's flow control end to end: rate limit, concurrency per key, RoundRobin fairness, and the
waiting reasons in the jobs' status (issue 13, part 1)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import wait_for


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _reasons(jobs: Jobs, names: list[str]) -> set[str]:
    return {st.get("waitingReason") for n in names if (st := jobs.status(n)).get("phase") == "Pending"} - {
        None
    }


def test_rate_limit_never_exceeds_limit_plus_burst(jobs: Jobs) -> None:
    rate, burst, count = 2, 2, 12
    jobs.queue(rateLimit={"starts": rate, "per": "Second", "burst": burst})
    names = [f"r{i:02d}" for i in range(count)]
    for name in names:
        jobs.create(name, "echo", {})
    seen = wait_for(lambda: _reasons(jobs, names) or None, 20, "a job waiting as RateLimited")
    assert seen == {"RateLimited"}, seen
    for name in names:
        jobs.wait_phase(name, "Succeeded", timeout=90)
    # Pods' creation times are whole seconds: the pods created within seconds s..s+T-1 started within a
    # window of T seconds, so at most burst + rate*T of them.
    created = sorted(_ts(jobs.pods(n)[0].metadata.creation_timestamp.isoformat()) for n in names)
    per_second = Counter(int(t.timestamp()) for t in created)
    first, last = min(per_second), max(per_second)
    for start in range(first, last + 1):
        for width in range(1, last - start + 2):
            in_window = sum(per_second.get(s, 0) for s in range(start, start + width))
            assert in_window <= burst + rate * width, (start, width, in_window, sorted(per_second.items()))
    # and the limit did throttle: 12 starts at 2/s after a burst of 2 take at least 4 seconds
    assert last - first >= (count - burst) / rate - 1, sorted(per_second.items())


def test_concurrency_per_key_is_never_exceeded_while_other_keys_run(jobs: Jobs, shared: Path) -> None:
    jobs.queue(concurrency=4, concurrencyPerKey=1)
    log = shared / "per-key.log"
    names = {f"a{i}": "a" for i in range(3)} | {f"b{i}": "b" for i in range(2)}
    for name, key in names.items():
        jobs.create(name, "record", {"file": str(log), "seconds": 1.5}, concurrencyKey=key)
    seen = wait_for(lambda: _reasons(jobs, list(names)) or None, 20, "a job waiting as KeyConcurrencyLimit")
    assert seen == {"KeyConcurrencyLimit"}, seen
    for name in names:
        jobs.wait_phase(name, "Succeeded", timeout=90)
    events = sorted((float(p[2]), 1 if p[0] == "start" else -1, names[p[1]]) for p in _lines(log))
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    peak_total = 0
    for _, delta, key in events:
        running[key] += delta
        peak[key] = max(peak[key], running[key])
        peak_total = max(peak_total, sum(running.values()))
    assert peak == {"a": 1, "b": 1}, peak
    assert peak_total == 2, "the two keys ran side by side"


def test_round_robin_keys_take_turns(jobs: Jobs, shared: Path) -> None:
    jobs.queue(concurrency=1, paused=True, fairness="RoundRobin")
    log = shared / "turns.log"
    order = ["a1", "a2", "a3", "a4", "b1", "b2"]  # created in this order: FIFO would run every a first
    for name in order:
        jobs.create(name, "record", {"file": str(log), "seconds": 0.1}, concurrencyKey=name[0])
    wait_for(
        lambda: all(jobs.phase(n) == "Pending" for n in order), 30, "all jobs pending in the paused queue"
    )
    jobs.patch_queue("default", {"paused": False})
    for name in order:
        jobs.wait_phase(name, "Succeeded", timeout=90)
    starts = [p[1] for p in _lines(log) if p[0] == "start"]
    assert starts == ["a1", "b1", "a2", "b2", "a3", "a4"], starts


def test_waiting_reasons_follow_the_limits(jobs: Jobs, shared: Path) -> None:
    """ConcurrencyLimit while the queue is full; QueuePaused when paused; cleared when the job starts."""
    jobs.queue(concurrency=1)
    log = shared / "reasons.log"
    jobs.create("first", "record", {"file": str(log), "seconds": 4})
    jobs.wait_phase("first", "Running", timeout=60)
    jobs.create("second", "echo", {})
    st: dict[str, Any] = wait_for(
        lambda: (s := jobs.status("second")).get("waitingReason") == "ConcurrencyLimit" and s,
        20,
        "second to wait as ConcurrencyLimit",
    )
    assert st["phase"] == "Pending"
    jobs.patch_queue("default", {"paused": True})
    wait_for(lambda: jobs.status("second").get("waitingReason") == "QueuePaused", 20, "QueuePaused")
    jobs.patch_queue("default", {"paused": False})
    st = jobs.wait_phase("second", "Succeeded", timeout=60)
    assert st.get("waitingReason") is None


def test_a_dependency_cycle_fails_every_job_on_it(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("cyc-a", "echo", {}, dependsOn=["cyc-b"])
    jobs.create("cyc-b", "echo", {}, dependsOn=["cyc-c"])
    jobs.create("cyc-c", "echo", {}, dependsOn=["cyc-a"])
    jobs.create("after", "echo", {}, dependsOn=["cyc-a"])  # waits on the cycle, is not on it
    for name in ("cyc-a", "cyc-b", "cyc-c"):
        st = jobs.wait_phase(name, "Failed", timeout=30)
        failed = {c["type"]: c for c in st["conditions"]}["Failed"]
        assert failed["reason"] == "DependencyCycle" and st["reason"] == "DependencyCycle", st
        assert failed["message"].startswith(f"dependency cycle: {name} -> ") and failed["message"].endswith(
            name
        )
    st = jobs.wait_phase("after", "Failed", timeout=30)
    assert {c["type"]: c for c in st["conditions"]}["Failed"]["reason"] == "DependencyFailed"


def test_a_missing_dependency_fails_after_the_timeout(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("orphan", "echo", {}, dependsOn=["never-created"], dependencyTimeoutSeconds=3)
    st = jobs.wait_phase("orphan", "Waiting", timeout=20)
    assert st["waitingReason"] == "Blocked"
    st = jobs.wait_phase("orphan", "Failed", timeout=30)
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["reason"] == "DependencyMissing" and "never-created" in failed["message"]
    assert st["deadLettered"] is True


def test_a_dependent_reads_its_parents_result(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("child", "dependencies", {}, dependsOn=["parent"])
    jobs.create("parent", "echo", {"rows": 3})
    st = jobs.wait_phase("child", "Succeeded", timeout=60)
    assert st["result"] == {"seen": {"parent": {"rows": 3}}}, st
