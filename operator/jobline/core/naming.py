"""Deterministic names of the objects the operator creates, and the one way a long name is shortened.

Every generated name (attempt pods, scheduled and manual runs, label values) that would be too long
keeps a prefix of the original and a hash of the whole, so two long names never collide and every
replica computes the same name. The hash lengths differ per use and must not change: the names are
already in clusters, and a run computed under another name would be created a second time.
"""

from __future__ import annotations

import hashlib
from typing import Final

MAX_DNS_LABEL: Final = 63  # pod hostnames, label values, and our QueuedJob names of runs
MAX_POD_NAME: Final = MAX_DNS_LABEL
POD_HASH_LENGTH: Final = 6  # attempt pods and the job label value
RUN_HASH_LENGTH: Final = 8  # JobSchedule runs and the schedule label value
TRIGGER_HASH_LENGTH: Final = 10  # the manual-trigger value inside a manual run's name


def short_hash(text: str, length: int = POD_HASH_LENGTH) -> str:
    """The first ``length`` hex digits of SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(
    name: str,
    suffix: str = "",
    *,
    limit: int = MAX_DNS_LABEL,
    hash_length: int,
    strip: str = "-.",
    keep: int | None = None,
    always: bool = False,
) -> str:
    """``name + suffix`` when it fits in ``limit`` characters (and not ``always``), else a prefix of
    ``name`` (``keep`` characters, by default all that fit, without trailing ``strip`` characters),
    ``-``, a hash of the full ``name``, and ``suffix``."""
    if len(name) + len(suffix) <= limit and not always:
        return name + suffix
    if keep is None:
        keep = limit - len(suffix) - hash_length - 1
    return f"{name[:keep].rstrip(strip)}-{short_hash(name, hash_length)}{suffix}"


def attempt_pod_name(job: str, attempt: int) -> str:
    """``<job>-<attempt>``; long job names are cut and made unique with a hash of the full name."""
    return fit(job, f"-{attempt}", hash_length=POD_HASH_LENGTH)


def job_label_value(job: str) -> str:
    """The ``jobline.dev/job`` label of an attempt pod; the full name is in an annotation."""
    return fit(job, hash_length=POD_HASH_LENGTH, keep=55)
