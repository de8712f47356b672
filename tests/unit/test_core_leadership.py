"""Who is active among operator replicas: kopf's peering rule on the peering object's status.

Active when registered and no live peer has a higher or equal priority; a peer is dead once
``lastseen + lifetime <= now``; entries that cannot be read are not peers that block.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobline.core.leadership import is_active
from jobline.core.timefmt import fmt

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ME = "me@host-a"


def seen(ago: float) -> str:
    return fmt(NOW - timedelta(seconds=ago))


def peer(priority: Any = 100, ago: float = 1, lifetime: Any = 60) -> dict[str, Any]:
    return {"priority": priority, "lastseen": seen(ago), "lifetime": lifetime}


MYSELF = {ME: peer(priority=100)}

CASES = [
    pytest.param({}, False, id="empty-status-not-registered"),
    pytest.param({"other@b": peer(50)}, False, id="others-only-not-registered"),
    pytest.param(MYSELF, True, id="alone"),
    pytest.param({ME: peer(100, ago=3600)}, True, id="alone-own-entry-stale-still-counts"),
    pytest.param({**MYSELF, "other@b": peer(200)}, False, id="live-peer-higher-priority"),
    pytest.param({**MYSELF, "other@b": peer(100)}, False, id="live-peer-equal-priority-everybody-freezes"),
    pytest.param({**MYSELF, "other@b": peer(50)}, True, id="live-peer-lower-priority"),
    pytest.param({**MYSELF, "other@b": peer(-5)}, True, id="live-peer-negative-priority"),
    pytest.param({**MYSELF, "other@b": peer(200, ago=61, lifetime=60)}, True, id="dead-peer-past-lifetime"),
    pytest.param(
        {**MYSELF, "other@b": peer(200, ago=60, lifetime=60)}, True, id="dead-peer-exactly-at-lifetime"
    ),
    pytest.param(
        {**MYSELF, "other@b": peer(200, ago=59, lifetime=60)}, False, id="peer-one-second-before-death"
    ),
    pytest.param(
        {**MYSELF, "other@b": peer(200, ago=100, lifetime=300)}, False, id="long-lifetime-keeps-it-alive"
    ),
    pytest.param(
        {**MYSELF, "other@b": {"priority": 200, "lastseen": seen(30)}},
        False,
        id="lifetime-defaults-to-60-alive",
    ),
    pytest.param(
        {**MYSELF, "other@b": {"priority": 200, "lastseen": seen(90)}},
        True,
        id="lifetime-defaults-to-60-dead",
    ),
    pytest.param(
        {**MYSELF, "other@b": {"lastseen": seen(1), "lifetime": 60}},
        True,
        id="peer-without-priority-is-0-below-us",
    ),
    pytest.param({**MYSELF, "other@b": {"priority": 200, "lifetime": 60}}, True, id="no-lastseen-is-dead"),
    pytest.param(
        {**MYSELF, "other@b": {"priority": 200, "lastseen": "yesterday", "lifetime": 60}},
        True,
        id="unreadable-lastseen-is-dead",
    ),
    pytest.param(
        {**MYSELF, "other@b": {"priority": 200, "lastseen": NOW - timedelta(seconds=5), "lifetime": 60}},
        False,
        id="lastseen-as-datetime-is-read",
    ),
    pytest.param({**MYSELF, "other@b": "garbage"}, True, id="non-mapping-entry-ignored"),
    pytest.param({**MYSELF, "other@b": None}, True, id="null-entry-ignored"),
    pytest.param({**MYSELF, "other@b": peer("300")}, False, id="priority-as-text-is-read"),
    pytest.param(
        {**MYSELF, "other@b": peer(lifetime="120", ago=90, priority=200)},
        False,
        id="lifetime-as-text-is-read",
    ),
    pytest.param(
        {**MYSELF, "dead@c": peer(500, ago=600), "low@d": peer(10), "lower@e": peer(1)},
        True,
        id="many-peers-only-dead-one-higher",
    ),
    pytest.param(
        {**MYSELF, "dead@c": peer(500, ago=600), "low@d": peer(10), "high@e": peer(101)},
        False,
        id="many-peers-one-live-higher",
    ),
]


@pytest.mark.parametrize(("status", "active"), CASES)
def test_leadership_rule(status: dict[str, Any], active: bool) -> None:
    assert is_active(status, ME, 100, NOW) is active


@pytest.mark.parametrize(
    ("mine", "active"),
    [
        pytest.param(1, True, id="above-0"),
        pytest.param(0, False, id="equal-to-0"),
        pytest.param(-1, False, id="below-0"),
    ],
)
def test_a_peer_without_priority_counts_as_0(mine: int, active: bool) -> None:
    status = {
        ME: peer(999),
        "other@b": {"lastseen": seen(1), "lifetime": 60},
    }  # our own entry's priority: unused
    assert is_active(status, ME, mine, NOW) is active


def test_naive_lastseen_is_read_as_utc() -> None:
    naive = (NOW - timedelta(seconds=5)).replace(tzinfo=None).isoformat()
    assert (
        is_active({**MYSELF, "other@b": {"priority": 200, "lastseen": naive, "lifetime": 60}}, ME, 100, NOW)
        is False
    )


def test_two_replicas_with_distinct_priorities_agree_on_one_leader() -> None:
    status = {"a@1": peer(100), "b@2": peer(200)}
    assert [is_active(status, who, prio, NOW) for who, prio in (("a@1", 100), ("b@2", 200))] == [False, True]


def test_the_leader_takes_over_when_the_higher_peer_dies() -> None:
    status = {"a@1": peer(100), "b@2": peer(200, ago=0, lifetime=60)}
    assert not is_active(status, "a@1", 100, NOW)
    assert is_active(status, "a@1", 100, NOW + timedelta(seconds=60))


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"priority": "high", "lastseen": seen(1), "lifetime": 60}, id="priority-not-a-number"),
        pytest.param({"priority": None, "lastseen": seen(1), "lifetime": 60}, id="priority-null"),
        pytest.param({"priority": 1, "lastseen": seen(1), "lifetime": None}, id="lifetime-null"),
    ],
)
def test_malformed_numbers_in_a_peer_entry_do_not_crash_the_rule(entry: dict[str, Any]) -> None:
    # kopf's defaults stand in (priority 0, lifetime 60 s): a live peer below our priority 100.
    assert is_active({**MYSELF, "other@b": entry}, ME, 100, NOW) is True
    assert is_active({**MYSELF, "other@b": entry}, ME, 0, NOW) is False  # and it still blocks an equal one
