# syntax=docker/dockerfile:1
# The Jobline image: runs `jobline-operator`, and is the base for worker images (see docs/install.md).
# Build:  docker build -t jobline:0.1.0 .
# Here (no Docker engine, no registry): `make images` (tests/cluster/images.py) builds it with podman
# on a Debian base made by mmdebstrap, offline, from wheels built on the host:
#   podman build --build-arg BASE=localhost/jobline-base:bookworm --build-arg WHEELHOUSE=wheelhouse ...
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# WHEELHOUSE: a directory in the build context holding the jobline wheel and all its dependencies;
# when set nothing is downloaded (pip --no-index). Unset: build from source and the index, as usual.
ARG WHEELHOUSE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The context is pyproject.toml, README.md and operator/ (plus the wheelhouse if any): see .dockerignore.
COPY . ./
# A venv: the same on python:3.11-slim and on Debian's python3, which is "externally managed" (PEP 668).
RUN python3 -m venv /opt/jobline \
 && if [ -n "$WHEELHOUSE" ]; then \
      /opt/jobline/bin/pip install --no-index --find-links "$WHEELHOUSE" jobline; \
    else \
      /opt/jobline/bin/pip install . ; \
    fi

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="jobline" \
      org.opencontainers.image.description="Background jobs as Kubernetes resources" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --gid 65532 jobline \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin jobline
COPY --from=build /opt/jobline /opt/jobline
ENV PATH=/opt/jobline/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Non-root, so the restricted Pod Security profile (runAsNonRoot) is satisfied; nothing is written to
# the image at run time, so a read-only root filesystem works (the chart mounts an emptyDir on /tmp).
USER 65532:65532
WORKDIR /app
CMD ["jobline-operator"]
