"""``jobline-operator``: run the Jobline operator (kopf) against the current cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import socket
import sys
from typing import Any, cast

from jobline import names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="jobline-operator", description=__doc__)
    p.add_argument("-n", "--namespace", action="append", default=[],
                   help="watch only this namespace (repeatable); default: all namespaces")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster config, else $KUBECONFIG)")
    p.add_argument("--health-host", default="127.0.0.1", help="address of /healthz (0.0.0.0 in a pod)")
    p.add_argument("--health-port", type=int, default=8080,
                   help="port of /healthz and /metrics (0 disables it); served by jobline, not kopf")
    # Operating it (handlers/servers.py): metrics, dashboard.
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve /metrics on this port instead of the health port (0 disables /metrics)")
    p.add_argument("--dashboard-port", type=int, default=8081, help="port of the web dashboard (0 disables it)")
    p.add_argument("--dashboard-addr", default="127.0.0.1", help="address of the dashboard (0.0.0.0 in a pod)")
    p.add_argument("--dashboard-auth", default="token", choices=["token", "none"],
                   help="token: Kubernetes bearer tokens checked by TokenReview/SubjectAccessReview; "
                        "none: no auth at all, local development only")
    p.add_argument("--webhook-port", type=int, default=int(os.environ.get("JOBLINE_WEBHOOK_PORT", "9443")),
                   help="port of the admission webhook (0 disables it: the operator still enforces the rules)")
    p.add_argument("--webhook-addr", default="127.0.0.1", help="address the webhook listens on (0.0.0.0 in a pod)")
    p.add_argument("--webhook-host", default=None,
                   help="host name the apiserver calls the webhook by (in a cluster: the Service's DNS name)")
    p.add_argument("--webhook-service", default=None,
                   help="NAMESPACE/NAME of the Service in front of the webhook (in a cluster)")
    p.add_argument("--peering", default=os.environ.get("JOBLINE_PEERING") or None,
                   help="kopf peering object for HA (replicas > 1): one replica is active; default: standalone")
    p.add_argument("--priority", type=int, default=None,
                   help="peering priority; replicas need distinct ones (default: random when peering)")
    p.add_argument("--peering-lifetime", type=int, default=60,
                   help="seconds after which a silent peer counts as dead (takeover time)")
    p.add_argument("--log-level", default=os.environ.get("JOBLINE_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = os.path.abspath(args.kubeconfig)
        os.environ["JOBLINE_KUBECONFIG"] = os.environ["KUBECONFIG"]
    if args.namespace:
        os.environ["JOBLINE_NAMESPACES"] = ",".join(args.namespace)
    identity = f"{socket.gethostname()}@{os.getpid()}"
    priority = args.priority if args.priority is not None else random.SystemRandom().randint(1, 2**31 - 1)
    if args.peering:
        os.environ.update(JOBLINE_PEERING=args.peering, JOBLINE_IDENTITY=identity, JOBLINE_PRIORITY=str(priority),
                          JOBLINE_PEERING_LIFETIME=str(args.peering_lifetime))
    os.environ["JOBLINE_WEBHOOK_PORT"] = str(args.webhook_port)
    os.environ["JOBLINE_WEBHOOK_ADDR"] = args.webhook_addr
    os.environ["JOBLINE_WEBHOOK_HOST"] = args.webhook_host or args.webhook_addr
    if args.webhook_service:
        os.environ["JOBLINE_WEBHOOK_SERVICE"] = args.webhook_service
    # Operating it (handlers/servers.py): /healthz + /metrics and the dashboard.
    os.environ[names.ENV_HEALTH_ADDR] = args.health_host
    os.environ[names.ENV_HEALTH_PORT] = str(args.health_port)
    os.environ[names.ENV_METRICS_PORT] = str(args.health_port if args.metrics_port is None else args.metrics_port)
    os.environ[names.ENV_DASHBOARD_ADDR] = args.dashboard_addr
    os.environ[names.ENV_DASHBOARD_PORT] = str(args.dashboard_port)
    os.environ[names.ENV_DASHBOARD_AUTH] = args.dashboard_auth
    import kopf  # after KUBECONFIG is set: the kubernetes client reads it at import time

    kopf.configure(
        verbose=args.log_level == "debug",
        debug=False,
        quiet=args.log_level in ("warning", "error"),
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger().setLevel(args.log_level.upper())
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per admission review is noise
    if args.log_level != "debug":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event is noise

    import jobline.handlers  # registers the kopf handlers

    if args.webhook_port:
        jobline.handlers.admission.register()

    try:
        asyncio.run(kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace or (),
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=priority,
            identity=cast(Any, identity),  # kopf.Identity is a NewType of str, not exported
        ))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
