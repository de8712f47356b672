"""QueuedJob: one background job (a handler call with a payload), run as worker pods."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from jobline import names

from .common import (
    LABEL_VALUE_PATTERN,
    AnyJson,
    CelRule,
    Condition,
    DnsLabel,
    ObjectName,
    Resource,
    SpecModel,
    StatusModel,
    Timestamp,
    conditions_field,
    observed_generation_field,
    x_validations,
)
from .template import KeySelector, WorkerTemplate

MAX_PAYLOAD_BYTES = 65536
"""Largest accepted payload, measured by `payload_size` (enforced by the admission webhook)."""

DEFAULT_QUEUE = "default"
PAYLOAD_EXCLUSIVE_MESSAGE = "spec.payload and spec.payloadFrom are mutually exclusive: set one"
DEFAULT_PRIORITY = 0
MIN_PRIORITY = -1_000_000_000
MAX_PRIORITY = 1_000_000_000
DEFAULT_RETRY_LIMIT = 3
DEFAULT_BACKOFF_INITIAL_SECONDS = 10
DEFAULT_BACKOFF_FACTOR = 2.0
DEFAULT_BACKOFF_MAX_SECONDS = 3600
DEFAULT_BACKOFF_JITTER = 0.1
MAX_ATTEMPT_HISTORY = 10
DEFAULT_DEPENDENCY_TIMEOUT_SECONDS = 600
DEFAULT_DISRUPTION_LIMIT = 10

QueuedJobPhase = Literal[
    "Pending", "Waiting", "Running", "Succeeded", "Failed", "Suspended", "Cancelled", "Superseded"
]
PHASES: tuple[QueuedJobPhase, ...] = (
    "Pending",
    "Waiting",
    "Running",
    "Succeeded",
    "Failed",
    "Suspended",
    "Cancelled",
    "Superseded",
)
FINISHED_PHASES: frozenset[QueuedJobPhase] = frozenset({"Succeeded", "Failed", "Cancelled", "Superseded"})
"""Final phases: no attempt starts again unless the job is requeued (Superseded ones are not)."""
WAITING_REASONS = (
    "Delayed",
    "Blocked",
    "BackingOff",
    "QueuePaused",
    "ConcurrencyLimit",
    "KeyConcurrencyLimit",
    "RateLimited",
    "Disrupted",
    "Debounced",
)
"""Known values of status.waitingReason (the field is an open string)."""


def payload_size(payload: Any) -> int:
    """Size in bytes of the payload as compact UTF-8 JSON (the measure MAX_PAYLOAD_BYTES caps)."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# --- spec ------------------------------------------------------------------------------------


