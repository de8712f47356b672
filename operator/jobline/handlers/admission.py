"""Admission checks the CRD schema cannot express: the payload cap and uniqueKey.

The webhook's failurePolicy is Ignore, so an operator that is down never blocks job creation;
the controller enforces both rules again (PayloadTooLarge, Duplicate) for anything that slips by.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import kopf

from jobline import names
from jobline.core.lifecycle import FINISHED
from jobline.core.models import DEFAULT_QUEUE, MAX_PAYLOAD_BYTES, payload_size
from jobline.webhook import write_pair

WEBHOOK_CONFIG = "jobline.dev"


@kopf.on.startup()
async def configure_admission(settings: kopf.OperatorSettings, **_: Any) -> None:
    port = int(os.environ.get("JOBLINE_WEBHOOK_PORT", "0") or 0)
    if not port:
        return
    addr = os.environ.get("JOBLINE_WEBHOOK_ADDR", "127.0.0.1")
    host = os.environ.get("JOBLINE_WEBHOOK_HOST", addr)
    certdir = Path(os.environ.get("JOBLINE_WEBHOOK_CERT_DIR") or tempfile.mkdtemp(prefix="jobline-webhook-"))
    certfile, keyfile, cadata = write_pair(certdir, [host, addr, "localhost"])
    settings.admission.server = kopf.WebhookServer(addr=addr, port=port, host=host, certfile=str(certfile),
                                                   pkeyfile=str(keyfile), cadata=cadata)
    settings.admission.managed = WEBHOOK_CONFIG


@kopf.on.validate(names.GROUP, names.VERSION, names.PLURAL_QUEUEDJOBS, id="queuedjob",
                  operations=["CREATE", "UPDATE"], ignore_failures=True)
def validate_queuedjob(spec: kopf.Spec, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    operation = kwargs.get("operation")
    size = payload_size(spec.get("payload"))
    if size > MAX_PAYLOAD_BYTES:
        raise kopf.AdmissionError(
            f"spec.payload: {size} bytes of JSON, more than the {MAX_PAYLOAD_BYTES} allowed; "
            "store large inputs elsewhere and pass a reference", code=422)
    unique = spec.get("uniqueKey")
    controller = getattr(memo, "controller", None)
    if operation != "CREATE" or not unique or controller is None or namespace is None:
        return
    queue = spec.get("queue") or DEFAULT_QUEUE
    for twin in sorted(controller.store.by_unique.get((namespace, queue, unique), ())):
        obj = controller.store.jobs.get((namespace, twin))
        if obj is not None and twin != name and (obj.get("status") or {}).get("phase") not in FINISHED:
            raise kopf.AdmissionError(
                f"spec.uniqueKey: {unique!r} is taken in queue {queue} by the unfinished job {twin}", code=409)
