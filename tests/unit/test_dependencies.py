"""dependsOn cycles (core/dependencies.py) and what the lifecycle does with cycles and missing jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobline.core import lifecycle
from jobline.core.dependencies import find_cycle
from jobline.core.models import QueuedJobSpec, resolve_retry

GRAPHS = {
    "two": {"a": ["b"], "b": ["a"]},
    "three": {"a": ["b"], "b": ["c"], "c": ["a"]},
    "tail": {"d": ["a"], "a": ["b"], "b": ["a"]},
    "shortest": {"a": ["b", "c"], "b": ["c"], "c": ["a"]},
    "diamond": {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []},
    "missing": {"a": ["gone"]},
}


@pytest.mark.parametrize(
    ("graph", "start", "cycle"),
    [
        ("two", "a", ("a", "b", "a")),
        ("two", "b", ("b", "a", "b")),
        ("three", "b", ("b", "c", "a", "b")),
        ("tail", "d", None),  # d waits on a cycle but is not on it: it fails as DependencyFailed later
        ("tail", "a", ("a", "b", "a")),
        ("shortest", "a", ("a", "c", "a")),
        ("diamond", "a", None),
        ("missing", "a", None),
    ],
)
def test_find_cycle(graph: str, start: str, cycle: tuple[str, ...] | None) -> None:
    assert find_cycle(start, GRAPHS[graph].get) == cycle


def test_a_large_graph_is_searched_within_a_bound() -> None:
    chain = {f"j{i}": [f"j{i + 1}"] for i in range(20_000)}
    chain["j20000"] = ["j0"]
    assert find_cycle("j0", chain.get) is None  # beyond MAX_VISITED: no answer rather than a long search


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def plan(spec: dict[str, object], **world: object) -> lifecycle.Outcome:
    w = lifecycle.World(now=NOW, retry=resolve_retry(None, None), **world)  # type: ignore[arg-type]
    return lifecycle.reconcile(
        name="a",
        uid="u",
        generation=1,
        annotations={},
        spec=QueuedJobSpec.model_validate(spec),
        status=None,
        pods=[],
        world=w,
    )


def test_every_job_on_a_cycle_fails_naming_it() -> None:
    out = plan({"handler": "h", "dependsOn": ["b"]}, deps={"b": "Waiting"}, cycle=("a", "b", "a"))
    assert out.phase == "Failed"
    failed = {c["type"]: c for c in out.status["conditions"]}["Failed"]
    assert failed["reason"] == "DependencyCycle" and failed["message"] == "dependency cycle: a -> b -> a"
    assert out.status["deadLettered"] is False  # the spec must change: a new job, not a retry
    # a cycle wins over a failed dependency (the first job of the cycle to fail does not turn the rest
    # into DependencyFailed)
    out = plan({"handler": "h", "dependsOn": ["b"]}, deps={"b": "Failed"}, cycle=("a", "b", "a"))
    assert {c["type"]: c for c in out.status["conditions"]}["Failed"]["reason"] == "DependencyCycle"


@pytest.mark.parametrize(
    ("age", "timeout", "phase", "wake"),
    [
        (timedelta(seconds=10), None, "Waiting", timedelta(seconds=600)),
        (timedelta(seconds=599), None, "Waiting", timedelta(seconds=600)),
        (timedelta(seconds=600), None, "Failed", None),
        (timedelta(seconds=5), 30, "Waiting", timedelta(seconds=30)),
        (timedelta(seconds=31), 30, "Failed", None),
    ],
)
def test_a_missing_dependency_is_waited_for_then_fails(
    age: timedelta, timeout: int | None, phase: str, wake: timedelta | None
) -> None:
    created = NOW - age
    spec: dict[str, object] = {"handler": "h", "dependsOn": ["gone", "ok"]}
    if timeout is not None:
        spec["dependencyTimeoutSeconds"] = timeout
    out = plan(spec, deps={"gone": None, "ok": "Succeeded"}, created=created)
    assert out.phase == phase
    if phase == "Failed":
        failed = {c["type"]: c for c in out.status["conditions"]}["Failed"]
        assert (
            failed["reason"] == "DependencyMissing" and "dependency gone does not exist" in failed["message"]
        )
        assert out.status["deadLettered"] is True  # create the dependency, then retry
    else:
        assert out.status["waitingReason"] == "Blocked" and out.wake_at == created + wake  # type: ignore[operator]
