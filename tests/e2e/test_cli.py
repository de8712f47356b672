"""`kubectl jobline` against the real control plane and the real operator, one command at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import KUBECTL, create_schedule, wait_for

GROUP, VERSION = "jobline.dev", "v1alpha1"
NO_RETRY = {"retry": {"limit": 0}}


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


class Cli:
    def __init__(self, cluster: ClusterHandle, namespace: str) -> None:
        self.kubeconfig = cluster.kubeconfig
        self.ns = namespace

    def __call__(
        self, *args: str, ns: bool = True, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "jobline.cli", *(["-n", self.ns] if ns else []), *args]
        full_env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **(env or {})}
        return subprocess.run(argv, capture_output=True, text=True, env=full_env, input=stdin, timeout=180)


@pytest.fixture
def cli(cluster: ClusterHandle, namespace: str) -> Cli:
    return Cli(cluster, namespace)


def grant_progress(cluster: ClusterHandle, namespace: str) -> None:
    """Workers report progress by patching their job's status (manifests/examples/worker-rbac.yaml)."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "jobline-worker"},
            "rules": [{"apiGroups": [GROUP], "resources": ["queuedjobs/status"], "verbs": ["get", "patch"]}],
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


def annotations(jobs: Jobs, name: str) -> dict[str, str]:
    return dict(jobs.get(name)["metadata"].get("annotations") or {})


def test_enqueue_then_wait_succeeds_with_progress(
    jobs: Jobs, cli: Cli, cluster: ClusterHandle, tmp_path: Path
) -> None:
    jobs.queue()
    grant_progress(cluster, jobs.ns)
    proc = cli(
        "enqueue", "sleep", "--payload", '{"seconds": 2, "steps": 4}', "--name", "steps", "--priority", "4"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "queuedjob.jobline.dev/steps created"
    assert jobs.get("steps")["spec"]["priority"] == 4
    proc = cli("wait", "steps", "--timeout", "90s")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'queuedjob.jobline.dev/steps succeeded: {"slept": 2}'
    assert "[##############################] 100% Succeeded" in proc.stderr  # the progress bar, fed by status

    payload = tmp_path / "payload.json"
    payload.write_text('{"from": "a file"}')
    proc = cli("enqueue", "echo", "--payload", f"@{payload}", "--wait", "--timeout", "90s")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].endswith('succeeded: {"from": "a file"}')
    proc = cli("enqueue", "echo", "--payload", "@-", "-o", "json", stdin='["stdin"]')
    assert proc.returncode == 0 and json.loads(proc.stdout)["spec"]["payload"] == ["stdin"]


def test_wait_on_a_failing_job_exits_non_zero(jobs: Jobs, cli: Cli) -> None:
    jobs.queue(defaults=NO_RETRY)
    assert cli("enqueue", "fail", "--name", "doomed").returncode == 0
    proc = cli("wait", "doomed", "--timeout", "90s")
    assert proc.returncode == 1, proc.stderr
    assert "queuedjob.jobline.dev/doomed failed (" in proc.stdout and "always fails" in proc.stdout
    assert "Failed" in proc.stderr.splitlines()[-1]


