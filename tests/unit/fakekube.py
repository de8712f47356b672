"""An in-memory, async fake of :class:`jobline.kube.Kube` for step tests of the controller loops.

It answers ``request(method, path, body, query=, content_type=)`` like the apiserver would for the
path forms the operator uses, and inherits every convenience method of the real ``Kube``
(``patch_status``, ``patch_meta``, ``delete_object``, ``list_objects``, ``create_pod``,
``delete_pod``, ``event`` ...), so those run their real code over this fake transport:

- objects are stored by path; each write assigns the next resourceVersion (one counter, like etcd),
  creation assigns a uid, a creationTimestamp (from the injected clock) and ``generateName``;
- POST of an existing name is 409 AlreadyExists, a missing object is 404 NotFound;
- a merge patch (RFC 7386) whose body carries ``metadata.resourceVersion`` that is not current is
  409 Conflict; ``/status`` changes only the status, the main resource never changes the status
  of a Jobline kind (status subresource), a spec change bumps ``metadata.generation``;
- DELETE honours ``preconditions.uid`` (409 on a mismatch);
- lists filter by namespace and a simple label selector (``key``, ``!key``, ``key=value``,
  ``key!=value``, comma-separated) and carry the list's resourceVersion; no paging.

Every call is recorded in ``calls`` (method, path, body, query); posted Events are also in ``events``.
``fail(method, path, error)`` makes the next matching call raise ``error`` (fault injection).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jobline import names
from jobline.core.timefmt import fmt
from jobline.kube import MERGE, Kube, KubeError

_PATH = re.compile(
    r"^(?P<base>/api/v1|/apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$"
)
_KINDS = {
    "pods": "Pod",
    "events": "Event",
    names.PLURAL_QUEUEDJOBS: names.KIND_QUEUEDJOB,
    names.PLURAL_JOBQUEUES: names.KIND_JOBQUEUE,
    names.PLURAL_JOBSCHEDULES: names.KIND_JOBSCHEDULE,
}
_JOBLINE_API = f"/apis/{names.GROUP}/{names.VERSION}"


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    query: Mapping[str, str] = field(default_factory=dict)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _matches(labels: Mapping[str, str], selector: str | None) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKube(Kube):
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:  # no API client, no session
        self.clock = clock or (lambda: datetime.now(UTC))
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.events: list[dict[str, Any]] = []
        self.writes = 0
        self._rv = 100
        self._uid = 0
        self._names = 0
        self._faults: list[tuple[str, str, KubeError]] = []

    async def close(self) -> None:
        pass

    # ------------------------------------------------------------------ test helpers
    def fail(self, method: str, path: str, error: KubeError) -> None:
        """The next ``method`` call on exactly ``path`` raises ``error`` (once)."""
        self._faults.append((method, path, error))

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``obj`` (with apiVersion, kind, metadata.namespace and name) as a client would, status kept."""
        body: dict[str, Any] = copy.deepcopy(dict(obj))
        meta = body["metadata"]
        path = self.path_of(body["kind"], meta["namespace"], meta["name"])
        status = body.pop("status", None)
        created = self._create(path.rsplit("/", 1)[0], body)
        if status is not None:
            created["status"] = status
        return copy.deepcopy(created)

    def get(self, kind_or_plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(self.path_of(kind_or_plural, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def all(self, kind_or_plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        plural = self._plural(kind_or_plural)
        return [
            copy.deepcopy(o)
            for p, o in sorted(self.objects.items())
            if self._parse(p)["plural"] == plural and namespace in (None, o["metadata"].get("namespace"))
        ]

    def update(
        self, kind_or_plural: str, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Change a stored object in place as another writer would (kubelet, user, replica): new resourceVersion."""
        path = self.path_of(kind_or_plural, namespace, name)
        obj = self.objects[path]
        change(obj)
        self._bump(obj)
        return copy.deepcopy(obj)

    def calls_to(self, method: str, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    def path_of(self, kind_or_plural: str, namespace: str, name: str) -> str:
        plural = self._plural(kind_or_plural)
        base = "/api/v1" if plural in ("pods", "events") else _JOBLINE_API
        return f"{base}/namespaces/{namespace}/{plural}/{name}"

    @staticmethod
    def _plural(kind_or_plural: str) -> str:
        for plural, kind in _KINDS.items():
            if kind_or_plural in (plural, kind):
                return plural
        raise ValueError(f"unknown kind {kind_or_plural!r}")

    # ------------------------------------------------------------------ the transport
    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        self.calls.append(Call(method, path, copy.deepcopy(body), dict(query or {})))
        if method != "GET":
            self.writes += 1
        for i, (m, p, error) in enumerate(self._faults):
            if m == method and p == path:
                del self._faults[i]
                raise error
        parts = self._parse(path)
        name, sub = parts["name"], parts["sub"]
        if method == "GET":
            return self._list(parts, query or {}) if name is None else copy.deepcopy(self._existing(path))
        if method == "POST" and name is None:
            created = copy.deepcopy(self._create(path, copy.deepcopy(body)))
            if parts["plural"] == "events":
                self.events.append(created)
            return created
        if method == "PATCH" and name is not None:
            if content_type != MERGE:
                raise KubeError(415, "UnsupportedMediaType", f"the fake speaks only {MERGE}")
            return copy.deepcopy(
                self._patch(path.removesuffix("/status"), body or {}, status=sub == "status")
            )
        if method == "DELETE" and name is not None and sub is None:
            self._delete(path, body)
            return {"kind": "Status", "status": "Success"}
        raise KubeError(405, "MethodNotAllowed", f"{method} {path} is not supported by the fake")

    @staticmethod
    def _parse(path: str) -> dict[str, str | None]:
        match = _PATH.match(path)
        if not match:
            raise KubeError(404, "NotFound", f"the server could not find the requested resource ({path})")
        return match.groupdict()

    def _existing(self, path: str) -> dict[str, Any]:
        obj = self.objects.get(path)
        if obj is None:
            parts = self._parse(path)
            raise KubeError(404, "NotFound", f'{parts["plural"]} "{parts["name"]}" not found')
        return obj

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _list(self, parts: dict[str, str | None], query: Mapping[str, str]) -> dict[str, Any]:
        items = []
        for p, obj in sorted(self.objects.items()):
            q = self._parse(p)
            if q["plural"] != parts["plural"] or q["base"] != parts["base"]:
                continue
            if parts["ns"] is not None and q["ns"] != parts["ns"]:
                continue
            if not _matches(obj["metadata"].get("labels") or {}, query.get("labelSelector")):
                continue
            item = copy.deepcopy(obj)
            item.pop("apiVersion", None)  # a list's items carry no kind (what the operator must cope with)
            item.pop("kind", None)
            items.append(item)
        return {
            "kind": "List",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = self._parse(collection)
        meta = body.setdefault("metadata", {})
        if parts["ns"] is not None:
            if meta.get("namespace") not in (None, parts["ns"]):
                raise KubeError(400, "BadRequest", "the namespace of the object does not match the path")
            meta["namespace"] = parts["ns"]
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise KubeError(422, "Invalid", "metadata.name or metadata.generateName is required")
            self._names += 1
            meta["name"] = f"{meta['generateName']}{self._names:05x}"
        path = f"{collection}/{meta['name']}"
        if path in self.objects:
            raise KubeError(409, "AlreadyExists", f'{parts["plural"]} "{meta["name"]}" already exists')
        plural = parts["plural"] or ""
        body.setdefault("apiVersion", names.API_VERSION if parts["group"] else "v1")
        body.setdefault("kind", _KINDS.get(plural, plural))
        self._uid += 1
        meta["uid"] = f"uid-{self._uid:04d}"
        meta["creationTimestamp"] = fmt(self.clock().replace(microsecond=0))
        meta.pop("resourceVersion", None)
        if plural != "events":
            meta["generation"] = 1
        if parts["group"] == names.GROUP:
            body.pop("status", None)  # status subresource: a create sets no status
        elif plural == "pods":
            body["status"] = {"phase": "Pending"}
        self._bump(body)
        self.objects[path] = body
        return body

    def _patch(self, path: str, body: Mapping[str, Any], *, status: bool) -> dict[str, Any]:
        obj = self._existing(path)
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want is not None and want != obj["metadata"]["resourceVersion"]:
            raise KubeError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on "{obj["metadata"]["name"]}": the '
                "object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        subresource = self._parse(path)["group"] == names.GROUP
        if status:
            new = copy.deepcopy(obj)
            patched_status = merge_patch(obj.get("status"), body.get("status"))
            if patched_status:
                new["status"] = patched_status
            else:
                new.pop("status", None)
        else:
            patch = {k: v for k, v in body.items() if not (subresource and k == "status")}
            meta_patch = {
                k: v
                for k, v in (patch.get("metadata") or {}).items()
                if k not in ("resourceVersion", "uid", "creationTimestamp", "name", "namespace")
            }
            new = merge_patch(obj, {**patch, "metadata": meta_patch})
            if new.get("spec") != obj.get("spec"):
                new["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
        self._bump(new)
        self.objects[path] = new
        return new

    def _delete(self, path: str, body: Mapping[str, Any] | None) -> None:
        obj = self._existing(path)
        uid = ((body or {}).get("preconditions") or {}).get("uid")
        if uid is not None and uid != obj["metadata"].get("uid"):
            raise KubeError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {obj['metadata'].get('uid')}",
            )
        del self.objects[path]
