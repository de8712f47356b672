"""What the local node says it is: its address, its capacity, its versions.

In one place because three parts state it and must agree: the API client (its User-Agent, the
service host pods get), the pods' environment and status (``status.podIP``, default resource
limits) and the Node object.
"""

from __future__ import annotations

KUBELET_VERSION = "v1.35.4-jobline-local"
RUNTIME_VERSION = "local://1"
LOCAL_IP = "127.0.0.1"  # the node's InternalIP and every pod's IP: pods are processes of this machine
CAPACITY = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
