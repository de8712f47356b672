"""The pure parts of tests/cluster/images.py (no podman): cache keys, the Dockerfiles, the cache layout."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import images

REPO = Path(__file__).resolve().parents[2]


def _fake_repo(root: Path) -> Path:
    files = {
        "Dockerfile": "ARG BASE=python:3.11-slim\nFROM ${BASE}\n",
        ".dockerignore": "*\n!operator\n",
        "pyproject.toml": '[project]\nname = "jobline"\nversion = "9.8.7"\n',
        "README.md": "readme\n",
        "operator/jobline/__init__.py": "",
        "operator/jobline/main.py": "print('hi')\n",
        "tests/__init__.py": "",
        "tests/e2e/__init__.py": "",
        "tests/e2e/handlers.py": "import os\n",
        "tests/images/worker/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _keys(repo: Path) -> tuple[str, str]:
    op = images.operator_key(repo)
    return op, images.worker_key(repo, operator=op)


def test_keys_are_stable_and_ignore_build_litter(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    op, wk = _keys(repo)
    assert op.startswith("jobline-9.8.7-") and wk.startswith("jobline-worker-9.8.7-")
    assert _keys(repo) == (op, wk)
    (repo / "operator/jobline/__pycache__").mkdir()
    (repo / "operator/jobline/__pycache__/main.cpython-311.pyc").write_bytes(b"\0")
    (repo / "operator/jobline.egg-info").mkdir()
    (repo / "operator/jobline.egg-info/PKG-INFO").write_text("x")
    (repo / "unrelated.txt").write_text("not an input")
    assert _keys(repo) == (op, wk)


@pytest.mark.parametrize(
    "rel", ["Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "operator/jobline/main.py"]
)
def test_an_operator_input_changes_both_keys(tmp_path: Path, rel: str) -> None:
    repo = _fake_repo(tmp_path)
    op, wk = _keys(repo)
    with (repo / rel).open("a") as f:
        f.write("\n# changed\n")
    op2, wk2 = _keys(repo)
    assert op2 != op and wk2 != wk


def test_a_new_source_file_changes_the_key(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    op, _ = _keys(repo)
    (repo / "operator/jobline/new.py").write_text("")
    assert images.operator_key(repo) != op


@pytest.mark.parametrize(
    "rel", ["tests/images/worker/Dockerfile", "tests/e2e/handlers.py", "tests/__init__.py"]
)
def test_a_worker_input_changes_only_the_worker_key(tmp_path: Path, rel: str) -> None:
    repo = _fake_repo(tmp_path)
    op, wk = _keys(repo)
    with (repo / rel).open("a") as f:
        f.write("\n# changed\n")
    op2, wk2 = _keys(repo)
    assert op2 == op and wk2 != wk


def test_other_tests_do_not_change_the_keys(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    keys = _keys(repo)
    (repo / "tests/e2e/test_something.py").write_text("def test(): pass\n")
    (repo / "tests/e2e/conftest.py").write_text("")
    assert _keys(repo) == keys


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_in_a_git_checkout_ignored_files_are_not_inputs(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)

    git("init", "-q")
    (repo / ".gitignore").write_text("*.log\n")
    git("add", "-A")
    before = images.source_files(repo)
    assert Path("operator/jobline/main.py") in before
    key = images.operator_key(repo)
    (repo / "operator/jobline/debug.log").write_text("ignored by git")
    assert images.operator_key(repo) == key
    (repo / "operator/jobline/untracked.py").write_text("")  # untracked, not ignored: an input
    assert Path("operator/jobline/untracked.py") in images.source_files(repo)
    assert images.operator_key(repo) != key


def test_git_lists_no_file_the_walk_would_not() -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    walked = sorted(
        p.relative_to(REPO)
        for p in (REPO / "operator").rglob("*")
        if p.is_file() and not images._is_excluded(p.relative_to(REPO))
    )
    assert set(images.source_files(REPO)) <= set(walked)


def test_base_key_depends_on_the_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    key = images.base_key()
    assert re.fullmatch(r"base-bookworm-[0-9a-f]{12}", key)
    monkeypatch.setattr(images, "DEBIAN_PACKAGES", (*images.DEBIAN_PACKAGES, "curl"))
    assert images.base_key() != key


def test_the_dockerfile_takes_a_base_and_runs_as_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    assert "ARG BASE=python:3.11-slim" in lines[:first_from]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and all(line.startswith("FROM ${BASE}") for line in froms)
    assert re.search(r"^USER 65532:65532$", text, re.M)
    assert re.search(r"^ARG WHEELHOUSE=$", text, re.M) and "--no-index" in text
    assert re.search(r"^CMD \[\"jobline-operator\"\]$", text, re.M)
    assert "/opt/jobline" in text and "PYTHONDONTWRITEBYTECODE=1" in text
    # The version label's default is the project's version (make images passes it anyway).
    assert f"ARG VERSION={images.VERSION}" in lines
    assert "org.opencontainers.image.version" in text


def test_the_dockerignore_lets_through_what_the_dockerfile_needs() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    for needed in ("pyproject.toml", "README.md", "operator", "wheelhouse"):
        assert f"!{needed}" in lines


def test_the_worker_dockerfile_copies_the_handlers() -> None:
    text = images.WORKER_DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE", text, re.M) and "FROM ${BASE_IMAGE}" in text
    copied = re.findall(r"^COPY (\S+) (\S+)$", text, re.M)
    assert [Path(src) for src, _ in copied] == list(images.WORKER_FILES)
    assert all(dst == f"/app/{src}" for src, dst in copied)
    assert "ENV PYTHONPATH=/app" in text
    assert 'CMD ["jobline-worker", "--import", "jobline.examples"]' in text


def test_the_e2e_handlers_import_only_what_the_image_has() -> None:
    for rel in images.WORKER_FILES:
        tree = ast.parse((REPO / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ("__future__", "jobline"), f"{rel}: {name}"


def test_built_images_and_the_cache_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBLINE_CACHE_DIR", str(tmp_path))
    assert images.built_images() is None
    (okey, op), (wkey, wk) = images._planned()
    assert op.ref == f"docker.io/library/jobline:{images.VERSION}"
    assert wk.ref == f"docker.io/library/jobline-worker:{images.VERSION}"
    assert op.archive == tmp_path / "images" / okey / "jobline.tar"
    assert wk.archive == tmp_path / "images" / wkey / "jobline-worker.tar"
    op.archive.parent.mkdir(parents=True)
    op.archive.write_bytes(b"")
    assert images.built_images() is None  # the worker's archive is still missing
    wk.archive.parent.mkdir(parents=True)
    wk.archive.write_bytes(b"")
    assert images.built_images() == images.Images(operator=op, worker=wk)


def test_prune_keeps_the_current_and_one_older_build(tmp_path: Path) -> None:
    names = [
        "jobline-0.1.0-aaa",
        "jobline-0.1.0-bbb",
        "jobline-0.1.0-ccc",
        "jobline-0.1.0-ddd",
        "jobline-worker-0.1.0-aaa",
        "jobline-worker-0.1.0-bbb",
        "base-bookworm-abc",
    ]
    for i, name in enumerate(names):
        (tmp_path / name).mkdir()
        if name != "jobline-0.1.0-ddd":  # the newest has no archive: an interrupted build
            (tmp_path / name / "x.tar").write_bytes(b"")
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    images._prune_old(tmp_path, r"jobline-\d.*", "jobline-0.1.0-aaa")  # the oldest is the current one
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["base-bookworm-abc", "jobline-0.1.0-aaa", "jobline-0.1.0-ccc", *names[4:6]]
