"""A local node: a small Python "kubelet" that runs the pods bound to it as local processes.

Usage (the launcher, :mod:`tests.cluster.controlplane`, runs it with cwd = the repository root)::

    python -m tests.cluster.localnode --kubeconfig PATH --node-name jobline-local --state-dir DIR \\
        --port PORT --tls-cert CERT.pem --tls-key KEY.pem

It runs in the foreground until SIGTERM/SIGINT and logs to stderr (UTC timestamps, one line per pod
and container transition; environment values are never logged). On SIGTERM it stops every pod
process group it started (SIGTERM, SIGKILL after 2 s) and exits 0.

What it does, like a kubelet would:

* registers Node ``<node-name>`` (labels ``kubernetes.io/hostname``, ``kubernetes.io/os``,
  ``kubernetes.io/arch``, ``jobline.dev/node-type=local``, ``jobline.dev/node=local``; tainted
  ``jobline.dev/node=local:NoSchedule``, so only pods that tolerate and select it land here; 8 CPUs, 16Gi, 110 pods; InternalIP
  127.0.0.1) with condition Ready=True, renews its Lease in ``kube-node-lease`` every 10 s and the
  Ready heartbeat every 20 s;
* lists/watches pods with ``spec.nodeName=<node-name>`` and gives each one a supervisor thread that
  runs the init containers one by one and then the containers, each as its own process group. The
  image is ignored: a container runs ``command + args`` (``$(VAR)`` expanded) with an environment
  built from ``envFrom``/``env`` (ConfigMaps, Secrets, downward API fields, resource fields) on top
  of a minimal base (``PATH`` of the node, ``HOME``, ``HOSTNAME``, ``LANG``) plus the ``kubernetes``
  service's ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``/``KUBERNETES_SERVICE_PORT_HTTPS``,
  taken from the server URL of the node's kubeconfig (``127.0.0.1:<apiserver port>``; the service's
  clusterIP is not routable here); the container's own ``env``/``envFrom`` entries win;
* sets up the pod's volumes once, before its first container starts, under
  ``<state-dir>/pods/<namespace>_<pod>_<uid>/volumes/<volume>/``, and has podexec bind-mount them at
  each ``volumeMounts[].mountPath`` (``subPath``/``subPathExpr`` honoured; ``readOnly`` gives a
  read-only remount; configMap, secret, projected and downwardAPI volumes are always read-only, like a
  kubelet's). Supported: ``configMap`` and ``secret`` (``items``, ``defaultMode``/``mode``,
  ``optional``), ``downwardAPI`` (``fieldRef`` as for env, ``resourceFieldRef``), ``projected``
  (``serviceAccountToken``, ``configMap``, ``secret``, ``downwardAPI``), ``emptyDir`` (a per-pod
  directory shared by the pod's containers) and ``hostPath`` (the host path itself; ``type`` checked,
  ``DirectoryOrCreate``/``FileOrCreate`` create it, and so does an empty ``type`` when nothing is there). A ``serviceAccountToken`` is a real bound token
  from the TokenRequest API (for ``spec.serviceAccountName``, default ``default``; ``audience``;
  ``expirationSeconds``, at least 600; bound to the pod), so the ``kube-api-access-*`` volume that the
  ServiceAccount admission plugin adds at ``/var/run/secrets/kubernetes.io/serviceaccount`` gives the
  standard in-cluster config (token, ``ca.crt`` from ConfigMap ``kube-root-ca.crt``, namespace). Files
  are plain files (no ``..data`` symlinks), default mode 0644. A missing required ConfigMap/Secret/key,
  a failed TokenRequest (or any other volume problem) leaves the containers waiting with
  ``CreateContainerConfigError`` and a message and is retried every second (``kube-root-ca.crt`` is
  published by the controller-manager shortly after a namespace is created; a real kubelet reports
  this as ``ContainerCreating`` plus a ``FailedMount`` event). **Note:** a bind mount needs a target,
  so podexec creates a missing ``mountPath`` on the host (a directory, or an empty file for a file
  source) and leaves it there, e.g. ``/var/run/secrets/kubernetes.io/serviceaccount`` is created once
  as an empty directory. The mounts exist only in each container's private mount namespace, so
  concurrent pods each see their own token. Not done: token refresh (tokens live at least 600 s, the
  admission plugin's ones an hour or more: enough for tests), updating configMap/secret volumes after
  start, ``emptyDir`` ``medium``/``sizeLimit``, ``mountPropagation``, fsGroup/ownership; other volume
  types (persistentVolumeClaim, ephemeral, csi, ...) give ``CreateContainerConfigError``;
* every container starts through the shim :mod:`tests.cluster.podexec`, which gives it a private
  mount namespace where its own ``<container>.termination-log`` is bind-mounted over its
  ``terminationMessagePath``. **Note:** a bind mount needs a target, so when that path (by default
  ``/dev/termination-log``) does not exist on the host, podexec creates an empty file there (the node
  runs as root) and leaves it;
* stdout+stderr go to ``<state-dir>/pods/<namespace>_<pod>_<uid>/<container>.log`` (the previous
  instance's log is kept as ``<container>.previous.log``) and are served for ``kubectl logs`` over
  HTTPS on 127.0.0.1:PORT (``/containerLogs/{ns}/{pod}/{container}``: ``follow``, ``tailLines``,
  ``limitBytes``, ``previous``; plus ``/healthz``). The apiserver must reach it by InternalIP:
  ``--kubelet-preferred-address-types=InternalIP`` (the Hostname address is the node name);
* reports pod status through ``pods/status`` (phases, container states, conditions, restart
  counts), honours ``restartPolicy`` (back-off 1 s, 2 s, 4 s ... 10 s), ``activeDeadlineSeconds``,
  graceful deletion (then deletes the pod with grace 0, like a kubelet) and, on start-up, marks pods
  it had been running before a restart as Failed (``ContainerStatusUnknown``).

Not supported: probes (a running container is ready), lifecycle hooks, resource limits,
exec/attach/port-forward, service links for services other than ``kubernetes`` (and its
``KUBERNETES_PORT*`` variables).

One module per concern, so each can be read (and changed) without the others:

* :mod:`.api`: the JSON API client (``ApiError`` to act on, ``TransientError`` to retry);
* :mod:`.identity`: what the node says it is (IP, capacity, versions);
* :mod:`.environment`: a container's ``env``/``envFrom`` and the downward API;
* :mod:`.volumes`: a pod's volumes and each container's mounts;
* :mod:`.containers`: one container's process (through podexec), log and termination message;
* :mod:`.podworker`: one pod's lifecycle and status;
* :mod:`.logserver`: ``kubectl logs``;
* :mod:`.node`: the Node object, the pod watch, the workers;
* :mod:`.__main__`: the command line.
"""

from __future__ import annotations

from .api import ApiError, Kube, TransientError
from .containers import Container, Instance
from .environment import ConfigError, expand, parse_quantity
from .logserver import LogHandler, LogServer
from .node import LocalNode
from .podworker import PodWorker
from .volumes import PodVolumes, VolumeError

__all__ = [
    "ApiError",
    "ConfigError",
    "Container",
    "Instance",
    "Kube",
    "LocalNode",
    "LogHandler",
    "LogServer",
    "PodVolumes",
    "PodWorker",
    "TransientError",
    "VolumeError",
    "expand",
    "parse_quantity",
]
