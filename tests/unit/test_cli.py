"""`kubectl jobline` against a fake API: parsing, tables, exit codes, bulk actions, wait and its progress bar."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from jobline import names
from jobline.cli import build_parser, commands, main, output
from jobline.cli.connection import (
    EXIT_FAILED,
    EXIT_FORBIDDEN,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
    Connection,
    api_error,
)

from .test_readmodel import NOW, job, ts


def api_exc(status: int, message: str = "boom") -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"message": message})
    return exc


class FakeConn(Connection):
    """A Connection whose calls hit an in-memory object store."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.objects = objects or {}
        self.patches: list[tuple[str, str, str, dict[str, Any]]] = []
        self.deletes: list[tuple[str, str, str]] = []
        self.errors: dict[tuple[str, str], ApiException] = {}  # (verb, name) -> raised
        self.gets = 0

    def ns(self) -> str:
        return self.namespace or "ns"

    def _find(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        for obj in self.objects.get(plural, []):
            if obj["metadata"]["name"] == name and obj["metadata"]["namespace"] == namespace:
                return obj
        raise api_error(api_exc(404), verb="get", plural=plural, namespace=namespace, name=name)

    def list(
        self,
        plural: str,
        *,
        namespace: str | None,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        if ("list", plural) in self.errors:
            raise api_error(self.errors[("list", plural)], verb="list", plural=plural, namespace=namespace)
        wanted = dict(part.split("=", 1) for part in field_selector.split(",")) if field_selector else {}
        for obj in self.objects.get(plural, []):
            if namespace is not None and obj["metadata"]["namespace"] != namespace:
                continue
            if any(obj["spec"].get(k.removeprefix("spec.")) != v for k, v in wanted.items()):
                continue
            if label_selector and label_selector not in (obj["metadata"].get("labels") or {}):
                continue
            yield copy.deepcopy(obj)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        return copy.deepcopy(self._find(plural, namespace, name))

    def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if ("patch", name) in self.errors:
            raise api_error(
                self.errors[("patch", name)], verb="patch", plural=plural, namespace=namespace, name=name
            )
        obj = self._find(plural, namespace, name)
        self.patches.append((plural, namespace, name, body))
        return obj

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self._find(plural, namespace, name)
        self.deletes.append((plural, namespace, name))


@pytest.fixture(autouse=True)
def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "clock", lambda: NOW)


def run(conn: FakeConn, *argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(list(argv))
    conn.all_namespaces = bool(args.all_namespaces)
    if args.namespace:
        conn.namespace = args.namespace
    out, err = io.StringIO(), io.StringIO()
    try:
        code = commands.COMMANDS[args.command](args, conn, commands.Io(out, err))
    except CliError as exc:
        err.write(f"error: {exc.message}\n")
        code = exc.code
    return code, out.getvalue(), err.getvalue()


# --- output helpers (the read model is tested in test_readmodel.py) ---------------------------


def test_table_and_bar() -> None:
    assert output.table(["A", "LONGER"], [["x", None], ["yyyy", 3]]).splitlines() == [
        "A      LONGER",
        "x      <none>",
        "yyyy   3",
    ]
    assert output.bar(50, width=10) == "[#####-----]  50%"
    assert output.bar(None, width=4) == "[----]    ?%"
    assert output.bar(100, width=4) == "[####] 100%"


def test_progress_rewrites_a_line_on_a_terminal_and_prints_changes_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    p = output.Progress(tty)
    p.show("a")
    p.show("a")
    p.show("b")
    p.done()
    assert tty.getvalue() == "\r\x1b[Ka\r\x1b[Kb\n"
    plain = io.StringIO()
    p = output.Progress(plain)
    for line in ("a", "a", "b"):
        p.show(line)
    assert plain.getvalue() == "a\nb\n"


def test_api_error_mapping() -> None:
    assert (
        api_error(api_exc(404), verb="get", plural="queuedjobs", namespace="ns", name="x").code
        == EXIT_NOT_FOUND
    )
    err = api_error(
        api_exc(403, "queuedjobs is forbidden: User bob cannot list"),
        verb="list",
        plural="queuedjobs",
        namespace="ns",
    )
    assert (
        err.code == EXIT_FORBIDDEN
        and "forbidden: you may not list queuedjobs in namespace 'ns'" in err.message
    )
    assert api_error(api_exc(401), verb="list", plural="queuedjobs", namespace=None).code == EXIT_FORBIDDEN
    assert api_error(api_exc(422), verb="patch", plural="queuedjobs", namespace="ns").code == EXIT_USAGE
    assert api_error(api_exc(500), verb="patch", plural="queuedjobs", namespace="ns").code == EXIT_FAILED


# --- parser ----------------------------------------------------------------------------------


def test_connection_flags_before_and_after_the_command() -> None:
    args = build_parser().parse_args(["-n", "a", "--context", "c", "list", "--queue", "q"])
    assert (args.namespace, args.context, args.queue) == ("a", "c", "q")
    args = build_parser().parse_args(["list", "-n", "b", "-A", "--as", "bob"])
    assert (args.namespace, args.all_namespaces, args.as_user) == ("b", True, "bob")
    args = build_parser().parse_args(["--namespace", "a", "stats", "-o", "yaml"])
    assert (args.namespace, args.output) == ("a", "yaml")


def test_main_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["list", "-o", "xml"])
    assert exc.value.code == EXIT_USAGE
    assert main(["-A", "wait", "x"]) == EXIT_USAGE
    assert "-A does not apply to wait" in capsys.readouterr().err


def test_context_namespace_comes_from_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "one",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "one", "context": {"cluster": "c", "user": "u"}},
                    {"name": "two", "context": {"cluster": "c", "user": "u", "namespace": "team-b"}},
                ],
            }
        )
    )
    assert Connection(kubeconfig=str(kubeconfig)).ns() == "default"
    assert Connection(kubeconfig=str(kubeconfig), context="two").ns() == "team-b"
    assert Connection(kubeconfig=str(kubeconfig), context="two", namespace="x").ns() == "x"
    with pytest.raises(CliError, match="context 'three' not found"):
        Connection(kubeconfig=str(kubeconfig), context="three").ns()
    api = Connection(kubeconfig=str(kubeconfig), context="two", as_user="bob").api_client()
    assert api.default_headers["Impersonate-User"] == "bob"