def test_list_and_stats_tables_filters_and_outputs(
    jobs: Jobs, cli: Cli, cluster: ClusterHandle, tmp_path: Path
) -> None:
    jobs.queue(defaults=NO_RETRY)
    jobs.queue("parked", paused=True)
    jobs.create("ok", "echo", {})
    jobs.create("bad", "fail", None)
    jobs.create("held-1", "echo", {}, queue="parked", priority=1)
    jobs.create("held-2", "echo", {}, queue="parked", priority=9)
    jobs.wait_phase("ok", "Succeeded")
    jobs.wait_phase("bad", "Failed")
    jobs.wait_phase("held-2", "Pending")
    jobs.wait_phase("held-1", "Pending")

    proc = cli("list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
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
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"ok", "bad", "held-1", "held-2"}
    assert rows["held-2"][4:8] == ["Pending", "#1", "in", "queue"] and rows["held-1"][5] == "#2"
    assert rows["bad"][4] == "Failed"

    proc = cli("list", "--phase", "failed", "-o", "name")
    assert proc.stdout.split() == ["queuedjob.jobline.dev/bad"]
    proc = cli("list", "--queue", "parked", "-o", "json")
    items = json.loads(proc.stdout)["items"]
    assert sorted(i["metadata"]["name"] for i in items) == ["held-1", "held-2"]
    assert {i["metadata"]["name"]: i["status"]["position"] for i in items} == {"held-2": 1, "held-1": 2}
    proc = cli("list", "--handler", "fail", "-o", "yaml")
    assert [i["metadata"]["name"] for i in yaml.safe_load(proc.stdout)["items"]] == ["bad"]

    def stats_match() -> dict[str, Any] | None:
        data = json.loads(cli("stats", "-o", "json").stdout)
        rows = {r["queue"]: r for r in data["queues"]}
        return (
            data
            if (rows["default"]["succeeded"], rows["default"]["failed"], rows["parked"]["pending"])
            == (1, 1, 2)
            else None
        )

    data = wait_for(stats_match, 30, "stats to count the jobs")
    assert data["totals"]["total"] == 4 and {r["queue"]: r["paused"] for r in data["queues"]} == {
        "default": False,
        "parked": True,
    }
    table = cli("stats").stdout.splitlines()
    assert table[0].split()[:3] == ["QUEUE", "PAUSED", "CONCURRENCY"]
    assert table[2].split()[:4] == ["parked", "yes", "-", "2"]

    proc = cli("list", "-A", ns=False)
    assert proc.stdout.splitlines()[0].startswith("NAMESPACE") and f"{jobs.ns}   " in proc.stdout

    # --context: a context whose namespace is the test's, no -n given.
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    base = config["contexts"][0]["context"]
    config["contexts"].append({"name": "jl-test", "context": {**base, "namespace": jobs.ns}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    proc = cli("--kubeconfig", str(kubeconfig), "--context", "jl-test", "list", "-o", "name", ns=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == sorted(f"queuedjob.jobline.dev/{n}" for n in rows)
    proc = cli("--kubeconfig", str(kubeconfig), "--context", "nope", "list", ns=False)
    assert proc.returncode == 2 and "context 'nope' not found" in proc.stderr


def test_retry_all_failed_requeues_dead_letters(jobs: Jobs, cli: Cli) -> None:
    jobs.queue(defaults=NO_RETRY)
    jobs.queue("other", defaults=NO_RETRY)
    for name, queue in [("dl-1", "default"), ("dl-2", "default"), ("dl-3", "other")]:
        jobs.create(name, "fail", None, queue=queue)
    jobs.create("fine", "echo", {})
    for name in ("dl-1", "dl-2", "dl-3"):
        assert jobs.wait_phase(name, "Failed")["deadLettered"] is True
    jobs.wait_phase("fine", "Succeeded")

    proc = cli("retry", "--all-failed", "--queue", "default", "--dry-run")
    assert proc.returncode == 0 and "dl-1 would be requeued" in proc.stdout
    assert all("jobline.dev/requeue" not in annotations(jobs, n) for n in ("dl-1", "dl-2"))

    proc = cli("retry", "--all-failed", "--queue", "default")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "queuedjob.jobline.dev/dl-1 requeued",
        "queuedjob.jobline.dev/dl-2 requeued",
    ]
    for name in ("dl-1", "dl-2"):  # they run again: a second attempt, dead-lettered again
        assert "jobline.dev/requeue" in annotations(jobs, name)
        wait_for(
            lambda n=name: jobs.status(n).get("attempts") == 2 and jobs.phase(n) == "Failed",
            60,
            f"{name} to run a second attempt",
        )
    assert jobs.status("dl-3")["attempts"] == 1 and "jobline.dev/requeue" not in annotations(jobs, "dl-3")
    assert "jobline.dev/requeue" not in annotations(jobs, "fine")

    proc = cli("retry", "dl-3", "fine")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2
    wait_for(lambda: jobs.status("dl-3").get("attempts") == 2, 60, "dl-3 to run again")


def test_cleanup_dry_run_lists_without_deleting(jobs: Jobs, cli: Cli) -> None:
    jobs.queue(defaults=NO_RETRY)
    jobs.queue("parked", paused=True)
    jobs.create("done-1", "echo", {})
    jobs.create("done-2", "fail", None)
    jobs.create("waiting", "echo", {}, queue="parked")
    jobs.wait_phase("done-1", "Succeeded")
    jobs.wait_phase("done-2", "Failed")

    proc = cli("cleanup", "--finished", "--older-than", "7d", "--dry-run")
    assert proc.returncode == 0 and proc.stdout == "" and "No finished jobs older than 7d" in proc.stderr
    proc = cli("cleanup", "--finished", "--older-than", "0s", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert sorted(line.split()[0] for line in proc.stdout.splitlines()[1:]) == ["done-1", "done-2"]
    assert "2 job(s) would be deleted (dry run: nothing deleted)" in proc.stderr
    assert all(jobs.exists(n) for n in ("done-1", "done-2", "waiting"))

    proc = cli("cleanup", "--finished", "--older-than", "0s", "--phase", "Failed")
    assert proc.returncode == 0 and proc.stdout.strip() == "queuedjob.jobline.dev/done-2 deleted"
    wait_for(lambda: not jobs.exists("done-2"), 30, "done-2 to be deleted")
    proc = cli("cleanup", "--finished", "--older-than", "0s")
    assert proc.stdout.strip() == "queuedjob.jobline.dev/done-1 deleted"
    wait_for(lambda: not jobs.exists("done-1"), 30, "done-1 to be deleted")
    assert jobs.exists("waiting")


def test_cancel_suspend_resume_and_trigger(jobs: Jobs, cli: Cli, cluster: ClusterHandle) -> None:
    jobs.queue()
    jobs.create("long", "sleep", {"seconds": 120})
    jobs.wait_phase("long", "Running")
    proc = cli("cancel", "long")
    assert proc.returncode == 0
    assert (
        proc.stdout.strip() == "queuedjob.jobline.dev/long cancelled (its running attempt is being stopped)"
    )
    jobs.wait_phase("long", "Cancelled", timeout=60)
    wait_for(lambda: not jobs.pods("long"), 60, "the cancelled attempt's pod to go")
    assert jobs.exists("long")  # cancelling keeps the job and its history; delete removes it

    assert cli("suspend", "queue/default").stdout.strip() == "jobqueue.jobline.dev/default paused"
    assert jobs.get_queue()["spec"]["paused"] is True
    assert cli("resume", "jobqueue/default").returncode == 0
    assert jobs.get_queue()["spec"]["paused"] is False

    create_schedule(
        jobs.api,
        jobs.ns,
        "nightly",
        {
            "schedule": "0 3 * * *",
            "suspend": True,
            "jobTemplate": {"spec": {"handler": "echo", "payload": {"from": "schedule"}}},
        },
    )

    def schedule() -> dict[str, Any]:
        return dict(jobs.api.get_namespaced_custom_object(GROUP, VERSION, jobs.ns, "jobschedules", "nightly"))

    assert cli("resume", "schedule/nightly").stdout.strip() == "jobschedule.jobline.dev/nightly resumed"
    assert schedule()["spec"]["suspend"] is False
    assert cli("suspend", "schedule/nightly").returncode == 0
    assert schedule()["spec"]["suspend"] is True

    proc = cli("trigger", "nightly", "--wait", "--timeout", "60s")
    assert proc.returncode == 0, proc.stderr
    trigger = schedule()["metadata"]["annotations"]["jobline.dev/trigger"]
    assert trigger in proc.stdout.splitlines()[0]
    created = proc.stdout.splitlines()[1].split()[0].removeprefix("queuedjob.jobline.dev/")
    job = jobs.get(created)
    assert job["metadata"]["annotations"]["jobline.dev/manual-trigger"] == trigger
    assert job["spec"]["payload"] == {"from": "schedule"}
    jobs.wait_phase(created, "Succeeded")


def test_logs_of_an_attempt(jobs: Jobs, cli: Cli) -> None:
    jobs.queue(defaults={"retry": {"limit": 1, "backoff": {"initialSeconds": 1, "jitter": 0}}})
    jobs.create("noisy", "exit", {"code": 3})
    st = jobs.wait_phase("noisy", "Failed", timeout=60)
    assert st["attempts"] == 2
    proc = cli("logs", "noisy", "--attempt", "1")
    assert proc.returncode == 0, proc.stderr
    assert "exiting with 3" in proc.stdout
    proc = cli("logs", "noisy")
    assert proc.returncode == 0 and "exiting with 3" in proc.stdout
    proc = cli("logs", "noisy", "--attempt", "5")
    assert proc.returncode == 3 and "has no attempt 5 (attempts so far: 2)" in proc.stderr


def test_error_cases_have_clear_messages_and_exit_codes(jobs: Jobs, cli: Cli) -> None:
    jobs.queue()
    jobs.create("there", "echo", {})
    jobs.wait_phase("there", "Succeeded")
    for args in (("wait", "ghost"), ("retry", "ghost"), ("logs", "ghost"), ("cancel", "ghost")):
        proc = cli(*args)
        assert proc.returncode == 3, (args, proc.stderr)
        assert f"error: queuedjob \"ghost\" not found in namespace '{jobs.ns}'" in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = cli("trigger", "ghost")
    assert proc.returncode == 3 and 'jobschedule "ghost" not found' in proc.stderr

    proc = cli("enqueue", "echo", "--payload", "{'single': 'quotes'}")
    assert proc.returncode == 2 and "the payload from --payload is not valid JSON" in proc.stderr
    proc = cli("list", "--phase", "Done")
    assert proc.returncode == 2 and "unknown phase 'Done'" in proc.stderr

    nobody = f"system:serviceaccount:{jobs.ns}:nobody"
    for args in (
        ("list",),
        ("stats",),
        ("retry", "there"),
        ("enqueue", "echo"),
        ("cleanup", "--finished"),
        ("suspend", "queue/default"),
    ):
        proc = cli("--as", nobody, *args)
        assert proc.returncode == 4, (args, proc.stdout, proc.stderr)
        assert "forbidden" in proc.stderr and "Traceback" not in proc.stderr
    assert "jobline.dev/requeue" not in annotations(jobs, "there")
    assert jobs.get_queue()["spec"].get("paused") is not True


def test_works_as_a_kubectl_plugin(jobs: Jobs, cluster: ClusterHandle, tmp_path: Path) -> None:
    jobs.queue()
    jobs.create("plugged", "echo", {})
    jobs.wait_phase("plugged", "Succeeded")
    shim = tmp_path / "kubectl-jobline"  # what the console script `kubectl-jobline` is
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m jobline.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [KUBECTL, "jobline", "-n", jobs.ns, "list", "-o", "name"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["queuedjob.jobline.dev/plugged"]
