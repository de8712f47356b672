"""The local node's volumes and service environment: in-cluster config works from inside a pod."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client

from tests.conftest import ClusterHandle
from tests.kube import wait_for

PY = sys.executable  # the test venv's Python has the kubernetes client (the node's PATH may not)
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EROFS = 30

READ_OWN_POD = f"""
import json, os
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_incluster_config()
ns = open('{SA_DIR}/namespace').read()
out = {{'host': os.environ['KUBERNETES_SERVICE_HOST'], 'port': os.environ['KUBERNETES_SERVICE_PORT'],
       'https': os.environ['KUBERNETES_SERVICE_PORT_HTTPS']}}
try:
    out['name'] = client.CoreV1Api().read_namespaced_pod(os.environ['HOSTNAME'], ns).metadata.name
except ApiException as exc:
    out['status'] = exc.status
    out['body'] = exc.body[:1000] if isinstance(exc.body, str) else str(exc.body)[:1000]
open('/dev/termination-log', 'w').write(json.dumps(out))
"""

TOKEN_CLAIMS = f"""
import base64, json, time
def claims():
    payload = open('{SA_DIR}/token').read().split('.')[1]
    return json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
ns, first = open('{SA_DIR}/namespace').read(), claims()
time.sleep(4)  # both pods run at the same time: each must still see its own files
assert open('{SA_DIR}/namespace').read() == ns and claims() == first
open('/dev/termination-log', 'w').write(json.dumps({{'ns': ns, 'claims': first}}))
"""


def _pod(name: str, script: str, **spec: object) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": "local", "command": [PY, "-c", script]}],
            "nodeSelector": {"jobline.dev/node": "local"},  # the image is ignored there
            "tolerations": [{"key": "jobline.dev/node", "value": "local", "effect": "NoSchedule"}],
            **spec,
        },
    }


def _finished(core: client.CoreV1Api, ns: str, name: str) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, ns)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def _result(core: client.CoreV1Api, ns: str, name: str, timeout: float = 60) -> Any:
    """Wait for the pod to succeed; its main container's termination message, parsed as JSON."""
    pod = wait_for(lambda: _finished(core, ns, name), timeout, f"pod {ns}/{name} to finish")
    term = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Succeeded", (term, pod.status.init_container_statuses)
    return json.loads(term.message)


def _allow_get_pods(cluster: ClusterHandle, ns: str, sa: str) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(
        ns,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "pod-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        },
    )


def _assert_no_token_on_host() -> None:
    # The token volume is bind-mounted in the containers' private mount namespaces only.
    if os.path.isdir(SA_DIR):
        assert os.listdir(SA_DIR) == []


def test_in_cluster_config_reads_own_pod_and_rbac_applies(
    local_cluster: ClusterHandle, namespace: str
) -> None:
    core = local_cluster.core
    _allow_get_pods(local_cluster, namespace, "default")
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    core.create_namespaced_pod(namespace, _pod("reader", READ_OWN_POD))
    core.create_namespaced_pod(namespace, _pod("stranger", READ_OWN_POD, serviceAccountName="nobody"))

    port = str(urlsplit(local_cluster.api.configuration.host).port)
    reader = _result(core, namespace, "reader")
    assert reader == {"host": "127.0.0.1", "port": port, "https": port, "name": "reader"}
    stranger = _result(core, namespace, "stranger")
    assert stranger["status"] == 403, stranger
    assert f"system:serviceaccount:{namespace}:nobody" in stranger["body"]
    # The token came through the volume the ServiceAccount admission plugin injected.
    pod = core.read_namespaced_pod("reader", namespace)
    assert any(v.name.startswith("kube-api-access-") and v.projected for v in pod.spec.volumes)
    _assert_no_token_on_host()


