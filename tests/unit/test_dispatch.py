"""Dispatch order (flowcontrol's, FIFO): priority (higher first), then creation time, then name; a partial
pick for free slots; free slots, duplicates, retention."""

from __future__ import annotations

import random

import pytest

from jobline.core.dispatch import Finished, Unique, free_slots, originals, retention_victims
from jobline.core.flowcontrol import Candidate, Limits, decide, order


def test_order_is_priority_then_age_then_name() -> None:
    jobs = [Candidate("c", 0, "2026-01-01T00:00:02Z"), Candidate("b", 5, "2026-01-01T00:00:03Z"),
            Candidate("a", 0, "2026-01-01T00:00:02Z"), Candidate("d", 0, "2026-01-01T00:00:01Z"),
            Candidate("e", -1, "2026-01-01T00:00:00Z")]
    assert [c.name for c in order(jobs, Limits())] == ["b", "d", "a", "c", "e"]
    assert decide(jobs, Limits(concurrency=2)).start == ("b", "d")
    assert decide(jobs, Limits(concurrency=0)).start == ()


def test_partial_pick_equals_the_head_of_the_full_order() -> None:
    rng = random.Random(7)
    jobs = [Candidate(f"j{i}", rng.randint(-2, 2), f"2026-01-01T00:00:{rng.randint(0, 59):02d}Z")
            for i in range(2000)]
    full = [c.name for c in order(jobs, Limits())]
    assert full == [c.name for c in sorted(jobs, key=lambda c: (-c.priority, c.created, c.name))]
    for slots in (1, 7, 50, 1999, 2000, 5000):
        assert decide(jobs, Limits(concurrency=slots)).start == tuple(full[:slots])


def test_free_slots() -> None:
    assert free_slots(None, 10, paused=False) is None
    assert free_slots(5, 3, paused=False) == 2
    assert free_slots(5, 9, paused=False) == 0
    assert free_slots(None, 0, paused=True) == 0


@pytest.mark.parametrize(("concurrency", "active", "paused", "expected"), [
    pytest.param(None, 0, False, None, id="no-limit"),
    pytest.param(None, 10, False, None, id="no-limit-busy"),
    pytest.param(5, 0, False, 5, id="idle"),
    pytest.param(5, 3, False, 2, id="some-busy"),
    pytest.param(5, 5, False, 0, id="full"),
    pytest.param(5, 9, False, 0, id="over-full-never-negative"),
    pytest.param(0, 0, False, 0, id="zero-concurrency"),
    pytest.param(None, 0, True, 0, id="paused-no-limit"),
    pytest.param(5, 0, True, 0, id="paused-with-room"),
])
def test_free_slots_table(concurrency: int | None, active: int, paused: bool, expected: int | None) -> None:
    assert free_slots(concurrency, active, paused=paused) == expected


T0, T1, T2, T3 = (f"2026-01-01T00:00:0{i}Z" for i in range(4))

ORIGINALS = [
    pytest.param([], {}, id="none"),
    pytest.param([Unique("a", T0, False, False)], {}, id="alone"),
    pytest.param([Unique("a", T0, False, False), Unique("b", T1, True, False)], {}, id="twin-finished"),
    pytest.param([Unique("a", T0, False, False), Unique("b", T1, False, False)], {"b": "a"}, id="oldest-wins"),
    pytest.param([Unique("b", T1, False, False), Unique("a", T0, False, False)], {"b": "a"},
                 id="input-order-does-not-matter"),
    pytest.param([Unique("b", T0, False, False), Unique("a", T0, False, False)], {"b": "a"},
                 id="same-age-name-decides"),
    pytest.param([Unique("a", T0, False, False), Unique("b", T1, False, True)], {"a": "b"},
                 id="started-one-wins-over-older"),
    pytest.param([Unique("a", T0, True, True), Unique("b", T1, False, False), Unique("c", T2, False, False)],
                 {"c": "b"}, id="finished-original-does-not-count"),
    pytest.param([Unique("a", T0, False, True), Unique("b", T1, False, True), Unique("c", T2, False, False)],
                 {"c": "a"}, id="two-started-neither-is-a-duplicate-oldest-is-original"),
    pytest.param([Unique("a", T0, False, False), Unique("b", T1, False, False), Unique("c", T2, False, False),
                  Unique("d", T3, True, False)], {"b": "a", "c": "a"}, id="many"),
]


@pytest.mark.parametrize(("jobs", "expected"), ORIGINALS)
def test_originals(jobs: list[Unique], expected: dict[str, str]) -> None:
    assert originals(jobs) == expected


def test_every_replica_agrees_on_the_original() -> None:
    jobs = [Unique(f"j{i}", f"2026-01-01T00:00:{i % 7:02d}Z", False, False) for i in range(20)]
    rng = random.Random(3)
    first = originals(jobs)
    for _ in range(10):
        rng.shuffle(jobs)
        assert originals(jobs) == first


RETENTION = [
    pytest.param([], 1, 1, [], id="nothing-finished"),
    pytest.param([Finished("a", "Succeeded", T0)], None, None, [], id="no-limits"),
    pytest.param([Finished("a", "Succeeded", T0), Finished("b", "Succeeded", T1), Finished("c", "Succeeded", T2)],
                 1, None, ["a", "b"], id="keep-newest-succeeded-oldest-first"),
    pytest.param([Finished("a", "Succeeded", T0), Finished("b", "Failed", T1)], 0, 0, ["a", "b"], id="keep-none"),
    pytest.param([Finished("a", "Succeeded", T0), Finished("b", "Failed", T1), Finished("c", "Failed", T2)],
                 5, 1, ["b"], id="failed-limit-only-touches-failed"),
    pytest.param([Finished("a", "Failed", T0), Finished("b", "Succeeded", T1)], None, 0, ["a"],
                 id="succeeded-unlimited"),
    pytest.param([Finished("b", "Succeeded", T0), Finished("a", "Succeeded", T0)], 1, None, ["a"],
                 id="same-completion-name-decides"),
    pytest.param([Finished("a", "Succeeded", T0), Finished("b", "Succeeded", T1)], 2, 2, [], id="within-limits"),
]


@pytest.mark.parametrize(("finished", "keep_succeeded", "keep_failed", "victims"), RETENTION)
def test_retention_victims(finished: list[Finished], keep_succeeded: int | None, keep_failed: int | None,
                           victims: list[str]) -> None:
    assert retention_victims(iter(finished), keep_succeeded, keep_failed) == victims
