"""Cancellation as a state (issue 13, part 3): `kubectl jobline cancel` stops a running attempt with
SIGTERM and its grace period and ends the job Cancelled, keeping it and its history; a pending job is
cancelled at once; `kubectl jobline retry` runs a cancelled job again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import wait_for


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


def jobline(jobs: Jobs, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(jobs.cluster.kubeconfig)}
    argv = [sys.executable, "-m", "jobline.cli", "-n", jobs.ns, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def test_cancel_of_a_running_job_stops_it_gracefully_and_keeps_its_history(jobs: Jobs, shared: Path) -> None:
    log = shared / "graceful.log"
    jobs.queue()
    jobs.create("long", "graceful", {"file": str(log), "seconds": 300}, retry={"limit": 3})
    jobs.wait_phase("long", "Running", timeout=60)
    wait_for(lambda: log.exists() and "start long 1" in log.read_text(), 90, "the handler to start")
    began = time.monotonic()
    done = jobline(jobs, "cancel", "long")
    assert done.returncode == 0 and "long cancelled" in done.stdout, done
    st = jobs.wait_phase("long", "Cancelled", timeout=90)
    took = time.monotonic() - began
    print(f"\ncancel of a running job: Cancelled {took:.1f}s after `kubectl jobline cancel`")
    assert st["attempts"] == 1 and st.get("failedAttempts", 0) == 0 and not st.get("deadLettered"), st
    record = st["attemptHistory"][-1]
    assert record["reason"] == "Cancelled" and record["finishedAt"], record
    assert record.get("exitCode") in (None, 143), record  # 143: the worker exited on SIGTERM
    conditions = {c["type"]: c for c in st["conditions"]}
    assert conditions["Cancelled"]["status"] == "True" and conditions["Cancelled"]["reason"] == "SpecCancel"
    assert "cleanup long 1" in log.read_text()  # the handler's finally ran: SIGTERM, not SIGKILL
    jobs.wait_events("long", "Cancelling", "Cancelled")
    wait_for(lambda: not jobs.pods("long"), 60, "the attempt's pod to go")
    assert jobs.get("long")["spec"]["cancel"] is True  # the job stays, with its history

    again = jobline(jobs, "retry", "long")
    assert again.returncode == 0, again
    st = wait_for(
        lambda: (
            s if (s := jobs.status("long")).get("attempts") == 2 and s.get("phase") == "Running" else None
        ),
        90,
        "the requeued job to run a second attempt",
    )
    assert jobs.get("long")["spec"].get("cancel") is False
    refused = jobline(jobs, "cancel", "long", "ghost")
    assert refused.returncode != 0 and "ghost" in refused.stderr
    jobs.wait_phase("long", "Cancelled", timeout=90)


def test_cancel_of_a_pending_job_ends_it_at_once_without_a_pod(jobs: Jobs) -> None:
    jobs.queue(paused=True)
    jobs.create("waiting", "echo", {})
    jobs.wait_phase("waiting", "Pending", timeout=30)
    done = jobline(jobs, "cancel", "waiting")
    assert done.returncode == 0, done
    st = jobs.wait_phase("waiting", "Cancelled", timeout=30)
    assert st.get("attempts", 0) == 0 and st["completedAt"] and not st.get("attemptHistory"), st
    jobs.patch_queue("default", {"paused": False})
    wait_for(lambda: jobs.get_queue()["status"].get("cancelled") == 1, 30, "the queue to count it")
    assert not jobs.pods("waiting")
    finished = jobline(jobs, "cancel", "waiting")
    assert finished.returncode == 1 and "already Cancelled" in finished.stderr, finished