# --- commands --------------------------------------------------------------------------------


def test_enqueue_bad_json_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run(FakeConn(), "enqueue", "echo", "--payload", "{nope")
    assert code == EXIT_USAGE and "not valid JSON" in err
    bad = tmp_path / "p.json"
    bad.write_text("[1,")
    code, _, err = run(FakeConn(), "enqueue", "echo", "--payload", f"@{bad}")
    assert code == EXIT_USAGE and str(bad) in err
    code, _, err = run(FakeConn(), "enqueue", "echo", "--payload", "@/nonexistent/file")
    assert code == EXIT_USAGE and "cannot read" in err
    code, _, err = run(FakeConn(), "enqueue", "echo", "--run-at", "tomorrow")
    assert code == EXIT_USAGE and "--run-at" in err


def test_run_at_relative() -> None:
    assert commands._run_at("+10m") == ts(timedelta(minutes=10))
    assert commands._run_at("2026-01-10T13:00:00+01:00") == "2026-01-10T12:00:00Z"


def test_list_table_filters_and_outputs() -> None:
    conn = FakeConn(
        {
            names.PLURAL_QUEUEDJOBS: [
                job("a", "Pending", priority=3),
                job("b", "Failed", dead=True, attempts=4),
                job("c", "Running", progress=40, attempts=1, handler="report"),
                job("d", "Pending", queue="mail"),
                job("z", "Succeeded", ns="other"),
            ]
        }
    )
    code, out, _ = run(conn, "list")
    lines = out.splitlines()
    assert code == EXIT_OK
    assert lines[0].split() == [
        "NAME",
        "QUEUE",
        "HANDLER",
        "PRIORITY",
        "PHASE",
        "REASON",
        "ATTEMPTS",
        "PROGRESS",
        "AGE",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"a", "b", "c", "d"}
    assert "#1 in queue" in rows["a"] and "RetriesExhausted" in rows["b"] and "40%" in rows["c"]
    code, out, _ = run(conn, "list", "--phase", "failed,running", "-o", "name")
    assert out.split() == ["queuedjob.jobline.dev/b", "queuedjob.jobline.dev/c"]
    code, out, _ = run(conn, "list", "--handler", "report", "-o", "json")
    data = json.loads(out)
    assert data["kind"] == "List" and [i["metadata"]["name"] for i in data["items"]] == ["c"]
    code, out, _ = run(conn, "list", "--queue", "mail", "-o", "yaml")
    assert yaml.safe_load(out)["items"][0]["status"]["position"] == 1
    code, out, _ = run(conn, "list", "-A")
    assert out.splitlines()[0].startswith("NAMESPACE") and "other" in out
    code, _, err = run(conn, "list", "--phase", "Done")
    assert code == EXIT_USAGE and "unknown phase" in err


