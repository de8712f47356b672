"""The test cluster itself: what later issues rely on, shown against the real control plane."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster.build import read_versions
from tests.conftest import ClusterHandle
from tests.kube import kubectl, kubectl_json, wait_for

GROUP = "cluster-test.jobline.dev"


def _pod(name: str, command: list[str], **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": "local", "command": command}],
            "nodeSelector": {"jobline.dev/node": "local"},  # the image is ignored there
            "tolerations": [{"key": "jobline.dev/node", "value": "local", "effect": "NoSchedule"}],
            **spec,
        },
    }


def _finished(core: client.CoreV1Api, ns: str, name: str) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, ns)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def test_version_is_the_pinned_one(cluster: ClusterHandle) -> None:
    if not cluster.local:
        pytest.skip("an external cluster has its own version")
    info = client.VersionApi(cluster.api).get_code()
    assert info.git_version == read_versions()["KUBERNETES_VERSION"]


@pytest.fixture(scope="module")
def widget_crd(cluster: ClusterHandle) -> str:
    ext = client.ApiextensionsV1Api(cluster.api)
    name = f"widgets.{GROUP}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": GROUP,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"color": {"type": "string"}}},
                                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                            },
                        }
                    },
                }
            ],
        },
    }
    try:
        ext.create_custom_resource_definition(crd)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        conds = ext.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    wait_for(established, 30, "CRD established")
    return name


def test_crd_status_subresource_and_printer_columns(
    cluster: ClusterHandle, widget_crd: str, namespace: str
) -> None:
    api = cluster.custom
    api.create_namespaced_custom_object(
        GROUP,
        "v1",
        namespace,
        "widgets",
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"color": "teal"},
            "status": {"phase": "ignored-on-create"},
        },
    )
    # The status subresource drops status from the main resource's writes ...
    obj = api.get_namespaced_custom_object(GROUP, "v1", namespace, "widgets", "w1")
    assert "status" not in obj or obj["status"].get("phase") != "ignored-on-create"
    # ... and accepts it through /status, which in turn ignores spec changes.
    api.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, "widgets", "w1", {"status": {"phase": "Shiny"}, "spec": {"color": "red"}}
    )
    obj = api.get_namespaced_custom_object(GROUP, "v1", namespace, "widgets", "w1")
    assert obj["status"]["phase"] == "Shiny"
    assert obj["spec"]["color"] == "teal"

    out = kubectl(cluster.kubeconfig, "get", "widgets", "-n", namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "COLOR", "PHASE"]
    assert out[1].split() == ["w1", "teal", "Shiny"]


def test_termination_message_and_exit_code(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    core.create_namespaced_pod(
        namespace,
        _pod("term", ["python3", "-c", "open('/dev/termination-log','w').write('ok'); raise SystemExit(3)"]),
    )
    pod = wait_for(lambda: _finished(core, namespace, "term"), 60, "pod term to finish")
    assert pod.status.phase == "Failed"
    assert pod.spec.node_name == "jobline-local"
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason, term.message) == (3, "Error", "ok")


def test_concurrent_pods_have_their_own_termination_log(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    script = (
        "import os, time; p='/dev/termination-log'; open(p,'w').write(os.environ['ME']); time.sleep(1.5); "
        "assert open(p).read() == os.environ['ME']"
    )
    for i in range(3):
        body = _pod(f"par-{i}", ["python3", "-c", script])
        body["spec"]["containers"][0]["env"] = [{"name": "ME", "value": f"pod-{i}"}]  # type: ignore[index]
        core.create_namespaced_pod(namespace, body)
    for i in range(3):
        pod = wait_for(lambda i=i: _finished(core, namespace, f"par-{i}"), 60, f"pod par-{i}")
        term = pod.status.container_statuses[0].state.terminated
        assert (pod.status.phase, term.exit_code, term.message) == ("Succeeded", 0, f"pod-{i}")


def test_env_sources_and_working_dir(local_cluster: ClusterHandle, namespace: str, tmp_path: object) -> None:
    core = local_cluster.core
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"token": "s3cret"})
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"color": "blue", "size": "L"}),
    )
    script = (
        "import json, os; keys=['LIT','POD','NS','LBL','TOKEN','COLOR','CFG_size','REF']; "
        "open('/dev/termination-log','w').write(json.dumps({k: os.environ.get(k) for k in keys} | {'cwd': os.getcwd()}))"
    )
    body = _pod("env", ["python3", "-c", script])
    body["metadata"]["labels"] = {"app": "envtest"}  # type: ignore[index]
    container = body["spec"]["containers"][0]  # type: ignore[index]
    container["workingDir"] = "/tmp"
    container["env"] = [
        {"name": "LIT", "value": "x"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "LBL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "color"}}},
        {"name": "REF", "value": "$(LIT)-$(POD)"},
    ]
    container["envFrom"] = [{"configMapRef": {"name": "c"}, "prefix": "CFG_"}]
    core.create_namespaced_pod(namespace, body)
    pod = wait_for(lambda: _finished(core, namespace, "env"), 60, "pod env to finish")
    term = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Succeeded", term
    assert json.loads(term.message) == {
        "LIT": "x",
        "POD": "env",
        "NS": namespace,
        "LBL": "envtest",
        "TOKEN": "s3cret",
        "COLOR": "blue",
        "CFG_size": "L",
        "REF": "x-env",
        "cwd": "/tmp",
    }


def test_active_deadline_exceeded(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    core.create_namespaced_pod(namespace, _pod("deadline", ["sleep", "60"], activeDeadlineSeconds=2))
    pod = wait_for(lambda: _finished(core, namespace, "deadline"), 30, "pod deadline to fail")
    assert (pod.status.phase, pod.status.reason) == ("Failed", "DeadlineExceeded")


def test_pod_lifecycle_is_reported_like_a_kubelet(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    core.create_namespaced_pod(namespace, _pod("life", ["python3", "-c", "import time; time.sleep(2)"]))
    running = wait_for(
        lambda: (p := core.read_namespaced_pod("life", namespace)).status.phase == "Running" and p,
        30,
        "pod life Running",
    )
    assert running.status.container_statuses[0].state.running.started_at is not None
    assert running.status.start_time is not None
    done = wait_for(lambda: _finished(core, namespace, "life"), 30, "pod life to finish")
    term = done.status.container_statuses[0].state.terminated
    assert (done.status.phase, term.exit_code, term.reason) == ("Succeeded", 0, "Completed")


def test_pod_deletion_stops_the_process(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    core.create_namespaced_pod(namespace, _pod("victim", ["sleep", "300"]))
    wait_for(
        lambda: core.read_namespaced_pod("victim", namespace).status.phase == "Running", 30, "victim Running"
    )
    started = time.monotonic()
    core.delete_namespaced_pod("victim", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("victim", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, 20, "deleted pod to disappear")
    assert time.monotonic() - started < 20


def test_kubectl_logs(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    core.create_namespaced_pod(
        namespace, _pod("talker", ["python3", "-c", "print('hello from the local node')"])
    )
    wait_for(lambda: _finished(core, namespace, "talker"), 30, "talker to finish")
    out = kubectl(local_cluster.kubeconfig, "logs", "talker", "-n", namespace).stdout
    assert "hello from the local node" in out


def test_owner_deletion_garbage_collects_pods(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    body = _pod("owned", ["sleep", "300"])
    body["metadata"]["ownerReferences"] = [
        {  # type: ignore[index]
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "owner",
            "uid": owner.metadata.uid,
        }
    ]
    core.create_namespaced_pod(namespace, body)
    wait_for(
        lambda: core.read_namespaced_pod("owned", namespace).status.phase == "Running", 30, "owned Running"
    )
    core.delete_namespaced_config_map("owner", namespace)
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, field_selector="metadata.name=owned").items,
        60,
        "the garbage collector to delete the owned pod",
    )


def test_serviceaccount_without_rights_gets_403(cluster: ClusterHandle, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    user = f"system:serviceaccount:{namespace}:nobody"
    proc = kubectl(
        cluster.kubeconfig, "create", "configmap", "x", "-n", namespace, f"--as={user}", check=False
    )
    assert proc.returncode != 0
    assert "forbidden" in proc.stderr and user in proc.stderr
    api = client.CoreV1Api(cluster.api_for(**{"Impersonate-User": user}))
    with pytest.raises(ApiException) as err:
        api.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="y"))
        )
    assert err.value.status == 403
    # ... while the admin may.
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="z")))


def _kwok_pod(name: str, annotations: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"type": "kwok"},
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "main", "image": "fake"}],
        },
    }


def test_pod_on_kwok_node_completes(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    core.create_namespaced_pod(namespace, _kwok_pod("fake-ok"))
    core.create_namespaced_pod(
        namespace,
        _kwok_pod(
            "fake-bad",
            {
                "kwok.jobline.dev/fail": "",
                "kwok.jobline.dev/exit-code": "4",
                "kwok.jobline.dev/message": "nope",
                "kwok.jobline.dev/duration": "1s",
            },
        ),
    )
    ok = wait_for(lambda: _finished(core, namespace, "fake-ok"), 60, "kwok pod to succeed")
    assert ok.status.phase == "Succeeded" and ok.spec.node_name.startswith("kwok-node-")
    bad = wait_for(lambda: _finished(core, namespace, "fake-bad"), 60, "kwok pod to fail")
    term = bad.status.container_statuses[0].state.terminated
    assert (bad.status.phase, term.exit_code, term.message) == ("Failed", 4, "nope")


def test_kwok_nodes_repel_pods_without_toleration(local_cluster: ClusterHandle, namespace: str) -> None:
    nodes = kubectl_json(local_cluster.kubeconfig, "get", "nodes", "-l", "type=kwok")["items"]
    assert len(nodes) >= 1
    assert all(t["key"] == "kwok.x-k8s.io/node" for n in nodes for t in n["spec"]["taints"])
    core = local_cluster.core
    for i in range(4):
        core.create_namespaced_pod(namespace, _pod(f"plain-{i}", ["true"]))
    for i in range(4):
        pod = wait_for(lambda i=i: _finished(core, namespace, f"plain-{i}"), 60, f"plain-{i} to finish")
        assert pod.spec.node_name == "jobline-local"


def test_namespace_fixture_is_fresh(cluster: ClusterHandle, namespace: str) -> None:
    assert cluster.core.list_namespaced_pod(namespace).items == []
    assert namespace.startswith("test-namespace-fixture-is-fresh-")
