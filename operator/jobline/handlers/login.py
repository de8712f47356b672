"""kopf's own API connection (its watches) from the same configuration as ours (:mod:`jobline.kubeconfig`).

kopf's built-in login tries in-cluster first and reads ``$KUBECONFIG`` as of import; registering
this handler replaces it, so ``--kubeconfig`` and the documented order hold for kopf too.
"""

from __future__ import annotations

from typing import Any

import kopf

from jobline import runtime
from jobline.kube import load_config


@kopf.on.login()
def login(memo: object, settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    cfg = load_config(runtime.of(memo).settings.kubeconfig)
    # As kopf's login_via_client reads a client Configuration: the bearer token under either key.
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        trust_env=settings.networking.trust_env,
    )
