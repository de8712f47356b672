"""Pool mode in the controller loop, step by step against the in-memory apiserver (tests/unit/fakekube.py):
the pool grows to what its jobs need, assigns attempts to ready workers' free slots with one write over the
version it saw, turns a worker's report into the job's end, retries a lost worker's attempts without using a
retry, and scales idle workers down."""

from __future__ import annotations

from typing import Any

from jobline import names
from jobline.core.timefmt import fmt
from jobline.kube import KubeError

from .test_loop_steps import NS, World, go, job, queue

POOL = {"mode": "Pool", "minReplicas": 0, "maxReplicas": 2, "slotsPerWorker": 2, "scaleDownAfterSeconds": 60}


def workers(w: World) -> dict[str, dict[str, Any]]:
    return {n: p for n, p in w.pods().items() if names.LABEL_POOL in p["metadata"].get("labels", {})}


def make_ready(w: World, name: str) -> None:
    """The kubelet starts the worker container: the pod is Running and ready."""

    def change(pod: dict[str, Any]) -> None:
        pod["status"] = {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": names.WORKER_CONTAINER,
                    "ready": True,
                    "state": {"running": {"startedAt": fmt(w.clock())}},
                }
            ],
        }

    w.controller.on_pool_pod("MODIFIED", w.kube.update("pods", NS, name, change))


def report(
    w: World, name: str, code: int = 0, reason: str = "Completed", message: str | None = '{"ok":1}'
) -> None:
    """The worker the job is assigned to reports on its attempt."""

    def change(obj: dict[str, Any]) -> None:
        st = obj["status"]
        st["report"] = {
            "attempt": st["attempts"],
            "worker": st["worker"],
            "exitCode": code,
            "reason": reason,
            "message": message,
            "finishedAt": fmt(w.clock()),
        }

    w.controller.on_job("MODIFIED", w.kube.update("QueuedJob", NS, name, change))


async def _pool_with(w: World, *jobs: str, **pool: Any) -> None:
    w.put(queue(workers={**POOL, **pool}), *(job(n) for n in jobs))
    await w.controller.sync()
    await w.step()


def test_the_pool_grows_assigns_and_ends_jobs_from_reports() -> None:
    async def test() -> None:
        w = World()
        await _pool_with(w, "a", "b", "c")
        pods = workers(w)
        assert len(pods) == 2  # ceil(3 jobs / 2 slots)
        for pod in pods.values():
            meta = pod["metadata"]
            assert meta["generateName"] == "q-worker-" and meta["ownerReferences"][0]["kind"] == "JobQueue"
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
            assert env[names.ENV_POOL] == "1" and env[names.ENV_SLOTS] == "2"
        assert all(w.status(n).get("phase") != "Running" for n in "abc")  # no worker is ready yet
        for name in pods:
            make_ready(w, name)
        await w.step()
        assigned = {n: w.status(n)["worker"] for n in "abc"}
        assert set(assigned.values()) == set(pods) and sorted(
            list(assigned.values()).count(p) for p in pods
        ) == [1, 2]  # spread over both, at most two slots each
        for n in "abc":
            st = w.status(n)
            assert st["phase"] == "Running" and st["attempts"] == 1
            assert st["attemptHistory"][-1]["worker"] == st["worker"] == st["podName"]
        assert not [p for p in w.pods().values() if names.LABEL_JOB in p["metadata"].get("labels", {})]
        report(w, "a")
        await w.step()
        st = w.status("a")
        assert st["phase"] == "Succeeded" and st["result"] == {"ok": 1} and st.get("worker") is None
        assert st["attemptHistory"][-1]["reason"] == "Completed"
        assert "Started" not in w.event_reasons("a") and "Succeeded" not in w.event_reasons("a")
        assert names.LABEL_PHASE not in (w.kube.get("QueuedJob", NS, "a") or {})["metadata"].get("labels", {})
        report(w, "b", code=1, reason="Error", message="RuntimeError: no")
        await w.step()
        st = w.status("b")
        assert st["phase"] == "Waiting" and st["waitingReason"] == "BackingOff" and st["failedAttempts"] == 1
        assert "AttemptFailed" in w.event_reasons("b")  # failures post their Events as in pod mode

    go(test)


def test_a_lost_worker_retries_its_attempts_without_using_a_retry() -> None:
    async def test() -> None:
        w = World()
        await _pool_with(w, "a", "b", maxReplicas=1, scaleDownAfterSeconds=0)
        (first,) = workers(w)
        make_ready(w, first)
        await w.step()
        assert {w.status(n)["worker"] for n in "ab"} == {first}
        gone = w.kube.get("pods", NS, first)
        assert gone is not None
        del w.kube.objects[w.kube.path_of("pods", NS, first)]
        w.controller.on_pool_pod("DELETED", gone)
        await w.step()
        for n in "ab":
            st = w.status(n)
            record = st["attemptHistory"][-1]
            assert record["reason"] == names.WORKER_LOST and record["disruption"] == names.WORKER_LOST
            assert st.get("failedAttempts", 0) == 0 and st["disruptedAttempts"] == 1
            assert st["phase"] == "Pending" and st.get("worker") is None
        (second,) = workers(w)  # a new worker for the two runnable jobs
        assert second != first
        make_ready(w, second)
        await w.step()
        assert {(w.status(n)["worker"], w.status(n)["attempts"]) for n in "ab"} == {(second, 2)}

    go(test)


def test_an_assignment_is_written_only_over_the_version_decided_on() -> None:
    async def test() -> None:
        w = World()
        await _pool_with(w, "a", maxReplicas=1)
        (pod,) = workers(w)
        path = w.kube.path_of("QueuedJob", NS, "a") + "/status"
        w.kube.fail("PATCH", path, KubeError(409, "Conflict", "the object has been modified"))
        make_ready(w, pod)
        await w.step()
        assert w.status("a").get("worker") is None  # refused: nothing assigned
        w.clock.advance(1)
        await w.step()
        assert w.status("a")["worker"] == pod  # looked at again, assigned once
        patches = [
            c
            for c in w.kube.calls_to("PATCH", "/queuedjobs/a/status")
            if (c.body or {}).get("status", {}).get("worker")
        ]
        assert all(c.body["metadata"]["resourceVersion"] for c in patches)

    go(test)


def test_idle_workers_go_after_scale_down_after_seconds() -> None:
    async def test() -> None:
        w = World()
        await _pool_with(w, "a", maxReplicas=1, scaleDownAfterSeconds=60)
        (pod,) = workers(w)
        make_ready(w, pod)
        await w.step()
        report(w, "a")
        await w.step()
        assert w.status("a")["phase"] == "Succeeded"
        w.clock.advance(30)
        await w.step()
        assert pod in workers(w)  # idle for 30 s of 60
        w.clock.advance(31)
        await w.step()
        assert workers(w) == {}  # scaled to zero

    go(test)


def test_a_job_with_its_own_template_fails_in_a_pool() -> None:
    async def test() -> None:
        w = World()
        w.put(
            queue(workers={**POOL, "maxReplicas": 1}),
            job("own", template={"env": [{"name": "A", "value": "1"}]}),
        )
        await w.controller.sync()
        await w.step()
        (pod,) = workers(w)
        make_ready(w, pod)
        await w.step()
        st = w.status("own")
        failed = {c["type"]: c for c in st["conditions"]}["Failed"]
        assert st["phase"] == "Failed" and failed["reason"] == "TemplateInPool" and st.get("attempts", 0) == 0

    go(test)
