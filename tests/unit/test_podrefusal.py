"""Refused worker pods: which refusals wait and retry, which fail the job, and the backoff."""

from __future__ import annotations

import pytest

from jobline.core.podrefusal import classify, retry_delay

QUOTA = 'pods "j-1" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1'
TERMINATING = (
    'pods "j-1" is forbidden: unable to create new content in namespace x because it is being terminated'
)
WEBHOOK = 'Internal error occurred: failed calling webhook "pods.example.com": connection refused'
PSA = 'pods "j-1" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false'


@pytest.mark.parametrize(
    ("status", "reason", "message", "transient", "why"),
    [
        pytest.param(403, "Forbidden", QUOTA, True, "QuotaExceeded", id="quota"),
        pytest.param(403, "Forbidden", TERMINATING, True, "NamespaceTerminating", id="namespace-terminating"),
        pytest.param(500, "InternalError", WEBHOOK, True, "AdmissionUnavailable", id="webhook-down"),
        pytest.param(429, "TooManyRequests", "slow down", True, "Throttled", id="throttled"),
        pytest.param(503, "ServiceUnavailable", "etcd", True, "APIUnavailable", id="apiserver-unavailable"),
        pytest.param(0, "ClientError", "connection reset", True, "APIUnavailable", id="network"),
        pytest.param(
            403, "Forbidden", 'User "op" cannot create pods', True, "PodForbidden", id="rbac-until-fixed"
        ),
        pytest.param(403, "Forbidden", PSA, False, "PodSecurityViolation", id="pod-security"),
        pytest.param(
            422, "Invalid", "spec.containers[0].image: Required value", False, "InvalidPod", id="invalid"
        ),
        pytest.param(400, "BadRequest", "json: cannot unmarshal", False, "InvalidPod", id="bad-request"),
    ],
)
def test_classify(status: int, reason: str, message: str, transient: bool, why: str) -> None:
    refusal = classify(status, reason, message)
    assert (refusal.transient, refusal.reason, refusal.message) == (transient, why, message)
    assert refusal.delay_seconds == (1.0 if transient else 0.0)


@pytest.mark.parametrize(
    ("refusals", "delay"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (100, 60.0), (10**6, 60.0)],
)
def test_retry_delay_doubles_up_to_a_minute(refusals: int, delay: float) -> None:
    assert retry_delay(refusals) == delay
    assert classify(403, "Forbidden", QUOTA, max(1, refusals)).delay_seconds == delay
