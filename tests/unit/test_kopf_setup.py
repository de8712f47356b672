"""The kopf settings Jobline relies on: its diff base is off, which is only sound without change handlers."""

from __future__ import annotations

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
    resources = [kopf.Resource(names.GROUP, names.VERSION, plural)
                 for plural in (names.PLURAL_QUEUEDJOBS, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES)]
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
