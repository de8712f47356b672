"""What the tests and the benchmarks share to talk to a cluster: polling with a deadline, kubectl, and a
lean JSON client (:class:`Api`) with client-side watches (:class:`Watch`) and bulk writes (:class:`Bulk`).

The JSON client is for callers that must not pay for the official client's models (the benchmarks:
those cost more CPU than the API calls themselves); every wait has a deadline, every thread stops by
itself. The operator has its own client (``jobline.kube``), the local node its own
(``tests.cluster.localnode.api``): both must stay free of test code.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config

from jobline import names

T = TypeVar("T")
MERGE = "application/merge-patch+json"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``fn`` until it returns something truthy, or fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as exc:  # reported on timeout
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def kubectl(
    kubeconfig: Path, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    proc = subprocess.run(
        [KUBECTL, *args], env=env, capture_output=True, text=True, input=input, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def install_crds(kubeconfig: Path, crds: Path, timeout: int = 120) -> None:
    """Apply the CRDs in ``crds`` (server-side) and wait until the apiserver serves all three kinds."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(crds), timeout=timeout)
    plurals = (names.PLURAL_QUEUEDJOBS, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES)
    crds = [f"crd/{plural}.{names.GROUP}" for plural in plurals]

    # Polled rather than `kubectl wait --for=condition=Established`: right after the apply a CRD can
    # have no status.conditions yet, and kubectl wait then fails at once ("conditions accessor error").
    def established() -> bool:
        items = kubectl_json(kubeconfig, "get", *crds).get("items", [])
        return len(items) == len(crds) and all(
            any(
                c.get("type") == "Established" and c.get("status") == "True"
                for c in (item.get("status") or {}).get("conditions") or []
            )
            for item in items
        )

    wait_for(established, timeout, "the CRDs to be Established", interval=0.5)


def create_schedule(custom: Any, namespace: str, name: str, spec: dict[str, Any]) -> Any:
    """Create a JobSchedule through a ``CustomObjectsApi`` (the e2e tests make several)."""
    body = {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_JOBSCHEDULE,
        "metadata": {"name": name},
        "spec": spec,
    }
    return custom.create_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.PLURAL_JOBSCHEDULES, body
    )


def kubectl_json(kubeconfig: Path, *args: str) -> Any:
    return json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout)


# ------------------------------------------------------------------------------------------ JSON client
class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: bytes) -> None:
        super().__init__(f"{method} {path}: {status} {body[:300].decode(errors='replace')}")
        self.status = status


