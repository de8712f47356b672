"""What a failed attempt means: ``retry.rules`` (batch/v1 podFailurePolicy's shape), then the built-in
rules. Pure.

Order: the user's rules, first match wins; then a pod disruption (the DisruptionTarget condition:
eviction, preemption, drain, node lost) is Ignore; then ``nonRetryableExitCodes`` and the worker's
permanent exit codes (unknown handler, bad input, PermanentError) are FailJob; anything else is Count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jobline import names

from .models.queuedjob import RetryAction, RetryRule

DISRUPTION_CONDITION = "DisruptionTarget"
POOL_DISRUPTIONS = frozenset({names.WORKER_LOST})


@dataclass(frozen=True)
class Verdict:
    action: RetryAction
    reason: str  # the Failed condition's reason for FailJob, the attempt's for Ignore
    why: str  # for messages: what matched
    rule: int | None = None  # index in retry.rules; None: a built-in rule


def _permanent_reason(exit_code: int) -> str:
    return {
        names.EXIT_UNKNOWN_HANDLER: "UnknownHandler",
        names.EXIT_BAD_INPUT: "InvalidInput",
        names.EXIT_PERMANENT: "PermanentError",
    }.get(exit_code, "PermanentError")


def _matches(rule: RetryRule, exit_code: int | None, conditions: frozenset[tuple[str, str]]) -> str | None:
    """What of `rule` matched (None: it does not)."""
    if rule.on_exit_codes is not None:
        if exit_code is None:
            return None  # no terminated container: nothing to match (batch/v1 does the same)
        inside = exit_code in rule.on_exit_codes.values
        if inside == (rule.on_exit_codes.operator == "In"):
            return f"exit code {exit_code}"
        return None
    for cond in rule.on_pod_conditions or ():
        if (cond.type, cond.status) in conditions:
            return f"pod condition {cond.type}={cond.status}"
    return None


def judge(
    rules: Sequence[RetryRule],
    *,
    exit_code: int | None,
    conditions: Iterable[tuple[str, str]] = (),
    disruption: str | None = None,
    non_retryable_exit_codes: frozenset[int] = frozenset(),
) -> Verdict:
    """The verdict on a failed attempt: its container's `exit_code` (None: none reported), its pod's
    `conditions` as (type, status), and `disruption` (the DisruptionTarget reason, also remembered
    after the pod is gone)."""
    conds = frozenset(conditions) | ({(DISRUPTION_CONDITION, "True")} if disruption else frozenset())
    for index, rule in enumerate(rules):
        matched = _matches(rule, exit_code, conds)
        if matched is not None:
            why = f"{matched} matched retry.rules[{index}] ({rule.action})"
            reason = {"FailJob": "RetryRule", "Count": "Count"}.get(rule.action) or (
                "Disrupted" if disruption else "Ignored"
            )
            return Verdict(rule.action, reason, why, index)
    if disruption:
        # A pool's lost worker keeps its own name (WorkerLost) in the history.
        reason = disruption if disruption in POOL_DISRUPTIONS else "Disrupted"
        return Verdict("Ignore", reason, f"a pod disruption ({disruption})")
    if exit_code is not None and exit_code in non_retryable_exit_codes:
        return Verdict(
            "FailJob", "NonRetryableExitCode", f"exit code {exit_code} is in nonRetryableExitCodes"
        )
    if exit_code is not None and exit_code in names.PERMANENT_EXIT_CODES:
        return Verdict("FailJob", _permanent_reason(exit_code), f"exit code {exit_code} is permanent")
    return Verdict("Count", "Count", "a failure")
