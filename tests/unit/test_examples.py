"""The example handlers against real local servers, and the example manifests against the models."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

import jobline.examples
from jobline import names, worker
from jobline.core.models import JobQueue, QueuedJob
from jobline.examples.generate_report import generate_report
from jobline.worker import Context, ProgressReporter

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "examples"


class Recorder:
    def __init__(self) -> None:
        self.values: list[int] = []

    def __call__(self, namespace: str, job: str, progress: int) -> None:
        self.values.append(progress)


@pytest.fixture
def result_path(tmp_path: Path) -> Path:
    return tmp_path / "termination-log"


@pytest.fixture
def run_job(monkeypatch: pytest.MonkeyPatch, result_path: Path) -> Any:
    """Runs ``jobline-worker --import jobline.examples`` for a handler and payload; returns the exit code."""

    def run(handler: str, payload: Any, progress: Recorder | None = None) -> int:
        env = {
            names.ENV_JOB: "job-1",
            names.ENV_NAMESPACE: "shop",
            names.ENV_QUEUE: "examples",
            names.ENV_HANDLER: handler,
            names.ENV_ATTEMPT: "2",
            names.ENV_PAYLOAD: json.dumps(payload),
            worker.ENV_RESULT_PATH: str(result_path),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return worker.main(["--import", "jobline.examples"], progress_transport=progress or Recorder())

    return run


def result(path: Path) -> Any:
    return json.loads(path.read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_package_registers_all_four() -> None:
    assert set(jobline.examples.HANDLERS) <= set(worker.default_registry.names())


# --- send-email ------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@refused.test"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        inbox.logins.append((data.login, data.password))
        ok = (data.login, data.password) == (b"mailer", b"s3cret")
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("SMTP_TIMEOUT", "5")
    monkeypatch.setenv("SMTP_USER", "mailer")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("SMTP_FROM", "Shop <noreply@shop.test>")
    try:
        yield inbox
    finally:
        controller.stop()


def test_send_email_delivers(smtp: Inbox, run_job: Any, result_path: Path) -> None:
    payload = {"to": "user@example.com", "subject": "Welcome!", "body": "Thanks for signing up!"}
    assert run_job("send-email", payload) == 0
    (envelope,) = smtp.envelopes
    assert envelope.rcpt_tos == ["user@example.com"]
    assert smtp.logins == [(b"mailer", b"s3cret")]
    assert envelope.mail_from == "noreply@shop.test"
    msg = message_from_bytes(envelope.original_content or b"")
    assert msg["Subject"] == "Welcome!"
    assert msg["To"] == "user@example.com"
    assert msg.get_payload().strip() == "Thanks for signing up!"
    assert (
        result(result_path) == {"messageId": "<job-1.shop@shop.test>"}
        and msg["Message-ID"] == "<job-1.shop@shop.test>"
    )


def test_send_email_several_recipients_and_own_sender(smtp: Inbox, run_job: Any) -> None:
    payload = {
        "to": ["a@example.com", "B <b@example.com>"],
        "subject": "s",
        "body": "b",
        "from": "ops@shop.test",
    }
    assert run_job("send-email", payload) == 0
    (envelope,) = smtp.envelopes
    assert envelope.rcpt_tos == ["a@example.com", "b@example.com"] and envelope.mail_from == "ops@shop.test"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"to": "not-an-address", "subject": "s", "body": "b"}, "invalid recipient address"),
        ({"to": "a@example.com\r\nBcc: x@evil.test", "subject": "s", "body": "b"}, "line break"),
        ({"to": "a@example.com", "subject": "s\nBcc: x@evil.test", "body": "b"}, "one line"),
        ({"to": "a@example.com", "subject": "s", "body": "b", "from": "nobody"}, "invalid sender address"),
        ({"to": "a@example.com", "body": "b"}, "payload.subject"),
        ({"to": [], "subject": "s", "body": "b"}, "payload.to"),
        (["a@example.com"], "must be an object"),
        ({"to": "user@refused.test", "subject": "s", "body": "b"}, "refused by the server"),
    ],
)
def test_send_email_permanent_failures(
    smtp: Inbox, run_job: Any, result_path: Path, payload: Any, message: str
) -> None:
    assert run_job("send-email", payload) == worker.EXIT_PERMANENT
    assert message in result_path.read_text()
    assert smtp.envelopes == []


def test_send_email_wrong_password_is_permanent(
    smtp: Inbox, run_job: Any, result_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    assert run_job("send-email", {"to": "a@example.com", "subject": "s", "body": "b"}) == 66
    assert result_path.read_text() == "PermanentError: the SMTP server refused: 535"
    assert smtp.logins and set(smtp.logins) == {(b"mailer", b"wrong")}  # smtplib tries PLAIN, then LOGIN
    assert smtp.envelopes == []


def test_send_email_unreachable_server_is_retryable(run_job: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("SMTP_FROM", "noreply@shop.test")
    assert run_job("send-email", {"to": "a@example.com", "subject": "s", "body": "b"}) == 1


# --- deliver-webhook -------------------------------------------------------------------------

RECEIVER_SECRET = "whsec-test"


class Receiver(ThreadingHTTPServer):
    status = 200
    received: list[tuple[dict[str, str], bytes]]


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers.items()), body))
        expected = "sha256=" + hmac.new(RECEIVER_SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Jobline-Signature", "")):
            status = 401
        else:
            status = self.server.status
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), ReceiverHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    monkeypatch.setenv("WEBHOOK_SECRET", RECEIVER_SECRET)
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "5")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def webhook_payload(server: Receiver) -> dict[str, Any]:
    port = server.server_address[1]
    return {
        "url": f"http://127.0.0.1:{port}/hooks?token=abc",
        "event": "user.created",
        "data": {"userId": 42},
    }


def test_webhook_delivers_signed_event(receiver: Receiver, run_job: Any, result_path: Path) -> None:
    assert run_job("deliver-webhook", webhook_payload(receiver)) == 0
    assert result(result_path) == {"status": 200}
    ((headers, body),) = receiver.received
    assert json.loads(body) == {"event": "user.created", "data": {"userId": 42}}
    assert headers["X-Jobline-Event"] == "user.created"
    assert headers["X-Jobline-Delivery"] == "job-1/2"
    assert headers["Content-Type"] == "application/json"


def test_webhook_wrong_secret_is_permanent(
    receiver: Receiver,
    run_job: Any,
    result_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "not-the-receivers")
    assert run_job("deliver-webhook", webhook_payload(receiver)) == worker.EXIT_PERMANENT
    assert result_path.read_text() == "PermanentError: http://127.0.0.1 answered 401 Unauthorized"
    assert "token=abc" not in caplog.text and "not-the-receivers" not in caplog.text


@pytest.mark.parametrize(("status", "code"), [(500, 1), (503, 1), (429, 1), (408, 1), (404, 66), (302, 66)])
def test_webhook_status_mapping(
    receiver: Receiver, run_job: Any, result_path: Path, status: int, code: int
) -> None:
    receiver.status = status
    assert run_job("deliver-webhook", webhook_payload(receiver)) == code
    assert str(status) in result_path.read_text()
    assert len(receiver.received) == 1


def test_webhook_connection_refused_is_retryable(
    run_job: Any, result_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", RECEIVER_SECRET)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    payload = {"url": f"http://127.0.0.1:{free_port()}/", "event": "e", "data": None}
    assert run_job("deliver-webhook", payload) == 1
    assert result_path.read_text().startswith("WebhookError: cannot reach http://127.0.0.1")


@pytest.mark.parametrize(
    "payload",
    [
        {"url": "ftp://example.com/x", "event": "e"},
        {"url": "http:///nohost", "event": "e"},
        {"url": "https://example.com", "event": ""},
        "https://example.com",
    ],
)
def test_webhook_invalid_payload_is_permanent(
    run_job: Any, monkeypatch: pytest.MonkeyPatch, payload: Any
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", RECEIVER_SECRET)
    assert run_job("deliver-webhook", payload) == 66


def test_webhook_without_secret_is_permanent(
    run_job: Any, monkeypatch: pytest.MonkeyPatch, result_path: Path
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    assert run_job("deliver-webhook", {"url": "https://example.com", "event": "e"}) == 66
    assert "WEBHOOK_SECRET" in result_path.read_text()


# --- generate-report -------------------------------------------------------------------------


def report_context(recorder: Recorder) -> Context:
    ticks = itertools.count(0, 2)  # every report two "seconds" apart: nothing is throttled
    reporter = ProgressReporter("shop", "job-1", recorder, clock=lambda: float(next(ticks)))
    return Context("job-1", "shop", "examples", "generate-report", 1, reporter=reporter)


def test_report_progress_increases_to_100() -> None:
    recorder = Recorder()
    summary = generate_report({"rows": 1000, "steps": 8, "seed": 3}, report_context(recorder))
    assert recorder.values == [0, 12, 25, 37, 50, 62, 75, 87, 100]
    assert summary["rows"] == 1000
    assert sum(r["count"] for r in summary["byRegion"].values()) == 1000
    assert summary["min"] <= summary["mean"] <= summary["max"] and summary["stddev"] > 0
    assert abs(sum(r["total"] for r in summary["byRegion"].values()) - summary["total"]) < 0.05
    again = generate_report({"rows": 1000, "steps": 2, "seed": 3}, report_context(Recorder()))
    assert again["sha256"] == summary["sha256"]  # same seed, same report, whatever the steps


def test_report_few_rows_still_increasing() -> None:
    recorder = Recorder()
    generate_report({"rows": 3}, report_context(recorder))
    assert recorder.values == [0, 33, 66, 100]


def test_report_through_the_worker(run_job: Any, result_path: Path) -> None:
    progress = Recorder()
    assert run_job("generate-report", {"rows": 5000, "title": "Weekly"}, progress) == 0
    summary = result(result_path)
    assert summary["title"] == "Weekly" and summary["rows"] == 5000
    assert progress.values[-1] == 100 and progress.values == sorted(progress.values)
    assert len(json.dumps(summary)) < 1024


@pytest.mark.parametrize(
    "payload", [{}, {"rows": 0}, {"rows": "10"}, {"rows": True}, {"rows": 10, "steps": 0}, []]
)
def test_report_invalid_payload_is_permanent(run_job: Any, payload: Any) -> None:
    assert run_job("generate-report", payload) == 66


# --- cleanup ---------------------------------------------------------------------------------


def make_file(path: Path, size: int, age: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    mtime = time.time() - age
    os.utime(path, (mtime, mtime))
    return path


def test_cleanup_deletes_only_old_matching_files(tmp_path: Path, run_job: Any, result_path: Path) -> None:
    root = tmp_path / "scratch"
    old = make_file(root / "old.tmp", 10, 7200)
    nested = make_file(root / "a" / "b" / "older.tmp", 5, 86400)
    fresh = make_file(root / "fresh.tmp", 7, 60)
    other = make_file(root / "old.log", 3, 7200)
    target = make_file(tmp_path / "outside" / "keep.tmp", 4, 7200)
    link = root / "link.tmp"
    link.symlink_to(target)
    os.utime(link, (time.time() - 7200,) * 2, follow_symlinks=False)
    (root / "linked-dir").symlink_to(tmp_path / "outside", target_is_directory=True)

    payload = {"path": str(root), "olderThanSeconds": 3600, "pattern": "*.tmp"}
    assert run_job("cleanup", payload) == 0
    assert result(result_path) == {"scanned": 5, "deleted": 3, "bytesFreed": 15, "errors": 0}
    assert not old.exists() and not nested.exists() and not link.is_symlink()
    assert fresh.exists() and other.exists() and target.exists()
    assert (root / "a" / "b").is_dir()  # directories stay


def test_cleanup_default_pattern_and_missing_directory(
    tmp_path: Path, run_job: Any, result_path: Path
) -> None:
    make_file(tmp_path / "d" / "x.bin", 1, 100)
    assert run_job("cleanup", {"path": str(tmp_path / "d"), "olderThanSeconds": 50}) == 0
    assert result(result_path)["deleted"] == 1
    assert run_job("cleanup", {"path": str(tmp_path / "absent"), "olderThanSeconds": 50}) == 0
    assert result(result_path) == {"scanned": 0, "deleted": 0, "bytesFreed": 0, "errors": 0}


@pytest.mark.parametrize(
    ("path", "message"),
    [("/", "root directory"), ("//", "root directory"), ("/tmp/..", "root directory"), ("tmp/x", "absolute")],
)
def test_cleanup_refuses_root_and_relative_paths(
    run_job: Any, result_path: Path, path: str, message: str
) -> None:
    assert run_job("cleanup", {"path": path, "olderThanSeconds": 0}) == 66
    assert message in result_path.read_text()


def test_cleanup_refuses_a_file_and_bad_age(tmp_path: Path, run_job: Any) -> None:
    file = make_file(tmp_path / "f", 1, 0)
    assert run_job("cleanup", {"path": str(file), "olderThanSeconds": 0}) == 66
    assert run_job("cleanup", {"path": str(tmp_path), "olderThanSeconds": -1}) == 66
    assert run_job("cleanup", {"path": str(tmp_path), "olderThanSeconds": "1h"}) == 66
    assert file.exists()


# --- manifests -------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def test_example_manifests_are_valid() -> None:
    docs = manifests()
    kinds = {doc["kind"] for doc in docs}
    assert kinds <= {"QueuedJob", "JobQueue", "JobSchedule", "Secret", "Role", "RoleBinding"}, kinds
    (queue,) = [JobQueue.from_object(d) for d in docs if d["kind"] == "JobQueue"]
    jobs = [QueuedJob.from_object(d) for d in docs if d["kind"] == "QueuedJob"]
    assert queue.metadata["name"] == "examples" and queue.spec.concurrency == 2
    template = queue.spec.template
    assert template is not None and template.image
    assert template.command == ["jobline-worker", "--import", "jobline.examples"]
    assert sorted(j.spec.handler for j in jobs) == sorted(jobline.examples.HANDLERS)
    assert all(j.spec.queue == "examples" for j in jobs)
    # Every manifest survives the model round trip unchanged (no field the CRD would drop).
    for doc in docs:
        model = {"QueuedJob": QueuedJob, "JobQueue": JobQueue}.get(doc["kind"])
        if model:
            assert model.from_object(doc).to_manifest()["spec"] == {
                **model.from_object(doc).to_manifest()["spec"],
                **doc["spec"],
            }


def test_queue_secrets_exist_in_the_example_secret() -> None:
    docs = manifests()
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    (queue,) = [JobQueue.from_object(d) for d in docs if d["kind"] == "JobQueue"]
    assert queue.spec.template is not None and queue.spec.template.env is not None
    env = {e.name: e for e in queue.spec.template.env}
    assert {"SMTP_HOST", "SMTP_PORT", "SMTP_PASSWORD", "WEBHOOK_SECRET"} <= set(env)
    for var in env.values():
        ref = var.value_from.secret_key_ref if var.value_from else None
        if ref:
            assert ref.name == secret["metadata"]["name"] and ref.key in secret["stringData"]
    assert env["SMTP_PASSWORD"].value is None  # the password never sits in the queue manifest


def test_example_payloads_pass_the_handlers_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobline.examples.send_email import build_message

    jobs = {d["spec"]["handler"]: d for d in manifests() if d["kind"] == "QueuedJob"}
    monkeypatch.setenv("SMTP_FROM", "noreply@example.com")
    ctx = Context("example-send-email", "default", "examples", "send-email", 1)
    _, recipients = build_message(jobs["send-email"]["spec"]["payload"], ctx)
    assert recipients == ["user@example.com"]
    report = dict(jobs["generate-report"]["spec"]["payload"], rows=100)
    assert generate_report(report, ctx)["rows"] == 100
