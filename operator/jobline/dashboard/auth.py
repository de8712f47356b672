"""Who is asking and what may they do: TokenReview and SubjectAccessReview, so Kubernetes RBAC decides.

A request carries ``Authorization: Bearer <token>`` (any token the API server accepts, e.g. from
``kubectl create token``). The operator reviews the token (TokenReview) and asks the API server
whether that user may do the read or action at hand (SubjectAccessReview: verb, jobline.dev
resource, namespace, name). Results are cached briefly (tokens 30 s, decisions 10 s), so a
revoked token or a removed RoleBinding takes effect within that time. Tokens are never logged and
only their SHA-256 is kept in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from jobline import names
from jobline.kube import KubeError

log = logging.getLogger("jobline.dashboard")

TOKEN_REVIEW_PATH: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
SAR_PATH: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
TOKEN_TTL: Final = 30.0
DECISION_TTL: Final = 10.0
CACHE_SIZE: Final = 4096


class HttpError(Exception):
    """An error answered as ``{"error": message}`` with HTTP `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class User:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.username, self.uid, self.groups)


class Requester(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any: ...


class Auth(Protocol):
    mode: str

    async def authenticate(self, authorization: str | None) -> User: ...

    async def allowed(
        self, user: User, verb: str, resource: str, namespace: str, name: str | None = None
    ) -> bool: ...


class _Cache:
    """A small TTL + LRU map."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self.data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any:
        hit = self.data.get(key)
        if hit is None:
            return None
        if hit[0] < self.clock():
            del self.data[key]
            return None
        self.data.move_to_end(key)
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = (self.clock() + self.ttl, value)
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


class TokenAuth:
    """Bearer token -> TokenReview -> User; each read and action -> SubjectAccessReview."""

    mode = "token"

    def __init__(self, kube: Requester, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.tokens = _Cache(TOKEN_TTL, CACHE_SIZE, clock)
        self.decisions = _Cache(DECISION_TTL, CACHE_SIZE * 4, clock)

    async def authenticate(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HttpError(
                401,
                "authentication required: send a Kubernetes bearer token "
                "(Authorization: Bearer <token>, e.g. from `kubectl create token NAME`)",
            )
        if not token.isascii() or not token.isprintable() or " " in token:
            # A bearer token is printable ASCII (RFC 6750); a header of other bytes (aiohttp hands them on as
            # surrogates) is none the API server could accept, and would not even encode for the review.
            raise HttpError(401, "the token was not accepted by the Kubernetes API server")
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self.tokens.get(digest)
        if isinstance(cached, User):
            return cached
        if cached == "denied":
            raise HttpError(401, "the token was not accepted by the Kubernetes API server")
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            answer = await self.kube.request("POST", TOKEN_REVIEW_PATH, review)
        except KubeError as exc:
            log.error(
                "TokenReview failed (%s %s): does the operator's ServiceAccount have create on "
                "tokenreviews.authentication.k8s.io?",
                exc.status,
                exc.reason,
            )
            raise HttpError(503, "the operator cannot review tokens right now (TokenReview failed)") from None
        status = (answer or {}).get("status") or {}
        if not status.get("authenticated"):
            self.tokens.put(digest, "denied")
            raise HttpError(401, "the token was not accepted by the Kubernetes API server")
        info = status.get("user") or {}
        user = User(
            username=str(info.get("username") or ""),
            uid=str(info.get("uid") or ""),
            groups=tuple(info.get("groups") or ()),
            extra={k: tuple(v) for k, v in (info.get("extra") or {}).items()},
        )
        self.tokens.put(digest, user)
        return user

    async def allowed(
        self, user: User, verb: str, resource: str, namespace: str, name: str | None = None
    ) -> bool:
        key = (user.key(), verb, resource, namespace, name)
        cached = self.decisions.get(key)
        if cached is not None:
            return bool(cached)
        attrs: dict[str, Any] = {
            "verb": verb,
            "group": names.GROUP,
            "version": names.VERSION,
            "resource": resource,
            "namespace": namespace,
        }
        if name:
            attrs["name"] = name
        spec: dict[str, Any] = {
            "user": user.username,
            "groups": list(user.groups),
            "resourceAttributes": attrs,
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        try:
            answer = await self.kube.request("POST", SAR_PATH, review)
        except KubeError as exc:
            log.error(
                "SubjectAccessReview failed (%s %s): does the operator's ServiceAccount have create on "
                "subjectaccessreviews.authorization.k8s.io?",
                exc.status,
                exc.reason,
            )
            raise HttpError(
                503, "the operator cannot check permissions right now (SubjectAccessReview failed)"
            ) from None
        allowed = bool(((answer or {}).get("status") or {}).get("allowed"))
        self.decisions.put(key, allowed)
        return allowed


class NoAuth:
    """``--dashboard-auth=none``: everyone may do everything. Local development only."""

    mode = "none"
    USER: Final = User("anonymous (--dashboard-auth=none)", groups=("system:unauthenticated",))

    async def authenticate(self, authorization: str | None) -> User:
        return self.USER

    async def allowed(
        self, user: User, verb: str, resource: str, namespace: str, name: str | None = None
    ) -> bool:
        return True


def where(namespace: str) -> str:
    return f"in namespace {namespace}" if namespace else "cluster-wide"


async def require(
    auth: Auth, user: User, verb: str, resource: str, namespace: str, name: str | None = None
) -> None:
    """403 unless `user` may `verb` `resource` (named `name`) in `namespace` ("" = all namespaces)."""
    if not await auth.allowed(user, verb, resource, namespace, name):
        what = f"{resource}/{name}" if name else resource
        raise HttpError(403, f"forbidden: {user.username} may not {verb} {what} {where(namespace)}")


async def readable(
    auth: Auth,
    user: User,
    verb: str,
    resource: str,
    namespace: str | None,
    candidates: set[str],
    *,
    strict: bool = True,
) -> set[str] | None:
    """Namespaces whose `resource` `user` may `verb`: None means every namespace (cluster-wide right).

    With `namespace` given, that one (403 if denied). Otherwise the cluster-wide right, else the
    namespaces among `candidates` (those holding objects) where the right is granted; when that is
    none of them and `strict`, 403.
    """
    if namespace:
        if strict:
            await require(auth, user, verb, resource, namespace)
            return {namespace}
        return {namespace} if await auth.allowed(user, verb, resource, namespace) else set()
    if await auth.allowed(user, verb, resource, ""):
        return None
    ordered = sorted(candidates)
    answers = await asyncio.gather(*(auth.allowed(user, verb, resource, ns) for ns in ordered))
    granted = {ns for ns, ok in zip(ordered, answers, strict=True) if ok}
    if not granted and candidates and strict:
        raise HttpError(403, f"forbidden: {user.username} may not {verb} {resource} in any namespace")
    return granted