class Api:
    """JSON requests against one apiserver with the kubeconfig's (admin) credentials."""

    def __init__(self, kubeconfig: Path, pool: int = 32) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = pool
        self._client = client.ApiClient(cfg)
        self.host = str(cfg.host).rstrip("/")
        self.http: urllib3.PoolManager = self._client.rest_client.pool_manager

    def url(self, path: str, query: dict[str, str] | None = None) -> str:
        return self.host + path + ("?" + urlencode(query) if query else "")

    def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 60,
    ) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        resp = self.http.request(
            method,
            self.url(path, query),
            body=data,
            timeout=timeout,
            retries=False,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, method, path, resp.data)
        return bytes(resp.data)

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        data = self.raw(method, path, body, **kw)
        return json.loads(data) if data else None

    def get_or_none(self, path: str) -> Any:
        try:
            return self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None, timeout: float = 30) -> None:
        """Create namespace ``name`` (unless it exists) and wait for its default ServiceAccount."""
        try:
            self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
        except ApiError as exc:
            if exc.status != 409:
                raise
        # Pods cannot be created before the controller-manager made the default ServiceAccount.
        wait_for(
            lambda: self.get_or_none(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
            timeout,
            f"ServiceAccount {name}/default",
        )


Handler = Callable[[str, dict[str, Any], float], None]


class Watch(threading.Thread):
    """A client-side watch of one collection, calling ``handler(type, obj, monotonic_time)`` per event.

    Starts from "now" (a cheap list for the resourceVersion): existing objects are not replayed.
    Re-watches on timeouts, re-lists (and replays) on 410 Gone; stops within a second of ``stop()``.
    """

    def __init__(
        self, api: Api, path: str, handler: Handler, label_selector: str | None = None, name: str = "watch"
    ) -> None:
        super().__init__(name=f"kube-{name}", daemon=True)
        self.api = api
        self.path = path
        self.handler = handler
        self.label_selector = label_selector
        self._halt = threading.Event()
        self.ready = threading.Event()
        self.events = 0
        self.error: str | None = None
        self._resp: Any = None

    def stop(self) -> None:
        self._halt.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    def start_and_wait(self, timeout: float = 30) -> Watch:
        self.start()
        if not self.ready.wait(timeout):
            raise TimeoutError(f"watch {self.path} did not start: {self.error}")
        return self

    def _query(self, **extra: str) -> dict[str, str]:
        q = dict(extra)
        if self.label_selector:
            q["labelSelector"] = self.label_selector
        return q

    def _list(self, replay: bool) -> str:
        query = self._query(limit="500" if replay else "1")
        while True:
            page = self.api.request("GET", self.path, query=query)
            if replay:
                now = time.monotonic()
                for item in page.get("items", []):
                    self.handler("ADDED", item, now)
            token = (page.get("metadata") or {}).get("continue")
            if not replay or not token:
                return str(page["metadata"]["resourceVersion"])
            query["continue"] = token

    def run(self) -> None:
        rv: str | None = None
        replay = False
        while not self._halt.is_set():
            try:
                if rv is None:
                    rv = self._list(replay)
                    self.ready.set()
                rv, gone = self._watch(rv)
                if gone:
                    rv, replay = None, True
            except Exception as exc:  # transient (apiserver busy, connection reset): try again shortly
                self.error = repr(exc)
                if self._halt.wait(0.5):
                    break

    def _watch(self, rv: str) -> tuple[str, bool]:
        query = self._query(watch="1", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="30")
        resp = self.api.http.request(
            "GET",
            self.api.url(self.path, query),
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(connect=10, read=45),
            headers={"Accept": "application/json"},
        )
        self._resp = resp
        try:
            if resp.status != 200:
                body = resp.read()
                if resp.status == 410:
                    return rv, True
                raise ApiError(resp.status, "WATCH", self.path, body)
            buf = b""
            for chunk in resp.stream(None):
                if self._halt.is_set():
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    now = time.monotonic()
                    ev = json.loads(line)
                    obj = ev.get("object") or {}
                    kind = ev.get("type")
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            return rv, True
                        raise ApiError(int(obj.get("code") or 0), "WATCH", self.path, line)
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if kind == "BOOKMARK":
                        continue
                    self.events += 1
                    self.handler(str(kind), obj, now)
            return rv, False
        finally:
            self._resp = None
            resp.release_conn()


class Watches:
    """The watches of one scenario, stopped together."""

    def __init__(self) -> None:
        self.items: list[Watch] = []

    def add(self, watch: Watch) -> Watch:
        self.items.append(watch.start_and_wait())
        return watch

    def stop(self) -> None:
        for w in self.items:
            w.stop()
        for w in self.items:
            w.join(5)
        self.items.clear()

    def __enter__(self) -> Watches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ bulk writes
@dataclass
class Request:
    method: str
    path: str
    body: Any
    content_type: str = "application/json"


@dataclass
class BulkResult:
    started: float  # monotonic, just before the first request was sent
    finished: float  # monotonic, after the last response
    errors: list[str]
    client_cpu_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _run_chunk(api: Api, requests: Iterable[Request], threads: int) -> tuple[list[str], float]:
    cpu = time.process_time()
    errors: list[str] = []

    def one(req: Request) -> None:
        try:
            api.raw(req.method, req.path, req.body, content_type=req.content_type)
        except Exception as exc:
            errors.append(str(exc)[:300])

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube-bulk") as pool:
        list(pool.map(one, requests))
    return errors, time.process_time() - cpu


_WORKER_API: Api | None = None


def _worker_init(kubeconfig: str, threads: int) -> None:
    global _WORKER_API
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the runner
    _WORKER_API = Api(Path(kubeconfig), pool=threads + 2)


def _worker_run(args: tuple[list[Request], int]) -> tuple[list[str], float]:
    assert _WORKER_API is not None
    return _run_chunk(_WORKER_API, args[0], args[1])


def _worker_ping(_: int) -> int:
    return 0


class Bulk:
    """Many writes at once from a few processes (so the Python client is not the limit), each with threads."""

    def __init__(self, kubeconfig: Path, processes: int = 2, threads: int = 8) -> None:
        import multiprocessing

        self.processes = processes
        self.threads = threads
        ctx = multiprocessing.get_context("spawn")
        self.pool = ctx.Pool(processes, initializer=_worker_init, initargs=(str(kubeconfig), threads))
        self.pool.map(_worker_ping, range(processes * 2))  # warm: imports and clients ready

    def run(self, requests: list[Request]) -> BulkResult:
        chunks = [requests[i :: self.processes] for i in range(self.processes)]
        started = time.monotonic()
        results = self.pool.map(_worker_run, [(c, self.threads) for c in chunks if c])
        finished = time.monotonic()
        errors = [e for errs, _ in results for e in errs]
        return BulkResult(started, finished, errors, sum(cpu for _, cpu in results))

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()
