"""Dispatch order: priority (higher first), then creation time, then name; a partial pick for free slots."""

from __future__ import annotations

import random

from jobline.core.dispatch import Candidate, free_slots, pick


def test_order_is_priority_then_age_then_name() -> None:
    jobs = [Candidate.of("c", 0, "2026-01-01T00:00:02Z"), Candidate.of("b", 5, "2026-01-01T00:00:03Z"),
            Candidate.of("a", 0, "2026-01-01T00:00:02Z"), Candidate.of("d", 0, "2026-01-01T00:00:01Z"),
            Candidate.of("e", -1, "2026-01-01T00:00:00Z")]
    assert [c.name for c in pick(jobs, None)] == ["b", "d", "a", "c", "e"]
    assert [c.name for c in pick(jobs, 2)] == ["b", "d"]
    assert pick(jobs, 0) == []


def test_partial_pick_equals_the_head_of_the_full_order() -> None:
    rng = random.Random(7)
    jobs = [Candidate.of(f"j{i}", rng.randint(-2, 2), f"2026-01-01T00:00:{rng.randint(0, 59):02d}Z")
            for i in range(2000)]
    full = pick(jobs, None)
    assert full == sorted(jobs)  # the dataclass order and the pick order agree
    for slots in (1, 7, 50, 1999, 2000, 5000):
        assert pick(jobs, slots) == full[:slots]


def test_free_slots() -> None:
    assert free_slots(None, 10, paused=False) is None
    assert free_slots(5, 3, paused=False) == 2
    assert free_slots(5, 9, paused=False) == 0
    assert free_slots(None, 0, paused=True) == 0
