"""``generate-report``: a sales report computed in steps, reporting progress along the way.

Payload: ``{"rows": int, "steps"?: int (10, at most 100), "seed"?: int, "title"?: str}``. The rows
are generated from `seed` (default: derived from the job name, so every attempt computes the
same report), as the predecessor's report worker simulated its data. Returns a small summary:
row count, total, mean, standard deviation, min/max, per-region totals and a SHA-256 digest of
the report's CSV lines.
"""

from __future__ import annotations

import hashlib
import math
import random
import zlib
from collections.abc import Mapping
from typing import Any

from jobline.worker import Context, PermanentError, handler

MAX_ROWS = 5_000_000
MAX_STEPS = 100
REGIONS = ("north", "east", "south", "west")


def _int(payload: Mapping[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PermanentError(f"payload.{key} must be an integer from {low} to {high}")
    return value


def _rows(rng: random.Random, count: int) -> list[tuple[str, float]]:
    """`count` sales rows: (region, amount)."""
    return [(rng.choice(REGIONS), round(rng.lognormvariate(3.0, 0.8), 2)) for _ in range(count)]


@handler("generate-report")
def generate_report(payload: Any, ctx: Context) -> dict[str, Any]:
    """Compute the report in `steps` chunks, calling ``ctx.progress`` after each."""
    if not isinstance(payload, Mapping):
        raise PermanentError("the payload must be an object {rows, steps?, seed?, title?}")
    rows = _int(payload, "rows", None, 1, MAX_ROWS)
    steps = min(_int(payload, "steps", 10, 1, MAX_STEPS), rows)
    seed = _int(payload, "seed", zlib.crc32(f"{ctx.namespace}/{ctx.job}".encode()), 0, 2**63 - 1)
    title = payload.get("title", "Sales report")
    if not isinstance(title, str) or len(title) > 200:
        raise PermanentError("payload.title must be a string of at most 200 characters")

    rng = random.Random(seed)
    digest = hashlib.sha256(b"region,amount\n")
    count, mean, m2 = 0, 0.0, 0.0  # Welford's running mean and variance
    total, low, high = 0.0, math.inf, -math.inf
    counts = dict.fromkeys(REGIONS, 0)
    totals = dict.fromkeys(REGIONS, 0.0)
    done = 0
    ctx.progress(0)
    for step in range(1, steps + 1):
        end = rows * step // steps
        for region, amount in _rows(rng, end - done):
            digest.update(f"{region},{amount:.2f}\n".encode())
            count += 1
            delta = amount - mean
            mean += delta / count
            m2 += delta * (amount - mean)
            total += amount
            low, high = min(low, amount), max(high, amount)
            counts[region] += 1
            totals[region] += amount
        done = end
        ctx.progress(100 * step // steps)
    ctx.logger.info("report of %d rows computed in %d steps", rows, steps)
    return {
        "title": title,
        "rows": count,
        "total": round(total, 2),
        "mean": round(mean, 4),
        "stddev": round(math.sqrt(m2 / count), 4),
        "min": low,
        "max": high,
        "byRegion": {r: {"count": counts[r], "total": round(totals[r], 2)} for r in REGIONS},
        "sha256": digest.hexdigest(),
    }
