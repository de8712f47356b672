"""kopf's watch streams decoded with orjson, exactly as :func:`jobline.kube.loads` decodes responses.

Decoding the watch events of QueuedJobs and pods was the largest single cost in the operator's profile
(the standard library's ``JSONDecoder.raw_decode``: 9-20 % of its CPU under load, benchmarks/README.md).
kopf has no setting for its JSON decoder; its API module decodes each watch line with the ``json``
module it imported, so that name is pointed at a shim with the same ``loads``. If a kopf release moves
the decoding, nothing is replaced (a warning says so) and a unit test fails, so the speed is not lost
silently; everything else about kopf's watching is untouched.
"""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

from jobline.kube import loads

log = logging.getLogger("jobline")


class _Json(ModuleType):
    """The standard ``json`` module, with orjson's ``loads`` (integers beyond 64 bits kept exact)."""

    @staticmethod
    def loads(s: str | bytes, *args: Any, **kwargs: Any) -> Any:
        return json.loads(s, *args, **kwargs) if args or kwargs else loads(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)


def install() -> bool:
    """Point kopf's watch decoding at orjson. Returns whether it was done."""
    from kopf._cogs.clients import api  # private, on purpose: see the module's docstring

    current = getattr(api, "json", None)
    if isinstance(current, _Json):
        return True
    if current is not json or "json.loads(line" not in _source(api):
        log.warning("kopf decodes its watch streams differently than expected: they stay on the json module")
        return False
    api.json = _Json("json")  # type: ignore[attr-defined]
    return True


def _source(module: ModuleType) -> str:
    import inspect

    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""