def test_list_forbidden_exits_4() -> None:
    conn = FakeConn()
    conn.errors[("list", names.PLURAL_QUEUEDJOBS)] = api_exc(403, "forbidden")
    code, _, err = run(conn, "list")
    assert code == EXIT_FORBIDDEN and "error: forbidden" in err


def test_stats_table_and_yaml() -> None:
    conn = FakeConn(
        {
            names.PLURAL_QUEUEDJOBS: [job("a"), job("b", "Failed"), job("c", "Running", queue="mail")],
            names.PLURAL_JOBQUEUES: [
                {
                    "metadata": {"name": "default", "namespace": "ns"},
                    "spec": {"concurrency": 3, "paused": True},
                }
            ],
        }
    )
    _, out, _ = run(conn, "stats")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["QUEUE", "PAUSED", "CONCURRENCY", "PENDING"]
    assert lines[1].split()[:7] == ["default", "yes", "3", "1", "0", "0", "0"]
    assert lines[2].startswith("mail (no JobQueue)")
    _code, out, _ = run(conn, "stats", "-o", "yaml")
    data = yaml.safe_load(out)
    assert data["totals"]["total"] == 3 and data["queues"][1]["running"] == 1


def test_retry_all_failed_requeues_only_dead_letters() -> None:
    conn = FakeConn(
        {
            names.PLURAL_QUEUEDJOBS: [
                job("dead1", "Failed", dead=True),
                job("dead2", "Failed", dead=True, queue="mail"),
                job("dup", "Failed"),
                job("ok", "Succeeded"),
                job("dead-elsewhere", "Failed", dead=True, ns="other"),
            ]
        }
    )
    code, out, _ = run(conn, "retry", "--all-failed")
    assert code == EXIT_OK
    assert sorted(p[2] for p in conn.patches) == ["dead1", "dead2"]
    annotation = conn.patches[0][3]["metadata"]["annotations"][names.ANNOTATION_REQUEUE]
    assert annotation.startswith("2026-01-10T12:00:00Z-")
    assert "queuedjob.jobline.dev/dead1 requeued" in out
    conn.patches.clear()
    run(conn, "retry", "--all-failed", "--queue", "mail")
    assert [p[2] for p in conn.patches] == ["dead2"]
    conn.patches.clear()
    code, out, _ = run(conn, "retry", "--all-failed", "-A", "--dry-run")
    assert conn.patches == [] and "other/dead-elsewhere would be requeued" in out


def test_retry_by_name_reports_each_problem() -> None:
    conn = FakeConn({names.PLURAL_QUEUEDJOBS: [job("done", "Succeeded"), job("busy", "Running")]})
    code, _out, err = run(conn, "retry", "done", "qj/busy", "ghost")
    assert code == EXIT_NOT_FOUND
    assert [p[2] for p in conn.patches] == ["done"]
    assert 'queuedjob "ghost" not found' in err and "busy is Running" in err
    code, _, err = run(conn, "retry")
    assert code == EXIT_USAGE
    conn.errors[("patch", "done")] = api_exc(403, "nope")
    code, _, err = run(conn, "retry", "done")
    assert code == EXIT_FORBIDDEN and "forbidden" in err


