"""Deterministic names of the objects the operator creates."""

from __future__ import annotations

import hashlib

MAX_POD_NAME = 63  # pods' hostnames are DNS labels


def short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def attempt_pod_name(job: str, attempt: int) -> str:
    """``<job>-<attempt>``; long job names are cut and made unique with a hash of the full name."""
    suffix = f"-{attempt}"
    if len(job) + len(suffix) <= MAX_POD_NAME:
        return job + suffix
    keep = MAX_POD_NAME - len(suffix) - 7
    return f"{job[:keep].rstrip('-.')}-{short_hash(job)}{suffix}"
