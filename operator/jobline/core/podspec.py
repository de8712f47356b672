"""Build the worker pod of one attempt: pure functions from job, queue and attempt to a Pod manifest.

Merge rules (job over queue): a field set on the job wins; maps (labels, annotations, nodeSelector,
resources.requests/limits, securityContext) merge key by key; the list-maps env (by name), volumes
(by name) and volumeMounts (by mountPath) merge entry by entry; other lists replace. podSpecPatch
is merged last over the generated PodSpec (objects merged recursively, lists replaced).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from jobline import names

from .models import WorkerTemplate
from .naming import attempt_pod_name, job_label_value

_MAPS = ("labels", "annotations", "nodeSelector", "securityContext")
_LIST_MAPS = {"env": "name", "volumes": "name", "volumeMounts": "mountPath"}

RESTRICTED_POD_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


class TemplateError(ValueError):
    """The merged template cannot make a pod; ``reason`` goes into the job's condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _merge_list_map(base: list[Any], over: list[Any], key: str) -> list[Any]:
    out = {item[key]: item for item in base}
    for item in over:
        out[item[key]] = item
    return list(out.values())


def merge_templates(*templates: WorkerTemplate | Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge templates left to right (queue first, job last) into one wire-format dict."""
    merged: dict[str, Any] = {}
    for template in templates:
        if template is None:
            continue
        data = template.manifest() if isinstance(template, WorkerTemplate) else dict(template)
        for field, value in data.items():
            if field in _MAPS and isinstance(merged.get(field), dict):
                merged[field] = {**merged[field], **value}
            elif field in _LIST_MAPS and field in merged:
                merged[field] = _merge_list_map(merged[field], value, _LIST_MAPS[field])
            elif field == "resources" and "resources" in merged:
                res = dict(merged["resources"])
                for part in ("requests", "limits"):
                    if part in value:
                        res[part] = {**res.get(part, {}), **value[part]}
                merged[field] = res
            elif field == "podSpecPatch" and "podSpecPatch" in merged:
                merged[field] = deep_merge(merged[field], value)
            else:
                merged[field] = copy.deepcopy(value)
    return merged


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge recursively, everything else (lists included) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def contract_env(
    *,
    job: str,
    namespace: str,
    queue: str,
    handler: str,
    attempt: int,
    payload: Any,
    dependencies: Mapping[str, Any] | None = None,
    payload_from_secret: bool = False,
) -> list[dict[str, str]]:
    """The pod contract's environment (it overrides user env of the same names). ``dependencies``: the
    results of the dependsOn jobs (they all succeeded), for the handler's ``ctx.dependencies``.
    ``payload_from_secret``: the payload is the mounted Secret key (JOBLINE_PAYLOAD_FILE), not env."""
    env = [
        {"name": names.ENV_JOB, "value": job},
        {"name": names.ENV_NAMESPACE, "value": namespace},
        {"name": names.ENV_QUEUE, "value": queue},
        {"name": names.ENV_HANDLER, "value": handler},
        {"name": names.ENV_ATTEMPT, "value": str(attempt)},
    ]
    if payload_from_secret:  # a file from the Secret: never in the pod's environment
        env.append({"name": names.ENV_PAYLOAD_FILE, "value": names.PAYLOAD_FILE})
    else:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        env.append({"name": names.ENV_PAYLOAD, "value": text})
    if dependencies is not None:
        text = json.dumps(dict(dependencies), separators=(",", ":"), ensure_ascii=False)
        env.append({"name": names.ENV_DEPENDENCIES, "value": text})
    return env


def _pod_spec(
    template: Mapping[str, Any], env: list[dict[str, Any]], *, restart_policy: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The PodSpec of a worker (restricted security defaults, the template's fields) and its container."""
    image = template.get("image")
    if not image:
        raise TemplateError(
            "NoImage",
            "no worker image: set spec.template.image on the job or on its JobQueue's spec.template",
        )
    container: dict[str, Any] = {
        "name": names.WORKER_CONTAINER,
        "image": image,
        "command": list(template.get("command") or names.WORKER_DEFAULT_COMMAND),
        "env": env,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {**RESTRICTED_CONTAINER_SECURITY, **template.get("securityContext", {})},
    }
    for src, dst in (
        ("args", "args"),
        ("workingDir", "workingDir"),
        ("envFrom", "envFrom"),
        ("resources", "resources"),
        ("volumeMounts", "volumeMounts"),
        ("imagePullPolicy", "imagePullPolicy"),
    ):
        if template.get(src):
            container[dst] = copy.deepcopy(template[src])
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [container],
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "enableServiceLinks": False,
    }
    for field in (
        "serviceAccountName",
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
        "volumes",
        "imagePullSecrets",
    ):
        if template.get(field):
            spec[field] = copy.deepcopy(template[field])
    return spec, container


