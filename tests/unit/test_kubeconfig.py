"""The one order in which the operator, the SDK and the CLI find the cluster (jobline.kubeconfig)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobline import kubeconfig

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: {current}
contexts:
- name: one
  context: {{cluster: c, user: u, namespace: team-one}}
- name: two
  context: {{cluster: c, user: u}}
clusters:
- name: c
  cluster: {{server: "https://{server}:6443"}}
users:
- name: u
  user: {{token: t}}
"""


@pytest.fixture
def sa_dir(tmp_path: Path) -> Path:
    """A mounted service account, as in a pod."""
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("pod-token")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n")
    (sa / "namespace").write_text("pod-ns\n")
    return sa


def write(path: Path, server: str, current: str = "one") -> str:
    path.write_text(KUBECONFIG.format(server=server, current=current))
    return str(path)


IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.mark.parametrize(
    ("explicit", "env_kubeconfig", "context", "pod", "want"),
    [
        pytest.param(True, True, None, True, "explicit", id="flag-beats-everything"),
        pytest.param(False, True, None, True, "env", id="KUBECONFIG-beats-the-pod"),
        pytest.param(False, False, None, True, "pod", id="in-a-pod-its-own-identity"),
        pytest.param(False, False, "one", True, "home", id="a-context-means-a-kubeconfig-even-in-a-pod"),
        pytest.param(False, False, None, False, "home", id="outside-a-pod-home-kubeconfig"),
    ],
)
def test_precedence(
    tmp_path: Path,
    sa_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    explicit: bool,
    env_kubeconfig: bool,
    context: str | None,
    pod: bool,
    want: str,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    files = {
        "explicit": write(tmp_path / "explicit", "explicit.example"),
        "env": write(tmp_path / "env", "env.example"),
        "home": write(tmp_path / ".kube" / "config", "home.example"),
    }
    environ = {**(IN_POD if pod else {}), **({"KUBECONFIG": files["env"]} if env_kubeconfig else {})}
    chosen = kubeconfig.kubeconfig_path(
        files["explicit"] if explicit else None, context, environ=environ, sa_dir=sa_dir
    )
    assert chosen == (None if want == "pod" else files[want])
    cfg = kubeconfig.load(files["explicit"] if explicit else None, context, environ=environ, sa_dir=sa_dir)
    if want == "pod":
        assert (
            cfg.host == "https://10.96.0.1:443" and cfg.api_key["BearerToken"].lower() == "bearer pod-token"
        )
    else:
        assert cfg.host == f"https://{want}.example:6443"


def test_a_pod_needs_a_token_not_only_the_service_host(tmp_path: Path) -> None:
    assert not kubeconfig.in_cluster(IN_POD, tmp_path / "no-sa")
    assert kubeconfig.kubeconfig_path(environ=IN_POD, sa_dir=tmp_path / "no-sa") is not None


def test_several_kubeconfig_files_merge(tmp_path: Path) -> None:
    first = write(tmp_path / "a", "a.example", current="two")
    second = tmp_path / "b"
    second.write_text("apiVersion: v1\nkind: Config\n")
    cfg = kubeconfig.load(environ={"KUBECONFIG": f"{first}:{second}"}, sa_dir=tmp_path)
    assert cfg.host == "https://a.example:6443"


@pytest.mark.parametrize(
    ("context", "pod", "want"),
    [
        pytest.param(None, False, "team-one", id="the-current-context"),
        pytest.param("two", False, "default", id="a-context-without-namespace"),
        pytest.param(None, True, "pod-ns", id="the-pod-namespace"),
    ],
)
def test_current_namespace(tmp_path: Path, sa_dir: Path, context: str | None, pod: bool, want: str) -> None:
    environ = {**(IN_POD if pod else {})}
    path = None if pod else write(tmp_path / "k", "x.example")
    assert kubeconfig.current_namespace(path, context, environ=environ, sa_dir=sa_dir) == want


def test_the_namespace_follows_the_chosen_source(tmp_path: Path, sa_dir: Path) -> None:
    """In a pod with $KUBECONFIG set the kubeconfig is used, so its context's namespace is too, not the pod's."""
    environ = {**IN_POD, "KUBECONFIG": write(tmp_path / "k", "x.example")}
    assert kubeconfig.current_namespace(environ=environ, sa_dir=sa_dir) == "team-one"


def test_current_namespace_without_any_kubeconfig_is_default(tmp_path: Path) -> None:
    assert kubeconfig.current_namespace(str(tmp_path / "missing"), environ={}, sa_dir=tmp_path) == "default"


def test_an_unknown_context_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="nope"):
        kubeconfig.current_namespace(write(tmp_path / "k", "x.example"), "nope", environ={}, sa_dir=tmp_path)
