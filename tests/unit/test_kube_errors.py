"""jobline.kube maps every failure of a request to KubeError, so the loops log one line and retry."""

from __future__ import annotations

import socket

import pytest
from kubernetes import client

from jobline.kube import UNREACHABLE, Kube, KubeError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_an_unreachable_apiserver_is_a_kube_error_with_status_0() -> None:
    cfg = client.Configuration(host=f"http://127.0.0.1:{closed_port()}")
    cfg.retries = False
    kube = Kube(cfg, workers=1)
    try:
        with pytest.raises(KubeError) as raised:
            kube.request_sync("PATCH", "/apis/jobline.dev/v1alpha1/namespaces/a/queuedjobs/b/status", {})
    finally:
        kube.close()
    err = raised.value
    assert err.status == 0 and err.reason == UNREACHABLE
    assert "PATCH /apis/jobline.dev/v1alpha1/namespaces/a/queuedjobs/b/status" in err.message
