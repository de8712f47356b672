# syntax=docker/dockerfile:1
# The Jobline image: runs `jobline-operator`, and is the base for worker images (see docs/install.md).
# Build:  docker build -t jobline:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="jobline" \
      org.opencontainers.image.description="Background jobs as Kubernetes resources"
RUN groupadd --gid 65532 jobline \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin jobline
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels /root/.cache
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Non-root, so the restricted Pod Security profile (runAsNonRoot) is satisfied.
USER 65532:65532
WORKDIR /app
CMD ["jobline-operator"]