class Backoff(SpecModel):
    """Delay before a retry: initialSeconds * factor^(retry-1), capped at maxSeconds, +/- jitter."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "!has(self.initialSeconds) || !has(self.maxSeconds) || self.maxSeconds >= self.initialSeconds",
                "maxSeconds must be greater than or equal to initialSeconds",
                field_path=".maxSeconds",
            )
        )
    )

    initial_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description=f"Delay before the first retry. Unset: the queue's, else {DEFAULT_BACKOFF_INITIAL_SECONDS}.",
    )
    factor: float | None = Field(
        default=None,
        ge=1,
        le=100,
        description=f"Multiplier applied per further retry. Unset: the queue's, else {DEFAULT_BACKOFF_FACTOR}.",
    )
    max_seconds: int | None = Field(
        default=None,
        ge=0,
        le=604800,
        description=f"Upper bound of the delay. Unset: the queue's, else {DEFAULT_BACKOFF_MAX_SECONDS}.",
    )
    jitter: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Random spread as a fraction of the delay (0.1 = +/-10%). "
            f"Unset: the queue's, else {DEFAULT_BACKOFF_JITTER}."
        ),
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> Backoff:
        if (
            self.initial_seconds is not None
            and self.max_seconds is not None
            and self.max_seconds < self.initial_seconds
        ):
            raise ValueError("maxSeconds must be greater than or equal to initialSeconds")
        return self


ExitCode = Annotated[int, Field(ge=1, le=255)]


RetryAction = Literal["FailJob", "Ignore", "Count"]
MAX_RETRY_RULES = 20


class OnExitCodes(SpecModel):
    """Matches the worker container's exit code (batch/v1 podFailurePolicy's onExitCodes)."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "self.operator != 'In' || !(0 in self.values)",
                "the value 0 cannot be used with the In operator",
                field_path=".values",
            )
        )
    )

    operator: Literal["In", "NotIn"] = Field(
        description="In: the exit code is one of values; NotIn: it is none."
    )
    values: list[Annotated[int, Field(ge=0, le=255)]] = Field(
        min_length=1,
        max_length=255,
        description="Exit codes (0-255).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _no_zero_with_in(self) -> OnExitCodes:
        if self.operator == "In" and 0 in self.values:
            raise ValueError("the value 0 cannot be used with the In operator")
        return self


class OnPodCondition(SpecModel):
    """Matches a condition of the attempt's pod, e.g. DisruptionTarget (eviction, preemption, drain)."""

    type: str = Field(min_length=1, max_length=316, description="The pod condition's type.")
    status: Literal["True", "False", "Unknown"] = Field(default="True", description="Its status.")


class RetryRule(SpecModel):
    """What a failed attempt means, in the shape of batch/v1's podFailurePolicy rules: the first rule
    that matches decides; no match counts the failure against retry.limit."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "has(self.onExitCodes) != has(self.onPodConditions)",
                "a rule needs exactly one of onExitCodes and onPodConditions",
            )
        )
    )

    action: RetryAction = Field(
        description=(
            "FailJob: fail the job at once (a dead letter); Ignore: retry without using a retry (at most "
            "retry.disruptionLimit times); Count: a failure like any other (retried while retry.limit allows)."
        )
    )
    on_exit_codes: OnExitCodes | None = Field(default=None, description="Match the exit code.")
    on_pod_conditions: list[OnPodCondition] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Match when the pod has any of these conditions.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )

    @model_validator(mode="after")
    def _one_matcher(self) -> RetryRule:
        if (self.on_exit_codes is None) == (self.on_pod_conditions is None):
            raise ValueError("a rule needs exactly one of onExitCodes and onPodConditions")
        return self


class RetryPolicy(SpecModel):
    """How failed attempts are retried. Each field left unset falls back to the queue's defaults.retry."""

    limit: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            f"Retries after the first attempt (0 = no retry). Unset: the queue's, else {DEFAULT_RETRY_LIMIT}."
        ),
    )
    backoff: Backoff | None = Field(default=None, description="Delay between attempts.")
    non_retryable_exit_codes: list[ExitCode] | None = Field(
        default=None,
        max_length=64,
        description="Exit codes (1-255) that fail the job at once, without retry.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    disruption_limit: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "Attempts retried at once without using a retry: those ended by a pod disruption (eviction, "
            "preemption, drain, node lost: the pod's DisruptionTarget condition) and those a rule says to "
            f"Ignore; later ones count as failures. Unset: the queue's, else {DEFAULT_DISRUPTION_LIMIT}."
        ),
    )
    rules: list[RetryRule] | None = Field(
        default=None,
        max_length=MAX_RETRY_RULES,
        description=(
            "Rules for failed attempts, in the shape of batch/v1's podFailurePolicy, evaluated in order "
            "before the built-in ones (a disruption is Ignore; nonRetryableExitCodes and the worker's "
            "permanent exit codes are FailJob). A job's rules replace the queue's."
        ),
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )


@dataclass(frozen=True)
class ResolvedRetry:
    """A retry policy with every field decided."""

    limit: int
    initial_seconds: int
    factor: float
    max_seconds: int
    jitter: float
    non_retryable_exit_codes: frozenset[int]
    disruption_limit: int = DEFAULT_DISRUPTION_LIMIT
    rules: tuple[RetryRule, ...] = ()


