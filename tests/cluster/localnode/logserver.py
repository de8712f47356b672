"""The node's HTTPS endpoint for ``kubectl logs``: ``/containerLogs/{ns}/{pod}/{container}`` and ``/healthz``.

The apiserver proxies ``kubectl logs`` to a node's kubelet port (here 127.0.0.1:PORT, reached by the
node's InternalIP). A server of its own, apart from the pods, because it only reads the log files
the containers write; ``follow`` streams until the container's instance exits.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .containers import tail_offset
from .identity import LOCAL_IP

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("localnode")


class LogHandler(BaseHTTPRequestHandler):
    server: LogServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def _reply(self, code: int, text: str) -> None:
        body = (text.rstrip("\n") + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") in ("/healthz", "/healthz/ping"):
            self._reply(200, "ok")
            return
        m = re.fullmatch(r"/containerLogs/([^/]+)/([^/]+)/([^/]+)/?", parts.path)
        if not m:
            self._reply(404, f"404 page not found: {parts.path}")
            return
        ns, pod, ctr = (unquote(x) for x in m.groups())
        query = parse_qs(parts.query)

        def flag(name: str) -> bool:
            return query.get(name, ["false"])[0].lower() in ("true", "1")

        def number(name: str) -> int | None:
            try:
                return int(query[name][0]) if name in query else None
            except ValueError:
                return None

        previous = flag("previous")
        found = self.server.node.find_log(ns, pod, ctr, previous)
        if isinstance(found, tuple) and isinstance(found[0], int):
            self._reply(found[0], str(found[1]))
            return
        path, exited = found
        assert isinstance(path, Path)
        follow = flag("follow") and exited is not None
        tail = number("tailLines")
        limit = number("limitBytes")
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, possibly after a long stream
        except OSError as exc:
            self._reply(404, f"cannot read log of container {ctr!r} in pod {ns}/{pod}: {exc.strerror}")
            return
        with f:
            f.seek(tail_offset(f, tail) if tail is not None and tail >= 0 else 0)
            if not follow:
                data = f.read()
                if limit is not None and limit >= 0:
                    data = data[:limit]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream(f, exited, limit)

    def _stream(self, f: Any, exited: threading.Event | None, limit: int | None) -> None:
        sent = 0
        stopping = self.server.node.stopping
        try:
            while True:
                chunk = f.read(65536)
                if chunk:
                    if limit is not None and limit >= 0:
                        chunk = chunk[: max(0, limit - sent)]
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    sent += len(chunk)
                    if limit is not None and 0 <= limit <= sent:
                        return
                    continue
                if exited is None or exited.is_set() or stopping.is_set():
                    rest = f.read()
                    if rest:
                        self.wfile.write(rest if limit is None or limit < 0 else rest[: max(0, limit - sent)])
                    return
                exited.wait(0.2)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            return


class LogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, node: LocalNode, port: int, cert: str, key: str) -> None:
        self.node = node
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.tls.verify_mode = ssl.CERT_NONE  # the apiserver's client certificate is not checked
        super().__init__((LOCAL_IP, port), LogHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the request's own thread, not in the accept loop.
        request.settimeout(60)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("http: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                conn.close()
