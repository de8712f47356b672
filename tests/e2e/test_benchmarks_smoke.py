"""The benchmark runner at a tiny size, so it cannot rot: every scenario yields numbers, JSON and table are written.

No timing is asserted (the numbers of a smoke run mean nothing). The runner starts its own control plane
with kwok nodes (the session's cluster runs an operator for all namespaces, which would race the
benchmark's own), so this needs the built-in cluster's binaries, not an external cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("JOBLINE_TEST_KUBECONFIG") or os.environ.get("JOBLINE_TEST_KIND")),
    reason="the benchmark runner starts its own local control plane (needs the built-in cluster's binaries)",
)


@pytest.mark.timeout(300)
def test_benchmark_runner_smoke(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nHand-written text stays.\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "run",
            "--smoke",
            "--out-dir",
            str(tmp_path / "results"),
            "--readme",
            str(readme),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, (
        f"runner failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )

    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1, files
    doc = json.loads(files[0].read_text())
    sc = doc["scenarios"]
    assert set(sc) == {"dispatch", "throughput", "cron", "scale", "ceiling"}
    assert not [name for name, res in sc.items() if "error" in res], {
        k: v.get("error") for k, v in sc.items()
    }

    for side in ("jobline", "job", "job-raised"):  # the Job controller at its defaults and limits raised
        assert sc["dispatch"][side]["latency_s"]["p50"] is not None
        assert sc["throughput"][side]["jobs_per_s"] is not None
        assert sc["throughput"][side]["writes_per_job"] > 0
        assert sc["throughput"][side]["controller_cpu_ms_per_job"] is not None
    for side in ("jobline", "job"):
        assert sc["cron"][side]["lateness_s"]["p99"] is not None
    assert doc["meta"]["peer_limits"] == "both" and "--kube-api-qps=500" in doc["meta"]["raised_limits"]
    assert sc["throughput"]["jobline_drain"]["jobs_per_s"] is not None
    assert sc["scale"]["rss_mb_hwm"] is not None
    assert sc["scale"]["seconds_start_to_first_dispatch"] is not None
    assert sc["scale"]["dispatch_per_s"] is not None
    assert sc["scale"]["kubectl_get_qj_s_before"]
    assert sc["ceiling"]["create"]["per_s"] > 0 and sc["ceiling"]["status_patch"]["per_s"] > 0
    assert sc["ceiling"]["per_job"]["jobline"]["ceiling_jobs_per_s"] is not None
    for key in ("machine", "versions", "loadavg_before", "loadavg_after", "command"):
        assert doc["meta"][key]

    text = readme.read_text()
    assert "Hand-written text stays." in text
    assert "| 1 | dispatch latency" in text and "| 5 | ceiling" in text
    assert "Job, limits raised:" in text
    assert "results:begin" in text and "results:end" in text
