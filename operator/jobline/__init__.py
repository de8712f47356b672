"""Jobline: background jobs as Kubernetes resources.

``jobline.enqueue``, ``jobline.get`` and ``jobline.wait`` are the SDK's (:mod:`jobline.client`), loaded
on first use: importing a part of the package (the pure core, the worker) does not load the SDK,
the Kubernetes client or pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from jobline.client import enqueue, get, wait

_SDK = ("enqueue", "get", "wait")


def __getattr__(name: str) -> Any:
    if name in _SDK:
        from jobline import client

        return getattr(client, name)
    raise AttributeError(f"module 'jobline' has no attribute {name!r}")


__all__ = ["__version__", "enqueue", "get", "wait"]
