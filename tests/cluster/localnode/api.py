"""The local node's API client: JSON dicts over the kubernetes package's HTTP pool, and the API's formats.

Not the official client's models: a kubelet-like loop only moves JSON around, and it must tell an
answer it can act on (:class:`ApiError`, e.g. 404 or 409) from one it should simply retry
(:class:`TransientError`: unreachable, timed out, 429/5xx).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTClientObject

from .identity import KUBELET_VERSION, LOCAL_IP

Json = dict[str, Any]


# ------------------------------------------------------------------------------ API time stamps
def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------------------- client
class TransientError(Exception):
    """The API server could not be reached or did not answer in time."""


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: bytes | str) -> None:
        self.status = status
        self.body = body.decode(errors="replace") if isinstance(body, bytes) else body
        self.reason = ""
        self.message = self.body[:500]
        with contextlib.suppress(ValueError, AttributeError):
            parsed = json.loads(self.body)
            self.reason = str(parsed.get("reason") or "")
            self.message = str(parsed.get("message") or self.message)
        super().__init__(f"HTTP {status} {self.reason}: {self.message}")


class Kube:
    """A thin JSON client over the kubernetes package's configuration and HTTP pool (dicts in, dicts out)."""

    def __init__(self, kubeconfig: str) -> None:
        cfg = kclient.Configuration()
        kconfig.load_kube_config(
            config_file=kubeconfig,
            client_configuration=cfg,  # type: ignore[no-untyped-call]
            persist_config=False,
        )
        cfg.connection_pool_maxsize = 64
        self._cfg = cfg
        self._rest = RESTClientObject(cfg)
        self.host = str(cfg.host).rstrip("/")
        url = urlsplit(self.host)
        # What pods get as KUBERNETES_SERVICE_HOST/PORT: the apiserver this node talks to (the
        # "kubernetes" service's clusterIP is not routable from local processes).
        self.service_host = url.hostname or LOCAL_IP
        self.service_port = url.port or (443 if url.scheme == "https" else 80)

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"jobline-localnode/{KUBELET_VERSION}"}
        auth = self._cfg.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            headers["authorization"] = str(auth["value"])
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _url(self, path: str, query: Mapping[str, object] | None) -> str:
        return self.host + path + (("?" + urlencode(query)) if query else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = 30.0,
    ) -> Any:
        if body is not None and content_type is None:
            content_type = "application/json"
        try:
            resp = self._rest.request(  # type: ignore[no-untyped-call]
                method,
                self._url(path, query),
                headers=self._headers(content_type),
                body=body,
                _request_timeout=(5.0, timeout),
            )
            data = resp.read()
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            raise TransientError(f"{method} {path}: {exc}") from exc
        if resp.status >= 400:
            if resp.status in (429, 500, 502, 503, 504):
                raise TransientError(f"{method} {path}: HTTP {resp.status}")
            raise ApiError(resp.status, data or b"")
        return json.loads(data) if data else None

    def get(self, path: str, **query: object) -> Any:
        return self.request("GET", path, query=query or None)

    def get_optional(self, path: str) -> Json | None:
        try:
            return dict(self.get(path))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, path: str, body: Any, kind: str = "strategic") -> Any:
        ctype = {
            "strategic": "application/strategic-merge-patch+json",
            "merge": "application/merge-patch+json",
        }[kind]
        return self.request("PATCH", path, body=body, content_type=ctype)

    def watch(self, path: str, query: Mapping[str, object], timeout: float) -> Iterator[Json]:
        """Yield watch events (dicts) until the server ends the stream."""
        try:
            resp = self._rest.request(  # type: ignore[no-untyped-call]
                "GET",
                self._url(path, {**query, "watch": "true"}),
                headers=self._headers(None),
                _request_timeout=(5.0, timeout),
            )
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            raise TransientError(f"watch {path}: {exc}") from exc
        raw = resp.response
        try:
            if resp.status >= 400:
                raise ApiError(resp.status, raw.read() or b"")
            buf = b""
            for chunk in raw.stream(None, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield dict(json.loads(line))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"watch {path}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                raw.release_conn()
            with contextlib.suppress(Exception):
                raw.close()


def pod_path(ns: str, name: str, sub: str = "") -> str:
    return f"/api/v1/namespaces/{quote(ns)}/pods/{quote(name)}" + (f"/{sub}" if sub else "")
