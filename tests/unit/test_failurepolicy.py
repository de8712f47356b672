"""retry.rules (batch/v1 podFailurePolicy's shape) and the built-in rules: the verdict on a failed
attempt, row by row, and what the state machine does with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from jobline.core.failurepolicy import Verdict, judge
from jobline.core.lifecycle import PodView, World, reconcile
from jobline.core.models import QueuedJobSpec
from jobline.core.models.queuedjob import ResolvedRetry, RetryRule


def rule(action: str, **matcher: Any) -> RetryRule:
    return RetryRule.model_validate({"action": action, **matcher})


FAIL_42 = rule("FailJob", onExitCodes={"operator": "In", "values": [42]})
IGNORE_3_4 = rule("Ignore", onExitCodes={"operator": "In", "values": [3, 4]})
COUNT_ALL_BUT_7 = rule("Count", onExitCodes={"operator": "NotIn", "values": [7]})
FAIL_DISRUPTED = rule("FailJob", onPodConditions=[{"type": "DisruptionTarget"}])
IGNORE_OOM = rule("Ignore", onPodConditions=[{"type": "Ready", "status": "False"}, {"type": "OOMKilled"}])
COUNT_PERMANENT = rule("Count", onExitCodes={"operator": "In", "values": [66]})


@pytest.mark.parametrize(
    ("case", "rules", "exit_code", "conditions", "disruption", "verdict"),
    [
        ("no rules, a plain failure", [], 1, [], None, Verdict("Count", "Count", "a failure")),
        (
            "In matches",
            [FAIL_42],
            42,
            [],
            None,
            Verdict("FailJob", "RetryRule", "exit code 42 matched retry.rules[0] (FailJob)", 0),
        ),
        ("In does not match", [FAIL_42], 41, [], None, Verdict("Count", "Count", "a failure")),
        (
            "the first matching rule wins",
            [IGNORE_3_4, FAIL_42, rule("FailJob", onExitCodes={"operator": "In", "values": [3]})],
            3,
            [],
            None,
            Verdict("Ignore", "Ignored", "exit code 3 matched retry.rules[0] (Ignore)", 0),
        ),
        (
            "NotIn matches what is outside",
            [COUNT_ALL_BUT_7, FAIL_42],
            42,
            [],
            None,
            Verdict("Count", "Count", "exit code 42 matched retry.rules[0] (Count)", 0),
        ),
        (
            "NotIn skips what is inside",
            [COUNT_ALL_BUT_7, rule("FailJob", onExitCodes={"operator": "In", "values": [7]})],
            7,
            [],
            None,
            Verdict("FailJob", "RetryRule", "exit code 7 matched retry.rules[1] (FailJob)", 1),
        ),
        ("no exit code: onExitCodes never matches", [COUNT_ALL_BUT_7], None, [], None, Verdict("Count", "Count", "a failure")),
        (
            "a pod condition matches (any of the list)",
            [IGNORE_OOM],
            137,
            [("OOMKilled", "True"), ("Ready", "True")],
            None,
            Verdict("Ignore", "Ignored", "pod condition OOMKilled=True matched retry.rules[0] (Ignore)", 0),
        ),
        ("a condition with another status does not", [IGNORE_OOM], 1, [("OOMKilled", "False")], None, Verdict("Count", "Count", "a failure")),
        (
            "a rule on DisruptionTarget overrides the built-in Ignore",
            [FAIL_DISRUPTED],
            143,
            [("DisruptionTarget", "True")],
            "EvictionByEvictionAPI",
            Verdict("FailJob", "RetryRule", "pod condition DisruptionTarget=True matched retry.rules[0] (FailJob)", 0),
        ),
        (
            "a disruption remembered after the pod is gone still matches its condition",
            [FAIL_DISRUPTED],
            None,
            [],
            "PreemptionByScheduler",
            Verdict("FailJob", "RetryRule", "pod condition DisruptionTarget=True matched retry.rules[0] (FailJob)", 0),
        ),
        (
            "an Ignore rule on a disrupted pod records it as Disrupted",
            [rule("Ignore", onExitCodes={"operator": "In", "values": [143]})],
            143,
            [],
            "EvictionByEvictionAPI",
            Verdict("Ignore", "Disrupted", "exit code 143 matched retry.rules[0] (Ignore)", 0),
        ),
        (
            "built-in: a disruption is Ignore",
            [FAIL_42],
            143,
            [],
            "DeletionByTaintManager",
            Verdict("Ignore", "Disrupted", "a pod disruption (DeletionByTaintManager)"),
        ),
        (
            "built-in: nonRetryableExitCodes is FailJob",
            [],
            2,
            [],
            None,
            Verdict("FailJob", "NonRetryableExitCode", "exit code 2 is in nonRetryableExitCodes"),
        ),
        (
            "built-in: PermanentError's exit code is FailJob",
            [],
            66,
            [],
            None,
            Verdict("FailJob", "PermanentError", "exit code 66 is permanent"),
        ),
        ("built-in: an unknown handler", [], 64, [], None, Verdict("FailJob", "UnknownHandler", "exit code 64 is permanent")),
        ("built-in: bad input", [], 65, [], None, Verdict("FailJob", "InvalidInput", "exit code 65 is permanent")),
        (
            "a user rule comes before the built-in permanent codes",
            [COUNT_PERMANENT],
            66,
            [],
            None,
            Verdict("Count", "Count", "exit code 66 matched retry.rules[0] (Count)", 0),
        ),
    ],
)
def test_judge(
    case: str,
    rules: list[RetryRule],
    exit_code: int | None,
    conditions: list[tuple[str, str]],
    disruption: str | None,
    verdict: Verdict,
) -> None:
    got = judge(
        rules,
        exit_code=exit_code,
        conditions=conditions,
        disruption=disruption,
        non_retryable_exit_codes=frozenset({2}),
    )
    assert got == verdict, case


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "FailJob"}, "exactly one of onExitCodes and onPodConditions"),
        (
            {
                "action": "FailJob",
                "onExitCodes": {"operator": "In", "values": [1]},
                "onPodConditions": [{"type": "DisruptionTarget"}],
            },
            "exactly one of onExitCodes and onPodConditions",
        ),
        ({"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 1]}}, "0 cannot be used with the In"),
        ({"action": "FailJob", "onExitCodes": {"operator": "In", "values": []}}, "at least 1 item"),
        ({"action": "FailJob", "onExitCodes": {"operator": "In", "values": [256]}}, "less than or equal to 255"),
        ({"action": "Retry", "onExitCodes": {"operator": "In", "values": [1]}}, "'FailJob', 'Ignore' or 'Count'"),
        ({"action": "Count", "onExitCodes": {"operator": "Is", "values": [1]}}, "'In' or 'NotIn'"),
        ({"action": "Count", "onPodConditions": [{"type": "Ready", "status": "Maybe"}]}, "'True', 'False' or 'Unknown'"),
    ],
)
def test_bad_rules_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RetryRule.model_validate(body)


def test_not_in_may_list_zero() -> None:
    assert rule("Count", onExitCodes={"operator": "NotIn", "values": [0, 1]}).on_exit_codes is not None


# --- what the state machine does with a verdict -------------------------------------------------

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
START = datetime(2026, 12, 2, 11, 59, tzinfo=UTC)
RUNNING = {
    "phase": "Running",
    "attempts": 1,
    "podName": "j-1",
    "attemptHistory": [{"attempt": 1, "pod": "j-1", "startedAt": "2026-12-02T11:59:00Z"}],
}


def ended(rules: list[RetryRule], exit_code: int, *, disruption_limit: int = 10, limit: int = 3, **pod: Any) -> Any:
    retry = ResolvedRetry(
        limit=limit,
        initial_seconds=10,
        factor=2.0,
        max_seconds=60,
        jitter=0.0,
        non_retryable_exit_codes=frozenset(),
        disruption_limit=disruption_limit,
        rules=tuple(rules),
    )
    view = PodView(name="j-1", attempt=1, phase="Failed", created=START, started=START, exit_code=exit_code, reason="Error", **pod)
    return reconcile(
        name="j",
        uid="u",
        generation=1,
        annotations={},
        spec=QueuedJobSpec(handler="h"),
        status=RUNNING,
        pods=[view],
        world=World(now=NOW, retry=retry),
    )


def test_an_exit_code_ruled_failjob_fails_at_once_as_a_dead_letter() -> None:
    out = ended([FAIL_42], 42)
    st = out.status
    assert st["phase"] == "Failed" and st["deadLettered"] is True and st["failedAttempts"] == 1
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["reason"] == "RetryRule"
    assert failed["message"].startswith("exit code 42 matched retry.rules[0] (FailJob); attempt 1: Error")


def test_an_exit_code_ruled_ignore_is_retried_without_using_a_retry() -> None:
    out = ended([IGNORE_3_4], 3, limit=0)
    st = out.status
    assert st["phase"] == "Pending" and out.runnable
    assert st.get("failedAttempts", 0) == 0 and st["disruptedAttempts"] == 1
    rec = st["attemptHistory"][0]
    assert rec["reason"] == "Ignored" and rec["exitCode"] == 3
    assert rec["message"] == "exit code 3 matched retry.rules[0] (Ignore); not counted as a failure"
    assert [e.reason for e in out.events] == ["Ignored"]


def test_ignore_is_bounded_by_the_disruption_limit() -> None:
    out = ended([IGNORE_3_4], 3, limit=0, disruption_limit=0)
    assert out.status["phase"] == "Failed" and out.status["failedAttempts"] == 1
    assert {c["type"]: c for c in out.status["conditions"]}["Failed"]["reason"] == "RetriesExhausted"


def test_count_overrides_a_permanent_exit_code() -> None:
    out = ended([COUNT_PERMANENT], 66)
    assert out.status["phase"] == "Waiting" and out.status["waitingReason"] == "BackingOff"


def test_a_rule_can_fail_a_disrupted_attempt() -> None:
    out = ended([FAIL_DISRUPTED], 143, disruption="EvictionByEvictionAPI", conditions=frozenset({("DisruptionTarget", "True")}))
    assert out.status["phase"] == "Failed"
    assert {c["type"]: c for c in out.status["conditions"]}["Failed"]["reason"] == "RetryRule"
