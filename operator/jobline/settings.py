"""The operator's settings: one frozen object, built once from the command line, passed to what needs it.

``jobline-operator --help`` lists them. A pod may give a few defaults through its environment
instead of flags (named in :mod:`jobline.names`, read here and nowhere else): the webhook port and
certificate directory, the peering object and the log level.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from jobline import names

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class Settings:
    """Everything the operator's handlers and loops are configured with. The defaults are the
    command line's, except that every server is off (``Settings()`` is an operator without ports)."""

    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    kubeconfig: str | None = None  # None: jobline.kubeconfig's order
    health_host: str = "127.0.0.1"
    health_port: int = 0  # /healthz and /readyz (and /metrics when metrics_port is the same); 0: off
    metrics_port: int = 0  # 0: no /metrics
    dashboard_addr: str = "127.0.0.1"
    dashboard_port: int = 0
    dashboard_auth: Literal["token", "none"] = "token"
    webhook_port: int = 0
    webhook_addr: str = "127.0.0.1"
    webhook_host: str | None = None  # the name the apiserver calls the webhook by (default: webhook_addr)
    webhook_service: str | None = None  # NAMESPACE/NAME of the Service in front of the webhook (in a cluster)
    webhook_cert_dir: str | None = None  # a shared certificate (webhook.crt/.key, ca.crt); None: self-signed
    webhook_configuration: str = "jobline.dev"  # the configuration kopf keeps current; "": someone else's
    peering: str | None = None  # kopf peering object (HA); None: standalone
    identity: str = ""  # this replica among its peers
    priority: int = 0  # peering priority; replicas need distinct ones
    peering_lifetime: int = 60  # seconds after which a silent peer counts as dead
    log_level: LogLevel = "info"
    log_format: Literal["text", "json"] = "text"

    @property
    def standby_first(self) -> bool:
        """With peering, a replica waits for kopf's peering to say it leads."""
        return self.peering is not None

    @property
    def advertised_webhook_host(self) -> str:
        return self.webhook_host or self.webhook_addr


def parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if environ is None else environ
    p = argparse.ArgumentParser(
        prog="jobline-operator", description="Run the Jobline operator (kopf) against the current cluster."
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    p.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)"
    )
    p.add_argument("--health-host", default="127.0.0.1", help="address of /healthz (0.0.0.0 in a pod)")
    p.add_argument(
        "--health-port",
        type=int,
        default=8080,
        help="port of /healthz, /readyz and /metrics (0 disables it); served by jobline, not kopf",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics on this port instead of the health port (0 disables /metrics)",
    )
    p.add_argument(
        "--dashboard-port", type=int, default=8081, help="port of the web dashboard (0 disables it)"
    )
    p.add_argument(
        "--dashboard-addr", default="127.0.0.1", help="address of the dashboard (0.0.0.0 in a pod)"
    )
    p.add_argument(
        "--dashboard-auth",
        default="token",
        choices=["token", "none"],
        help="token: Kubernetes bearer tokens checked by TokenReview/SubjectAccessReview; "
        "none: no auth at all, local development only",
    )
    p.add_argument(
        "--webhook-port",
        type=int,
        default=int(env.get(names.ENV_OPERATOR_WEBHOOK_PORT) or 9443),
        help="port of the admission webhook (0 disables it: the operator still enforces the rules)",
    )
    p.add_argument(
        "--webhook-addr", default="127.0.0.1", help="address the webhook listens on (0.0.0.0 in a pod)"
    )
    p.add_argument(
        "--webhook-host",
        default=None,
        help="host name the apiserver calls the webhook by (in a cluster: the Service's DNS name)",
    )
    p.add_argument(
        "--webhook-service",
        default=None,
        help="NAMESPACE/NAME of the Service in front of the webhook (in a cluster)",
    )
    p.add_argument(
        "--webhook-cert-dir",
        default=env.get(names.ENV_OPERATOR_WEBHOOK_CERT_DIR) or None,
        help="directory with webhook.crt, webhook.key and ca.crt shared by all replicas "
        "(default: a self-signed certificate per process)",
    )
    p.add_argument(
        "--webhook-configuration",
        default="jobline.dev",
        help="name of the ValidatingWebhookConfiguration the operator creates and keeps current; empty: "
        "it is not the operator's (the Helm chart owns it, so the operator needs no rights on webhooks)",
    )
    p.add_argument(
        "--peering",
        default=env.get(names.ENV_OPERATOR_PEERING) or None,
        help="kopf peering object for HA (replicas > 1): one replica is active; default: standalone",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; replicas need distinct ones (default: random when peering)",
    )
    p.add_argument(
        "--peering-lifetime",
        type=int,
        default=60,
        help="seconds after which a silent peer counts as dead (takeover time)",
    )
    p.add_argument(
        "--log-level",
        default=env.get(names.ENV_LOG_LEVEL, "info"),
        choices=["debug", "info", "warning", "error"],
    )
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    return p


def from_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse the command line (``--help`` and bad flags exit, as argparse does)."""
    args = parser(environ).parse_args(argv)
    priority = args.priority if args.priority is not None else random.SystemRandom().randint(1, 2**31 - 1)
    return Settings(
        namespaces=tuple(args.namespace),
        kubeconfig=os.path.abspath(args.kubeconfig) if args.kubeconfig else None,
        health_host=args.health_host,
        health_port=args.health_port,
        metrics_port=args.health_port if args.metrics_port is None else args.metrics_port,
        dashboard_addr=args.dashboard_addr,
        dashboard_port=args.dashboard_port,
        dashboard_auth=args.dashboard_auth,
        webhook_port=args.webhook_port,
        webhook_addr=args.webhook_addr,
        webhook_host=args.webhook_host,
        webhook_service=args.webhook_service,
        webhook_cert_dir=args.webhook_cert_dir,
        webhook_configuration=args.webhook_configuration,
        peering=args.peering,
        identity=f"{socket.gethostname()}@{os.getpid()}",
        priority=priority,
        peering_lifetime=args.peering_lifetime,
        log_level=args.log_level,
        log_format=args.log_format,
    )
