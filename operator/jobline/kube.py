"""A small async facade over the Kubernetes API: raw JSON in and out, on the event loop.

The operator's calls go through aiohttp (which kopf already runs on), so a write costs no thread hop,
no urllib3 pool and no client models: one coroutine from the controller step to the socket. JSON is
encoded and decoded with orjson (with the standard library as the fallback for integers beyond 64
bits in a user's payload, which orjson refuses to write and would round when reading). The CLI and the SDKs keep the official client.
Authentication, TLS and the proxy come from the same ``kubernetes.client.Configuration`` that
:mod:`jobline.kubeconfig` loads, its token refresh hook included (rotated service-account tokens).
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import orjson
from kubernetes import client

from jobline import names

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT: Final = 60.0


UNREACHABLE: Final = "Unreachable"  # KubeError.reason when no answer came (status 0)


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def dumps(obj: Any) -> bytes:
    """JSON bytes of a request body (orjson; the standard library for what orjson cannot encode)."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits in a payload
        return json.dumps(obj, separators=(",", ":")).encode()


# orjson reads an integer beyond 64 bits as a float (silently rounding a user's payload), so a body
# with a run of 19 or more digits anywhere goes to the standard library, which keeps it exact. The
# check maps every digit to "0" and looks for 19 of them: a few microseconds for a pod (a regular
# expression cost as much as the standard library's whole decode).
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER: Final = b"0" * 19


def loads(raw: bytes | str) -> Any:
    """A response body or watch line (orjson; the standard library for what orjson refuses or would round)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if _LONG_NUMBER in data.translate(_DIGITS_TO_ZERO):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def ssl_context(cfg: client.Configuration) -> ssl.SSLContext | bool:
    """TLS as the configuration says: its CA (else the system's), its client certificate, or no
    verification at all when the kubeconfig says ``insecure-skip-tls-verify``."""
    if not cfg.host.startswith("https"):
        return False
    if not cfg.verify_ssl:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.assert_hostname is False:
            ctx.check_hostname = False
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


def load_config(kubeconfig: str | None = None) -> client.Configuration:
    """The operator's configuration, found as :mod:`jobline.kubeconfig` documents."""
    from jobline import kubeconfig as loader

    cfg: client.Configuration = loader.load(kubeconfig)
    return cfg


def resource_version(obj: Mapping[str, Any] | None) -> int:
    """``metadata.resourceVersion`` as a number (0 when absent): etcd revisions, so newer is larger."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


def with_kind(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """Set apiVersion and kind (watch events and list items lack them; Events need them)."""
    obj.setdefault("apiVersion", names.API_VERSION)
    obj.setdefault("kind", kind)
    return obj


def collection_path(plural: str, namespace: str | None = None) -> str:
    """The list path of a Jobline kind (``pods`` too), in one namespace or (None) all of them."""
    base = "/api/v1" if plural == "pods" else f"/apis/{names.GROUP}/{names.VERSION}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def job_path(namespace: str, name: str | None = None, plural: str = names.PLURAL_QUEUEDJOBS) -> str:
    base = f"/apis/{names.GROUP}/{names.VERSION}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


class Kube:
    """Async JSON calls against one API server, on one aiohttp session (created on first use, in the
    running loop). ``connections`` bounds the requests in flight, as the thread pool did before."""

    def __init__(self, cfg: client.Configuration, connections: int = 32) -> None:
        self.cfg = cfg
        self.base = cfg.host.rstrip("/")
        self.connections = connections
        self.ssl = ssl_context(cfg)
        self.server_hostname = getattr(cfg, "tls_server_name", None) or None
        self.session: aiohttp.ClientSession | None = None
        self.writes = 0  # API writes issued, for the benchmarks

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, ssl=self.ssl)
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                json_serialize=lambda obj: dumps(obj).decode(),
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "jobline-operator", "Accept": "application/json"},
            )
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _auth(self) -> dict[str, str]:
        token = self.cfg.get_api_key_with_prefix("BearerToken", alias="authorization")  # refreshes
        if token:
            return {"Authorization": token}
        if self.cfg.username or self.cfg.password:
            return {"Authorization": self.cfg.get_basic_auth_token() or ""}
        return {}

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if method != "GET":
            self.writes += 1
        headers = self._auth()
        data = None
        if body is not None:
            data = dumps(body)
            headers["Content-Type"] = content_type
        try:
            async with self._session().request(
                method,
                self.base + path,
                params=dict(query) if query else None,
                data=data,
                headers=headers,
                proxy=self.cfg.proxy or None,
                server_hostname=self.server_hostname,
            ) as resp:
                raw = await resp.read()
                status, phrase = resp.status, resp.reason or ""
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # The apiserver is unreachable (refused, reset, timed out): an API error like any other, one
            # log line and a retry, not a traceback per write for as long as an outage lasts.
            raise KubeError(0, UNREACHABLE, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            try:
                detail = loads(raw)
                message = detail.get("message", "")
                reason = detail.get("reason", phrase)
            except (ValueError, AttributeError):
                message, reason = raw.decode(errors="replace")[:500], phrase
            raise KubeError(status, str(reason), str(message))
        return loads(raw) if raw else None

    # --- QueuedJobs and other custom resources
    async def get_object(self, plural: str, namespace: str, name: str) -> Any:
        return await self.request("GET", job_path(namespace, name, plural))

    async def create_object(self, plural: str, namespace: str, body: Mapping[str, Any]) -> Any:
        return await self.request("POST", job_path(namespace, None, plural), body)

    async def patch_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> Any:
        """A merge patch of ``status``; with ``resource_version``, only over that version (else 409), so a
        status computed from an object is never written over a newer one."""
        body: dict[str, Any] = {"status": patch}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self.request(
            "PATCH",
            job_path(namespace, name, plural) + "/status",
            body,
            content_type=MERGE,
            query={"fieldManager": names.FIELD_MANAGER},
        )

    async def patch_meta(self, plural: str, namespace: str, name: str, metadata: Mapping[str, Any]) -> Any:
        return await self.request(
            "PATCH",
            job_path(namespace, name, plural),
            {"metadata": metadata},
            content_type=MERGE,
            query={"fieldManager": names.FIELD_MANAGER},
        )

    async def delete_object(self, plural: str, namespace: str, name: str, uid: str | None = None) -> None:
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"} if uid else None
        try:
            await self.request("DELETE", job_path(namespace, name, plural), body)
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise

    async def list_objects(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return (await self.list_with_version(path, label_selector))[0]

    async def list_with_version(
        self, path: str, label_selector: str | None = None, kind: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Every item (page by page) and the list's resourceVersion: an object the list lacks whose last
        known version is not newer than that was deleted meanwhile. ``kind`` is set on the items (a list's
        items carry none)."""
        items: list[dict[str, Any]] = []
        query: dict[str, str] = {"limit": "500"}
        if label_selector:
            query["labelSelector"] = label_selector
        while True:
            page = await self.request("GET", path, query=query)
            items += page.get("items", [])
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            query["continue"] = meta["continue"]
        if kind is not None:
            for item in items:
                with_kind(item, kind)
        return items, resource_version(page)

    # --- pods
    async def create_pod(self, namespace: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the pod; if it exists already (an earlier operator made it), return that one. -> (pod, created)"""
        try:
            return await self.request("POST", f"/api/v1/namespaces/{namespace}/pods", body), True
        except KubeError as exc:
            if not exc.conflict:
                raise
        name = body["metadata"]["name"]
        return await self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}"), False

    async def delete_pod(self, namespace: str, name: str) -> None:
        try:
            await self.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
        except KubeError as exc:
            if not exc.not_found:
                raise

    # --- events
    async def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event (what `kubectl describe` shows). Failures are logged, never raised."""
        from jobline.core.timefmt import fmt, now

        meta = obj.get("metadata", {})
        ts = fmt(now())
        body = {
            "metadata": {
                "generateName": f"{meta.get('name', 'x')[:200]}.",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "jobline-operator"},
            "reportingComponent": "jobline.dev/operator",
            "reportingInstance": "jobline-operator",
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
        }
        try:
            await self.request("POST", f"/api/v1/namespaces/{meta.get('namespace')}/events", body)
        except KubeError as exc:
            log.warning("could not post event %s on %s: %s", reason, meta.get("name"), exc)
