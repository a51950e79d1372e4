"""Binding Health settings: one module, driven by environment variables.

Embedded defaults boot a first run with no services: SQLite in the data directory, and a Celery
broker on the filesystem (kombu's filesystem transport) when REDIS_URL is unset. Tasks are never
silently run eagerly: a running demo has a real worker. See `.env.example` for every setting.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envsecret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (how Kubernetes and compose mount secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from None
    return os.environ.get(name, default)


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envcidrs(name: str, default: str = "") -> list[str]:
    """A comma-separated list of CIDRs, each checked at start-up rather than on every request."""
    cidrs = envlist(name, default)
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {cidr!r} is not an address or CIDR") from None
    return cidrs


DEBUG = envbool("DEBUG", False)
DATA_DIR = Path(os.environ.get("BH_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

# The fallback key only serves a local first run; `check --deploy` flags it in production (W009
# recognises the "django-insecure-" prefix, which is why the fallback carries it).
SECRET_KEY = envsecret("SECRET_KEY") or "django-insecure-dev-key-binding-health-change-me-0123456789"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",  # serves the API docs' Swagger UI from local static files instead of a CDN
    "bindings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "bindings.security.ContentSecurityPolicyMiddleware",
    # Last, so it sees each page first on the way out: control/format characters from cluster
    # and AWS data shown as visible escapes (bindings/web/visible.py).
    "bindings.web.visible.VisibleTextMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "bindings.web.sso.context",
            ],
            # The page helpers live with the pages (bindings/web/), not in a second app.
            "libraries": {"dashboard_tags": "bindings.web.templatetags.dashboard_tags"},
        },
    },
]

DATABASE_URL = envsecret("DATABASE_URL")
if DATABASE_URL:
    # Health checks: a persistent connection killed by a database restart or failover is
    # replaced at the next request instead of failing it with OperationalError.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BH_SQLITE_PATH") or DATA_DIR / "db.sqlite3",
            # SQLite serialises writers; a wait beats "database is locked" when worker and web
            # write at once in the demo.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # A file, not memory, so a worker process started by a test shares the test database.
            "TEST": {"NAME": DATA_DIR / "test.sqlite3"},
        }
    }

REDIS_URL = envsecret("REDIS_URL")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Without Redis the poll locks and rate limiter live in files shared by the demo's processes.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            # Django's default of 300 entries culls the attribute and topology caches as soon as
            # an account has more than ~150 target groups (measured: every warm poll of 2,000
            # target groups re-fetched all their attributes), and the analysis input digests with
            # them. Entries are small; the poller's own TTLs bound the total.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at start-up when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, pre-compressed static files (far-future cache headers) once collectstatic has written a
# manifest, i.e. in the image. Without one (tests, `runserver`) the manifest storage would fail every
# {% static %} tag, so the default follows the manifest; BH_STATIC_MANIFEST=true forces it (the
# Dockerfile's collectstatic run), false turns it off.
BH_STATIC_MANIFEST = envbool("BH_STATIC_MANIFEST", not DEBUG and (STATIC_ROOT / "staticfiles.json").is_file())
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if BH_STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# --- single sign-on (OpenID Connect; bindings/web/sso.py, docs/operations.md) -------------------
BH_OIDC_ENABLED = envbool("BH_OIDC_ENABLED", False)
BH_OIDC_LABEL = os.environ.get("BH_OIDC_LABEL", "Sign in with single sign-on")
# The claim holding the user's groups, and which groups make which role (JSON object
# {"viewer": [...], "may-apply": [...], "admin": [...]}). Empty mapping: every user is a viewer.
BH_OIDC_GROUPS_CLAIM = os.environ.get("BH_OIDC_GROUPS_CLAIM", "groups")
try:
    BH_OIDC_ROLE_GROUPS: dict[str, list[str]] = json.loads(os.environ.get("BH_OIDC_ROLE_GROUPS") or "{}")
except ValueError as exc:
    raise ImproperlyConfigured(f"BH_OIDC_ROLE_GROUPS must be a JSON object: {exc}") from None
if not isinstance(BH_OIDC_ROLE_GROUPS, dict) or not all(
    isinstance(v, list) and all(isinstance(g, str) for g in v) for v in BH_OIDC_ROLE_GROUPS.values()
):
    raise ImproperlyConfigured('BH_OIDC_ROLE_GROUPS must look like {"admin": ["group", ...], ...}')
# mozilla-django-oidc's own settings, under its names (endpoints from the provider's
# /.well-known/openid-configuration; the client secret from a file or variable).
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = envsecret("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_USERNAME_ALGO = "bindings.web.sso.username_from_email"
OIDC_TIMEOUT = envint("OIDC_TIMEOUT", 10)
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if BH_OIDC_ENABLED:
    # Local passwords stay (demo, break-glass); the OIDC backend only answers the callback.
    AUTHENTICATION_BACKENDS.insert(0, "bindings.web.sso.RoleMappingBackend")
LOGOUT_REDIRECT_URL = "login"

# --- Celery -------------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    _broker_dir = DATA_DIR / "broker"
    # kombu's filesystem transport expects its folders to exist.
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    # A host part, though the transport ignores it: without one kombu warns "No hostname was
    # supplied" on every connection, which fills the demo's logs.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (pidbox) messages: without this kombu writes ./control in the working dir.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Never eager: a running demo or deployment has a real worker, so tasks behave as in production.
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Poll tasks go to per-shard queues when BH_POLL_SHARDS > 1 (bindings.tasks.route_poll); every
# other task stays on the default queue.
CELERY_TASK_ROUTES = ["bindings.tasks.route_poll"]
CELERY_BEAT_SCHEDULE = {
    # The per-source cadence is data (Cluster/AwsAccount.poll_interval_seconds); this tick only
    # dispatches what is due. `expires` keeps a backlog from running stale ticks.
    "dispatch-due-polls": {
        "task": "bindings.tasks.dispatch_due_polls_task",
        "schedule": float(envint("BH_DISPATCH_EVERY_SECONDS", 15)),
        "options": {"expires": 14},
    },
    "send-alerts": {
        "task": "bindings.alerts.send_alerts_task",
        "schedule": float(envint("BH_DISPATCH_EVERY_SECONDS", 15)),
        "options": {"expires": 14},
    },
    "emit-kube-events": {
        "task": "bindings.kube_events.emit_kube_events_task",
        "schedule": float(envint("BH_DISPATCH_EVERY_SECONDS", 15)),
        "options": {"expires": 14},
    },
    "prune-history": {
        "task": "bindings.tasks.prune_history_task",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Active probes: the per-binding cadence is data (ProbeSetting.interval_seconds, else
    # BH_PROBE_INTERVAL_SECONDS); this tick fans out the clusters with probing configured.
    "dispatch-probes": {
        "task": "bindings.probe_tasks.dispatch_probes_task",
        "schedule": 30.0,
        "options": {"expires": 29},
    },
}

# --- Binding Health -----------------------------------------------------------------------------
# Client-side rate limit of AWS Describe calls per account and region, shared by all workers.
# The ELB Describe bucket refills at 10/s and the controller needs its share (docs/facts.md §5.3).
BH_AWS_CALLS_PER_SECOND = float(os.environ.get("BH_AWS_CALLS_PER_SECOND", "5"))
BH_ATTRIBUTE_CACHE_SECONDS = envint("BH_ATTRIBUTE_CACHE_SECONDS", 600)
# Target health of stable groups (every binding reachable, every target healthy, no change for a
# day) is described at most this often; other groups every poll. 0: every group every poll.
# Only with BH_POLL_ADAPTIVE.
BH_STABLE_HEALTH_SECONDS = envint("BH_STABLE_HEALTH_SECONDS", 600)
BH_POLL_SOFT_TIME_LIMIT = envint("BH_POLL_SOFT_TIME_LIMIT", 240)
# How long a poll's per-source lock lives: longer than the hard time limit (soft + 30 s), so a
# worker killed mid-poll blocks its source for at most this long.
BH_POLL_LOCK_SECONDS = envint("BH_POLL_LOCK_SECONDS", BH_POLL_SOFT_TIME_LIMIT + 60)
BH_HISTORY_RETENTION_DAYS = envint("BH_HISTORY_RETENTION_DAYS", 30)
BH_HISTORY_SAMPLE_SECONDS = envint("BH_HISTORY_SAMPLE_SECONDS", 300)
BH_KUBE_REQUEST_TIMEOUT = envint("BH_KUBE_REQUEST_TIMEOUT", 20)
# Subnets and VPCs (CIDRs; practically immutable) are cached this long between polls; 0 = never.
BH_TOPOLOGY_CACHE_SECONDS = envint("BH_TOPOLOGY_CACHE_SECONDS", 3600)
# Polls spread over this many queues per kind (polls.kube.<n>, polls.aws.<n>, n = pk % shards) so
# workers can be pinned to shards; 1 keeps every poll on the default queue (single worker, demo).
BH_POLL_SHARDS = max(1, envint("BH_POLL_SHARDS", 1))
# Adaptive cadence (bindings.services.polling.adaptive_intervals): sources with blocked/partial bindings
# or changes in the last hour are polled at half their interval, sources stable for a day at
# twice it, never outside these bounds.
BH_POLL_ADAPTIVE = envbool("BH_POLL_ADAPTIVE", True)
BH_POLL_INTERVAL_MIN_SECONDS = envint("BH_POLL_INTERVAL_MIN_SECONDS", 60)
BH_POLL_INTERVAL_MAX_SECONDS = envint("BH_POLL_INTERVAL_MAX_SECONDS", 1800)
# Skip sync when a source's payload is unchanged and re-analyse only bindings whose inputs changed.
BH_INCREMENTAL_ANALYSIS = envbool("BH_INCREMENTAL_ANALYSIS", True)
# An unchanged payload skips sync for at most this long; then a full sync runs regardless.
BH_FULL_SYNC_SECONDS = envint("BH_FULL_SYNC_SECONDS", 3600)
# A poll whose answer would delete more than this fraction of a source's bindings (a cluster's
# TargetGroupBindings, an account's target groups) and more than BH_MASS_DELETE_MIN of them stores
# nothing and waits for the next poll to agree (bindings.services.polling.deletion_hold): an odd answer
# must not delete every binding with its history.
BH_MASS_DELETE_FRACTION = float(os.environ.get("BH_MASS_DELETE_FRACTION", "0.5"))
BH_MASS_DELETE_MIN = envint("BH_MASS_DELETE_MIN", 5)
# /metrics access: a bearer token, and/or client CIDRs. Neither set: loopback clients only.
# API tokens verified within this many seconds are not looked up again by the same process (0: off).
BH_API_TOKEN_CACHE_SECONDS = envint("BH_API_TOKEN_CACHE_SECONDS", 5)
BH_METRICS_TOKEN = envsecret("BH_METRICS_TOKEN")
BH_METRICS_ALLOWED_CIDRS = envcidrs("BH_METRICS_ALLOWED_CIDRS")
# The credentials boundary (bindings/collect/credentials.py): every file the worker reads by a path typed
# into the admin (cluster token, kubeconfig and CA files; alert hook URL files) must resolve, symlinks
# followed, to a file under one of these directories. Default: the pod's service-account folder and
# the data directory. Never list the folder holding the app's own secrets (SECRET_KEY_FILE, …).
# Empty counts as unset: a blank line copied from .env.example must not silently allow nothing.
BH_CREDENTIALS_DIRS = envlist(
    "BH_CREDENTIALS_DIRS", f"/var/run/secrets/kubernetes.io/serviceaccount,{DATA_DIR}"
) or ["/var/run/secrets/kubernetes.io/serviceaccount", str(DATA_DIR)]
# Alert webhooks may only go to these hosts (exact names, or "*.example.com" for its subdomains);
# empty: any host. Checked when a hook is saved and again before every delivery.
BH_WEBHOOK_ALLOWED_HOSTS = [host.lower() for host in envlist("BH_WEBHOOK_ALLOWED_HOSTS")]
for _host in BH_WEBHOOK_ALLOWED_HOSTS:
    if not _host or any(c in _host for c in "/:@ ") or "*" in _host.removeprefix("*."):
        raise ImproperlyConfigured(
            f"BH_WEBHOOK_ALLOWED_HOSTS: {_host!r} is not a host name (give hooks.slack.com or *.example.com, "
            "no scheme, port or path)"
        )
# Applying a fix (bindings/services/apply.py): an apply must name a dry-run the same user made at most this
# many seconds ago; the exact patch that dry-run recorded is what is sent.
BH_APPLY_REVIEW_SECONDS = envint("BH_APPLY_REVIEW_SECONDS", 600)
# Alert webhooks: attempts per delivery (with exponential backoff) and the per-request timeout.
BH_ALERT_MAX_ATTEMPTS = envint("BH_ALERT_MAX_ATTEMPTS", 5)
BH_ALERT_TIMEOUT_SECONDS = envint("BH_ALERT_TIMEOUT_SECONDS", 10)
# PagerDuty hooks post here (EU accounts: https://events.eu.pagerduty.com/v2/enqueue).
BH_PAGERDUTY_EVENTS_URL = os.environ.get("BH_PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
# Kubernetes Events on TGBs (clusters with "emit Kubernetes events"): at most this many per
# cluster per minute; transitions beyond it are recorded as skipped, never queued up.
BH_KUBE_EVENTS_PER_MINUTE = envint("BH_KUBE_EVENTS_PER_MINUTE", 30)
# Active probes (off unless a cluster, a binding's setting or its annotation enables them): at most
# this many sockets in flight per round, and the defaults for bindings without a ProbeSetting row.
BH_PROBE_CONCURRENCY = envint("BH_PROBE_CONCURRENCY", 8)
BH_PROBE_INTERVAL_SECONDS = envint("BH_PROBE_INTERVAL_SECONDS", 60)
BH_PROBE_TIMEOUT_SECONDS = float(os.environ.get("BH_PROBE_TIMEOUT_SECONDS", "2"))
BH_PROBE_RETRIES = envint("BH_PROBE_RETRIES", 1)
# Soft time limit of one probe round (seconds); the hard limit is 30 s more.
BH_PROBE_SOFT_TIME_LIMIT = envint("BH_PROBE_SOFT_TIME_LIMIT", 120)
# Where a probe setting's own address may point (comma-separated CIDRs). Empty: anywhere but the
# worker's own host, link-local and AWS-internal addresses (instance metadata), multicast and
# reserved ranges (bindings/collect/probes.py); set: only inside these networks.
BH_PROBE_ALLOWED_NETWORKS = envcidrs("BH_PROBE_ALLOWED_NETWORKS")

# --- HTTPS and browser security (production: see deploy/production.env.example) ---------------
# Off by default so the demo and a first run work over plain http://127.0.0.1; `check --deploy`
# names each one that production leaves off.
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# Probes and scrapers talk plain HTTP to the pod, never through the TLS-terminating proxy.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# Reverse proxies in front of the web process that append to X-Forwarded-For (0: none, trust only
# REMOTE_ADDR), and the addresses they connect from: the header counts only on a request whose
# peer is in BH_TRUSTED_PROXY_CIDRS. Decides the client address of the login rate limit and the
# /metrics allow-list (bindings/security.py).
BH_TRUSTED_PROXIES = envint("BH_TRUSTED_PROXIES", 0)
BH_TRUSTED_PROXY_CIDRS = envcidrs("BH_TRUSTED_PROXY_CIDRS")
# Opt-in: trusting X-Forwarded-Proto is only safe behind a proxy that always overwrites it.
if envbool("BH_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# Sign-in sessions end this many seconds after login (default 12 h: one working day), so a
# forgotten browser or a stolen cookie does not stay signed in for Django's default two weeks.
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 12 * 3600)
# Login rate limit (bindings/web/ratelimit_login.py): this many failed sign-ins per username and per
# client address within the window lock both out with 429 until the window ends.
BH_LOGIN_MAX_ATTEMPTS = envint("BH_LOGIN_MAX_ATTEMPTS", 10)
BH_LOGIN_WINDOW_SECONDS = envint("BH_LOGIN_WINDOW_SECONDS", 900)
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# No inline scripts or styles anywhere (htmx's indicator style is off via base.html's htmx-config).
BH_CONTENT_SECURITY_POLICY = os.environ.get(
    "BH_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

# LOG_FORMAT=json: one JSON object per line (dashboard/logging.py), credentials redacted.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "dashboard.logging.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "dashboard.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
