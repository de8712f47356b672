"""The layering contracts of pyproject.toml ([tool.importlinter]) hold, and the check catches a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[test]')"
)


def _lint(package_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_its_layers() -> None:
    result = _lint(ROOT / "operator", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/dispatch.py", "import kopf", "the core is pure"),
        ("core/lifecycle.py", "from jobline.kube import Kube", "the core is pure"),
        ("cli/output.py", "import jobline.dashboard.views", "do not import each other"),
        ("worker.py", "import jobline.controller.loop", "the worker SDK does not need the operator"),
    ],
)
def test_a_forbidden_import_breaks_the_check(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(
        ROOT / "operator" / "jobline",
        tmp_path / "src" / "jobline",
        ignore=shutil.ignore_patterns("__pycache__", "static"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "jobline" / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    result = _lint(tmp_path / "src", tmp_path)
    assert result.returncode != 0
    verdicts = [
        ln for ln in result.stdout.splitlines() if contract in ln and ln.rstrip().endswith(("KEPT", "BROKEN"))
    ]
    assert verdicts and verdicts[0].rstrip().endswith("BROKEN"), result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout, result.stdout
