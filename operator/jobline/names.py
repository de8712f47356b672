"""Every name Jobline puts on the wire: API group, version, kinds, labels, annotations, env vars."""

from typing import Final

GROUP: Final = "jobline.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "jobline"

# Labels and annotations the operator owns.
LABEL_PREFIX: Final = f"{GROUP}/"
LABEL_QUEUE: Final = f"{GROUP}/queue"
LABEL_HANDLER: Final = f"{GROUP}/handler"
LABEL_PHASE: Final = f"{GROUP}/phase"
LABEL_JOB: Final = f"{GROUP}/job"
LABEL_ATTEMPT: Final = f"{GROUP}/attempt"
LABEL_SCHEDULE: Final = f"{GROUP}/schedule"
ANNOTATION_REQUEUE: Final = f"{GROUP}/requeue"
ANNOTATION_TRIGGER: Final = f"{GROUP}/trigger"

# Environment of worker pods (the pod contract).
ENV_JOB: Final = "JOBLINE_JOB"
ENV_NAMESPACE: Final = "JOBLINE_NAMESPACE"
ENV_QUEUE: Final = "JOBLINE_QUEUE"
ENV_HANDLER: Final = "JOBLINE_HANDLER"
ENV_ATTEMPT: Final = "JOBLINE_ATTEMPT"
ENV_PAYLOAD: Final = "JOBLINE_PAYLOAD"
