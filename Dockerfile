# syntax=docker/dockerfile:1
# One image for web (gunicorn), worker and beat (celery) and the migrate job.
# Multi-stage: pip and anything a wheel build might need stay in the builder; the final stage gets
# only the virtualenv and the code, owned by root and run as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --require-virtualenv -r requirements.txt
# The runtime never installs anything: drop the installer from the venv it ships.
RUN /opt/venv/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="binding-health" \
      org.opencontainers.image.description="Per-protocol reachability of AWS Load Balancer Controller TargetGroupBindings" \
      org.opencontainers.image.source="https://github.com/example/binding-health"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BH_DATA_DIR=/var/lib/binding-health \
    DEBUG=false
# uid/gid 10001: matches runAsUser/fsGroup in deploy/kubernetes (no clash with host users).
RUN groupadd --system --gid 10001 binding-health \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin binding-health \
    && mkdir -p /var/lib/binding-health \
    && chown binding-health:binding-health /var/lib/binding-health
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Root-owned code: the runtime user can read it but never rewrite it (.dockerignore keeps .venv,
# var/, tests and caches out).
COPY . .
# Byte-compile once here: at run time the root filesystem may be read-only (Kubernetes manifests).
RUN python -m compileall -q /app/bindings /app/dashboard
USER binding-health
# Hashed, compressed static files and their manifest, baked into the image (whitenoise serves them).
# A throwaway key: collectstatic needs settings to import, nothing is signed.
RUN SECRET_KEY=collectstatic-only BH_STATIC_MANIFEST=true python manage.py collectstatic --noinput -v 0
EXPOSE 8000
# Liveness only (/healthz needs no database). Host: localhost because ALLOWED_HOSTS in production
# names the public host; keep "localhost" in it for probes. Readiness (/readyz) is wired in
# docker-compose.yml and the Kubernetes manifests.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys,urllib.request as u; r=u.Request('http://127.0.0.1:8000/healthz', headers={'Host': 'localhost'}); sys.exit(u.urlopen(r, timeout=4).status != 200)"]
# GUNICORN_CMD_ARGS (gunicorn's own variable) adds or overrides options, e.g. "--workers 5".
# No control socket: it would live in the (nonexistent, read-only) home directory.
CMD ["gunicorn", "dashboard.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--no-control-socket"]
