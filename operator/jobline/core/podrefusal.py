"""What to do when the apiserver refuses a worker pod: wait and try again, or fail the job. Pure.

A refusal for a reason that goes away by itself (a ResourceQuota that is full, a namespace being
deleted, an admission webhook that is down, throttling, the apiserver overloaded) makes the job wait
(``Waiting`` with that reason as ``waitingReason``) and try again after a backoff: never a failed
attempt, never a lost job. A refusal that no retry can fix (Pod Security, an invalid pod) fails the
job with the apiserver's message. Anything not recognised is treated as transient: waiting is always
safe, failing is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

REASON_QUOTA: Final = "QuotaExceeded"
REASON_NAMESPACE_TERMINATING: Final = "NamespaceTerminating"
REASON_ADMISSION_UNAVAILABLE: Final = "AdmissionUnavailable"
REASON_THROTTLED: Final = "Throttled"
REASON_API_UNAVAILABLE: Final = "APIUnavailable"
REASON_POD_FORBIDDEN: Final = "PodForbidden"
REASON_POD_SECURITY: Final = "PodSecurityViolation"
REASON_POD_INVALID: Final = "InvalidPod"

TRANSIENT_REASONS: Final = frozenset(
    {
        REASON_QUOTA,
        REASON_NAMESPACE_TERMINATING,
        REASON_ADMISSION_UNAVAILABLE,
        REASON_THROTTLED,
        REASON_API_UNAVAILABLE,
        REASON_POD_FORBIDDEN,
    }
)
"""Waiting reasons of a job whose pod was refused for now (kept by the job's plan while it waits)."""

FIRST_DELAY_SECONDS: Final = 1.0
MAX_DELAY_SECONDS: Final = 60.0


@dataclass(frozen=True)
class Refusal:
    """``transient``: wait ``delay_seconds`` and try again; else fail with ``reason`` and ``message``."""

    transient: bool
    reason: str
    message: str
    delay_seconds: float = 0.0


def retry_delay(refusals: int) -> float:
    """Delay after the ``refusals``-th refusal in a row (1-based): 1 s, 2 s, 4 s ... at most 60 s."""
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2.0 ** min(32, max(1, refusals) - 1))


def classify(status: int, reason: str, message: str, refusals: int = 1) -> Refusal:
    """Classify a refused pod create by the API's status code, reason and message."""
    text = message.lower()
    if status == 403 and "violates podsecurity" in text:
        return Refusal(False, REASON_POD_SECURITY, message)
    if status in (400, 422):
        return Refusal(False, REASON_POD_INVALID, message)
    if status == 403 and "exceeded quota" in text:
        why = REASON_QUOTA
    elif status == 403 and "being terminated" in text:
        why = REASON_NAMESPACE_TERMINATING
    elif "failed calling webhook" in text:
        why = REASON_ADMISSION_UNAVAILABLE
    elif status == 429:
        why = REASON_THROTTLED
    elif status == 403:
        why = REASON_POD_FORBIDDEN  # RBAC or an admission policy that may be changed: wait for the fix
    else:
        why = REASON_API_UNAVAILABLE
    return Refusal(True, why, message, retry_delay(refusals))