def resolve_retry(*policies: RetryPolicy | None) -> ResolvedRetry:
    """Per field, the first value set among `policies` (job first, then queue), else the built-in default."""

    def first(get: Any, default: Any) -> Any:
        for p in policies:
            if p is not None:
                value = get(p)
                if value is not None:
                    return value
        return default

    return ResolvedRetry(
        limit=first(lambda p: p.limit, DEFAULT_RETRY_LIMIT),
        initial_seconds=first(
            lambda p: p.backoff and p.backoff.initial_seconds, DEFAULT_BACKOFF_INITIAL_SECONDS
        ),
        factor=first(lambda p: p.backoff and p.backoff.factor, DEFAULT_BACKOFF_FACTOR),
        max_seconds=first(lambda p: p.backoff and p.backoff.max_seconds, DEFAULT_BACKOFF_MAX_SECONDS),
        jitter=first(lambda p: p.backoff and p.backoff.jitter, DEFAULT_BACKOFF_JITTER),
        non_retryable_exit_codes=frozenset(first(lambda p: p.non_retryable_exit_codes, [])),
        disruption_limit=first(lambda p: p.disruption_limit, DEFAULT_DISRUPTION_LIMIT),
        rules=tuple(first(lambda p: p.rules, ())),
    )


class PayloadFrom(SpecModel):
    """Where a secret payload comes from: a key of a Secret in the job's namespace, holding JSON."""

    secret_key_ref: KeySelector = Field(
        description=(
            "The Secret's key. Its value (JSON) is mounted into the worker pod as a file, read by the "
            "worker as the payload; never put in the pod's environment, the job's status, Events or logs."
        )
    )


class QueuedJobSpec(SpecModel):
    """What to run (handler, payload, worker template) and how (queue, priority, timing, retries)."""

    queue: DnsLabel = Field(
        default=DEFAULT_QUEUE, description="Name of the JobQueue (same namespace) the job runs in."
    )
    handler: str = Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="Name of the handler registered in the worker that runs this job.",
    )
    payload: AnyJson = Field(
        default=None,
        description=(
            f"Arguments of the handler: any JSON value, at most {MAX_PAYLOAD_BYTES} bytes as compact JSON."
        ),
    )
    payload_from: PayloadFrom | None = Field(
        default=None,
        description=(
            "The payload from a Secret instead of spec.payload (which must then be unset), for inputs "
            "that are secret. Only in a queue whose spec.jobOverrides lists payloadFrom."
        ),
    )
    priority: int | None = Field(
        default=None,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description=(
            "Higher runs first within the queue. Unset: the queue's defaults.priority, "
            f"else {DEFAULT_PRIORITY}."
        ),
    )
    run_at: Timestamp | None = Field(
        default=None, description="RFC 3339 time; the job is not started before it."
    )
    retry: RetryPolicy | None = Field(
        default=None, description="Retries of failed attempts, merged over the queue's defaults.retry."
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Per attempt: an attempt running longer is stopped and counts as failed.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the job this many seconds after it succeeded or failed."
    )
    suspend: bool = Field(
        default=False,
        description=(
            "Holds the job: it is not started, and a running attempt is stopped "
            "without counting as a failure."
        ),
    )
    cancel: bool = Field(
        default=False,
        description=(
            "Cancels the job: a running attempt is stopped gracefully (SIGTERM, then the pod's grace "
            "period) and the job ends Cancelled, its history kept. `kubectl delete` removes a job."
        ),
    )
    unique_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="At most one unfinished job per (namespace, queue, uniqueKey); later ones are duplicates.",
    )
    concurrency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description=(
            "Groups jobs for the queue's concurrencyPerKey limit and RoundRobin fairness "
            "(e.g. a customer id: one running export per customer)."
        ),
    )
    depends_on: list[ObjectName] | None = Field(
        default=None,
        max_length=64,
        description="Names of QueuedJobs (same namespace) that must succeed before this one starts.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    dependency_timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        description=(
            "How long after its creation the job waits for a dependsOn job that does not exist, "
            f"then fails as DependencyMissing. Unset: {DEFAULT_DEPENDENCY_TIMEOUT_SECONDS}."
        ),
    )
    template: WorkerTemplate | None = Field(
        default=None,
        description=(
            "The worker pod, merged field by field over the queue's template; only the fields the "
            "queue's spec.jobOverrides allows (by default env, args and resources)."
        ),
    )

    @model_validator(mode="after")
    def _one_payload(self) -> QueuedJobSpec:
        if self.payload_from is not None and self.payload is not None:
            raise ValueError(PAYLOAD_EXCLUSIVE_MESSAGE)
        return self


