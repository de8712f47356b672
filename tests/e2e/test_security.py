"""Who may do what (issue 14, part 3; docs/security.md): each claim of the threat model, as the user it
is about (``kubectl --as``).

- A job creator (RBAC: create QueuedJobs, nothing else) cannot create pods, and through a QueuedJob can
  set only what the queue's ``jobOverrides`` allows: env (literal values), args and resources by default.
  Anything else is refused at apply time with the field named; the dispatcher judges again at each start.
- ``payloadFrom.secretKeyRef``: the payload reaches the handler as a mounted file, never in the pod's
  environment, the job's status, Events or the operator's log.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import kubectl, wait_for

CREATOR = "alice@example.com"  # may create QueuedJobs in the namespace, nothing else


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    rbac = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: job-creator}}
rules:
  - {{apiGroups: [jobline.dev], resources: [queuedjobs], verbs: [create, get, list, watch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: job-creator}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: job-creator}}
subjects: [{{kind: User, name: "{CREATOR}", apiGroup: rbac.authorization.k8s.io}}]
"""
    kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", "-", input=rbac)
    return Jobs(cluster, namespace)


def apply_as_creator(jobs: Jobs, name: str, spec: dict[str, Any]) -> Any:
    doc = {
        "apiVersion": "jobline.dev/v1alpha1",
        "kind": "QueuedJob",
        "metadata": {"name": name},
        "spec": spec,
    }
    return kubectl(
        jobs.cluster.kubeconfig,
        "--as",
        CREATOR,
        "-n",
        jobs.ns,
        "create",
        "-f",
        "-",
        input=json.dumps(doc),
        check=False,
    )


def test_a_job_creator_cannot_create_pods_and_sets_only_what_the_queue_allows(jobs: Jobs) -> None:
    for verb in ("create", "patch"):
        can = kubectl(
            jobs.cluster.kubeconfig,
            "auth",
            "can-i",
            verb,
            "pods",
            "-n",
            jobs.ns,
            "--as",
            CREATOR,
            check=False,
        )
        assert can.stdout.strip() == "no", (verb, can.stdout)
    jobs.queue()  # no jobOverrides: env, args, resources
    for field, value in (
        ("image", "registry.example/evil:1"),
        ("podSpecPatch", {"hostPID": True}),
        ("securityContext", {"runAsUser": 0, "allowPrivilegeEscalation": True}),
        ("serviceAccountName", "default"),
        ("volumes", [{"name": "host", "hostPath": {"path": "/"}}]),
        ("command", ["sh", "-c", "id"]),
    ):
        proc = apply_as_creator(jobs, f"bad-{field.lower()}", {"handler": "echo", "template": {field: value}})
        assert proc.returncode != 0, (field, proc.stdout)
        assert f"spec.template.{field}: JobQueue default does not let its jobs set {field}" in proc.stderr, (
            proc
        )
        assert "jobOverrides allows args, env, resources (the default)" in proc.stderr, proc
        assert not jobs.exists(f"bad-{field.lower()}")
    secret_env = {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "any", "key": "k"}}}]}
    proc = apply_as_creator(jobs, "bad-env", {"handler": "echo", "template": secret_env})
    assert proc.returncode != 0 and "spec.template.env[0].valueFrom.secretKeyRef" in proc.stderr, proc

    ok = {"env": [{"name": "GREETING", "value": "hi"}], "resources": {"limits": {"memory": "256Mi"}}}
    proc = apply_as_creator(jobs, "fine", {"handler": "echo", "payload": {"n": 1}, "template": ok})
    assert proc.returncode == 0, proc
    st = jobs.wait_phase("fine", "Succeeded", "Failed", timeout=120)
    assert st["phase"] == "Succeeded" and st["result"] == {"n": 1}, st
    env = {e.name: e.value for e in jobs.pods("fine")[0].spec.containers[0].env}
    assert env["GREETING"] == "hi"


def test_the_dispatcher_judges_overrides_again_when_the_queue_narrows(jobs: Jobs) -> None:
    jobs.queue(jobOverrides=["env", "args", "resources", "labels"])
    jobs.create("labelled", "echo", {}, suspend=True, template={"labels": {"team": "a"}})
    jobs.wait_phase("labelled", "Suspended", timeout=30)
    jobs.patch_queue("default", {"jobOverrides": ["env"]})  # narrowed after the job was admitted
    gen = jobs.get_queue()["metadata"]["generation"]
    wait_for(
        lambda: (jobs.get_queue().get("status") or {}).get("observedGeneration") == gen,
        30,
        "the operator to see the narrowed queue",
    )
    jobs.patch("labelled", {"spec": {"suspend": False}})
    st = jobs.wait_phase("labelled", "Failed", "Succeeded", timeout=60)
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert st["phase"] == "Failed" and failed["reason"] == "OverrideNotAllowed", st
    assert failed["message"].startswith(
        "spec.template.labels: JobQueue default does not let its jobs set labels"
    )
    assert not jobs.pods("labelled") and st.get("attempts", 0) == 0


def test_a_payload_from_a_secret_reaches_the_handler_and_nothing_else(
    jobs: Jobs, running_operator: OperatorProcess
) -> None:
    payload = {"apiToken": "tok-7f3a9c1e-very-secret", "customer": 42}
    text = json.dumps(payload)
    jobs.cluster.core.create_namespaced_secret(
        jobs.ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name="job-input"), string_data={"payload.json": text}),
    )
    ref = {"secretKeyRef": {"name": "job-input", "key": "payload.json"}}
    jobs.queue()
    proc = apply_as_creator(jobs, "refused", {"handler": "digest", "payloadFrom": ref})
    assert (
        proc.returncode != 0
        and "spec.payloadFrom: JobQueue default does not let its jobs set payloadFrom" in proc.stderr
    )
    both = apply_as_creator(jobs, "both", {"handler": "digest", "payload": 1, "payloadFrom": ref})
    assert both.returncode != 0, both

    jobs.patch_queue("default", {"jobOverrides": ["env", "args", "resources", "payloadFrom"]})
    jobs.get_queue()  # the queue's new list is in the apiserver: admission reads current state
    proc = apply_as_creator(jobs, "secretive", {"handler": "digest", "payloadFrom": ref})
    assert proc.returncode == 0, proc
    st = jobs.wait_phase("secretive", "Succeeded", "Failed", timeout=120)
    want = hashlib.sha256(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
    assert st["phase"] == "Succeeded" and st["result"] == {
        "sha256": want,
        "keys": ["apiToken", "customer"],
    }, st

    secret = "tok-7f3a9c1e"
    (pod,) = jobs.pods("secretive")
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert (
        "JOBLINE_PAYLOAD" not in env
        and env["JOBLINE_PAYLOAD_FILE"] == "/var/run/jobline/payload/payload.json"
    )
    pod_text = json.dumps(jobs.cluster.api.sanitize_for_serialization(pod))
    assert secret not in pod_text
    assert secret not in json.dumps(jobs.get("secretive"))
    assert all(secret not in message for _, message in jobs.events("secretive"))
    log = Path(running_operator.log).read_text()
    assert secret not in log
