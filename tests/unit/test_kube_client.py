"""jobline.kube on aiohttp, against a small HTTP server on loopback: what it sends, what it returns, and
every failure as a KubeError (so the loops log one line and retry)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from jobline.kube import MERGE, UNREACHABLE, Kube, KubeError, dumps, loads


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


class Server:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.answers: list[tuple[int, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        status, body = self.answers.pop(0) if self.answers else (200, b'{"ok": true}')
        return web.Response(status=status, body=body, content_type="application/json")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[Server, Kube]]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cfg = client.Configuration(host=f"http://127.0.0.1:{port}")
    cfg.api_key = {"authorization": "sekret"}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    kube = Kube(cfg, connections=2)
    try:
        yield srv, kube
    finally:
        await kube.close()
        await runner.cleanup()


def run(test: Callable[[Server, Kube], Awaitable[None]]) -> None:
    async def go() -> None:
        async with serving() as (srv, kube):
            await test(srv, kube)

    asyncio.run(go())


def test_a_merge_patch_is_sent_with_its_token_content_type_and_field_manager() -> None:
    run(_merge_patch)


async def _merge_patch(srv: Server, kube: Kube) -> None:
    srv.answers.append((200, b'{"status": {"phase": "Running"}}'))
    out = await kube.patch_status("queuedjobs", "ns", "a", {"phase": "Running"}, resource_version="7")
    assert out == {"status": {"phase": "Running"}}
    (req,) = srv.seen
    assert req["method"] == "PATCH"
    assert req["path"] == "/apis/jobline.dev/v1alpha1/namespaces/ns/queuedjobs/a/status"
    assert req["query"] == {"fieldManager": "jobline-operator"}
    assert req["headers"]["Authorization"] == "Bearer sekret"
    assert req["headers"]["Content-Type"] == MERGE
    assert json.loads(req["body"]) == {"status": {"phase": "Running"}, "metadata": {"resourceVersion": "7"}}
    assert kube.writes == 1


def test_a_list_follows_continue_tokens_and_sets_the_kind() -> None:
    run(_paged_list)


async def _paged_list(srv: Server, kube: Kube) -> None:
    srv.answers += [
        (
            200,
            b'{"metadata": {"continue": "c1", "resourceVersion": "5"}, "items": [{"metadata": {"name": "a"}}]}',
        ),
        (200, b'{"metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": "b"}}]}'),
    ]
    items, rv = await kube.list_with_version("/apis/x/v1/things", "app=x", kind="Thing")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and rv == 9
    assert all(i["kind"] == "Thing" for i in items)
    assert srv.seen[0]["query"] == {"limit": "500", "labelSelector": "app=x"}
    assert srv.seen[1]["query"] == {"limit": "500", "labelSelector": "app=x", "continue": "c1"}
    assert kube.writes == 0


@pytest.mark.parametrize(
    ("status", "body", "reason", "message"),
    [
        (
            404,
            b'{"kind": "Status", "reason": "NotFound", "message": "queuedjobs \\"a\\" not found"}',
            "NotFound",
            'queuedjobs "a" not found',
        ),
        (
            409,
            b'{"kind": "Status", "reason": "Conflict", "message": "the object has been modified"}',
            "Conflict",
            "the object has been modified",
        ),
        (500, b"<html>oops</html>", "Internal Server Error", "<html>oops</html>"),
        (422, b"[1, 2]", "Unprocessable Entity", "[1, 2]"),
    ],
)
def test_an_error_answer_is_a_kube_error_with_the_apiservers_reason(
    status: int, body: bytes, reason: str, message: str
) -> None:
    async def go(srv: Server, kube: Kube) -> None:
        srv.answers.append((status, body))
        with pytest.raises(KubeError) as raised:
            await kube.get_object("queuedjobs", "ns", "a")
        err = raised.value
        assert (err.status, err.reason, err.message) == (status, reason, message)

    run(go)


def test_a_body_with_an_integer_beyond_64_bits_is_sent_and_read_back() -> None:
    run(_big_int)


async def _big_int(srv: Server, kube: Kube) -> None:
    big = 10**30
    srv.answers.append((201, json.dumps({"spec": {"payload": {"n": big}}}).encode()))
    out = await kube.create_object("queuedjobs", "ns", {"spec": {"payload": {"n": big}}})
    assert out["spec"]["payload"]["n"] == big
    assert json.loads(srv.seen[0]["body"])["spec"]["payload"]["n"] == big
    assert loads(dumps({"n": big, "s": "ü"})) == {"n": big, "s": "ü"}


def test_an_unreachable_apiserver_is_a_kube_error_with_status_0() -> None:
    async def go() -> KubeError:
        kube = Kube(client.Configuration(host=f"http://127.0.0.1:{closed_port()}"), connections=1)
        try:
            with pytest.raises(KubeError) as raised:
                await kube.request("PATCH", "/apis/jobline.dev/v1alpha1/namespaces/a/queuedjobs/b/status", {})
        finally:
            await kube.close()
        return raised.value

    err = asyncio.run(go())
    assert err.status == 0 and err.reason == UNREACHABLE
    assert "PATCH /apis/jobline.dev/v1alpha1/namespaces/a/queuedjobs/b/status" in err.message


def test_kopfs_watch_lines_are_decoded_by_orjson_and_big_integers_stay_exact() -> None:
    from kopf._cogs.clients import api

    from jobline.handlers import watchjson

    assert watchjson.install(), "kopf moved its watch decoding: watchjson no longer applies"
    assert watchjson.install()  # idempotent
    line = '{"type": "MODIFIED", "object": {"spec": {"payload": {"n": 1000000000000000000000000000001}}}}'
    assert api.json.loads(line)["object"]["spec"]["payload"]["n"] == 10**30 + 1
    assert api.json.loads('{"a": [1, 2.5, "ü"]}') == {"a": [1, 2.5, "ü"]}
    assert api.json.JSONDecodeError is json.JSONDecodeError  # the rest is the json module
