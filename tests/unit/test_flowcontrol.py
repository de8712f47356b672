"""Flow control (jobline.core.flowcontrol): the token bucket rebuilt from recent starts, its safety bound
under a seeded random dispatcher, and decide()'s order, limits and waiting reasons. Expectations are
worked out by hand from the module docstring's rules, never by calling the module."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from jobline.core.flowcontrol import (
    FLOW_REASONS,
    NO_KEY,
    REASON_CONCURRENCY,
    REASON_KEY_LIMIT,
    REASON_QUEUE_PAUSED,
    REASON_RATE_LIMITED,
    Bucket,
    Candidate,
    Decision,
    Fairness,
    Limits,
    Tokens,
    decide,
    order,
    tokens,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
RATE5 = Bucket.of(5, 1.0, 10)  # 5/s, burst 10: an empty bucket fills in 2 s
PER_MINUTE = Bucket.of(60, 60.0, None)  # 1/s, burst 60: fills in 60 s
SLOW = Bucket.of(10, 60.0, 2)  # 1 every 6 s, burst 2: fills in 12 s

# The reasons as users see them (literal on purpose: they are API).
PAUSED, KEY, CONC, RATE = "QueuePaused", "KeyConcurrencyLimit", "ConcurrencyLimit", "RateLimited"


def at(ms: int) -> datetime:
    """``NOW`` shifted by whole milliseconds (exact, unlike float seconds)."""
    return NOW + timedelta(milliseconds=ms)


def burst(n: int, ms: int = 0) -> list[datetime]:
    return [at(ms)] * n


def stream(first_ms: int, last_ms: int, step_ms: int) -> list[datetime]:
    """One start every ``step_ms`` from ``first_ms`` to ``last_ms`` (both included)."""
    return [at(ms) for ms in range(first_ms, last_ms + 1, step_ms)]


# --- Bucket ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bucket", "rate", "burst_", "window"),
    [
        pytest.param(RATE5, 5.0, 10, timedelta(seconds=8), id="5-per-second-burst-10"),
        pytest.param(PER_MINUTE, 1.0, 60, timedelta(seconds=240), id="60-per-minute-burst-defaults-to-starts"),
        pytest.param(SLOW, 1 / 6, 2, timedelta(seconds=48), id="10-per-minute-burst-2"),
        pytest.param(Bucket.of(100, 3600.0, None), 1 / 36, 100, timedelta(hours=4), id="100-per-hour"),
    ],
)
def test_bucket_of(bucket: Bucket, rate: float, burst_: int, window: timedelta) -> None:
    assert bucket.rate == pytest.approx(rate)
    assert bucket.burst == burst_
    assert bucket.window == window


# --- tokens(): the bucket rebuilt from the starts -----------------------------------------------------
# Model (module docstring): the bucket is empty one window (4 * burst / rate) before `now`, refills at
# `rate`, is capped at `burst`, and each start inside (now - window, now] takes one token. Every row's
# starts follow a quiet spell of at least one fill time, so the answer is the true token bucket's.
# fmt: off
TOKEN_ROWS = [
    # an idle queue has a full bucket
    pytest.param(RATE5, [], 10, None, id="idle-has-the-full-burst"),
    pytest.param(PER_MINUTE, [], 60, None, id="per-minute-idle-has-the-full-burst"),
    pytest.param(SLOW, [], 2, None, id="slow-idle-has-the-full-burst"),
    pytest.param(Bucket.of(3, 1.0, 10), [], 10, None, id="idle-full-when-window-is-not-whole-microseconds"),
    # k starts in a burst at now leave burst - k
    pytest.param(RATE5, burst(1), 9, None, id="one-start-leaves-burst-minus-1"),
    pytest.param(RATE5, burst(3), 7, None, id="burst-of-3-leaves-7"),
    pytest.param(RATE5, burst(9), 1, None, id="burst-of-9-leaves-1"),
    pytest.param(PER_MINUTE, burst(45), 15, None, id="per-minute-burst-of-45-leaves-15"),
    pytest.param(SLOW, burst(1), 1, None, id="slow-one-start-leaves-1"),
    # refill at `rate`: a stream at exactly the rate keeps the bucket one below full; twice the rate drains it
    pytest.param(RATE5, stream(-1800, 0, 200), 9, None, id="stream-at-the-rate-keeps-burst-minus-1"),
    pytest.param(RATE5, stream(-2000, 0, 100), 0, 400, id="stream-at-twice-the-rate-empty-next-in-400ms"),
    pytest.param(RATE5, stream(-1900, -100, 100), 0, 100, id="twice-the-rate-stopped-100ms-ago"),
    pytest.param(RATE5, burst(10, -600), 3, None, id="burst-600ms-ago-refilled-3"),
    pytest.param(RATE5, burst(10, -200), 1, None, id="burst-200ms-ago-refilled-1"),
    pytest.param(RATE5, burst(10, -1000), 5, None, id="burst-1s-ago-refilled-5"),
    pytest.param(PER_MINUTE, stream(-59_000, 0, 500), 0, 1000, id="per-minute-twice-the-rate-next-in-1s"),
    pytest.param(PER_MINUTE, burst(60, -30_000), 30, None, id="per-minute-refilled-30-in-30s"),
    pytest.param(PER_MINUTE, burst(20, -30_000), 60, None, id="per-minute-20-refilled-in-30s"),
    # starts older than the window do not matter
    pytest.param(RATE5, burst(10, -2000), 10, None, id="burst-exactly-one-window-ago-refilled"),
    pytest.param(RATE5, burst(10, -2001), 10, None, id="burst-just-older-than-the-window"),
    pytest.param(RATE5, burst(500, -60_000), 10, None, id="huge-burst-a-minute-ago"),
    pytest.param(RATE5, [*burst(50, -9000), *burst(2)], 8, None, id="old-ignored-recent-counted"),
    pytest.param(RATE5, [*burst(50, -5000), *burst(2)], 0, 3600, id="an-overdraw-inside-the-window-counts"),
    pytest.param(PER_MINUTE, burst(60, -60_000), 60, None, id="per-minute-burst-a-window-ago"),
    # starts after now (clock skew, a later replica) are ignored
    pytest.param(RATE5, burst(3, 500), 10, None, id="future-starts-ignored"),
    pytest.param(RATE5, [*burst(2), *burst(5, 1)], 8, None, id="future-by-1ms-ignored-now-counted"),
    # any order
    pytest.param(RATE5, [at(-600), at(-1800), at(-1000), at(-200), at(-1400)], 10, None, id="unsorted"),
    pytest.param(RATE5, [at(-100), at(-300), at(-200), *burst(9, -400)], 0, 200, id="unsorted-drained"),
    pytest.param(RATE5, [*burst(2, 300), at(-2500), *burst(3), at(-100)], 6, None, id="unsorted-mixed"),
]
# fmt: on


@pytest.mark.parametrize(("bucket", "starts", "available", "next_ms"), TOKEN_ROWS)
def test_tokens(bucket: Bucket, starts: list[datetime], available: int, next_ms: int | None) -> None:
    expected = Tokens(available, None if next_ms is None else at(next_ms))
    assert tokens(bucket, starts, NOW) == expected


@pytest.mark.parametrize(
    ("bucket", "starts"),
    [
        pytest.param(RATE5, stream(-2000, 0, 100), id="saturated-stream"),
        pytest.param(RATE5, stream(-1900, -100, 100), id="saturated-stream-offset"),
        pytest.param(PER_MINUTE, stream(-59_000, 0, 500), id="per-minute-saturated-stream"),
        pytest.param(RATE5, burst(10), id="whole-burst-spent-now"),
        pytest.param(RATE5, burst(15, -1000), id="more-than-the-burst-spent-1s-ago"),
        pytest.param(RATE5, burst(12), id="overdrawn-by-a-second-replica"),
        pytest.param(PER_MINUTE, burst(60), id="per-minute-whole-burst-spent-now"),
        pytest.param(SLOW, burst(2), id="slow-whole-burst-spent-now"),
    ],
)
def test_next_at_is_when_the_next_token_is(bucket: Bucket, starts: list[datetime]) -> None:
    """An empty bucket names the instant of its next token: a token is there then, and not a microsecond
    earlier (with no new starts in between)."""
    empty = tokens(bucket, starts, NOW)
    assert empty.available == 0
    assert empty.next_at is not None
    assert empty.next_at > NOW
    assert tokens(bucket, starts, empty.next_at - US).available == 0
    assert tokens(bucket, starts, empty.next_at).available >= 1


def test_tokens_does_not_depend_on_the_order_or_the_container() -> None:
    rng = random.Random(11)
    starts = [at(rng.randint(-3000, 500)) for _ in range(40)]
    expected = tokens(RATE5, sorted(starts), NOW)
    for _ in range(20):
        rng.shuffle(starts)
        assert tokens(RATE5, starts, NOW) == expected
        assert tokens(RATE5, tuple(starts), NOW) == expected
        assert tokens(RATE5, iter(starts), NOW) == expected


# --- the safety property: a stateless dispatcher never beats the true token bucket -------------------
class ReferenceBucket:
    """The true token bucket, with state: full at ``since``, refills continuously, capped at burst."""

    def __init__(self, bucket: Bucket, since: datetime) -> None:
        self.rate, self.burst = bucket.rate, float(bucket.burst)
        self.level, self.last = self.burst, since

    def at(self, t: datetime) -> float:
        self.level = min(self.burst, self.level + self.rate * (t - self.last).total_seconds())
        self.last = t
        return self.level

    def take(self, t: datetime, n: int) -> None:
        self.at(t)
        self.level -= n


def dispatch(
    bucket: Bucket,
    rng: random.Random,
    starts: list[datetime],
    reference: ReferenceBucket,
    begin: datetime,
    end: datetime,
    *,
    greedy: bool,
    pauses: bool,
) -> Iterator[tuple[datetime, Tokens]]:
    """A dispatcher that, at random instants in [begin, end], asks ``tokens()`` from the full list of past
    starts and starts that many (``greedy``) or fewer; it keeps no state but ``starts``. Yields each
    decision after checking it against the reference bucket."""
    t = begin
    while True:
        t += timedelta(microseconds=rng.randint(1, 400_000))
        if pauses and rng.random() < 0.05:
            t += timedelta(microseconds=rng.randint(0, 10_000_000))
        if t > end:
            return
        got = tokens(bucket, starts, t)
        assert got.available <= math.floor(reference.at(t) + 1e-9), (t, got, reference.level)
        take = got.available if greedy else rng.randint(0, got.available)
        starts += [t] * take
        reference.take(t, take)
        assert reference.level >= -1e-9
        yield t, got


def assert_within_limit(bucket: Bucket, starts: Sequence[datetime]) -> None:
    """In every window [u_i, u_j] between start instants: at most burst + rate * (u_j - u_i) starts."""
    counts = Counter(starts)
    instants = sorted(counts)
    for i, first in enumerate(instants):
        n = 0
        for last in instants[i:]:
            n += counts[last]
            span = (last - first).total_seconds()
            assert n <= bucket.burst + bucket.rate * span + 1e-9, (first, last, n)


SIMULATIONS = [
    pytest.param(RATE5, 60, seed, greedy, pauses, id=f"5-per-s-burst-10-seed{seed}-{mode}")
    for seed in (1, 2, 3)
    for greedy, pauses, mode in ((True, False, "greedy"), (False, False, "fewer"), (True, True, "pauses"))
] + [
    pytest.param(PER_MINUTE, 300, 4, True, False, id="per-minute-greedy"),
    pytest.param(PER_MINUTE, 300, 5, False, True, id="per-minute-fewer-with-pauses"),
    pytest.param(SLOW, 120, 6, True, False, id="10-per-minute-burst-2-greedy"),
    pytest.param(Bucket.of(2, 1.0, 1), 60, 7, True, False, id="2-per-s-burst-1-greedy"),
    pytest.param(Bucket.of(2, 1.0, 1), 60, 8, False, True, id="2-per-s-burst-1-fewer-with-pauses"),
]


@pytest.mark.parametrize(("bucket", "seconds", "seed", "greedy", "pauses"), SIMULATIONS)
def test_random_dispatcher_stays_within_the_limit(
    bucket: Bucket, seconds: int, seed: int, greedy: bool, pauses: bool
) -> None:
    rng = random.Random(seed)
    starts: list[datetime] = []
    end = NOW + timedelta(seconds=seconds)
    reference = ReferenceBucket(bucket, NOW)
    decisions = list(dispatch(bucket, rng, starts, reference, NOW, end, greedy=greedy, pauses=pauses))
    assert decisions
    assert_within_limit(bucket, starts)
    if greedy and not pauses:
        # Not vacuous: each of the `burst` tokens is used again at the first decision (at most 0.4 s apart)
        # after its start has left the window, so every token starts at least once per window + 0.4 s.
        period = bucket.window.total_seconds() + 0.4
        assert len(starts) >= bucket.burst * (1 + math.floor((seconds - 0.4) / period))


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_restart_recomputes_the_same_tokens_and_never_beats_the_bucket(seed: int) -> None:
    """After a long saturated run the dispatcher restarts: only the starts survive. Recomputing from them
    gives the same answer as before the restart, never above the true bucket, and the run goes on within
    the limit."""
    rng = random.Random(seed)
    starts: list[datetime] = []
    reference = ReferenceBucket(RATE5, NOW)
    crash, end = NOW + timedelta(seconds=120), NOW + timedelta(seconds=180)
    last_t, last = list(dispatch(RATE5, rng, starts, reference, NOW, crash, greedy=True, pauses=False))[-1]
    survived = tuple(starts)
    # the last decision, recomputed from the surviving list (decision instants are distinct)
    assert tokens(RATE5, [s for s in survived if s < last_t], last_t) == last
    # a restarted replica (a fresh list, another order) at that instant and later ones, up to its restart
    restart = last_t + timedelta(seconds=3)
    for t in (last_t, last_t + US, last_t + timedelta(milliseconds=150), restart):
        fresh = list(survived)
        rng.shuffle(fresh)
        again = tokens(RATE5, fresh, t)
        assert again == tokens(RATE5, survived, t)
        assert again.available <= math.floor(reference.at(t) + 1e-9)
    replica = random.Random(seed + 1000)
    list(dispatch(RATE5, replica, starts, reference, restart, end, greedy=True, pauses=False))
    assert len(starts) > len(survived)
    assert_within_limit(RATE5, starts)


# --- decide(): order, limits and reasons ------------------------------------------------------------------
def job(name: str, minute: int = 0, priority: int = 0, key: str = NO_KEY) -> Candidate:
    return Candidate(name, priority, f"2024-05-01T10:{minute:02d}:00Z", key)


def waits(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


# b has the highest priority; c and d were created together (the name decides); a is the youngest.
MIX = [job("a", 5), job("b", 9, priority=10), job("d", 1), job("c", 1)]
# keys A (a1 a2 a3), B (b1 b2), C (c1), interleaved by age
KEYED = [job("a1", 0, key="A"), job("a2", 1, key="A"), job("b1", 2, key="B"), job("a3", 3, key="A"),
         job("b2", 4, key="B"), job("c1", 5, key="C")]  # fmt: skip
# key A: 10 old jobs (minutes 1..10); key B: 2 newer ones (minutes 20, 21); all priority 0
RR = [job(f"a{i}", i, key="A") for i in range(1, 11)] + [job("b1", 20, key="B"), job("b2", 21, key="B")]
A_AFTER = [f"a{i}" for i in range(3, 11)]
ROUND_ROBIN: Fairness = "RoundRobin"
FAIRNESS: list[Fairness] = ["FIFO", ROUND_ROBIN]

# fmt: off
DECISIONS = [
    # paused
    pytest.param(MIX, Limits(paused=True), (), waits(PAUSED, "a", "b", "c", "d"), id="paused-starts-nothing"),
    pytest.param(MIX, Limits(paused=True, concurrency=9, tokens=9), (), waits(PAUSED, "a", "b", "c", "d"),
                 id="paused-despite-free-slots-and-tokens"),
    pytest.param(KEYED, Limits(paused=True, per_key=1), (), waits(PAUSED, *(c.name for c in KEYED)),
                 id="paused-beats-the-key-limit"),
    # FIFO order
    pytest.param([], Limits(concurrency=3, tokens=3), (), {}, id="no-candidates"),
    pytest.param(MIX, Limits(), ("b", "c", "d", "a"), {}, id="fifo-priority-then-created-then-name"),
    pytest.param([job("new", 9), job("old", 1)], Limits(), ("old", "new"), {}, id="fifo-older-first"),
    pytest.param([job("low", 0, -5), job("high", 9, 3)], Limits(), ("high", "low"), {}, id="fifo-priority-first"),
    pytest.param(RR, Limits(concurrency=3), ("a1", "a2", "a3"), waits(CONC, *A_AFTER[1:], "b1", "b2"),
                 id="fifo-ignores-keys"),
    # queue concurrency: concurrency - active slots
    pytest.param(MIX, Limits(concurrency=5, active=3), ("b", "c"), waits(CONC, "d", "a"), id="slots-are-concurrency-minus-active"),
    pytest.param(MIX, Limits(concurrency=2, active=2), (), waits(CONC, "a", "b", "c", "d"), id="concurrency-used-up"),
    pytest.param(MIX, Limits(concurrency=2, active=3), (), waits(CONC, "a", "b", "c", "d"), id="concurrency-overused"),
    pytest.param(MIX, Limits(concurrency=9, active=1), ("b", "c", "d", "a"), {}, id="more-slots-than-jobs"),
    # rate limit: the tokens budget
    pytest.param(MIX, Limits(concurrency=4, tokens=1), ("b",), waits(RATE, "c", "d", "a"), id="tokens-fewer-than-slots"),
    pytest.param(MIX, Limits(concurrency=3, active=2, tokens=3), ("b",), waits(CONC, "c", "d", "a"),
                 id="slots-fewer-than-tokens"),
    pytest.param(MIX, Limits(tokens=2), ("b", "c"), waits(RATE, "d", "a"), id="rate-limit-without-concurrency"),
    pytest.param(MIX, Limits(tokens=0), (), waits(RATE, "a", "b", "c", "d"), id="no-tokens"),
    pytest.param(MIX, Limits(concurrency=9, tokens=9), ("b", "c", "d", "a"), {}, id="more-tokens-and-slots-than-jobs"),
    # per-key concurrency
    pytest.param(KEYED, Limits(per_key=1), ("a1", "b1", "c1"), waits(KEY, "a2", "a3", "b2"),
                 id="per-key-other-keys-still-start"),
    pytest.param(KEYED, Limits(per_key=2, active=2, active_by_key={"A": 2}), ("b1", "b2", "c1"),
                 waits(KEY, "a1", "a2", "a3"), id="per-key-counts-running-jobs"),
    pytest.param(KEYED, Limits(per_key=2, active=5, active_by_key={"A": 5}), ("b1", "b2", "c1"),
                 waits(KEY, "a1", "a2", "a3"), id="per-key-over-the-limit"),
    pytest.param(KEYED, Limits(concurrency=4, active=2, per_key=2, active_by_key={"A": 1, "B": 1}), ("a1", "b1"),
                 {**waits(KEY, "a2", "a3", "b2"), **waits(CONC, "c1")}, id="per-key-then-concurrency"),
    pytest.param(KEYED, Limits(concurrency=9, active=1, tokens=1, per_key=1, active_by_key={"A": 1}), ("b1",),
                 {**waits(KEY, "a1", "a2", "a3", "b2"), **waits(RATE, "c1")}, id="per-key-then-rate-limit"),
    pytest.param([job("x", 0), job("y", 1), job("k1", 2, key="K"), job("z", 3)], Limits(per_key=1), ("x", "k1"),
                 waits(KEY, "y", "z"), id="jobs-without-a-key-are-one-group"),
    pytest.param([job("x", 0), job("y", 1), job("k1", 2, key="K")], Limits(per_key=1, active=1, active_by_key={"": 1}),
                 ("k1",), waits(KEY, "x", "y"), id="running-jobs-without-a-key-count"),
    # RoundRobin: keys take turns, ordered within a round by created; busier keys go after
    pytest.param(RR, Limits(fairness=ROUND_ROBIN, concurrency=3), ("a1", "b1", "a2"), waits(CONC, *A_AFTER, "b2"),
                 id="round-robin-keys-take-turns"),
    pytest.param(RR, Limits(fairness=ROUND_ROBIN, concurrency=4, active=1, active_by_key={"A": 1}),
                 ("b1", "a1", "b2"), waits(CONC, "a2", *A_AFTER), id="round-robin-busier-key-goes-after"),
    pytest.param(RR, Limits(fairness=ROUND_ROBIN, concurrency=6, active=3, active_by_key={"A": 3}),
                 ("b1", "b2", "a1"), waits(CONC, "a2", *A_AFTER), id="round-robin-much-busier-key"),
    pytest.param([*RR, job("a11", 30, priority=5, key="A")],
                 Limits(fairness=ROUND_ROBIN, concurrency=5, active=2, active_by_key={"A": 2}), ("a11", "b1", "b2"),
                 waits(CONC, "a1", "a2", *A_AFTER), id="round-robin-priority-beats-fairness"),
    pytest.param(RR, Limits(fairness=ROUND_ROBIN, per_key=1), ("a1", "b1"), waits(KEY, "a2", *A_AFTER, "b2"),
                 id="round-robin-with-a-per-key-limit"),
    pytest.param(RR, Limits(fairness=ROUND_ROBIN, concurrency=5, tokens=2), ("a1", "b1"), waits(RATE, "a2", *A_AFTER, "b2"),
                 id="round-robin-rate-limited"),
    pytest.param([job("n1", 0), job("n2", 1), job("n3", 2), job("k1", 5, key="K")],
                 Limits(fairness=ROUND_ROBIN, concurrency=3), ("n1", "k1", "n2"), waits(CONC, "n3"),
                 id="round-robin-no-key-is-one-group"),
]
# fmt: on


@pytest.mark.parametrize(("candidates", "limits", "start", "waiting"), DECISIONS)
def test_decide_with_reasons(
    candidates: list[Candidate], limits: Limits, start: tuple[str, ...], waiting: dict[str, str]
) -> None:
    assert decide(candidates, limits, reasons=True) == Decision(start, waiting)


@pytest.mark.parametrize(("candidates", "limits", "start", "waiting"), DECISIONS)
def test_hot_path_starts_the_same_jobs(
    candidates: list[Candidate], limits: Limits, start: tuple[str, ...], waiting: dict[str, str]
) -> None:
    fast = decide(candidates, limits)
    assert fast.start == decide(candidates, limits, reasons=True).start == start
    assert fast.waiting == {}


def test_the_reasons_are_the_documented_strings() -> None:
    documented = (REASON_QUEUE_PAUSED, REASON_KEY_LIMIT, REASON_CONCURRENCY, REASON_RATE_LIMITED)
    assert documented == (PAUSED, KEY, CONC, RATE)
    assert {PAUSED, KEY, CONC, RATE} == FLOW_REASONS


# fmt: off
ORDER_ROWS = [
    pytest.param(MIX, Limits(), ["b", "c", "d", "a"], id="fifo"),
    pytest.param(MIX, Limits(concurrency=1, tokens=0, paused=True), ["b", "c", "d", "a"], id="limits-do-not-matter"),
    pytest.param(KEYED, Limits(per_key=1), ["a1", "a2", "b1", "a3", "b2", "c1"], id="fifo-per-key-keeps-the-age-order"),
    pytest.param(RR, Limits(fairness=ROUND_ROBIN), ["a1", "b1", "a2", "b2", *A_AFTER], id="round-robin"),
    pytest.param(RR, Limits(fairness=ROUND_ROBIN, active_by_key={"A": 1}), ["b1", "a1", "b2", "a2", *A_AFTER],
                 id="round-robin-busier-key"),
    pytest.param(KEYED, Limits(fairness=ROUND_ROBIN), ["a1", "b1", "c1", "a2", "b2", "a3"], id="round-robin-3-keys"),
    pytest.param([job("y1", 0, key="Y"), job("x1", 0, key="X"), job("x2", 1, key="X")],
                 Limits(fairness=ROUND_ROBIN), ["x1", "y1", "x2"], id="round-robin-same-age-by-name"),
    pytest.param([job("b1", 0, key="B"), job("a1", 9, priority=1, key="A"), job("a2", 10, priority=1, key="A")],
                 Limits(fairness=ROUND_ROBIN), ["a1", "a2", "b1"], id="round-robin-priority-first"),
    pytest.param([], Limits(fairness=ROUND_ROBIN), [], id="empty"),
]
# fmt: on


@pytest.mark.parametrize(("candidates", "limits", "expected"), ORDER_ROWS)
def test_order(candidates: list[Candidate], limits: Limits, expected: list[str]) -> None:
    assert [c.name for c in order(candidates, limits)] == expected


def test_random_queues_start_the_head_of_the_order() -> None:
    """On random queues both paths start the first jobs of order() whose key has room, up to the slots and
    tokens; every other candidate gets exactly one reason."""
    rng = random.Random(5)
    for _ in range(300):
        candidates = [job(f"j{i}", rng.randint(0, 59), rng.randint(-1, 1), rng.choice(["", "A", "B", "C"]))
                      for i in range(rng.randint(0, 30))]  # fmt: skip
        by_key = {k: rng.randint(0, 3) for k in ("", "A", "B") if rng.random() < 0.5}
        limits = Limits(
            concurrency=rng.choice([None, 0, 3, 10]),
            active=sum(by_key.values()),
            per_key=rng.choice([None, 1, 2]),
            active_by_key=by_key,
            fairness=rng.choice(FAIRNESS),
            tokens=rng.choice([None, 0, 2, 5]),
        )
        slots = None if limits.concurrency is None else max(0, limits.concurrency - limits.active)
        room = min(x for x in (slots, limits.tokens, len(candidates)) if x is not None)
        expected: list[str] = []
        running = Counter(by_key)
        for c in order(candidates, limits):
            if len(expected) == room:
                break
            if limits.per_key is None or running[c.key] < limits.per_key:
                expected.append(c.name)
                running[c.key] += 1
        full = decide(candidates, limits, reasons=True)
        assert decide(candidates, limits).start == full.start == tuple(expected)
        assert set(full.waiting) == {c.name for c in candidates} - set(expected)
        assert set(full.waiting.values()) <= FLOW_REASONS - {PAUSED}
