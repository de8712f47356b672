"""Backoff between attempts: the exponential series, its cap, and a jitter that is deterministic per seed
and never takes a delay past ``maxSeconds`` or below 0."""

from __future__ import annotations

import pytest

from jobline.core.backoff import backoff_seconds
from jobline.core.models import ResolvedRetry


def retry(
    initial: int = 10, factor: float = 2.0, max_seconds: int = 3600, jitter: float = 0.0, limit: int = 3
) -> ResolvedRetry:
    return ResolvedRetry(
        limit=limit,
        initial_seconds=initial,
        factor=factor,
        max_seconds=max_seconds,
        jitter=jitter,
        non_retryable_exit_codes=frozenset(),
    )


SEEDS = [f"uid-{i}" for i in range(300)]


# --- without jitter: the plain series ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "failures", "expected"),
    [
        pytest.param(retry(), 1, 10.0, id="first-failure-waits-initial"),
        pytest.param(retry(), 2, 20.0, id="second-doubles"),
        pytest.param(retry(), 3, 40.0, id="third-doubles-again"),
        pytest.param(retry(), 9, 2560.0, id="ninth-below-cap"),
        pytest.param(retry(), 10, 3600.0, id="tenth-capped"),
        pytest.param(retry(), 50, 3600.0, id="far-past-the-cap-stays-capped"),
        pytest.param(retry(), 0, 10.0, id="zero-failures-treated-as-first"),
        pytest.param(retry(), -3, 10.0, id="negative-failures-treated-as-first"),
        pytest.param(retry(initial=5, factor=3.0, max_seconds=100), 3, 45.0, id="factor-3"),
        pytest.param(retry(initial=5, factor=1.0, max_seconds=100), 7, 5.0, id="factor-1-is-constant"),
        pytest.param(retry(initial=30, max_seconds=30), 1, 30.0, id="initial-equals-cap"),
        pytest.param(retry(initial=0, jitter=0.5), 4, 0.0, id="zero-initial-stays-zero-even-with-jitter"),
        pytest.param(retry(initial=10, max_seconds=0, jitter=0.5), 2, 0.0, id="zero-cap-is-zero"),
    ],
)
def test_series_without_jitter(policy: ResolvedRetry, failures: int, expected: float) -> None:
    assert backoff_seconds(failures, policy, seed="any") == pytest.approx(expected)


def test_without_jitter_the_seed_does_not_matter() -> None:
    policy = retry()
    assert {backoff_seconds(3, policy, seed=s) for s in SEEDS} == {40.0}


def test_series_is_monotonic_and_bounded_by_the_cap() -> None:
    policy = retry(initial=7, factor=1.7, max_seconds=500)
    delays = [backoff_seconds(n, policy) for n in range(1, 40)]
    assert delays == sorted(delays)
    assert max(delays) == 500.0


# --- with jitter ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "failures"),
    [
        pytest.param(retry(jitter=0.1), 1, id="10pct-first"),
        pytest.param(retry(jitter=0.1), 4, id="10pct-fourth"),
        pytest.param(retry(jitter=0.5), 3, id="50pct"),
        pytest.param(retry(jitter=1.0), 2, id="100pct"),
    ],
)
def test_jitter_spreads_within_plus_minus_jitter_of_the_base(policy: ResolvedRetry, failures: int) -> None:
    base = backoff_seconds(
        failures, retry(initial=policy.initial_seconds, factor=policy.factor, max_seconds=policy.max_seconds)
    )
    delays = [backoff_seconds(failures, policy, seed=s) for s in SEEDS]
    low, high = base * (1 - policy.jitter), base * (1 + policy.jitter)
    assert all(low <= d <= high for d in delays)
    assert min(delays) >= 0.0
    # It really spreads: both sides of the base, over most of the allowed band.
    assert min(delays) < base < max(delays)
    assert max(delays) - min(delays) > 1.5 * policy.jitter * base


@pytest.mark.parametrize(
    ("policy", "failures"),
    [
        pytest.param(retry(jitter=0.1), 10, id="just-at-the-cap"),
        pytest.param(retry(jitter=0.1), 30, id="far-past-the-cap"),
        pytest.param(retry(initial=60, max_seconds=60, jitter=0.5), 1, id="initial-equals-cap"),
        pytest.param(retry(initial=10, max_seconds=12, jitter=0.5), 1, id="base-below-cap-jitter-crosses-it"),
        pytest.param(retry(initial=100, max_seconds=100, jitter=1.0), 1, id="full-jitter-at-the-cap"),
    ],
)
def test_jittered_delay_never_exceeds_max_seconds(policy: ResolvedRetry, failures: int) -> None:
    delays = [backoff_seconds(failures, policy, seed=s) for s in SEEDS]
    assert max(delays) <= policy.max_seconds
    assert min(delays) >= 0.0
    # At the cap the jitter only shortens the wait: it still spreads below the cap.
    assert min(delays) < policy.max_seconds


def test_jitter_below_the_cap_is_not_clamped() -> None:
    policy = retry(initial=10, max_seconds=3600, jitter=0.2)
    delays = [backoff_seconds(2, policy, seed=s) for s in SEEDS]
    assert max(delays) > 20.0  # above the base: the cap (3600) is far


def test_full_jitter_never_goes_negative() -> None:
    policy = retry(initial=10, jitter=1.0)
    delays = [backoff_seconds(1, policy, seed=s) for s in SEEDS]
    assert min(delays) >= 0.0
    assert min(delays) < 1.0  # a 100 % spread reaches close to 0


# --- determinism ------------------------------------------------------------------------------------
@pytest.mark.parametrize("failures", [1, 2, 5, 12])
def test_same_seed_same_delay(failures: int) -> None:
    policy = retry(jitter=0.3)
    assert backoff_seconds(failures, policy, seed="uid-a") == backoff_seconds(failures, policy, seed="uid-a")


def test_different_seeds_spread_differently() -> None:
    policy = retry(jitter=0.3)
    assert len({backoff_seconds(2, policy, seed=s) for s in SEEDS}) > len(SEEDS) // 2


def test_each_failure_draws_its_own_spread() -> None:
    policy = retry(initial=10, factor=1.0, max_seconds=3600, jitter=0.3)  # constant base: only jitter varies
    assert len({backoff_seconds(n, policy, seed="uid-a") for n in range(1, 20)}) > 10


def test_default_seed_is_deterministic() -> None:
    policy = retry(jitter=0.3)
    assert backoff_seconds(3, policy) == backoff_seconds(3, policy, seed="")


def test_huge_failure_counts_stay_capped_instead_of_overflowing() -> None:
    policy = retry(initial=10, factor=100.0, max_seconds=3600, limit=1000)
    assert backoff_seconds(200, policy, seed="uid-a") == 3600.0
