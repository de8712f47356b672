"""The operator's settings: one frozen object from the command line, a few defaults from a pod's env."""

from __future__ import annotations

import dataclasses

import pytest

from jobline import names
from jobline.settings import Settings, from_args


@pytest.mark.parametrize(
    ("argv", "environ", "want"),
    [
        pytest.param(
            [],
            {},
            {
                "health_port": 8080,
                "metrics_port": 8080,
                "dashboard_port": 8081,
                "webhook_port": 9443,
                "peering": None,
                "namespaces": (),
                "log_level": "info",
            },
            id="defaults",
        ),
        pytest.param(
            ["--metrics-port", "9090"], {}, {"health_port": 8080, "metrics_port": 9090}, id="metrics-apart"
        ),
        pytest.param(
            ["--health-port", "0"], {}, {"health_port": 0, "metrics_port": 0}, id="metrics-follow-health"
        ),
        pytest.param(["-n", "a", "-n", "b"], {}, {"namespaces": ("a", "b")}, id="namespaces"),
        pytest.param(
            [],
            {
                names.ENV_OPERATOR_WEBHOOK_PORT: "0",
                names.ENV_OPERATOR_PEERING: "jobline",
                names.ENV_OPERATOR_WEBHOOK_CERT_DIR: "/certs",
                names.ENV_LOG_LEVEL: "debug",
            },
            {"webhook_port": 0, "peering": "jobline", "webhook_cert_dir": "/certs", "log_level": "debug"},
            id="a-pod-sets-defaults-by-env",
        ),
        pytest.param(
            ["--webhook-port", "8443", "--peering", "p2"],
            {names.ENV_OPERATOR_WEBHOOK_PORT: "0", names.ENV_OPERATOR_PEERING: "p1"},
            {"webhook_port": 8443, "peering": "p2"},
            id="flags-beat-env",
        ),
        pytest.param(
            ["--priority", "7", "--peering", "p"],
            {},
            {"priority": 7, "standby_first": True},
            id="peering-starts-on-standby",
        ),
        pytest.param([], {}, {"webhook_configuration": "jobline.dev"}, id="kopf-manages-the-webhook"),
        pytest.param(
            ["--webhook-configuration="], {}, {"webhook_configuration": ""}, id="the-chart-owns-the-webhook"
        ),
    ],
)
def test_from_args(argv: list[str], environ: dict[str, str], want: dict[str, object]) -> None:
    got = from_args(argv, environ)
    assert {k: getattr(got, k) for k in want} == want


def test_paths_are_absolute_and_the_object_is_frozen(tmp_path: object) -> None:
    got = from_args(["--kubeconfig", "relative/kubeconfig"], {})
    assert got.kubeconfig is not None and got.kubeconfig.startswith("/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.health_port = 1  # type: ignore[misc]


def test_replicas_get_distinct_random_priorities_and_a_webhook_host() -> None:
    a, b = from_args([], {}), from_args([], {})
    assert a.priority != b.priority and a.priority > 0
    assert a.advertised_webhook_host == "127.0.0.1"
    assert from_args(["--webhook-host", "jobline.svc"], {}).advertised_webhook_host == "jobline.svc"


def test_bare_settings_serve_nothing() -> None:
    bare = Settings()
    assert (bare.health_port, bare.metrics_port, bare.dashboard_port, bare.webhook_port) == (0, 0, 0, 0)


def test_bad_flags_exit_as_argparse_does() -> None:
    with pytest.raises(SystemExit):
        from_args(["--dashboard-auth", "maybe"], {})
