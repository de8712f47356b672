"""JobQueue: where QueuedJobs wait; sets concurrency, defaults, the worker template and retention."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from jobline import names

from .common import (
    CelRule,
    Condition,
    Resource,
    SpecModel,
    StatusModel,
    Timestamp,
    conditions_field,
    observed_generation_field,
    x_validations,
)
from .queuedjob import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, RetryPolicy
from .template import WorkerTemplate

MAX_QUEUE_NAME_LENGTH = 63


class QueueDefaults(SpecModel):
    """Values for the jobs of this queue that leave them unset."""

    retry: RetryPolicy | None = Field(
        default=None, description="Retry policy; a job's spec.retry is merged over it field by field."
    )
    timeout_seconds: int | None = Field(default=None, ge=1, description="Per-attempt timeout in seconds.")
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete finished jobs this many seconds after they finished."
    )
    priority: int | None = Field(
        default=None,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description=f"Priority of jobs that set none. Unset: {DEFAULT_PRIORITY}.",
    )


class QueueRetention(SpecModel):
    """How many finished jobs to keep; older finished ones are deleted. Unset: no count limit."""

    succeeded: int | None = Field(default=None, ge=0, description="Keep at most this many succeeded jobs.")
    failed: int | None = Field(default=None, ge=0, description="Keep at most this many failed jobs.")
    cancelled: int | None = Field(default=None, ge=0, description="Keep at most this many cancelled jobs.")
    superseded: int | None = Field(
        default=None, ge=0, description="Keep at most this many superseded jobs (the debounce's)."
    )


RatePeriod = Literal["Second", "Minute"]
Fairness = Literal["FIFO", "RoundRobin"]
PERIOD_SECONDS: dict[str, float] = {"Second": 1.0, "Minute": 60.0}


class RateLimit(SpecModel):
    """A token bucket: ``starts`` attempts per ``per``, and up to ``burst`` at once after a quiet spell."""

    starts: int = Field(ge=1, le=100000, description="Attempts that may start per period.")
    per: RatePeriod = Field(default="Second", description="The period: Second or Minute.")
    burst: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="Size of the bucket: starts allowed at once. Unset: starts.",
    )


class Debounce(SpecModel):
    """Jobs with a uniqueKey replace the key's job that has not started yet instead of being duplicates:
    the newest payload wins, and the start waits for a quiet spell of ``seconds``."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "!has(self.maxWaitSeconds) || self.maxWaitSeconds >= self.seconds",
                "maxWaitSeconds must be at least seconds",
                field_path=".maxWaitSeconds",
            )
        )
    )

    seconds: int = Field(
        ge=1, le=86400, description="The job starts this long after the newest job with its uniqueKey."
    )
    max_wait_seconds: int | None = Field(
        default=None,
        ge=1,
        le=604800,
        description=(
            "At most this long after the first job of a burst (the oldest it replaced), however often "
            "newer ones arrive. Unset: no bound."
        ),
    )

    @model_validator(mode="after")
    def _max_wait_not_below(self) -> Debounce:
        if self.max_wait_seconds is not None and self.max_wait_seconds < self.seconds:
            raise ValueError("maxWaitSeconds must be at least seconds")
        return self


JobOverride = Literal[
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "command",
    "args",
    "workingDir",
    "env",
    "envFrom",
    "resources",
    "volumeMounts",
    "volumes",
    "securityContext",
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "labels",
    "annotations",
    "podSpecPatch",
    "payloadFrom",
]
"""What a QueuedJob may set beyond its handler and payload: the fields of its spec.template, and
``payloadFrom`` (a Secret's key delivered to the worker)."""

DEFAULT_JOB_OVERRIDES: tuple[JobOverride, ...] = ("env", "args", "resources")
"""A queue without ``jobOverrides``: a job may add environment variables (literal values, not Secret or
ConfigMap references), arguments and resources, nothing that changes what the pod may do."""


WorkersMode = Literal["PodPerAttempt", "Pool"]
DEFAULT_SLOTS_PER_WORKER = 1
DEFAULT_SCALE_DOWN_AFTER_SECONDS = 60
MAX_POOL_REPLICAS = 1000