def test_cleanup_dry_run_lists_and_deletes_nothing() -> None:
    conn = FakeConn(
        {
            names.PLURAL_QUEUEDJOBS: [
                job("old", "Succeeded", completed=timedelta(days=-8)),
                job("new", "Succeeded", completed=timedelta(hours=-1)),
                job("old-failed", "Failed", completed=timedelta(days=-20)),
                job("pending", "Pending", created=timedelta(days=-9)),
            ]
        }
    )
    code, out, err = run(conn, "cleanup", "--finished", "--older-than", "7d", "--dry-run")
    assert code == EXIT_OK and conn.deletes == []
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["old-failed", "old"]
    assert "2 job(s) would be deleted" in err
    code, out, _ = run(conn, "cleanup", "--finished", "--older-than", "7d")
    assert sorted(d[2] for d in conn.deletes) == ["old", "old-failed"]
    assert "queuedjob.jobline.dev/old deleted" in out
    code, _, err = run(conn, "cleanup", "--older-than", "7d")
    assert code == EXIT_USAGE and "--finished" in err
    code, _, err = run(conn, "cleanup", "--finished", "--older-than", "seven days")
    assert code == EXIT_USAGE
    code, _, err = run(conn, "cleanup", "--finished", "--phase", "Running")
    assert code == EXIT_USAGE


def test_cancel_sets_spec_cancel_and_refuses_finished_jobs() -> None:
    conn = FakeConn({names.PLURAL_QUEUEDJOBS: [job("busy", "Running"), job("done", "Succeeded")]})
    code, out, err = run(conn, "cancel", "busy", "done")
    assert code == EXIT_FAILED and conn.deletes == []
    assert [(p[0], p[2], p[3]) for p in conn.patches] == [
        (names.PLURAL_QUEUEDJOBS, "busy", {"spec": {"cancel": True}})
    ]
    assert "busy cancelled (its running attempt is being stopped)" in out
    assert "done is already Succeeded: only an unfinished job can be cancelled" in err


def test_suspend_resume_targets() -> None:
    conn = FakeConn(
        {
            names.PLURAL_JOBSCHEDULES: [{"metadata": {"name": "nightly", "namespace": "ns"}, "spec": {}}],
            names.PLURAL_JOBQUEUES: [{"metadata": {"name": "mail", "namespace": "ns"}, "spec": {}}],
            names.PLURAL_QUEUEDJOBS: [job("j")],
        }
    )
    code, out, _ = run(conn, "suspend", "schedule/nightly", "queue/mail", "qj/j")
    assert code == EXIT_OK
    assert [(p[0], p[3]) for p in conn.patches] == [
        (names.PLURAL_JOBSCHEDULES, {"spec": {"suspend": True}}),
        (names.PLURAL_JOBQUEUES, {"spec": {"paused": True}}),
        (names.PLURAL_QUEUEDJOBS, {"spec": {"suspend": True}}),
    ]
    assert "jobqueue.jobline.dev/mail paused" in out
    conn.patches.clear()
    code, _, _ = run(conn, "resume", "jobschedule/nightly")
    assert conn.patches[0][3] == {"spec": {"suspend": False}}
    code, _, err = run(conn, "resume", "schedule/missing")
    assert code == EXIT_NOT_FOUND and 'jobschedule "missing" not found' in err
    code, _, err = run(conn, "suspend", "pod/x")
    assert code == EXIT_USAGE


