"""The queue's debounce (issue 13, part 2): a burst of enqueues with one uniqueKey collapses into one run
with the last payload; the replaced jobs end Superseded and are kept."""

from __future__ import annotations

import pytest

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import wait_for


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


def test_a_burst_of_20_enqueues_runs_once_with_the_last_payload(jobs: Jobs) -> None:
    jobs.queue(debounce={"seconds": 3})
    names = [f"reindex-{i:02d}" for i in range(20)]
    for i, name in enumerate(names):  # one after the other: each create returns before the next
        jobs.create(name, "echo", {"version": i}, uniqueKey="customer-42")
    last = jobs.wait_phase(names[-1], "Succeeded", timeout=120)
    assert last["result"] == {"version": 19} and last["attempts"] == 1, last
    for name in names[:-1]:
        st = jobs.wait_phase(name, "Superseded", timeout=30)
        assert st.get("attempts", 0) == 0 and st["supersededBy"], (name, st)
        assert {c["type"]: c["status"] for c in st["conditions"]}["Superseded"] == "True"
        assert not jobs.pods(name)
    assert len(jobs.pods(names[-1])) == 1  # one run in all
    assert {jobs.status(n)["supersededBy"] for n in names[:-1]} <= set(names[1:])
    wait_for(
        lambda: (q := jobs.get_queue()["status"]).get("superseded") == 19 and q.get("succeeded") == 1,
        30,
        "the queue to count 19 superseded jobs and 1 succeeded",
    )


def test_a_job_of_the_key_enqueued_while_one_runs_waits_for_it_then_runs(jobs: Jobs) -> None:
    jobs.queue(debounce={"seconds": 1, "maxWaitSeconds": 2})
    jobs.create("first", "sleep", {"seconds": 8}, uniqueKey="k")
    jobs.wait_phase("first", "Running", timeout=60)
    jobs.create("second", "echo", {"v": 2}, uniqueKey="k")
    st = wait_for(
        lambda: s if (s := jobs.status("second")).get("waitingReason") == "Debounced" else None,
        30,
        "the second job to wait for the running one",
    )
    assert st["phase"] == "Waiting" and jobs.phase("first") == "Running"  # never two runs of one key
    jobs.wait_phase("first", "Succeeded", timeout=60)
    second = jobs.wait_phase("second", "Succeeded", timeout=60)
    assert second["result"] == {"v": 2}
    first_end = jobs.status("first")["completedAt"]
    assert second["startedAt"] >= first_end, (second, first_end)