# --- status ----------------------------------------------------------------------------------


class AttemptRecord(StatusModel):
    """One past or current attempt."""

    attempt: int = Field(ge=1, description="Attempt number, starting at 1.")
    pod: str | None = Field(default=None, description="Name of the pod that ran the attempt.")
    started_at: Timestamp | None = Field(default=None, description="When the attempt started.")
    finished_at: Timestamp | None = Field(default=None, description="When the attempt finished.")
    exit_code: int | None = Field(default=None, description="Exit code of the worker container.")
    reason: str | None = Field(
        default=None, description="Why the attempt ended, e.g. Completed, Error, Timeout."
    )
    message: str | None = Field(default=None, description="Details, e.g. the end of the error output.")
    disruption: str | None = Field(
        default=None,
        description="Why the pod was disrupted (its DisruptionTarget reason, e.g. EvictionByEvictionAPI).",
    )
    worker: str | None = Field(
        default=None, description="Pool mode: the worker pod that was assigned the attempt."
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="Pool mode: the worker stops the attempt after this many seconds."
    )


class AttemptReport(StatusModel):
    """Pool mode: how an attempt ended, written by the worker pod it was assigned to (the chart's
    admission policy refuses a report from any other pod)."""

    attempt: int = Field(ge=1, description="The attempt reported on.")
    worker: str = Field(min_length=1, max_length=253, description="The reporting worker pod.")
    exit_code: int = Field(
        ge=0,
        le=255,
        description=(
            "As a pod's worker container would exit: 0 success, 1 retryable, 64-66 permanent, "
            "143 stopped (SIGTERM or timeout), 137 the worker no longer holds the attempt."
        ),
    )
    reason: str = Field(
        min_length=1,
        max_length=63,
        description="Completed, Error, Timeout, Terminated (the worker stopped) or WorkerLost.",
    )
    message: str | None = Field(
        default=None,
        max_length=8192,
        description="The result as compact JSON (exit 0), else a short error text.",
    )
    started_at: Timestamp | None = Field(default=None, description="When the handler started.")
    finished_at: Timestamp | None = Field(default=None, description="When the handler ended.")


class QueuedJobStatus(StatusModel):
    """Observed state of the job, written by the operator."""

    phase: QueuedJobPhase | None = Field(
        default=None,
        description="Pending, Waiting, Running, Suspended; finished: Succeeded, Failed, Cancelled, Superseded.",
    )
    waiting_reason: str | None = Field(
        default=None,
        description=(
            "Why the job is not running yet. Waiting: Delayed, Blocked, BackingOff, Debounced, or a "
            "transient pod refusal (QuotaExceeded, ...). Pending (runnable): "
            "QueuePaused, KeyConcurrencyLimit, ConcurrencyLimit or RateLimited (the queue's flow control)."
        ),
    )
    reason: str | None = Field(
        default=None,
        description=(
            "One word for why the job is where it is (the REASON column): the waitingReason while "
            "Pending or Waiting, the failure reason once Failed."
        ),
    )
    attempts: int = Field(default=0, ge=0, description="Attempts started so far (the current one included).")
    failed_attempts: int = Field(
        default=0,
        ge=0,
        description="Failed attempts that count against retry.limit (a requeue resets it to 0).",
    )
    attempt_history: list[AttemptRecord] = Field(
        default_factory=list,
        max_length=MAX_ATTEMPT_HISTORY,
        description=f"The last {MAX_ATTEMPT_HISTORY} attempts, oldest first.",
    )
    disrupted_attempts: int = Field(
        default=0, ge=0, description="Attempts ended by a pod disruption and retried without using a retry."
    )
    older_attempts: int = Field(
        default=0, ge=0, description="Attempts dropped from attemptHistory because it is full."
    )
    next_attempt_at: Timestamp | None = Field(
        default=None, description="When the next attempt may start (runAt or the end of a backoff)."
    )
    started_at: Timestamp | None = Field(default=None, description="When the first attempt started.")
    completed_at: Timestamp | None = Field(default=None, description="When the job succeeded or failed.")
    pod_name: str | None = Field(default=None, description="Pod of the current or last attempt.")
    worker: str | None = Field(
        default=None,
        description=(
            "Pool mode: the worker pod the running attempt is assigned to (a selectable field: a worker "
            "watches status.worker=<its pod>); unset when no attempt runs."
        ),
    )
    report: AttemptReport | None = Field(
        default=None, description="Pool mode: the worker's report on the assigned attempt."
    )
    progress: int | None = Field(
        default=None, ge=0, le=100, description="Progress reported by the handler, in percent."
    )
    result: AnyJson = Field(default=None, description="Small JSON value returned by the handler.")
    last_error: str | None = Field(default=None, description="Error of the last failed attempt.")
    dead_lettered: bool = Field(default=False, description="The job failed for good and was dead-lettered.")
    duplicate_of: str | None = Field(
        default=None, description="When marked Duplicate: name of the original job with the same uniqueKey."
    )
    superseded_by: str | None = Field(
        default=None,
        description="When Superseded (the queue's debounce): the newer job with the same uniqueKey that runs.",
    )
    enqueue_revision: int | None = Field(
        default=None,
        description=(
            "The job's resourceVersion when the operator first saw it, in a queue with debounce: orders "
            "a burst of jobs created within one second (the newest wins)."
        ),
    )
    requeue_token: str | None = Field(
        default=None, description=f"Last handled value of the {names.ANNOTATION_REQUEUE} annotation."
    )
    conditions: list[Condition] = conditions_field()
    observed_generation: int | None = observed_generation_field()