class WorkerPool(SpecModel):
    """How the queue's attempts run: a pod per attempt, or a pool of long-lived worker pods that take
    attempts one after another (no pod start per job)."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "!has(self.minReplicas) || !has(self.maxReplicas) || self.maxReplicas >= self.minReplicas",
                "maxReplicas must be at least minReplicas",
                field_path=".maxReplicas",
            ),
            CelRule(
                "self.mode == 'Pool' || (!has(self.minReplicas) && !has(self.maxReplicas) && "
                "!has(self.slotsPerWorker) && !has(self.scaleDownAfterSeconds))",
                "minReplicas, maxReplicas, slotsPerWorker and scaleDownAfterSeconds need mode Pool",
            ),
        )
    )

    mode: WorkersMode = Field(
        default="PodPerAttempt",
        description=(
            "PodPerAttempt: every attempt is a new pod (isolation, per-job templates). Pool: worker pods "
            "made from spec.template take attempts one after another; the pod is each attempt's lease."
        ),
    )
    min_replicas: int | None = Field(
        default=None, ge=0, le=MAX_POOL_REPLICAS, description="Pool: fewest worker pods (may be 0). Unset: 0."
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=MAX_POOL_REPLICAS,
        description="Pool: most worker pods. Unset: 1 (or minReplicas, if larger).",
    )
    slots_per_worker: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description=f"Pool: attempts one worker pod runs at once. Unset: {DEFAULT_SLOTS_PER_WORKER}.",
    )
    scale_down_after_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description=(
            "Pool: a worker pod idle this long goes (down to minReplicas). "
            f"Unset: {DEFAULT_SCALE_DOWN_AFTER_SECONDS}."
        ),
    )

    @model_validator(mode="after")
    def _bounds(self) -> WorkerPool:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.max_replicas < self.min_replicas
        ):
            raise ValueError("maxReplicas must be at least minReplicas")
        return self

    @property
    def pooled(self) -> bool:
        return self.mode == "Pool"

    @property
    def slots(self) -> int:
        return self.slots_per_worker or DEFAULT_SLOTS_PER_WORKER

    @property
    def floor(self) -> int:
        return self.min_replicas or 0

    @property
    def ceiling(self) -> int:
        return max(self.max_replicas or 1, self.floor)

    @property
    def idle_seconds(self) -> int:
        return (
            self.scale_down_after_seconds
            if self.scale_down_after_seconds is not None
            else DEFAULT_SCALE_DOWN_AFTER_SECONDS
        )


class JobQueueSpec(SpecModel):
    """Concurrency, pause switch, job defaults, worker template and retention of the queue."""

    concurrency: int | None = Field(
        default=None, ge=1, description="Most attempts running at once. Unset: unlimited."
    )
    paused: bool = Field(
        default=False, description="Start no new attempts (running ones go on); jobs wait as QueuePaused."
    )
    rate_limit: RateLimit | None = Field(
        default=None, description="Most attempts started per second or minute (a token bucket). Unset: none."
    )
    concurrency_per_key: int | None = Field(
        default=None,
        ge=1,
        description="Most attempts running at once per spec.concurrencyKey (jobs without a key are one group).",
    )
    fairness: Fairness = Field(
        default="FIFO",
        description=(
            "Order at equal priority: FIFO (oldest first) or RoundRobin (concurrency keys take turns, "
            "fewest running first)."
        ),
    )
    debounce: Debounce | None = Field(
        default=None,
        description=(
            "A new job replaces the unstarted job with the same uniqueKey (that one ends Superseded) and "
            "starts after a quiet spell. Unset: a second unfinished job with a uniqueKey is a Duplicate."
        ),
    )
    job_overrides: list[JobOverride] | None = Field(
        default=None,
        max_length=32,
        description=(
            "What the queue's jobs may set in their spec.template (and payloadFrom): creating a QueuedJob "
            "means creating the pod it makes, so the queue owner decides what a job creator may change. "
            "Unset: env (literal values), args and resources. env valueFrom a Secret or ConfigMap needs "
            "envFrom; image, command, securityContext, serviceAccountName, volumes, podSpecPatch and the "
            "rest only when listed. Refused at apply time, naming the field; enforced again at each start."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    defaults: QueueDefaults | None = Field(default=None, description="Defaults for the queue's jobs.")
    template: WorkerTemplate | None = Field(
        default=None, description="Worker pod template; a job's template is merged over it field by field."
    )
    retention: QueueRetention | None = Field(default=None, description="How many finished jobs to keep.")
    workers: WorkerPool | None = Field(
        default=None,
        description="PodPerAttempt (unset) or a Pool of long-lived worker pods from spec.template.",
    )

    @property
    def pooled(self) -> bool:
        return self.workers is not None and self.workers.pooled


class WorkerCounts(StatusModel):
    """The pool's worker pods (spec.workers.mode Pool)."""

    desired: int = Field(default=0, ge=0, description="Worker pods the pool wants now.")
    ready: int = Field(default=0, ge=0, description="Worker pods running and taking attempts.")
    busy: int = Field(default=0, ge=0, description="Ready worker pods running at least one attempt.")
    idle: int = Field(default=0, ge=0, description="Ready worker pods running no attempt.")
    slots: int = Field(default=0, ge=0, description="Attempts the ready pods can run at once.")


