"""The test cluster, a package of its own that the tests and the benchmarks both import.

- ``build``, ``versions.env``, ``go/``: the control plane, kubelet and tools built from pinned Go modules.
- ``controlplane``, ``certs``, ``procs``: the launcher (etcd, apiserver, controller-manager, scheduler).
- ``realnode``: a kubelet + containerd + runc node in namespaces of its own; ``images``: what it runs.
- ``localnode/``: a small Python kubelet that runs pods as processes (split by concern: API client,
  environment, volumes, containers, pod worker, log server, node).
- ``kwok``: fake nodes for scale; ``operator_process``: the operator as a process, ready on ``/readyz``.
- ``__main__``: ``python -m tests.cluster up|down|status|serve|load``.
"""
