"""The worker pod: the job's template merged over its queue's, then the pod contract (env, labels, owner,
restricted security, restartPolicy, deadline) and podSpecPatch on top."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from jobline import names
from jobline.core.models import WorkerTemplate
from jobline.core.naming import MAX_POD_NAME, attempt_pod_name, short_hash
from jobline.core.podspec import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    TemplateError,
    build_worker_pod,
    contract_env,
    deep_merge,
    merge_templates,
)

CONTRACT = {names.ENV_JOB, names.ENV_NAMESPACE, names.ENV_QUEUE, names.ENV_HANDLER, names.ENV_ATTEMPT,
            names.ENV_PAYLOAD}


def tpl(**fields: Any) -> WorkerTemplate:
    """A template as the API would hand it over (camelCase keys, validated)."""
    return WorkerTemplate.model_validate(fields, strict=False)


# --- merge_templates: queue first, job last -------------------------------------------------------------
MERGES = [
    pytest.param(
        [tpl(image="q:1", command=["q"])], {"image": "q:1", "command": ["q"]},
        id="queue-only"),
    pytest.param(
        [None, tpl(image="j:1")], {"image": "j:1"},
        id="no-queue-template"),
    pytest.param(
        [tpl(image="q:1"), None], {"image": "q:1"},
        id="no-job-template"),
    pytest.param(
        [], {},
        id="nothing"),
    pytest.param(
        [tpl(image="q:1", imagePullPolicy="Always"), tpl(image="j:2")],
        {"image": "j:2", "imagePullPolicy": "Always"},
        id="scalar-set-on-job-wins-unset-kept"),
    pytest.param(
        [tpl(labels={"team": "a", "tier": "q"}), tpl(labels={"tier": "j", "extra": "1"})],
        {"labels": {"team": "a", "tier": "j", "extra": "1"}},
        id="labels-merge-key-by-key"),
    pytest.param(
        [tpl(annotations={"a": "1"}), tpl(annotations={"b": "2"})],
        {"annotations": {"a": "1", "b": "2"}},
        id="annotations-merge"),
    pytest.param(
        [tpl(nodeSelector={"disk": "ssd", "zone": "a"}), tpl(nodeSelector={"zone": "b"})],
        {"nodeSelector": {"disk": "ssd", "zone": "b"}},
        id="node-selector-merge"),
    pytest.param(
        [tpl(securityContext={"runAsUser": 1000, "readOnlyRootFilesystem": True}),
         tpl(securityContext={"runAsUser": 2000})],
        {"securityContext": {"runAsUser": 2000, "readOnlyRootFilesystem": True}},
        id="security-context-merge"),
    pytest.param(
        [tpl(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
         tpl(env=[{"name": "B", "value": "3"}, {"name": "C", "value": "4"}])],
        {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
        id="env-by-name-queue-order-kept-new-appended"),
    pytest.param(
        [tpl(env=[{"name": "TOKEN", "value": "plain"}]),
         tpl(env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])],
        {"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        id="env-entry-replaced-whole"),
    pytest.param(
        [tpl(volumes=[{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "a"}}]),
         tpl(volumes=[{"name": "cfg", "configMap": {"name": "b"}}])],
        {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "b"}}]},
        id="volumes-by-name"),
    pytest.param(
        [tpl(volumeMounts=[{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/app"}]),
         tpl(volumeMounts=[{"name": "other", "mountPath": "/data", "readOnly": True}])],
        {"volumeMounts": [{"name": "other", "mountPath": "/data", "readOnly": True},
                          {"name": "cfg", "mountPath": "/etc/app"}]},
        id="volume-mounts-by-mount-path"),
    pytest.param(
        [tpl(resources={"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}),
         tpl(resources={"requests": {"cpu": "1"}})],
        {"resources": {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
        id="resources-requests-merge-limits-kept"),
    pytest.param(
        [tpl(resources={"requests": {"cpu": "100m"}}), tpl(resources={"limits": {"cpu": "2"}})],
        {"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "2"}}},
        id="resources-parts-added"),
    pytest.param(
        [tpl(command=["a", "b"], args=["x"]), tpl(command=["c"])],
        {"command": ["c"], "args": ["x"]},
        id="plain-lists-replace"),
    pytest.param(
        [tpl(tolerations=[{"key": "a", "operator": "Exists"}]), tpl(tolerations=[{"key": "b", "operator": "Exists"}])],
        {"tolerations": [{"key": "b", "operator": "Exists"}]},
        id="tolerations-replace"),
    pytest.param(
        [tpl(podSpecPatch={"hostAliases": [{"ip": "1.2.3.4"}], "dnsConfig": {"options": [{"name": "ndots"}]}}),
         tpl(podSpecPatch={"dnsConfig": {"nameservers": ["9.9.9.9"]}, "hostAliases": [{"ip": "5.6.7.8"}]})],
        {"podSpecPatch": {"hostAliases": [{"ip": "5.6.7.8"}],
                          "dnsConfig": {"options": [{"name": "ndots"}], "nameservers": ["9.9.9.9"]}}},
        id="pod-spec-patch-deep-merged-lists-replaced"),
    pytest.param(
        [{"image": "raw:1", "labels": {"a": "1"}}, tpl(labels={"b": "2"})],
        {"image": "raw:1", "labels": {"a": "1", "b": "2"}},
        id="plain-mapping-accepted"),
    pytest.param(
        [tpl(image="a"), tpl(image="b"), tpl(image="c", labels={"x": "y"})],
        {"image": "c", "labels": {"x": "y"}},
        id="three-templates-left-to-right"),
]


@pytest.mark.parametrize(("templates", "expected"), MERGES)
def test_merge_templates(templates: list[Any], expected: dict[str, Any]) -> None:
    assert merge_templates(*templates) == expected


def test_merge_does_not_change_its_inputs() -> None:
    queue = {"labels": {"a": "1"}, "env": [{"name": "A", "value": "1"}], "podSpecPatch": {"x": {"y": 1}},
             "resources": {"requests": {"cpu": "1"}}}
    job = {"labels": {"b": "2"}, "env": [{"name": "A", "value": "2"}], "podSpecPatch": {"x": {"z": 2}},
           "resources": {"requests": {"memory": "1Gi"}}}
    before = copy.deepcopy((queue, job))
    merged = merge_templates(queue, job)
    merged["labels"]["c"] = "3"
    merged["podSpecPatch"]["x"]["w"] = 3
    merged["resources"]["requests"]["gpu"] = "1"
    assert (queue, job) == before


# --- deep_merge -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("base", "over", "expected"), [
    pytest.param({"a": 1}, {"b": 2}, {"a": 1, "b": 2}, id="disjoint"),
    pytest.param({"a": 1}, {"a": 2}, {"a": 2}, id="scalar-replaced"),
    pytest.param({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}, id="nested-objects-merge"),
    pytest.param({"a": [1, 2]}, {"a": [3]}, {"a": [3]}, id="lists-replaced"),
    pytest.param({"a": {"b": 1}}, {"a": 5}, {"a": 5}, id="object-replaced-by-scalar"),
    pytest.param({"a": 5}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="scalar-replaced-by-object"),
    pytest.param({"a": 1}, {"a": None}, {"a": None}, id="null-is-a-value-not-a-delete"),
    pytest.param({}, {}, {}, id="empty"),
])
def test_deep_merge(base: dict[str, Any], over: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(base)
    assert deep_merge(base, over) == expected
    assert base == before


# --- the pod contract -----------------------------------------------------------------------------------
def pod(template: dict[str, Any] | None = None, *, job: str = "report", attempt: int = 2,
        timeout: int | None = None, payload: Any = None) -> dict[str, Any]:
    return build_worker_pod(
        job=job, namespace="apps", job_uid="uid-1", queue="mail", handler="send-email",
        payload={"to": "a@example.com"} if payload is None else payload, attempt=attempt,
        template={"image": "worker:1", **(template or {})}, timeout_seconds=timeout)


def container(p: dict[str, Any]) -> dict[str, Any]:
    (c,) = p["spec"]["containers"]
    return dict(c)


def env(p: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(p)["env"]}


def test_contract_env() -> None:
    got = {e["name"]: e["value"] for e in contract_env(job="j", namespace="n", queue="q", handler="h",
                                                        attempt=3, payload={"b": [1, 2], "s": "é"})}
    assert got == {names.ENV_JOB: "j", names.ENV_NAMESPACE: "n", names.ENV_QUEUE: "q", names.ENV_HANDLER: "h",
                   names.ENV_ATTEMPT: "3", names.ENV_PAYLOAD: '{"b":[1,2],"s":"é"}'}
    assert names.ENV_DEPENDENCIES not in got  # only for jobs with dependsOn


def test_contract_env_carries_the_dependencies_results() -> None:
    got = {e["name"]: e["value"] for e in contract_env(job="j", namespace="n", queue="q", handler="h", attempt=1,
                                                        payload=None, dependencies={"a": {"x": 1}, "b": None})}
    assert json.loads(got[names.ENV_DEPENDENCIES]) == {"a": {"x": 1}, "b": None}


def test_pod_carries_the_contract_env() -> None:
    e = env(pod())
    assert set(e) >= CONTRACT
    assert e[names.ENV_JOB] == "report" and e[names.ENV_NAMESPACE] == "apps" and e[names.ENV_QUEUE] == "mail"
    assert e[names.ENV_HANDLER] == "send-email" and e[names.ENV_ATTEMPT] == "2"
    assert json.loads(e[names.ENV_PAYLOAD]) == {"to": "a@example.com"}


@pytest.mark.parametrize("payload", [None, 0, "text", [1, "two"], {"nested": {"k": [True, None]}}])
def test_payload_round_trips_through_the_env(payload: Any) -> None:
    p = build_worker_pod(job="j", namespace="n", job_uid="u", queue="q", handler="h", payload=payload,
                         attempt=1, template={"image": "w"})
    assert json.loads(env(p)[names.ENV_PAYLOAD]) == payload


def test_contract_env_overrides_user_env_of_the_same_name_and_keeps_the_rest() -> None:
    p = pod({"env": [{"name": names.ENV_JOB, "value": "spoofed"}, {"name": "APP", "value": "1"},
                     {"name": names.ENV_ATTEMPT, "value": "99"}]})
    e = env(p)
    assert e[names.ENV_JOB] == "report" and e[names.ENV_ATTEMPT] == "2" and e["APP"] == "1"
    listed = [x["name"] for x in container(p)["env"]]
    assert len(listed) == len(set(listed))  # no name twice: the contract replaced the user's entries


def test_labels_annotations_and_owner() -> None:
    p = pod({"labels": {"team": "x", names.LABEL_JOB: "spoofed"}, "annotations": {"note": "n"}})
    meta = p["metadata"]
    assert meta["name"] == "report-2" and meta["namespace"] == "apps"
    assert meta["labels"] == {"team": "x", names.LABEL_JOB: "report", names.LABEL_QUEUE: "mail",
                              names.LABEL_HANDLER: "send-email", names.LABEL_ATTEMPT: "2"}
    assert meta["annotations"] == {"note": "n", names.ANNOTATION_JOB_NAME: "report"}
    (owner,) = meta["ownerReferences"]
    assert owner == {"apiVersion": names.API_VERSION, "kind": names.KIND_QUEUEDJOB, "name": "report",
                     "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}
    assert p["apiVersion"] == "v1" and p["kind"] == "Pod"


@pytest.mark.parametrize(("timeout", "deadline"), [
    pytest.param(None, None, id="no-timeout-no-deadline"),
    pytest.param(0, None, id="zero-is-no-timeout"),
    pytest.param(300, 300, id="timeout-is-the-pod-deadline"),
])
def test_restart_policy_and_deadline(timeout: int | None, deadline: int | None) -> None:
    spec = pod(timeout=timeout)["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec.get("activeDeadlineSeconds") == deadline
    assert spec["enableServiceLinks"] is False


def test_restricted_security_defaults() -> None:
    p = pod()
    assert p["spec"]["securityContext"] == RESTRICTED_POD_SECURITY
    sc = container(p)["securityContext"]
    assert sc == RESTRICTED_CONTAINER_SECURITY
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container(p)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_template_security_context_goes_over_the_container_defaults() -> None:
    sc = container(pod({"securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True}}))["securityContext"]
    assert sc == {**RESTRICTED_CONTAINER_SECURITY, "runAsUser": 1000, "readOnlyRootFilesystem": True}


def test_defaults_are_not_shared_between_pods() -> None:
    a = pod()
    a["spec"]["securityContext"]["runAsNonRoot"] = False
    container(a)["securityContext"]["allowPrivilegeEscalation"] = True
    b = pod()
    assert b["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container(b)["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize(("command", "expected"), [
    pytest.param(None, list(names.WORKER_DEFAULT_COMMAND), id="default-command"),
    pytest.param([], list(names.WORKER_DEFAULT_COMMAND), id="empty-command-is-default"),
    pytest.param(["python", "-m", "app"], ["python", "-m", "app"], id="custom-command"),
])
def test_command(command: list[str] | None, expected: list[str]) -> None:
    c = container(pod({"command": command} if command is not None else {}))
    assert c["name"] == names.WORKER_CONTAINER and c["image"] == "worker:1" and c["command"] == expected


CONTAINER_FIELDS = {
    "args": ["--verbose"],
    "workingDir": "/srv",
    "envFrom": [{"secretRef": {"name": "s"}}],
    "resources": {"limits": {"memory": "1Gi"}},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    "imagePullPolicy": "Never",
}
POD_FIELDS = {
    "serviceAccountName": "worker",
    "nodeSelector": {"disk": "ssd"},
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "affinity": {"nodeAffinity": {}},
    "priorityClassName": "high",
    "volumes": [{"name": "data", "emptyDir": {}}],
    "imagePullSecrets": [{"name": "regcred"}],
}


@pytest.mark.parametrize(("field", "value"), CONTAINER_FIELDS.items(), ids=list(CONTAINER_FIELDS))
def test_container_fields_are_copied(field: str, value: Any) -> None:
    template = {field: value}
    p = pod(template)
    assert container(p)[field] == value
    assert field not in p["spec"]
    container(p)[field] = "changed"
    assert template[field] == value


@pytest.mark.parametrize(("field", "value"), POD_FIELDS.items(), ids=list(POD_FIELDS))
def test_pod_fields_are_copied(field: str, value: Any) -> None:
    p = pod({field: value})
    assert p["spec"][field] == value
    assert field not in container(p)


def test_unset_optional_fields_are_left_out() -> None:
    p = pod()
    assert not set(CONTAINER_FIELDS) & set(container(p))
    assert not set(POD_FIELDS) & set(p["spec"])


def test_pod_spec_patch_is_merged_last() -> None:
    spec = pod({"podSpecPatch": {"enableServiceLinks": True, "hostAliases": [{"ip": "1.2.3.4"}],
                                 "securityContext": {"fsGroup": 2000}, "restartPolicy": "Never"}},
               timeout=60)["spec"]
    assert spec["enableServiceLinks"] is True and spec["hostAliases"] == [{"ip": "1.2.3.4"}]
    assert spec["securityContext"] == {**RESTRICTED_POD_SECURITY, "fsGroup": 2000}  # merged, not replaced
    assert spec["activeDeadlineSeconds"] == 60 and spec["containers"][0]["image"] == "worker:1"


def test_pod_spec_patch_replaces_lists() -> None:
    spec = pod({"podSpecPatch": {"containers": [{"name": "other", "image": "x"}]}})["spec"]
    assert spec["containers"] == [{"name": "other", "image": "x"}]


def test_merged_templates_make_a_pod() -> None:
    template = merge_templates(
        tpl(image="q:1", env=[{"name": "A", "value": "q"}], labels={"team": "q"}, podSpecPatch={"hostPID": False}),
        tpl(env=[{"name": "A", "value": "j"}], labels={"run": "j"}, podSpecPatch={"hostIPC": False}))
    p = build_worker_pod(job="j", namespace="n", job_uid="u", queue="q", handler="h", payload=None, attempt=1,
                         template=template)
    assert env(p)["A"] == "j" and container(p)["image"] == "q:1"
    assert p["metadata"]["labels"]["team"] == "q" and p["metadata"]["labels"]["run"] == "j"
    assert p["spec"]["hostPID"] is False and p["spec"]["hostIPC"] is False


@pytest.mark.parametrize("template", [
    pytest.param({}, id="no-image"),
    pytest.param({"image": ""}, id="empty-image"),
    pytest.param({"image": None, "command": ["x"]}, id="null-image"),
])
def test_no_image_is_a_template_error(template: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as info:
        build_worker_pod(job="j", namespace="n", job_uid="u", queue="q", handler="h", payload=None, attempt=1,
                         template=template)
    assert info.value.reason == "NoImage"
    assert "spec.template.image" in str(info.value)
    assert isinstance(info.value, ValueError)


# --- names ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("job", "attempt"), [
    pytest.param("a", 1, id="short"),
    pytest.param("x" * 61, 1, id="exactly-63-with-suffix"),
    pytest.param("x" * 62, 1, id="one-too-long"),
    pytest.param("x" * 60, 100, id="long-attempt-number"),
    pytest.param("y" * 253, 7, id="longest-job-name"),
    pytest.param("a" * 48 + "-.-" + "b" * 40, 3, id="cut-lands-on-separators"),
])
def test_attempt_pod_names_fit_a_dns_label(job: str, attempt: int) -> None:
    name = attempt_pod_name(job, attempt)
    assert len(name) <= MAX_POD_NAME
    assert name.endswith(f"-{attempt}")
    assert name == attempt_pod_name(job, attempt)  # deterministic
    if len(job) + len(f"-{attempt}") <= MAX_POD_NAME:
        assert name == f"{job}-{attempt}"
    else:
        assert short_hash(job) in name
        head = name[: -len(f"-{attempt}") - 7]
        assert job.startswith(head) and not head.endswith(("-", "."))


def test_long_names_that_share_a_prefix_get_different_pods() -> None:
    a, b = "p" * 70 + "-a", "p" * 70 + "-b"
    assert attempt_pod_name(a, 1) != attempt_pod_name(b, 1)


def test_short_hash() -> None:
    assert short_hash("x") == short_hash("x") and len(short_hash("x")) == 6
    assert len(short_hash("x", 10)) == 10 and short_hash("x") != short_hash("y")


@pytest.mark.parametrize("length", [63, 64, 200])
def test_long_job_names_are_cut_in_the_pod(length: int) -> None:
    job = "j" * length
    p = pod(job=job)
    assert len(p["metadata"]["name"]) <= MAX_POD_NAME
    label = p["metadata"]["labels"][names.LABEL_JOB]
    assert len(label) <= 63 and label[0].isalnum() and label[-1].isalnum()
    assert (label == job) == (length <= 63)
    assert p["metadata"]["annotations"][names.ANNOTATION_JOB_NAME] == job  # the full name
    assert p["metadata"]["ownerReferences"][0]["name"] == job
    assert env(p)[names.ENV_JOB] == job


# --- payloadFrom ------------------------------------------------------------------------------------
def test_payload_from_a_secret_is_a_mounted_file_never_env() -> None:
    ref = {"secretKeyRef": {"name": "creds", "key": "job.json"}}
    p = build_worker_pod(
        job="report", namespace="apps", job_uid="uid-1", queue="mail", handler="send-email", payload=None,
        attempt=1, template={"image": "worker:1", "volumes": [{"name": "scratch", "emptyDir": {}}],
                             "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        payload_from=ref,
    )
    e = env(p)
    assert names.ENV_PAYLOAD not in e and e[names.ENV_PAYLOAD_FILE] == names.PAYLOAD_FILE
    assert p["spec"]["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": names.PAYLOAD_VOLUME, "secret": {"secretName": "creds", "defaultMode": 0o444,
                                                  "items": [{"key": "job.json", "path": "payload.json"}]}},
    ]
    assert container(p)["volumeMounts"][-1] == {
        "name": names.PAYLOAD_VOLUME, "mountPath": "/var/run/jobline/payload", "readOnly": True
    }
    assert "creds" not in json.dumps(container(p)["env"])
