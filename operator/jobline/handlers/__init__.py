"""Thin kopf adapters, one module per watched resource. Importing this package registers them.

They only feed the controller's store (``kopf.on.event`` keeps no progress annotations and adds no
finalizers, so watching costs no API writes); all decisions happen in :mod:`jobline.controller`.
"""

from . import (  # jobschedule: the schedule loop
    admission,
    jobqueue,
    jobschedule,
    login,  # kopf's own connection, from jobline.kubeconfig
    peering,  # after startup: it pauses the loops startup created
    pod,
    queuedjob,
    servers,  # /healthz, /metrics and the dashboard
    startup,
)

__all__ = [
    "admission",
    "jobqueue",
    "jobschedule",
    "login",
    "peering",
    "pod",
    "queuedjob",
    "servers",
    "startup",
]
