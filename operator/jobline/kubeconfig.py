"""How the operator, the SDK (``jobline.client``) and ``kubectl jobline`` find the cluster: one order.

1. An explicit kubeconfig file (``--kubeconfig``) or context (``--context``): that kubeconfig.
2. ``$KUBECONFIG`` (one path or several, ``:``-separated): the kubeconfig it names.
3. In a pod (``$KUBERNETES_SERVICE_HOST`` and a service-account token): the pod's own identity.
4. ``~/.kube/config``.

This is kubectl's order but for 3 and 4, swapped: inside a pod that happens to have a
``~/.kube/config`` (a local-development node passing ``$HOME`` through), the pod's service account
is the identity its RBAC was written for. The environment is read at call time (the kubernetes
package reads ``$KUBECONFIG`` once, at import), and the global default configuration is never
touched: every caller gets a ``Configuration`` of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE: Final = "default"


def in_cluster(environ: Mapping[str, str] | None = None, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> bool:
    """Running in a pod: the service host is set and a service-account token is mounted."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (sa_dir / "token").exists()


def kubeconfig_path(
    path: str | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
) -> str | None:
    """The kubeconfig file(s) to read, or None for the in-cluster configuration (the order above)."""
    env = os.environ if environ is None else environ
    if path:
        return path
    if env.get("KUBECONFIG"):
        return env["KUBECONFIG"]
    if context is None and in_cluster(env, sa_dir):
        return None
    return str(Path("~/.kube/config").expanduser())


def load(
    path: str | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Any:
    """A fresh ``kubernetes.client.Configuration`` (raises ``kubernetes.config.ConfigException`` or
    OSError when the chosen source cannot be read)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    chosen = kubeconfig_path(path, context, environ=environ, sa_dir=sa_dir)
    if chosen is None:
        loader = config.incluster_config.InClusterConfigLoader(
            token_filename=str(sa_dir / "token"),
            cert_filename=str(sa_dir / "ca.crt"),
            environ=dict(os.environ if environ is None else environ),
        )
        loader.load_and_set(cfg)
    else:
        config.load_kube_config(
            config_file=chosen, context=context, client_configuration=cfg, persist_config=False
        )
    return cfg


def current_namespace(
    path: str | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
) -> str:
    """The namespace of the source :func:`kubeconfig_path` chooses: the pod's service-account namespace
    (in-cluster), else the kubeconfig context's; ``default`` when it has none. Raises LookupError when an
    explicit ``context`` is not in the kubeconfig."""
    chosen = kubeconfig_path(path, context, environ=environ, sa_dir=sa_dir)
    if chosen is None:
        try:
            return (sa_dir / "namespace").read_text().strip() or DEFAULT_NAMESPACE
        except OSError:
            return DEFAULT_NAMESPACE
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=chosen)
    except Exception:  # no kubeconfig, or an unreadable one: kubectl's answer is "default" too
        if context is not None:
            raise LookupError(
                f"context {context!r} not found: the kubeconfig {chosen} cannot be read"
            ) from None
        return DEFAULT_NAMESPACE
    if context is not None:
        active = next((c for c in contexts or () if c.get("name") == context), None)
        if active is None:
            raise LookupError(f"context {context!r} not found in the kubeconfig")
    namespace = ((active or {}).get("context") or {}).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE
