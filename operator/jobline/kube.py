"""A small async facade over the Kubernetes API: raw JSON in and out, calls run in a thread pool.

The official client is synchronous; its calls run in an executor so the event loop (kopf's watches)
never blocks. Responses are not turned into client models: the operator works on plain dicts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import urllib3
from kubernetes import client

from jobline import names

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


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
    """Async JSON calls against one API server."""

    def __init__(self, cfg: client.Configuration, workers: int = 16) -> None:
        cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, workers * 2)
        self.api = client.ApiClient(cfg)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")
        self.writes = 0  # API writes issued, for the benchmarks

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()

    def request_sync(
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
        m, url, headers, data, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(
                m, url, header_params=headers, body=data, post_params=post, _request_timeout=60
            )
            resp.read()
        except client.ApiException as exc:  # raised by the REST client for transport-level failures
            raise KubeError(exc.status or 0, exc.reason or "Error", str(exc.body or exc)) from exc
        except urllib3.exceptions.HTTPError as exc:
            # The apiserver is unreachable (refused, reset, timed out): an API error like any other, one
            # log line and a retry, not a traceback per write for as long as an outage lasts.
            raise KubeError(0, UNREACHABLE, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        raw: bytes = resp.data or b""
        if not 200 <= resp.status < 300:
            try:
                detail = json.loads(raw)
                message = detail.get("message", "")
                reason = detail.get("reason", resp.reason)
            except ValueError:
                message, reason = raw.decode(errors="replace")[:500], resp.reason
            raise KubeError(resp.status, str(reason), str(message))
        return json.loads(raw) if raw else None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.pool, lambda: self.request_sync(method, path, body, query=query, content_type=content_type)
        )

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
