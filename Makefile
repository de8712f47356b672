# Jobline developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEV    := .dev

.PHONY: bench bench-pool help venv binaries browser lint test test-unit test-real test-e2e cluster cluster-down cluster-status crds clean dev

help:
	@echo "make test          - venv + binaries (built once, cached in ~/.cache/jobline) + lint + the whole suite"
	@echo "make cluster       - start the local control plane (+ the real node) in the background, writes $(DEV)/kubeconfig"
	@echo "make images        - build the operator and worker images (podman, offline) and load them into the cluster"
	@echo "make dev           - cluster + the operator in the foreground (IN_CLUSTER=1: as a pod from the image)"
	@echo "make test-real     - the e2e suite with every worker pod on the real node (the worker image)"
	@echo "make cluster-down  - stop it"
	@echo "make soak          - the fault-injection suite (tests/faults) with a bigger load and longer faults (docs/reliability.md)"
	@echo "make crds          - regenerate crds/ from the pydantic models"
	@echo "make bench         - the benchmarks side by side with Job and CronJob (kwok nodes, --quick)"
	@echo "make bench-pool    - pool mode vs pod-per-attempt vs Job on the real node (--quick)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

binaries: venv
ifndef JOBLINE_TEST_KUBECONFIG
	$(PY) -m tests.cluster.build
endif

# ruff (lint and the one formatter), mypy (types) and import-linter (the layering contracts in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check operator tests benchmarks
	$(VENV)/bin/ruff format --check operator tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# The dashboard's browser tests drive Debian's Chromium (Playwright with executablePath, no download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (Debian package) for the dashboard's browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: the browser tests will be skipped"; fi; }

# `make images`: the operator and worker images, built with podman from Debian packages, no registry and
# no network inside the builds, cached in ~/.cache/jobline (tests/cluster/images.py). `make test` builds
# them too unless JOBLINE_TEST_KUBECONFIG points the suite at an existing cluster.
.PHONY: images podman-tools
podman-tools:
	@{ command -v podman && command -v mmdebstrap && command -v runc; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing podman, buildah, mmdebstrap, runc (Debian packages) to build the images"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah mmdebstrap runc uidmap >/dev/null; \
	  else echo "podman, mmdebstrap or runc is missing and cannot be installed here (needs root and apt-get):" \
	    "apt-get install podman buildah mmdebstrap runc uidmap" >&2; exit 1; fi; }

images: venv podman-tools
	$(PY) -m tests.cluster.images
	$(PY) -m tests.cluster load --workdir $(DEV) --if-running

ifndef JOBLINE_TEST_KUBECONFIG
test: images
endif

# The test cluster's real node (tests/cluster/realnode.py): containerd + runc, the CNI plugins,
# iptables and conntrack for kube-proxy, all Debian packages.
NODE_PACKAGES := containerd runc containernetworking-plugins iptables iproute2 conntrack
.PHONY: node-deps
node-deps:
	@{ command -v containerd && command -v runc && command -v iptables && command -v conntrack \
	   && { [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ]; }; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(NODE_PACKAGES) (Debian packages) for the test cluster's real node"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(NODE_PACKAGES) >/dev/null; \
	  else echo "the real node needs $(NODE_PACKAGES), which are missing and cannot be installed here" \
	    "(needs root and apt-get); or start the cluster with: python -m tests.cluster up --no-realnode" >&2; exit 1; fi; }

ifndef JOBLINE_TEST_KUBECONFIG
test: node-deps
cluster: node-deps
endif

# The whole suite (workers on the local node), then the e2e suite again with every worker pod on the
# real node (containers of the worker image), as it runs against any other cluster.
test: venv binaries lint browser
	$(VENV)/bin/pytest
ifndef JOBLINE_TEST_KUBECONFIG
	JOBLINE_TEST_WORKERS=real $(VENV)/bin/pytest tests/e2e
endif

test-unit: venv
	$(VENV)/bin/pytest tests/unit

# The fault-injection suite (its own control plane; `make test` runs it with a small load) with a bigger
# load and longer faults: JOBLINE_SOAK=1 is read by tests/faults/conftest.py. See docs/reliability.md.
.PHONY: soak
soak: venv binaries
	JOBLINE_SOAK=1 $(VENV)/bin/pytest -p no:cacheprovider -s tests/faults

# The e2e suite with every worker pod on the real node (containers of the worker image) instead of the
# local node's processes: what JOBLINE_TEST_KUBECONFIG runs against any other cluster.
test-real: venv binaries images node-deps
	JOBLINE_TEST_WORKERS=real $(VENV)/bin/pytest tests/e2e

cluster: venv binaries
	$(PY) -m tests.cluster up --workdir $(DEV)

cluster-down: venv
	$(PY) -m tests.cluster down --workdir $(DEV)

cluster-status: venv
	$(PY) -m tests.cluster status --workdir $(DEV)

crds: venv
	$(PY) -m jobline.crdgen

clean: cluster-down
	rm -rf $(DEV) .pytest_cache .mypy_cache .ruff_cache

# The operator in the foreground against the local cluster (CRDs applied first), as a process;
# `make dev IN_CLUSTER=1`: as a pod from the image, installed with the chart on the real node.
HELM = $$($(PY) -c 'from tests.chart_render import helm; print(helm())')
dev: cluster images
	$(VENV)/bin/kubectl --kubeconfig $(DEV)/kubeconfig apply --server-side --force-conflicts -f crds/
ifdef IN_CLUSTER
	$(HELM) --kubeconfig $(DEV)/kubeconfig upgrade --install jobline charts/jobline -n jobline-system \
	  --create-namespace --skip-crds --wait --timeout 180s --set dashboard.enabled=true
	$(VENV)/bin/kubectl --kubeconfig $(DEV)/kubeconfig -n jobline-system logs -f deploy/jobline
else
	$(VENV)/bin/jobline-operator --kubeconfig $(DEV)/kubeconfig
endif

# manifests/install.yaml: the chart rendered with defaults, for `kubectl apply -f` users.
manifests: binaries
	$(PY) -m tests.chart_render > manifests/install.yaml
	cp crds/*.yaml charts/jobline/crds/

# Benchmarks side by side with the Job and CronJob controllers (see benchmarks/README.md).
bench: venv binaries
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m benchmarks run --quick

# Pool mode against pod-per-attempt and the Job controller, on the real node (code really runs there).
bench-pool: venv binaries images node-deps
	$(PY) -m benchmarks.pool --quick