def test_trigger_sets_a_fresh_annotation_and_waits_for_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = FakeConn(
        {names.PLURAL_JOBSCHEDULES: [{"metadata": {"name": "nightly", "namespace": "ns"}, "spec": {}}]}
    )
    code, out, _ = run(conn, "trigger", "nightly")
    value = conn.patches[0][3]["metadata"]["annotations"][names.ANNOTATION_TRIGGER]
    assert code == EXIT_OK and value in out
    code, _, err = run(conn, "trigger", "ghost")
    assert code == EXIT_NOT_FOUND

    def appear(_: float) -> None:  # the schedule loop creates the run's job while we wait
        trigger_value = conn.patches[-1][3]["metadata"]["annotations"][names.ANNOTATION_TRIGGER]
        created = job("nightly-manual")
        created["metadata"]["labels"] = {names.LABEL_SCHEDULE: "nightly"}
        created["metadata"]["annotations"] = {names.ANNOTATION_MANUAL_TRIGGER: trigger_value}
        conn.objects.setdefault(names.PLURAL_QUEUEDJOBS, []).append(created)

    monkeypatch.setattr(commands, "sleep", appear)
    code, out, _ = run(conn, "trigger", "schedule/nightly", "--wait")
    assert code == EXIT_OK and "queuedjob.jobline.dev/nightly-manual created" in out
    ticks = iter(range(1000))
    monkeypatch.setattr(commands, "monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(commands, "sleep", lambda _: None)
    code, _, err = run(conn, "trigger", "nightly", "--wait", "--timeout", "3s")
    assert code == EXIT_TIMEOUT and "no job of schedule nightly appeared" in err


class Sequence(FakeConn):
    """`get` walks through successive versions of one job (the last one repeats)."""

    def __init__(self, versions: list[dict[str, Any]]) -> None:
        super().__init__({names.PLURAL_QUEUEDJOBS: [versions[0]]})
        self.versions = versions

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        self._find(plural, namespace, name)
        version = self.versions[min(self.gets, len(self.versions) - 1)]
        self.gets += 1
        return copy.deepcopy(version)


def test_wait_shows_progress_and_exits_by_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "sleep", lambda _: None)
    conn = Sequence(
        [
            job("j", "Pending"),
            job("j", "Running", progress=30, attempts=1),
            job("j", "Running", progress=80, attempts=1),
            job("j", "Succeeded", progress=100, result={"rows": 3}),
        ]
    )
    code, out, err = run(conn, "wait", "j")
    assert code == EXIT_OK and 'succeeded: {"rows": 3}' in out
    assert [line.split("]")[1].strip() for line in err.splitlines()] == [
        "?% Pending",
        "30% Running (attempt 1)",
        "80% Running (attempt 1)",
        "100% Succeeded",
    ]
    assert "[#########---------------------]  30%" in err
    failed = job("j", "Failed", dead=True, lastError="attempt 2: Error (exit code 1): boom\n")
    code, out, _ = run(Sequence([job("j", "Running"), failed]), "wait", "j")
    assert (
        code == EXIT_FAILED
        and "failed (RetriesExhausted, dead-lettered): attempt 2: Error (exit code 1): boom" in out
    )
    code, out, _ = run(Sequence([job("j", "Running"), job("j", "Cancelled")]), "wait", "j")
    assert code == EXIT_FAILED and "queuedjob.jobline.dev/j cancelled" in out
    superseded = job("j", "Superseded", supersededBy="k")
    code, out, _ = run(Sequence([superseded]), "wait", "j")
    assert code == EXIT_FAILED and "j superseded by k" in out
    code, _, err = run(FakeConn(), "wait", "ghost")
    assert code == EXIT_NOT_FOUND and 'queuedjob "ghost" not found' in err


def test_wait_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(1000))
    monkeypatch.setattr(commands, "monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(commands, "sleep", lambda _: None)
    code, _, err = run(
        FakeConn({names.PLURAL_QUEUEDJOBS: [job("j", "Running")]}), "wait", "j", "--timeout", "5s"
    )
    assert code == EXIT_TIMEOUT and "timed out" in err


def test_logs_picks_the_attempt_pod() -> None:
    j = job(
        "j",
        "Failed",
        attempts=2,
        podName="j-2",
        attemptHistory=[{"attempt": 1, "pod": "j-1"}, {"attempt": 2, "pod": "j-2"}],
    )
    conn = FakeConn()
    assert commands._pod_of(conn, j, None) == "j-2"
    assert commands._pod_of(conn, j, 1) == "j-1"
    with pytest.raises(CliError, match="has not started an attempt"):
        commands._pod_of(conn, job("p", "Pending"), None)
