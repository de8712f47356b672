"""Jobline: background jobs as Kubernetes resources."""

__version__ = "0.1.0"

from jobline.client import enqueue, get, wait

__all__ = ["__version__", "enqueue", "get", "wait"]