def test_configmap_secret_emptydir_hostpath_volumes(
    local_cluster: ClusterHandle, namespace: str, tmp_path: Path
) -> None:
    core = local_cluster.core
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="cfg"),
            data={"color": "blue", "size": "L"},
            binary_data={"bin": base64.b64encode(b"\x00\x01\xff").decode()},
        ),
    )
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="sec"), string_data={"user": "alice", "pass": "s3cret"}
        ),
    )
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "marker").write_text("from the host")
    base = f"/tmp/jobline-voltest-{namespace}"

    collect = f"""
import json, os, stat
b = {base!r}
def rd(p): return open(b + p).read()
def mode(p): return oct(stat.S_IMODE(os.stat(b + p).st_mode))
def writable(p):
    try:
        open(b + p, 'w').close()
        return True
    except OSError as exc:
        return exc.errno
out = {{
    'cfg': sorted(os.listdir(b + '/cfg')), 'color': rd('/cfg/color'), 'cfg_mode': mode('/cfg/color'),
    'bin': list(open(b + '/cfg/bin', 'rb').read()),
    'items': sorted(os.listdir(b + '/items')), 'colour': rd('/items/nested/colour.txt'),
    'colour_mode': mode('/items/nested/colour.txt'),
    'sec': sorted(os.listdir(b + '/sec')), 'pass': rd('/sec/pass'), 'sec_mode': mode('/sec/pass'),
    'scratch': rd('/scratch/hello'), 'size': rd('/size.txt'), 'host': rd('/host/marker'),
    'cfg_writable': writable('/cfg/new'), 'scratch_writable': writable('/scratch/new'),
    'info': {{f: rd('/info/' + f) for f in ('name', 'labels', 'cpu')}},
}}
open(b + '/host/from-pod', 'w').write('hi')
open('/dev/termination-log', 'w').write(json.dumps(out))
"""
    body = _pod(
        "vols",
        collect,
        volumes=[
            {"name": "cfg-all", "configMap": {"name": "cfg"}},
            {
                "name": "cfg-items",
                "configMap": {
                    "name": "cfg",
                    "items": [{"key": "color", "path": "nested/colour.txt", "mode": 0o600}],
                },
            },
            {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": str(host_dir), "type": "Directory"}},
            {"name": "absent", "configMap": {"name": "no-such-configmap", "optional": True}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {
                            "path": "cpu",
                            "resourceFieldRef": {
                                "containerName": "main",
                                "resource": "requests.cpu",
                                "divisor": "1m",
                            },
                        },
                    ]
                },
            },
        ],
    )
    body["metadata"]["labels"] = {"app": "vols", "tier": "test"}
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "250m"}}
    body["spec"]["initContainers"] = [
        {
            "name": "writer",
            "image": "local",
            "command": ["sh", "-c", "printf 'from init' > /scratch/hello"],
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        }
    ]
    body["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cfg-all", "mountPath": f"{base}/cfg"},
        {"name": "cfg-items", "mountPath": f"{base}/items"},
        {"name": "sec", "mountPath": f"{base}/sec"},
        {"name": "scratch", "mountPath": f"{base}/scratch", "readOnly": True},
        {"name": "cfg-all", "mountPath": f"{base}/size.txt", "subPath": "size"},
        {"name": "host", "mountPath": f"{base}/host"},
        {"name": "absent", "mountPath": f"{base}/absent"},
        {"name": "info", "mountPath": f"{base}/info"},
    ]
    core.create_namespaced_pod(namespace, body)
    try:
        out = _result(core, namespace, "vols")
        assert out == {
            "cfg": ["bin", "color", "size"],
            "color": "blue",
            "cfg_mode": "0o644",
            "bin": [0, 1, 255],
            "items": ["nested"],
            "colour": "blue",
            "colour_mode": "0o600",
            "sec": ["pass", "user"],
            "pass": "s3cret",
            "sec_mode": "0o400",
            "scratch": "from init",
            "size": "L",
            "host": "from the host",
            "cfg_writable": EROFS,
            "scratch_writable": EROFS,
            "info": {"name": "vols", "labels": 'app="vols"\ntier="test"', "cpu": "250"},
        }
        assert (host_dir / "from-pod").read_text() == "hi"
        # On the host the mount targets exist but stay empty: the mounts were the container's own.
        dirs = ["absent", "cfg", "host", "info", "items", "scratch", "sec"]
        assert sorted(os.listdir(base)) == [*dirs, "size.txt"]
        assert all(os.listdir(f"{base}/{d}") == [] for d in dirs)
        assert Path(f"{base}/size.txt").read_text() == ""
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_missing_configmap_waits_then_starts(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    script = "open('/dev/termination-log', 'w').write(__import__('json').dumps(open('/late/k').read()))"
    body = _pod("waiter", script, volumes=[{"name": "late", "configMap": {"name": "late"}}])
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "late", "mountPath": "/late"}]
    core.create_namespaced_pod(namespace, body)

    def config_error() -> client.V1ContainerStateWaiting | None:
        pod = core.read_namespaced_pod("waiter", namespace)
        waiting = pod.status.container_statuses and pod.status.container_statuses[0].state.waiting
        return waiting if waiting and waiting.reason == "CreateContainerConfigError" else None

    waiting = wait_for(config_error, 30, "CreateContainerConfigError")
    assert 'configmap "late" not found' in waiting.message
    assert core.read_namespaced_pod("waiter", namespace).status.phase == "Pending"
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late"), data={"k": "v"})
    )
    assert _result(core, namespace, "waiter", timeout=30) == "v"


def test_concurrent_pods_each_see_their_own_token(local_cluster: ClusterHandle, namespace: str) -> None:
    core = local_cluster.core
    other = f"volumes-other-{uuid.uuid4().hex[:5]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other, labels={"jobline.dev/test": "true"}))
    )
    try:
        wait_for(
            lambda: core.read_namespaced_service_account("default", other),
            30,
            f"ServiceAccount {other}/default",
        )
        pods = [(namespace, "tok-a"), (other, "tok-b")]
        for ns, name in pods:
            core.create_namespaced_pod(ns, _pod(name, TOKEN_CLAIMS))

        def both_running() -> bool:
            return all(core.read_namespaced_pod(name, ns).status.phase == "Running" for ns, name in pods)

        wait_for(both_running, 30, "both token pods to run at the same time")
        _assert_no_token_on_host()
        seen = []
        for ns, name in pods:
            out = _result(core, ns, name)
            claims = out["claims"]
            assert out["ns"] == ns
            assert claims["sub"] == f"system:serviceaccount:{ns}:default"
            assert claims["kubernetes.io"]["namespace"] == ns
            assert claims["kubernetes.io"]["pod"]["name"] == name  # bound to the pod (boundObjectRef)
            assert claims["kubernetes.io"]["pod"]["uid"] == core.read_namespaced_pod(name, ns).metadata.uid
            assert claims["exp"] - claims["iat"] >= 600
            seen.append(claims["jti"] if "jti" in claims else claims["kubernetes.io"]["pod"]["uid"])
        assert seen[0] != seen[1]
    finally:
        core.delete_namespace(other)
