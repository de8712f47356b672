"""The pydantic models of QueuedJob, JobQueue and JobSchedule: round trips, defaults, validation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from jobline import names
from jobline.core.models import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_BACKOFF_INITIAL_SECONDS,
    DEFAULT_BACKOFF_JITTER,
    DEFAULT_BACKOFF_MAX_SECONDS,
    DEFAULT_RETRY_LIMIT,
    MAX_PAYLOAD_BYTES,
    Backoff,
    Condition,
    JobQueue,
    JobSchedule,
    QueuedJob,
    QueuedJobSpec,
    Resource,
    RetryPolicy,
    WorkerTemplate,
    every_seconds,
    payload_size,
    resolve_retry,
)

QUEUED_JOB: dict[str, Any] = yaml.safe_load(
    """
apiVersion: jobline.dev/v1alpha1
kind: QueuedJob
metadata:
  name: send-welcome-42
  namespace: shop
spec:
  queue: emails
  handler: send_welcome_email
  payload:
    userId: 42
    locale: de
    tags: [new, vip]
    options: {dryRun: false, weight: 1.5}
  priority: 10
  runAt: "2025-03-01T09:00:00+01:00"
  retry:
    limit: 5
    backoff: {initialSeconds: 5, factor: 2.5, maxSeconds: 600, jitter: 0.2}
    nonRetryableExitCodes: [2, 64]
  timeoutSeconds: 300
  ttlSecondsAfterFinished: 86400
  suspend: false
  uniqueKey: welcome-42
  dependsOn: [create-account-42]
  template:
    image: ghcr.io/acme/worker:1.2.3
    imagePullPolicy: IfNotPresent
    imagePullSecrets: [{name: ghcr}]
    command: [python, -m, worker]
    args: [--verbose]
    workingDir: /app
    env:
      - {name: LOG_LEVEL, value: debug}
      - name: DB_PASSWORD
        valueFrom: {secretKeyRef: {name: db, key: password}}
      - name: POD_IP
        valueFrom: {fieldRef: {fieldPath: status.podIP}}
    envFrom:
      - configMapRef: {name: worker-config}
      - {prefix: S3_, secretRef: {name: s3, optional: true}}
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: 1, memory: 1Gi}
    volumeMounts: [{name: config, mountPath: /etc/worker, readOnly: true}]
    volumes: [{name: config, configMap: {name: worker-files}}]
    securityContext: {runAsNonRoot: true}
    serviceAccountName: worker
    nodeSelector: {kubernetes.io/os: linux}
    tolerations:
      - {key: dedicated, operator: Equal, value: jobs, effect: NoSchedule}
      - {operator: Exists}
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
    affinity: {nodeAffinity: {}}
    priorityClassName: batch-low
    labels: {team: growth}
    annotations: {example.com/owner: growth}
    podSpecPatch:
      hostAliases: [{ip: 10.0.0.1, hostnames: [db.local]}]
status:
  phase: Running
  attempts: 2
  attemptHistory:
    - attempt: 1
      pod: send-welcome-42-1
      startedAt: "2025-03-01T08:00:00Z"
      finishedAt: "2025-03-01T08:00:05Z"
      exitCode: 1
      reason: Error
      message: connection refused
    - {attempt: 2, pod: send-welcome-42-2, startedAt: "2025-03-01T08:00:15Z"}
  olderAttempts: 0
  startedAt: "2025-03-01T08:00:00Z"
  podName: send-welcome-42-2
  progress: 40
  result: {sent: 0}
  lastError: connection refused
  deadLettered: false
  requeueToken: "1"
  conditions:
    - type: Ready
      status: "False"
      observedGeneration: 1
      lastTransitionTime: "2025-03-01T08:00:00Z"
      reason: Running
      message: attempt 2 is running
  observedGeneration: 1
"""
)

JOB_QUEUE: dict[str, Any] = yaml.safe_load(
    """
apiVersion: jobline.dev/v1alpha1
kind: JobQueue
metadata: {name: emails, namespace: shop}
spec:
  concurrency: 5
  paused: false
  defaults:
    retry: {limit: 3, backoff: {initialSeconds: 10, maxSeconds: 3600}}
    timeoutSeconds: 600
    ttlSecondsAfterFinished: 3600
    priority: 0
  template:
    image: ghcr.io/acme/worker:1.2.3
    env: [{name: SMTP_HOST, value: smtp.local}]
    resources: {requests: {cpu: 50m}}
  retention: {succeeded: 100, failed: 500}
