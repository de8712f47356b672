"""Exponential backoff between attempts."""

from __future__ import annotations

import random

from .models import ResolvedRetry


def backoff_seconds(failures: int, retry: ResolvedRetry, seed: str = "") -> float:
    """Delay before the attempt that follows the ``failures``-th failure (1-based).

    ``min(maxSeconds, initialSeconds * factor^(failures-1))``, then spread by +/- ``jitter`` of
    itself and clamped to ``[0, maxSeconds]``: the jitter never takes a delay past the cap (at the
    cap it only shortens it). The spread is drawn from ``seed`` (the job's uid and failure count),
    so the same job gets the same delay if it is computed twice, e.g. before and after an operator
    restart.
    """
    n = max(1, failures)
    cap = float(retry.max_seconds)
    base = float(retry.initial_seconds)
    for _ in range(n - 1):  # multiply up to the cap, not past it: factor**n overflows a float early
        if base >= cap:
            break
        base *= retry.factor
    base = min(cap, base)
    if retry.jitter <= 0 or base <= 0:
        return base
    unit = random.Random(f"{seed}/{n}").random()
    return min(cap, max(0.0, base * (1 + retry.jitter * (2 * unit - 1))))