# --- resource --------------------------------------------------------------------------------


IMMUTABLE_ONCE_STARTED = ("handler", "queue", "?uniqueKey", "?dependsOn")
"""Spec fields a CEL transition rule freezes once status.attempts > 0 (``?``: optional, CEL's ``.?``).
``payload`` is frozen too, by the admission webhook: CEL cannot see a schemaless field."""
IMMUTABLE_MESSAGE = "{field} cannot change once the job's first attempt has started"


def _unchanged(field: str) -> str:
    """CEL: the spec field is the same in the old object (``?``: it may be absent from both).
    ``has()`` rather than CEL's optional ``.?``, whose cost the apiserver estimates as unbounded."""
    if not field.startswith("?"):
        return f"self.spec.{field} == oldSelf.spec.{field}"
    f = field[1:]
    return (
        f"(has(self.spec.{f}) == has(oldSelf.spec.{f})) && "
        f"(!has(self.spec.{f}) || self.spec.{f} == oldSelf.spec.{f})"
    )


_NOT_STARTED = "!has(oldSelf.status) || !has(oldSelf.status.attempts) || oldSelf.status.attempts == 0"


class QueuedJob(Resource):
    """A background job: one handler call with a payload, run in a queue by worker pods."""

    KIND: ClassVar[str] = names.KIND_QUEUEDJOB
    PLURAL: ClassVar[str] = names.PLURAL_QUEUEDJOBS

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "!has(self.spec.dependsOn) || !(self.metadata.name in self.spec.dependsOn)",
                "a job cannot depend on itself",
                field_path=".spec.dependsOn",
            ),
            *(
                CelRule(
                    f"{_NOT_STARTED} || {_unchanged(field)}",
                    IMMUTABLE_MESSAGE.format(field=f"spec.{field.lstrip('?')}"),
                    field_path=f".spec.{field.lstrip('?')}",
                )
                for field in IMMUTABLE_ONCE_STARTED
            ),
        )
    )

    kind: Literal["QueuedJob"] = Field(default=names.KIND_QUEUEDJOB, description="Always QueuedJob.")
    spec: QueuedJobSpec = Field(description="What to run and how.")
    status: QueuedJobStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )

    @model_validator(mode="after")
    def _not_own_dependency(self) -> QueuedJob:
        name = self.metadata.get("name")
        if name and self.spec.depends_on and name in self.spec.depends_on:
            raise ValueError("a job cannot depend on itself")
        return self