class JobQueueStatus(StatusModel):
    """Observed state of the queue, written by the operator."""

    pending: int = Field(default=0, ge=0, description="Jobs in phase Pending.")
    waiting: int = Field(default=0, ge=0, description="Jobs in phase Waiting.")
    running: int = Field(default=0, ge=0, description="Jobs in phase Running.")
    succeeded: int = Field(default=0, ge=0, description="Jobs in phase Succeeded.")
    failed: int = Field(default=0, ge=0, description="Jobs in phase Failed.")
    suspended: int = Field(default=0, ge=0, description="Jobs in phase Suspended.")
    cancelled: int = Field(default=0, ge=0, description="Jobs in phase Cancelled.")
    superseded: int = Field(default=0, ge=0, description="Jobs in phase Superseded.")
    oldest_pending_seconds: int | None = Field(
        default=None, ge=0, description="Age in seconds of the oldest Pending job."
    )
    last_completion_time: Timestamp | None = Field(
        default=None, description="When a job of this queue last succeeded or failed."
    )
    completions_last_minute: int = Field(
        default=0, ge=0, description="Jobs that succeeded or failed in the last minute."
    )
    workers: WorkerCounts | None = Field(default=None, description="Pool mode: the worker pods.")
    conditions: list[Condition] = conditions_field()
    observed_generation: int | None = observed_generation_field()


class JobQueue(Resource):
    """A queue of QueuedJobs with a concurrency limit, job defaults and a worker pod template."""

    KIND: ClassVar[str] = names.KIND_JOBQUEUE
    PLURAL: ClassVar[str] = names.PLURAL_JOBQUEUES

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                f"self.metadata.name.size() <= {MAX_QUEUE_NAME_LENGTH} && !self.metadata.name.contains('.')",
                f"a JobQueue name must be a DNS label (at most {MAX_QUEUE_NAME_LENGTH} characters, no dots)",
            )
        )
    )

    kind: Literal["JobQueue"] = Field(default=names.KIND_JOBQUEUE, description="Always JobQueue.")
    spec: JobQueueSpec = Field(
        default_factory=JobQueueSpec, description="Settings of the queue.", json_schema_extra={"default": {}}
    )
    status: JobQueueStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )

    @model_validator(mode="after")
    def _name_is_dns_label(self) -> JobQueue:
        name = self.metadata.get("name")
        if isinstance(name, str) and (len(name) > MAX_QUEUE_NAME_LENGTH or "." in name):
            raise ValueError(
                f"a JobQueue name must be a DNS label (at most {MAX_QUEUE_NAME_LENGTH} characters, no dots)"
            )
        return self
