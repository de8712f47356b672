"""How ``kubectl jobline`` reaches the cluster: kubeconfig, --context, -n/-A, impersonation, errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from jobline import client as sdk
from jobline import kubeconfig, names

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the job failed, an item of a bulk action failed, an API error
EXIT_USAGE: Final = 2  # bad flags, bad JSON, bad values
EXIT_NOT_FOUND: Final = 3
EXIT_FORBIDDEN: Final = 4  # 401 or 403
EXIT_TIMEOUT: Final = 5

KINDS: Final = {
    names.PLURAL_QUEUEDJOBS: "queuedjob",
    names.PLURAL_JOBQUEUES: "jobqueue",
    names.PLURAL_JOBSCHEDULES: "jobschedule",
}


class CliError(Exception):
    """An error shown as ``error: <message>`` with exit code `code`."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def api_error(
    exc: Any, *, verb: str, plural: str, namespace: str | None, name: str | None = None
) -> CliError:
    """An ApiException as a CliError with a clear message and exit code."""
    status = getattr(exc, "status", None)
    kind = KINDS.get(plural, plural)
    where = f" in namespace {namespace!r}" if namespace else ""
    message = sdk.server_message(exc)
    if status == 404:
        if name is not None:
            return CliError(f'{kind} "{name}" not found{where}', EXIT_NOT_FOUND)
        return CliError(
            f"cannot {verb} {plural}{where}: not found (is Jobline installed?): {message}", EXIT_NOT_FOUND
        )
    if status == 403:
        return CliError(f"forbidden: you may not {verb} {plural}{where}: {message}", EXIT_FORBIDDEN)
    if status == 401:
        return CliError(
            f"unauthorized: the API server did not accept your credentials: {message}", EXIT_FORBIDDEN
        )
    if status == 409:
        return CliError(f"conflict on {kind} {name or ''}{where}: {message}")
    if status in (400, 422):
        return CliError(f"the API server refused the request: {message}", EXIT_USAGE)
    if status in (0, None):
        return CliError(f"cannot reach the API server: {message}")
    return CliError(f"{verb} {plural}{where} failed ({status}): {message}")


@dataclass
class Connection:
    """Options kubectl users expect, turned into API clients."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    as_user: str | None = None
    as_group: str | None = None
    token: str | None = None
    request_timeout: float = 30.0
    _api: Any = field(default=None, repr=False)
    _ns: str | None = field(default=None, repr=False)

    def api_client(self) -> Any:
        if self._api is not None:
            return self._api
        import kubernetes

        k8s: Any = kubernetes
        try:
            cfg = kubeconfig.load(self.kubeconfig, self.context)
        except (k8s.config.ConfigException, OSError) as exc:
            raise CliError(f"cannot load the cluster configuration: {exc}", EXIT_USAGE) from None
        if self.token:
            cfg.api_key = {"authorization": f"Bearer {self.token}"}
            cfg.cert_file = cfg.key_file = None
        api = k8s.client.ApiClient(cfg)
        if self.as_user:
            api.set_default_header("Impersonate-User", self.as_user)
        if self.as_group:
            api.set_default_header("Impersonate-Group", self.as_group)
        self._api = api
        return api

    @property
    def custom(self) -> Any:
        import kubernetes

        return kubernetes.client.CustomObjectsApi(self.api_client())

    @property
    def core(self) -> Any:
        import kubernetes

        return kubernetes.client.CoreV1Api(self.api_client())

    def ns(self) -> str:
        """The namespace: -n, else the chosen source's (the context's, or the pod's in-cluster), else ``default``."""
        if self.namespace:
            return self.namespace
        if self._ns is None:
            try:
                self._ns = kubeconfig.current_namespace(self.kubeconfig, self.context)
            except LookupError as exc:
                raise CliError(str(exc.args[0]), EXIT_USAGE) from None
        return self._ns

    def scope(self) -> str | None:
        """None for all namespaces (-A), else the namespace."""
        return None if self.all_namespaces else self.ns()

    # --- calls -----------------------------------------------------------------------------

    def list(
        self,
        plural: str,
        *,
        namespace: str | None,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """All objects of `plural` in `namespace` (None: every namespace), page by page."""
        from kubernetes.client.exceptions import ApiException

        kwargs: dict[str, Any] = {"limit": 500, "_request_timeout": self.request_timeout}
        if field_selector:
            kwargs["field_selector"] = field_selector
        if label_selector:
            kwargs["label_selector"] = label_selector
        while True:
            try:
                if namespace is None:
                    page = self.custom.list_cluster_custom_object(
                        names.GROUP, names.VERSION, plural, **kwargs
                    )
                else:
                    page = self.custom.list_namespaced_custom_object(
                        names.GROUP, names.VERSION, namespace, plural, **kwargs
                    )
            except ApiException as exc:
                raise api_error(exc, verb="list", plural=plural, namespace=namespace) from None
            yield from page.get("items") or ()
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            kwargs["_continue"] = token

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, plural, name, _request_timeout=self.request_timeout
            )
        except ApiException as exc:
            raise api_error(exc, verb="get", plural=plural, namespace=namespace, name=name) from None
        return obj

    def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (the custom objects API sends merge-patch for dict bodies)."""
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.custom.patch_namespaced_custom_object(
                names.GROUP,
                names.VERSION,
                namespace,
                plural,
                name,
                body,
                field_manager=names.FIELD_MANAGER_CLI,
                _request_timeout=self.request_timeout,
            )
        except ApiException as exc:
            raise api_error(exc, verb="patch", plural=plural, namespace=namespace, name=name) from None
        return obj

    def delete(self, plural: str, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                names.GROUP,
                names.VERSION,
                namespace,
                plural,
                name,
                propagation_policy="Background",
                _request_timeout=self.request_timeout,
            )
        except ApiException as exc:
            raise api_error(exc, verb="delete", plural=plural, namespace=namespace, name=name) from None
