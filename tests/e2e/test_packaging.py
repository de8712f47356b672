"""What can be tested of the image without a Docker engine: a fresh venv with `pip install .` gets working
console scripts, and the Dockerfile builds from what it copies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin"


@pytest.mark.parametrize("script", ["jobline-operator", "jobline-worker", "kubectl-jobline"])
def test_console_script_runs(fresh_venv: Path, script: str) -> None:
    proc = subprocess.run([str(fresh_venv / script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout.lower()


def test_worker_runs_a_handler_from_the_installed_package(fresh_venv: Path, tmp_path: Path) -> None:
    result = tmp_path / "result"
    env = {
        "JOBLINE_JOB": "j",
        "JOBLINE_NAMESPACE": "n",
        "JOBLINE_QUEUE": "q",
        "JOBLINE_HANDLER": "cleanup",
        "JOBLINE_ATTEMPT": "1",
        "JOBLINE_PAYLOAD": f'{{"path": "{tmp_path}", "olderThanSeconds": 60}}',
        "JOBLINE_RESULT_PATH": str(result),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [str(fresh_venv / "jobline-worker"), "--import", "jobline.examples"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"deleted"' in result.read_text() or "deleted" in result.read_text()


def test_dockerfile_copies_what_the_build_needs() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER 65532", text, re.M), "the image must run as non-root"
    for line in re.findall(r"^COPY (?!--from)(.+?) \S+$", text, re.M):
        for src in line.split():
            assert (REPO / src).exists(), f"Dockerfile copies {src}, which does not exist"
    assert (
        "ARG BASE=python:3.11-slim" in text and "FROM ${BASE} AS build" in text and text.count("FROM ") == 2
    )  # multi-stage
