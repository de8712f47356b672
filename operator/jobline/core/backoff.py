"""Exponential backoff between attempts."""

from __future__ import annotations

import random

from .models import ResolvedRetry


def backoff_seconds(failures: int, retry: ResolvedRetry, seed: str = "") -> float:
    """Delay before the attempt that follows the ``failures``-th failure (1-based).

    ``min(maxSeconds, initialSeconds * factor^(failures-1))``, then spread by +/- ``jitter`` of
    itself. The spread is drawn from ``seed`` (the job's uid and failure count), so the same job
    gets the same delay if it is computed twice, e.g. before and after an operator restart.
    """
    n = max(1, failures)
    base = min(float(retry.max_seconds), retry.initial_seconds * retry.factor ** (n - 1))
    if retry.jitter <= 0 or base <= 0:
        return base
    unit = random.Random(f"{seed}/{n}").random()
    return max(0.0, base * (1 + retry.jitter * (2 * unit - 1)))
