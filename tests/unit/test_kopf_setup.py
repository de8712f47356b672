"""The kopf settings Jobline relies on: its diff base is off (sound only without change handlers), the webhook path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kopf

import jobline.handlers  # noqa: F401  (registers the handlers)
from jobline import names
from jobline.handlers import admission
from jobline.handlers.startup import NoDiffBase


def test_no_handler_needs_kopf_diff_base() -> None:
    """on.create/update/delete/resume/field and daemons/timers use kopf's diff of the object; with the
    diff base off they would misfire. Jobline must register only event, index and activity handlers."""
    admission.register()  # the webhook handlers too, as with --webhook-port
    registry = kopf.get_default_registry()
    resources = [
        kopf.Resource(names.GROUP, names.VERSION, plural)
        for plural in (names.PLURAL_QUEUEDJOBS, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES)
    ]
    resources.append(kopf.Resource("", "v1", "pods"))
    watched = [r for r in resources if registry._watching.has_handlers(resource=r)]
    assert len(watched) == len(resources)  # the check below looks at resources Jobline really watches
    for resource in resources:
        assert not registry._changing.has_handlers(resource=resource), resource
        assert not registry._spawning.has_handlers(resource=resource), resource


def test_no_diff_base_copies_nothing() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"payload": "x" * 1000}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    storage.store(body=body, patch=kopf.Patch(), essence=storage.build(body=body))


def test_in_cluster_webhook_path_is_valid_for_the_apiserver(tmp_path: Path) -> None:
    """kopf appends "/<handler id>" to the Service path: the result must be "/queuedjob", not "//queuedjob"
    (which the apiserver refuses, crash-looping the operator pod: found on the real node)."""
    import asyncio

    from kopf._core.engines.admission import _inject_handler_id

    from jobline.handlers.admission import ServiceWebhookServer
    from jobline.webhook import write_pair
    from tests.cluster.procs import free_port

    certfile, keyfile, cadata = write_pair(tmp_path, ["localhost"])
    port = free_port()
    server = ServiceWebhookServer(
        addr="127.0.0.1", port=port, certfile=str(certfile), pkeyfile=str(keyfile), cadata=cadata
    )
    server.service = "jobline-system/jobline"

    async def first_config() -> dict[str, Any]:
        gen = server.__call__(lambda *_a, **_k: None)
        try:
            return dict(await gen.__anext__())
        finally:
            await gen.aclose()

    config = asyncio.run(asyncio.wait_for(first_config(), 20))
    service = _inject_handler_id(config, "queuedjob")["service"]  # type: ignore[arg-type]
    assert service == {"namespace": "jobline-system", "name": "jobline", "port": port, "path": "/queuedjob"}
