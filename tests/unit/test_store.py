"""The controller's in-memory store: the per-queue count of jobs holding a slot, kept incrementally."""

from __future__ import annotations

from typing import Any

from jobline import names
from jobline.controller.store import Store

_rv = iter(range(1, 10_000))


def job(name: str, queue: str = "q", phase: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": str(next(_rv))},
        "spec": {"queue": queue, "handler": "h"},
    }
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def pod(job_name: str, attempt: int, phase: str = "Pending") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": f"{job_name}-{attempt}",
            "resourceVersion": str(next(_rv)),
            "labels": {names.LABEL_JOB: job_name},
        },
        "status": {"phase": phase},
    }


def brute_force(store: Store, queue: str) -> int:
    return sum(
        1
        for key, obj in store.jobs_in_queue("ns", queue)
        if store.active_pods(key) or (obj.get("status") or {}).get("phase") == "Running"
    )


def test_active_count_follows_pods_and_phase() -> None:
    store = Store()
    store.put_job(job("a"))
    store.put_job(job("b"))
    assert store.active_count("ns", "q") == 0
    store.put_pod(pod("a", 1))  # a pod that has not finished holds a slot
    assert store.active_count("ns", "q") == 1
    store.put_job(job("b", phase="Running"))  # so does phase Running, pod or not
    assert store.active_count("ns", "q") == 2
    store.put_pod(pod("a", 1, "Failed"))
    assert store.active_count("ns", "q") == 1
    store.put_job(job("b", phase="Succeeded"))
    assert store.active_count("ns", "q") == 0
    store.put_pod(pod("a", 2, "Running"))
    store.drop_job(("ns", "a"))
    assert store.active_count("ns", "q") == 0


def test_pod_before_its_job_counts_once_the_job_is_known() -> None:
    store = Store()
    store.put_pod(pod("late", 1, "Running"))
    assert store.active_count("ns", "q") == 0
    store.put_job(job("late"))
    assert store.active_count("ns", "q") == 1
    store.drop_pod(pod("late", 1, "Running"))
    assert store.active_count("ns", "q") == 0


def test_active_count_moves_with_the_queue_and_matches_a_full_count() -> None:
    store = Store()
    for i in range(30):
        store.put_job(job(f"j{i}", queue="q" if i % 2 else "r", phase="Running" if i % 3 == 0 else None))
        if i % 5 == 0:
            store.put_pod(pod(f"j{i}", 1, "Running" if i % 4 else "Succeeded"))
    store.put_job(job("j3", queue="r", phase="Running"))  # moved between queues
    for queue in ("q", "r"):
        assert store.active_count("ns", queue) == brute_force(store, queue), queue
    assert "j3" in store.active[("ns", "r")] and "j3" not in store.active[("ns", "q")]


def test_store_drops_managed_fields_without_touching_the_watch_object() -> None:
    store = Store()
    obj = job("m")
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    store.put_job(obj)
    assert "managedFields" not in store.jobs[("ns", "m")]["metadata"]
    assert store.jobs[("ns", "m")]["metadata"]["name"] == "m"
    assert obj["metadata"]["managedFields"]  # the caller's dict is unchanged
    p = pod("m", 1)
    p["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    store.put_pod(p)
    assert "managedFields" not in store.pods[("ns", "m")]["m-1"]["metadata"]


def test_a_job_deleted_before_its_start_is_skipped_not_a_traceback() -> None:
    """The starts of one step run together; a delete event may drop a chosen job before its turn."""
    import asyncio

    from jobline.controller.loop import Controller

    controller = Controller(kube=object())  # type: ignore[arg-type]  # never called: nothing to start
    asyncio.run(controller.start(("ns", "gone"), None))
    assert not controller.timers
