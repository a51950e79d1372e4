# One image for web, worker and beat. Multi-stage: build tools stay in the builder.
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 BH_DATA_DIR=/var/lib/binding-health
RUN useradd --system --uid 10001 --home-dir /app binding-health \
    && mkdir -p /var/lib/binding-health && chown binding-health /var/lib/binding-health
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=binding-health . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
USER binding-health
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["gunicorn", "dashboard.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