status:
  pending: 3
  waiting: 1
  running: 5
  succeeded: 1200
  failed: 4
  suspended: 0
  oldestPendingSeconds: 12
  lastCompletionTime: "2025-03-01T08:00:00Z"
  completionsLastMinute: 17
  conditions: []
  observedGeneration: 2
"""
)

JOB_SCHEDULE: dict[str, Any] = yaml.safe_load(
    """
apiVersion: jobline.dev/v1alpha1
kind: JobSchedule
metadata: {name: nightly-report, namespace: shop}
spec:
  schedule: "30 2 * * mon-fri"
  timeZone: Europe/Berlin
  suspend: false
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 600
  missedRunPolicy: RunAll
  maxCatchUpRuns: 5
  jitterSeconds: 30
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {report: nightly}
      annotations: {example.com/owner: finance}
    spec:
      queue: reports
      handler: reports.nightly
      payload: {format: pdf}
      priority: 0
      suspend: false
status:
  lastScheduleTime: "2025-03-01T01:30:00Z"
  nextScheduleTime: "2025-03-04T01:30:00Z"
  lastSuccessfulTime: "2025-03-01T01:31:10Z"
  runCount: 41
  missedRuns: 0
  active: [nightly-report-1740792600]
  activeCount: 1
  lastJob: nightly-report-1740792600
  consecutiveFailures: 0
  lastTrigger: manual-1
  conditions:
    - type: Ready
      status: "True"
      lastTransitionTime: "2025-02-01T00:00:00Z"
      reason: Scheduled
      message: ""
  observedGeneration: 3
"""
)

EXAMPLES: list[tuple[type[Resource], dict[str, Any]]] = [
    (QueuedJob, QUEUED_JOB),
    (JobQueue, JOB_QUEUE),
    (JobSchedule, JOB_SCHEDULE),
]


def changed(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `manifest` with the dotted `path` set to `value` (missing dicts created)."""
    out = copy.deepcopy(manifest)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


