"""Every name Jobline puts on the wire: API group, version, kinds, labels, annotations, env vars."""

from typing import Final

GROUP: Final = "jobline.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "jobline"

# Labels and annotations the operator owns.
LABEL_QUEUE: Final = f"{GROUP}/queue"
LABEL_HANDLER: Final = f"{GROUP}/handler"
LABEL_PHASE: Final = f"{GROUP}/phase"
LABEL_JOB: Final = f"{GROUP}/job"
LABEL_ATTEMPT: Final = f"{GROUP}/attempt"
LABEL_SCHEDULE: Final = f"{GROUP}/schedule"
LABEL_POOL: Final = f"{GROUP}/pool"  # on a pool worker pod: the JobQueue whose pool it belongs to
ANNOTATION_REQUEUE: Final = f"{GROUP}/requeue"
ANNOTATION_TRIGGER: Final = f"{GROUP}/trigger"

# Environment of worker pods (the pod contract).
ENV_JOB: Final = "JOBLINE_JOB"
ENV_NAMESPACE: Final = "JOBLINE_NAMESPACE"
ENV_QUEUE: Final = "JOBLINE_QUEUE"
ENV_HANDLER: Final = "JOBLINE_HANDLER"
ENV_ATTEMPT: Final = "JOBLINE_ATTEMPT"
ENV_PAYLOAD: Final = "JOBLINE_PAYLOAD"
ENV_PAYLOAD_FILE: Final = "JOBLINE_PAYLOAD_FILE"
"""Set instead of JOBLINE_PAYLOAD for a job with payloadFrom: the path of the mounted Secret key (JSON)."""
PAYLOAD_VOLUME: Final = "jobline-payload"
PAYLOAD_DIR: Final = "/var/run/jobline/payload"
PAYLOAD_FILE: Final = f"{PAYLOAD_DIR}/payload.json"
ENV_DEPENDENCIES: Final = "JOBLINE_DEPENDENCIES"
"""JSON object: each dependsOn job's name -> its status.result (set only when the job has dependsOn)."""
ENV_RESULT_PATH: Final = "JOBLINE_RESULT_PATH"

# Environment of pool worker pods (JobQueue spec.workers.mode Pool): `jobline-worker` sees ENV_POOL and,
# instead of one attempt, takes the attempts the operator assigns to its pod (status.worker == its name).
ENV_POOL: Final = "JOBLINE_POOL"  # "1"
ENV_POD_NAME: Final = "JOBLINE_POD_NAME"  # the worker pod's own name (downward API)
ENV_SLOTS: Final = "JOBLINE_SLOTS"  # attempts the pod runs at once (spec.workers.slotsPerWorker)
ENV_DRAIN_SECONDS: Final = "JOBLINE_DRAIN_SECONDS"  # on SIGTERM: how long running attempts may finish
WORKER_LOST: Final = "WorkerLost"  # an attempt whose pool worker pod went away, or restarted
EXIT_WORKER_LOST: Final = 137  # the report of an attempt the worker no longer holds (128 + SIGKILL)
POD_NAME_EXTRA: Final = "authentication.kubernetes.io/pod-name"  # a bound token's pod, in userInfo.extra
ENV_WORKER_IMPORTS: Final = "JOBLINE_WORKER_IMPORTS"

# Kinds and plurals.
KIND_QUEUEDJOB: Final = "QueuedJob"
KIND_JOBQUEUE: Final = "JobQueue"
KIND_JOBSCHEDULE: Final = "JobSchedule"
PLURAL_QUEUEDJOBS: Final = "queuedjobs"
PLURAL_JOBQUEUES: Final = "jobqueues"
PLURAL_JOBSCHEDULES: Final = "jobschedules"

# Worker exit codes (the worker SDK and the operator agree on these).
EXIT_OK: Final = 0  # the handler returned; its result is the termination message
EXIT_RETRYABLE: Final = 1  # the handler raised: the attempt failed and may be retried
EXIT_UNKNOWN_HANDLER: Final = 64  # no handler of that name in this worker (permanent)
EXIT_BAD_INPUT: Final = 65  # the payload is not JSON, or a contract env var is missing or invalid (permanent)
EXIT_PERMANENT: Final = 66  # the handler raised PermanentError (permanent)
EXIT_TERMINATED: Final = 143  # stopped by SIGTERM (128 + 15), e.g. on timeout or suspension
PERMANENT_EXIT_CODES: Final = frozenset({EXIT_UNKNOWN_HANDLER, EXIT_BAD_INPUT, EXIT_PERMANENT})

# The worker pod.
WORKER_CONTAINER: Final = "worker"
WORKER_DEFAULT_COMMAND: Final = ("jobline-worker",)
FIELD_MANAGER: Final = "jobline-operator"
ANNOTATION_JOB_NAME: Final = f"{GROUP}/job-name"
ANNOTATION_TEMPLATE_HASH: Final = f"{GROUP}/template-hash"  # on a pool worker pod: its template's digest

# JobSchedule runs (the schedule loop, jobline.controller.schedules).
ANNOTATION_SCHEDULED_TIME: Final = f"{GROUP}/scheduled-time"  # nominal instant of a scheduled run (RFC 3339)
ANNOTATION_MANUAL_TRIGGER: Final = f"{GROUP}/manual-trigger"  # trigger value that created a manual run

# Operating it: the dashboard, metrics and `kubectl jobline` (jobline.dashboard, jobline.metrics, jobline.cli).
FIELD_MANAGER_DASHBOARD: Final = "jobline-dashboard"
FIELD_MANAGER_CLI: Final = "kubectl-jobline"

# The operator's own settings come from its command line (jobline.settings); a pod may set these
# defaults through its environment instead (the chart sets the certificate directory).
ENV_OPERATOR_WEBHOOK_PORT: Final = "JOBLINE_WEBHOOK_PORT"
ENV_OPERATOR_WEBHOOK_CERT_DIR: Final = "JOBLINE_WEBHOOK_CERT_DIR"
ENV_OPERATOR_PEERING: Final = "JOBLINE_PEERING"
ENV_LOG_LEVEL: Final = "JOBLINE_LOG_LEVEL"  # the operator's and the worker's
