"""The Python SDKs and the example handlers, end to end in real worker pods."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from kubernetes import client

import jobline
from tests.conftest import ClusterHandle
from tests.e2e import workers
from tests.e2e.operator_fixtures import Jobs, OperatorProcess, worker_template
from tests.kube import wait_for


def _grant_progress(cluster: ClusterHandle, namespace: str) -> None:
    """Workers report progress by patching their job's status, and pool workers watch the jobs assigned to
    them: bind those rights to the default ServiceAccount (the chart's worker ClusterRole)."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "jobline-worker"},
            "rules": [
                {"apiGroups": ["jobline.dev"], "resources": ["queuedjobs/status"], "verbs": ["get", "patch"]},
                {
                    "apiGroups": ["jobline.dev"],
                    "resources": ["queuedjobs"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "jobline-worker"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jobline-worker"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
    )


def test_client_sdk_enqueue_get_wait_and_worker_progress(
    cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess
) -> None:
    jobs = Jobs(cluster, namespace)
    jobs.queue()
    _grant_progress(cluster, namespace)
    api = client.CustomObjectsApi(cluster.api)
    name = jobline.enqueue("sleep", {"seconds": 4, "steps": 4}, namespace=namespace, priority=3, api=api)
    assert name.startswith("sleep-")
    seen: set[int] = set()

    def progress_between() -> bool:
        job = jobline.get(name, namespace=namespace, api=api)
        if job.status and job.status.progress is not None:
            seen.add(job.status.progress)
        return any(0 < p < 100 for p in seen)

    wait_for(progress_between, 30, "the handler's progress to show in status.progress")
    job = jobline.wait(name, namespace=namespace, timeout=60, api=api)
    assert job.status is not None and job.status.phase == "Succeeded"
    assert job.status.progress == 100 and job.status.result == {"slept": 4.0}
    assert job.spec.priority == 3


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    from tests.cluster.procs import free_port

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    yield port, received
    ctl.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    secret = b"s3cret"
    deliveries: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(want, self.headers.get("X-Jobline-Signature", ""))
            deliveries.append(
                {"ok": ok, "event": self.headers.get("X-Jobline-Event"), "body": json.loads(body)}
            )
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], deliveries
    server.shutdown()


@pytest.mark.parametrize("mode", ["PodPerAttempt", "Pool"])
def test_example_handlers_in_worker_pods(
    mode: str,
    cluster: ClusterHandle,
    namespace: str,
    running_operator: OperatorProcess,
    smtp_server: tuple[int, list[Any]],
    webhook_receiver: tuple[int, list[dict[str, Any]]],
    shared: Any,
) -> None:
    if workers.real():
        pytest.skip(
            "the example handlers talk to an SMTP server and a webhook receiver that this test runs on "
            "this machine's 127.0.0.1, which a pod on a real node cannot reach (it has its own loopback)"
        )
    tmp_path = shared
    smtp_port, mails = smtp_server
    hook_port, deliveries = webhook_receiver
    jobs = Jobs(cluster, namespace)
    _grant_progress(cluster, namespace)
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="jobline-examples"), string_data={"webhook-secret": "s3cret"}
        ),
    )
    template = worker_template(
        command=["jobline-worker", "--import", "jobline.examples"],
        env=[
            {"name": "SMTP_HOST", "value": "127.0.0.1"},
            {"name": "SMTP_PORT", "value": str(smtp_port)},
            {"name": "SMTP_STARTTLS", "value": "false"},
            {"name": "SMTP_FROM", "value": "jobs@example.com"},
            {
                "name": "WEBHOOK_SECRET",
                "valueFrom": {"secretKeyRef": {"name": "jobline-examples", "key": "webhook-secret"}},
            },
        ],
    )
    # The same handlers, unchanged, in a pod per attempt and on a pool's long-lived workers.
    pool = {"workers": {"mode": "Pool", "maxReplicas": 1, "slotsPerWorker": 2}} if mode == "Pool" else {}
    jobs.queue("examples", concurrency=2, template=template, **pool)
    old = tmp_path / "old.tmp"
    old.write_text("x")
    import os

    os.utime(old, (0, 0))
    (tmp_path / "new.tmp").write_text("y")
    jobs.create(
        "mail",
        "send-email",
        {"to": "ada@example.com", "subject": "Welcome", "body": "Hello Ada"},
        queue="examples",
    )
    jobs.create(
        "hook",
        "deliver-webhook",
        {"url": f"http://127.0.0.1:{hook_port}/hooks", "event": "order.paid", "data": {"order": 7}},
        queue="examples",
    )
    jobs.create("report", "generate-report", {"rows": 2000}, queue="examples")
    jobs.create("clean", "cleanup", {"path": str(tmp_path), "olderThanSeconds": 3600}, queue="examples")
    for name in ("mail", "hook", "report", "clean"):
        st = jobs.wait_phase(name, "Succeeded", "Failed", timeout=90)
        assert st["phase"] == "Succeeded", (name, st.get("lastError"))
    assert len(mails) == 1 and mails[0].rcpt_tos == ["ada@example.com"]
    assert b"Subject: Welcome" in mails[0].original_content
    assert deliveries and deliveries[0]["ok"] and deliveries[0]["event"] == "order.paid"
    assert not old.exists() and (tmp_path / "new.tmp").exists()
    assert jobs.status("report")["progress"] == 100
    if mode == "Pool":
        for name in ("mail", "hook", "report", "clean"):
            assert jobs.status(name)["attemptHistory"][-1]["worker"].startswith("examples-worker-")
            assert not jobs.pods(name)