def assert_contains(expected: Any, actual: Any, where: str = "") -> None:
    """Every key and value of `expected` is in `actual` (which may have more keys, e.g. defaults)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            assert_contains(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_contains(e, a, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "manifest"), EXAMPLES, ids=lambda x: getattr(x, "KIND", ""))
def test_round_trip(model: type[Resource], manifest: dict[str, Any]) -> None:
    obj = model.from_object(manifest)
    out = obj.to_manifest()
    assert_contains(manifest, out)
    assert model.from_object(out) == obj
    assert model.from_object(out).to_manifest() == out


def test_round_trip_keeps_python_values() -> None:
    job = QueuedJob.from_object(QUEUED_JOB)
    assert job.spec.run_at is not None and job.spec.run_at.utcoffset() is not None
    assert job.spec.run_at.astimezone(UTC) == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert job.spec.payload == QUEUED_JOB["spec"]["payload"]
    assert job.spec.template is not None and job.spec.template.resources is not None
    assert job.spec.template.resources.limits == {"cpu": 1, "memory": "1Gi"}
    assert job.spec.template.volumes is not None
    assert job.spec.template.volumes[0].model_extra == {"configMap": {"name": "worker-files"}}
    assert job.status is not None and job.status.phase == "Running"
    assert job.status.conditions[0] == Condition(
        type="Ready",
        status="False",
        observed_generation=1,
        last_transition_time=datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
        reason="Running",
        message="attempt 2 is running",
    )


def test_times_serialize_as_rfc3339() -> None:
    job = QueuedJob(
        metadata={"name": "x"},
        kind="QueuedJob",
        spec=QueuedJobSpec(handler="h", run_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    )
    assert job.to_manifest()["spec"]["runAt"] == "2025-01-02T03:04:05Z"


def test_construct_by_field_name_and_dump_by_alias() -> None:
    spec = QueuedJobSpec(
        handler="h",
        ttl_seconds_after_finished=60,
        retry=RetryPolicy(limit=1, non_retryable_exit_codes=[3]),
        template=WorkerTemplate(image="busybox", pod_spec_patch={"hostNetwork": True}),
    )
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["ttlSecondsAfterFinished"] == 60
    assert dumped["retry"] == {"limit": 1, "nonRetryableExitCodes": [3]}
    assert dumped["template"] == {"image": "busybox", "podSpecPatch": {"hostNetwork": True}}


def test_status_is_tolerant() -> None:
    manifest = changed(QUEUED_JOB, "status.somethingNew", {"a": 1})
    manifest = changed(manifest, "status.attemptHistory", [{"attempt": 1, "futureField": "x"}])
    job = QueuedJob.from_object(manifest)
    assert job.status is not None and job.status.attempts == 2


def test_unset_status_is_left_out() -> None:
    manifest = {k: v for k, v in QUEUED_JOB.items() if k != "status"}
    assert "status" not in QueuedJob.from_object(manifest).to_manifest()


# --- defaults --------------------------------------------------------------------------------


def test_queued_job_defaults() -> None:
    job = QueuedJob.from_object(
        {"apiVersion": names.API_VERSION, "kind": "QueuedJob", "spec": {"handler": "h"}}
    )
    assert job.spec.queue == "default"
    assert job.spec.suspend is False
    assert job.spec.priority is None  # the queue's defaults.priority, else 0
    assert job.spec.payload is None
    assert job.status is None
    assert job.to_manifest() == {
        "apiVersion": names.API_VERSION,
        "kind": "QueuedJob",
        "metadata": {},
        "spec": {"queue": "default", "handler": "h", "suspend": False, "cancel": False},
    }


def test_job_queue_defaults() -> None:
    queue = JobQueue.from_object(
        {"apiVersion": names.API_VERSION, "kind": "JobQueue", "metadata": {"name": "q"}}
    )
    assert queue.spec.paused is False
    assert queue.spec.concurrency is None
    assert queue.spec.retention is None


def test_job_schedule_defaults() -> None:
    schedule = JobSchedule.from_object(
        {
            "apiVersion": names.API_VERSION,
            "kind": "JobSchedule",
            "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"handler": "h"}}},
        }
    )
    spec = schedule.spec
    assert spec.time_zone == "UTC"
    assert spec.suspend is False
    assert spec.concurrency_policy == "Allow"
    assert spec.missed_run_policy == "RunLatest"
    assert spec.max_catch_up_runs == 10
    assert spec.jitter_seconds == 0
    assert spec.successful_jobs_history_limit == 3
    assert spec.failed_jobs_history_limit == 1
    assert spec.starting_deadline_seconds is None
    assert spec.job_template.spec.queue == "default"


def test_status_defaults() -> None:
    job = QueuedJob.from_object(changed(QUEUED_JOB, "status", {}))
    assert job.status is not None
    assert job.status.attempts == 0
    assert job.status.attempt_history == []
    assert job.status.conditions == []
    assert job.status.dead_lettered is False


def test_resolve_retry_builtin_defaults() -> None:
    resolved = resolve_retry(None, None)
    assert resolved.limit == DEFAULT_RETRY_LIMIT
    assert resolved.initial_seconds == DEFAULT_BACKOFF_INITIAL_SECONDS
    assert resolved.factor == DEFAULT_BACKOFF_FACTOR
    assert resolved.max_seconds == DEFAULT_BACKOFF_MAX_SECONDS
    assert resolved.jitter == DEFAULT_BACKOFF_JITTER
    assert resolved.non_retryable_exit_codes == frozenset()


def test_resolve_retry_job_over_queue_field_by_field() -> None:
    job = RetryPolicy(limit=0, backoff=Backoff(jitter=0.0))
    queue = RetryPolicy(
        limit=7, backoff=Backoff(initial_seconds=30, jitter=0.5), non_retryable_exit_codes=[2]
    )
    resolved = resolve_retry(job, queue)
    assert resolved.limit == 0  # 0 is a value, not "unset"
    assert resolved.jitter == 0.0
    assert resolved.initial_seconds == 30
    assert resolved.max_seconds == DEFAULT_BACKOFF_MAX_SECONDS
    assert resolved.non_retryable_exit_codes == frozenset({2})


# --- payload ---------------------------------------------------------------------------------


def test_payload_size_is_compact_utf8_json() -> None:
    assert payload_size(None) == 4
    assert payload_size({"a": [1, 2]}) == len('{"a":[1,2]}')
    assert payload_size("ü") == len('"ü"'.encode())
    assert MAX_PAYLOAD_BYTES == 65536


def test_payload_may_be_any_json() -> None:
    for payload in (1, "text", [1, "a", None], {"nested": {"deep": [True]}}):
        job = QueuedJob.from_object(changed(QUEUED_JOB, "spec.payload", payload))
        assert job.spec.payload == payload
    nulls = {"a": None, "b": [1, None]}  # nulls inside the payload are data, not "unset"
    assert (
        QueuedJob.from_object(changed(QUEUED_JOB, "spec.payload", nulls)).to_manifest()["spec"]["payload"]
        == nulls
    )


# --- schedules -------------------------------------------------------------------------------

VALID_SCHEDULES = [
    "*/5 * * * *",
    "0 9 * * mon-fri",
    "30 2 1,15 jan,jul *",
    "0 0 L * *",
    "0 0 * * 5#3",
    "0 0 15W * ?",
    "0-30/10 8-18 * * 1-5",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    "@every 30s",
    "@every 2h",
    "@every 1h30m",
]


@pytest.mark.parametrize("schedule", VALID_SCHEDULES)
def test_valid_schedules(schedule: str) -> None:
    JobSchedule.from_object(changed(JOB_SCHEDULE, "spec.schedule", schedule))


def test_every_seconds() -> None:
    assert every_seconds("@every 1h30m") == 5400
    assert every_seconds("@every 45s") == 45
    assert every_seconds("@hourly") is None
    assert every_seconds("0 * * * *") is None


# --- validation errors -----------------------------------------------------------------------

# (id, example, dotted path, value, part of the pydantic error). The same cases are refused by
# the CRD schema (the structural checks are in test_crds.py).
INVALID: list[tuple[str, dict[str, Any], str, Any, str]] = [
    ("string-priority", QUEUED_JOB, "spec.priority", "high", "valid integer"),
    ("numeric-string-priority", QUEUED_JOB, "spec.priority", "5", "valid integer"),
    ("priority-too-high", QUEUED_JOB, "spec.priority", 2_000_000_000, "less than or equal"),
    ("negative-retry-limit", QUEUED_JOB, "spec.retry.limit", -1, "greater than or equal to 0"),
    ("jitter-above-one", QUEUED_JOB, "spec.retry.backoff.jitter", 1.5, "less than or equal to 1"),
    ("unknown-key-in-retry", QUEUED_JOB, "spec.retry.maxAttempts", 3, "Extra inputs are not permitted"),
    ("unknown-key-in-spec", QUEUED_JOB, "spec.queueName", "x", "Extra inputs are not permitted"),
    (
        "backoff-max-below-initial",
        QUEUED_JOB,
        "spec.retry.backoff",
        {"initialSeconds": 60, "maxSeconds": 10},
        "maxSeconds",
    ),
    ("factor-below-one", QUEUED_JOB, "spec.retry.backoff.factor", 0.5, "greater than or equal to 1"),
    ("exit-code-zero", QUEUED_JOB, "spec.retry.nonRetryableExitCodes", [0], "greater than or equal to 1"),
    ("zero-timeout", QUEUED_JOB, "spec.timeoutSeconds", 0, "greater than or equal to 1"),
    ("suspend-not-bool", QUEUED_JOB, "spec.suspend", "yes", "valid boolean"),
    ("run-at-without-offset", QUEUED_JOB, "spec.runAt", "2025-03-01T09:00:00", "timezone"),
    ("run-at-garbage", QUEUED_JOB, "spec.runAt", "tomorrow", "datetime"),
    ("queue-not-dns-label", QUEUED_JOB, "spec.queue", "Emails", "pattern"),
    ("empty-handler", QUEUED_JOB, "spec.handler", "", "at least 1 character"),
    ("handler-with-space", QUEUED_JOB, "spec.handler", "send email", "pattern"),
    ("depends-on-bad-name", QUEUED_JOB, "spec.dependsOn", ["Not_A_Name"], "pattern"),
    ("depends-on-self", QUEUED_JOB, "spec.dependsOn", ["send-welcome-42"], "cannot depend on itself"),
    (
        "env-value-and-value-from",
        QUEUED_JOB,
        "spec.template.env",
        [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "mutually exclusive",
    ),
    (
        "env-value-from-empty",
        QUEUED_JOB,
        "spec.template.env",
        [{"name": "A", "valueFrom": {}}],
        "exactly one",
    ),
    ("env-name-with-equals", QUEUED_JOB, "spec.template.env", [{"name": "A=B", "value": "x"}], "pattern"),
    (
        "env-from-both",
        QUEUED_JOB,
        "spec.template.envFrom",
        [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}],
        "exactly one",
    ),
    ("bad-quantity", QUEUED_JOB, "spec.template.resources.requests", {"cpu": "lots"}, "quantity"),
    ("float-quantity", QUEUED_JOB, "spec.template.resources.requests", {"cpu": 0.5}, "cpu"),
    ("bad-pull-policy", QUEUED_JOB, "spec.template.imagePullPolicy", "Sometimes", "Always"),
    (
        "toleration-exists-with-value",
        QUEUED_JOB,
        "spec.template.tolerations",
        [{"key": "k", "operator": "Exists", "value": "v"}],
        "value must be empty",
    ),
    (
        "toleration-seconds-without-no-execute",
        QUEUED_JOB,
        "spec.template.tolerations",
        [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}],
        "NoExecute",
    ),
    (
        "toleration-without-key",
        QUEUED_JOB,
        "spec.template.tolerations",
        [{"operator": "Equal", "value": "v"}],
        "key is empty",
    ),
    (
        "unknown-key-in-template",
        QUEUED_JOB,
        "spec.template.restartPolicy",
        "Always",
        "Extra inputs are not permitted",
    ),
    ("wrong-api-version", QUEUED_JOB, "apiVersion", "jobline.dev/v1", "apiVersion"),
    ("zero-concurrency", JOB_QUEUE, "spec.concurrency", 0, "greater than or equal to 1"),
    ("negative-retention", JOB_QUEUE, "spec.retention.failed", -1, "greater than or equal to 0"),
    ("queue-name-with-dot", JOB_QUEUE, "metadata.name", "emails.eu", "DNS label"),
    ("queue-defaults-unknown-key", JOB_QUEUE, "spec.defaults.queue", "x", "Extra inputs are not permitted"),
    ("schedule-garbage", JOB_SCHEDULE, "spec.schedule", "every day at noon", "5 cron fields"),
    ("schedule-four-fields", JOB_SCHEDULE, "spec.schedule", "0 0 * *", "5 cron fields"),
    ("schedule-six-fields", JOB_SCHEDULE, "spec.schedule", "0 0 0 * * *", "5 cron fields"),
    ("schedule-unknown-macro", JOB_SCHEDULE, "spec.schedule", "@fortnightly", "5 cron fields"),
    ("schedule-tz-prefix", JOB_SCHEDULE, "spec.schedule", "CRON_TZ=UTC 0 0 * * *", "5 cron fields"),
    ("every-zero", JOB_SCHEDULE, "spec.schedule", "@every 0s", "greater than zero"),
    ("every-days", JOB_SCHEDULE, "spec.schedule", "@every 2d", "5 cron fields"),
    ("every-without-duration", JOB_SCHEDULE, "spec.schedule", "@every", "5 cron fields"),
    ("bad-time-zone", JOB_SCHEDULE, "spec.timeZone", "Europe/Berlin; rm", "pattern"),
    ("bad-concurrency-policy", JOB_SCHEDULE, "spec.concurrencyPolicy", "Sometimes", "Allow"),
    ("bad-missed-run-policy", JOB_SCHEDULE, "spec.missedRunPolicy", "RunSome", "RunLatest"),
    ("zero-catch-up-runs", JOB_SCHEDULE, "spec.maxCatchUpRuns", 0, "greater than or equal to 1"),
    ("too-many-catch-up-runs", JOB_SCHEDULE, "spec.maxCatchUpRuns", 1001, "less than or equal to 1000"),
    ("jitter-seconds-too-high", JOB_SCHEDULE, "spec.jitterSeconds", 3601, "less than or equal to 3600"),
    (
        "run-at-in-job-template",
        JOB_SCHEDULE,
        "spec.jobTemplate.spec.runAt",
        "2025-03-01T09:00:00Z",
        "runAt is not allowed",
    ),
    ("job-template-without-handler", JOB_SCHEDULE, "spec.jobTemplate.spec", {"queue": "reports"}, "handler"),
]

_MODELS: dict[str, type[Resource]] = {
    "QueuedJob": QueuedJob,
    "JobQueue": JobQueue,
    "JobSchedule": JobSchedule,
}


@pytest.mark.parametrize(
    ("base", "path", "value", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid(base: dict[str, Any], path: str, value: Any, message: str) -> None:
    model = _MODELS[base["kind"]]
    with pytest.raises(ValidationError) as exc_info:
        model.from_object(changed(base, path, value))
    assert message in str(exc_info.value)


def test_attempt_history_is_capped_at_ten() -> None:
    history = [{"attempt": i} for i in range(1, 12)]
    with pytest.raises(ValidationError, match="at most 10"):
        QueuedJob.from_object(changed(QUEUED_JOB, "status.attemptHistory", history))


def test_condition_status_is_an_enum() -> None:
    condition = dict(QUEUED_JOB["status"]["conditions"][0], status="Maybe")
    with pytest.raises(ValidationError):
        QueuedJob.from_object(changed(QUEUED_JOB, "status.conditions", [condition]))


def test_from_object_accepts_any_mapping() -> None:
    """kopf hands out bodies as read-only mappings, not dicts."""
    from types import MappingProxyType

    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            return MappingProxyType({k: frozen(v) for k, v in value.items()})
        if isinstance(value, list):
            return tuple(frozen(v) for v in value)
        return value

    assert QueuedJob.from_object(frozen(QUEUED_JOB)) == QueuedJob.from_object(QUEUED_JOB)
