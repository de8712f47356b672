"""Cancellation as a state and the queue's debounce, end to end against the real operator.

Cancel (``spec.cancel``): a running attempt's pod is deleted (SIGTERM, then its grace period); the job stays
Running with reason Cancelling until the pod has stopped, then ends Cancelled with the attempt recorded as
Cancelled and no retry used; an attempt that finishes with exit 0 within its grace period is a success; a job
without a running attempt (delayed, suspended) ends Cancelled at once and never gets a pod; `retry` runs a
cancelled job again.

Debounce (``JobQueue.spec.debounce``): a burst of enqueues of one uniqueKey collapses into one run of the
newest payload, the others end Superseded; ``maxWaitSeconds`` starts a run even while the burst goes on.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import jobline.client
from jobline.core.timefmt import fmt, parse
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import wait_for

FINAL = ("Succeeded", "Failed", "Cancelled", "Superseded")


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


def cli(jobs: Jobs, *args: str) -> subprocess.CompletedProcess[str]:
    """``kubectl jobline -n <ns> ARGS`` (the plugin's module, as tests/e2e/test_cli.py runs it)."""
    env = {**os.environ, "KUBECONFIG": str(jobs.cluster.kubeconfig)}
    argv = [sys.executable, "-m", "jobline.cli", "-n", jobs.ns, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def conditions(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in st.get("conditions") or ()}


def reasons(jobs: Jobs, name: str) -> list[str]:
    return [r for r, _ in jobs.events(name)]


def running_pod(jobs: Jobs, name: str) -> Any:
    return next((p for p in jobs.pods(name) if p.status.phase == "Running"), None)


def created(jobs: Jobs, name: str) -> datetime:
    when = parse(jobs.get(name)["metadata"]["creationTimestamp"])
    assert when is not None
    return when


# ------------------------------------------------------------------------------------------------ cancel
def test_an_attempt_that_exits_0_within_its_grace_period_after_a_cancel_succeeds(
    jobs: Jobs, shared: Path
) -> None:
    """The work was done: the job is Succeeded with the attempt's result, not Cancelled."""
    log = shared / "tidy.log"
    jobs.queue()
    jobs.create("tidy", "finish-on-sigterm", {"file": str(log), "seconds": 300})
    jobs.wait_phase("tidy", "Running", timeout=90)
    wait_for(lambda: "start tidy 1" in lines(log), 90, "the handler to start")
    jobline.client.cancel("tidy", namespace=jobs.ns, api=jobs.api)  # the SDK's cancel
    st = jobs.wait_phase("tidy", "Succeeded", "Cancelled", "Failed", timeout=90)
    assert "finished tidy 1" in lines(log), lines(log)
    assert st["phase"] == "Succeeded", (st, jobs.events("tidy"))
    assert st["result"] == {"finished": "on SIGTERM"} and st["attempts"] == 1, st
    assert st.get("failedAttempts", 0) == 0 and st["attemptHistory"][-1].get("exitCode") == 0, st


def test_cancel_of_a_delayed_and_of_a_suspended_job_ends_them_at_once_and_they_never_run(
    jobs: Jobs, shared: Path
) -> None:
    log = shared / "never.log"
    jobs.queue()
    run_at = fmt((datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0))
    jobs.create("later", "note", {"file": str(log), "value": "later"}, runAt=run_at)
    jobs.create("held", "note", {"file": str(log), "value": "held"}, suspend=True)
    jobs.create("marker", "note", {"file": str(log), "value": "marker"}, runAt=run_at)  # not cancelled
    st = jobs.wait_phase("later", "Waiting", timeout=30)
    assert st.get("waitingReason") == "Delayed", st
    jobs.wait_phase("held", "Suspended", timeout=30)

    jobline.client.cancel("later", namespace=jobs.ns, api=jobs.api)
    jobs.patch("held", {"spec": {"cancel": True}})
    for name in ("later", "held"):
        st = jobs.wait_phase(name, "Cancelled", timeout=30)
        assert st.get("attempts", 0) == 0 and not st.get("attemptHistory") and st["completedAt"], st
        cancelled = conditions(st)["Cancelled"]
        assert cancelled["status"] == "True" and cancelled["reason"] == "SpecCancel", st
        assert "before it ran" in cancelled["message"], cancelled
        assert "Cancelling" not in jobs.wait_events(name, "Cancelled")
    jobs.patch("held", {"spec": {"suspend": False}})  # resuming a cancelled job does not run it

    # The marker, due at the same time, runs: by then the cancelled ones would have run too.
    assert jobs.wait_phase("marker", "Succeeded", timeout=90)["attempts"] == 1
    assert lines(log) == ["run marker 1 marker"], lines(log)
    for name in ("later", "held"):
        st = jobs.status(name)
        assert st["phase"] == "Cancelled" and st.get("attempts", 0) == 0, st
        assert not jobs.pods(name) and "Started" not in reasons(jobs, name), jobs.events(name)
    wait_for(lambda: (jobs.get_queue().get("status") or {}).get("cancelled") == 2, 30, "the queue to count 2")
    with pytest.raises(ValueError, match="already Cancelled"):
        jobline.client.cancel("later", namespace=jobs.ns, api=jobs.api)


# ---------------------------------------------------------------------------------------------- debounce
def test_max_wait_starts_a_run_while_the_burst_goes_on(jobs: Jobs, shared: Path) -> None:
    """seconds 5, maxWaitSeconds 6, one enqueue a second for 12 s: the quiet spell never comes, yet a
    run starts about 6 s after the burst's first job; the last job runs at the end."""
    log = shared / "maxwait.log"
    jobs.queue(debounce={"seconds": 5, "maxWaitSeconds": 6})
    names = [f"tick-{i:02d}" for i in range(13)]
    t0 = time.monotonic()
    stamps = []
    for i, name in enumerate(names):
        time.sleep(max(0.0, t0 + i - time.monotonic()))  # pacing the enqueues (not a synchronisation)
        jobs.create(name, "note", {"file": str(log), "value": i}, uniqueKey="feed")
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 4, f"the burst had a quiet spell of {max(gaps):.1f}s (seconds is 5): {gaps}"

    jobs.wait_phase(names[-1], *FINAL, timeout=120)
    final = {n: jobs.wait_phase(n, *FINAL, timeout=60) for n in names}
    phases = {n: st["phase"] for n, st in final.items()}
    assert final[names[-1]]["phase"] == "Succeeded", phases  # the newest always runs in the end
    ran = [n for n in names if phases[n] == "Succeeded"]
    assert set(phases.values()) <= {"Succeeded", "Superseded"}, phases
    assert 2 <= len(ran) <= 4, phases  # the maxWait run(s) during the burst and the last one

    first_created = created(jobs, names[0])
    first_run = min(ran, key=lambda n: final[n]["startedAt"])
    started = parse(final[first_run]["startedAt"])
    assert started is not None
    delay = (started - first_created).total_seconds()
    print(f"\nfirst run: {first_run}, started {delay:.1f}s after the burst's first job; runs: {ran}")
    # Not before maxWaitSeconds after the first job (creationTimestamp has one-second resolution) ...
    assert delay >= 6 - 1, (first_run, final[first_run])
    # ... and while jobs of the burst were still being enqueued: the maxWait, not a quiet spell, started it.
    assert started < created(jobs, names[-1]), (first_run, final[first_run])
    assert first_run != names[-1]

    for n in ran:
        assert final[n]["attempts"] == 1 and final[n]["result"] == {"value": names.index(n)}, final[n]
    assert sorted(lines(log)) == sorted(f"run {n} 1 {names.index(n)}" for n in ran), lines(log)
    for i, n in enumerate(names):
        if phases[n] == "Superseded":
            assert final[n].get("attempts", 0) == 0 and not jobs.pods(n), final[n]
            assert final[n]["supersededBy"] in names[i + 1 :], final[n]
    # One key never runs twice at once: each run started after the previous one finished.
    spans = sorted((final[n]["startedAt"], final[n]["completedAt"]) for n in ran)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert parse(start) >= parse(end), spans  # type: ignore[operator]