DEFAULT_GRACE_SECONDS = 30  # a pod's terminationGracePeriodSeconds when none is set
DRAIN_MARGIN_SECONDS = 5  # of the grace period, kept for reporting what the drain could not finish


def build_pool_pod(
    *, queue: str, namespace: str, queue_uid: str, template: Mapping[str, Any], slots: int
) -> dict[str, Any]:
    """A pool worker pod of ``queue`` (owned by the JobQueue). Its container is the queue's worker, told by
    the pool contract's environment to take the attempts assigned to its pod instead of running one; it
    restarts in place (``Always``), and a restarted worker reports the attempts it lost."""
    env = _merge_list_map(
        list(template.get("env", [])),
        [
            {"name": names.ENV_POOL, "value": "1"},
            {"name": names.ENV_NAMESPACE, "value": namespace},
            {"name": names.ENV_QUEUE, "value": queue},
            {"name": names.ENV_POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": names.ENV_SLOTS, "value": str(slots)},
        ],
        "name",
    )
    spec, _container = _pod_spec(template, env, restart_policy="Always")
    if template.get("podSpecPatch"):
        spec = deep_merge(spec, template["podSpecPatch"])
    grace = spec.get("terminationGracePeriodSeconds")
    grace = int(grace) if isinstance(grace, int) else DEFAULT_GRACE_SECONDS
    drain = {"name": names.ENV_DRAIN_SECONDS, "value": str(max(1, grace - DRAIN_MARGIN_SECONDS))}
    for c in spec.get("containers") or ():
        if c.get("name") == names.WORKER_CONTAINER:
            c["env"] = _merge_list_map(list(c.get("env") or []), [drain], "name")
    labels = {**template.get("labels", {}), names.LABEL_POOL: queue, names.LABEL_QUEUE: queue}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{queue}-worker-",
            "namespace": namespace,
            "labels": labels,
            "annotations": dict(template.get("annotations", {})),
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": names.KIND_JOBQUEUE,
                    "name": queue,
                    "uid": queue_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def build_worker_pod(
    *,
    job: str,
    namespace: str,
    job_uid: str,
    queue: str,
    handler: str,
    payload: Any,
    attempt: int,
    template: Mapping[str, Any],
    timeout_seconds: int | None = None,
    dependencies: Mapping[str, Any] | None = None,
    payload_from: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Pod manifest for ``attempt`` of ``job`` (owned by the job, so it is garbage-collected with it).
    ``payload_from``: the job's ``spec.payloadFrom`` (camelCase); its Secret key is mounted read-only at
    names.PAYLOAD_FILE (a file, so the payload is in no environment a ``get pods`` shows)."""
    env = _merge_list_map(
        list(template.get("env", [])),
        contract_env(
            job=job,
            namespace=namespace,
            queue=queue,
            handler=handler,
            attempt=attempt,
            payload=payload,
            dependencies=dependencies,
            payload_from_secret=payload_from is not None,
        ),
        "name",
    )
    spec, container = _pod_spec(template, env, restart_policy="Never")
    if timeout_seconds:
        spec["activeDeadlineSeconds"] = int(timeout_seconds)
    if payload_from is not None:
        ref = payload_from["secretKeyRef"]
        secret: dict[str, Any] = {
            "secretName": ref["name"],
            "items": [{"key": ref["key"], "path": names.PAYLOAD_FILE.rsplit("/", 1)[1]}],
            "defaultMode": 0o444,  # root-owned without fsGroup: readable by the non-root worker
        }
        if ref.get("optional") is not None:
            secret["optional"] = bool(ref["optional"])
        spec["volumes"] = [*spec.get("volumes", []), {"name": names.PAYLOAD_VOLUME, "secret": secret}]
        mount = {"name": names.PAYLOAD_VOLUME, "mountPath": names.PAYLOAD_DIR, "readOnly": True}
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    if template.get("podSpecPatch"):
        spec = deep_merge(spec, template["podSpecPatch"])
    labels = {
        **template.get("labels", {}),
        names.LABEL_JOB: job_label_value(job),
        names.LABEL_QUEUE: queue,
        names.LABEL_HANDLER: handler,
        names.LABEL_ATTEMPT: str(attempt),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": attempt_pod_name(job, attempt),
            "namespace": namespace,
            "labels": labels,
            "annotations": {**template.get("annotations", {}), names.ANNOTATION_JOB_NAME: job},
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": names.KIND_QUEUEDJOB,
                    "name": job,
                    "uid": job_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
