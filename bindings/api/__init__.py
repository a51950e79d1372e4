"""The JSON API under /api/v1/ (django-ninja; see README "API" for why).

Read-only except `POST /polls`. Every endpoint reads the database only and answers in a constant
number of queries whatever the number of rows (each view's docstring lists them). Every error
under /api/ is an RFC 9457 problem (`problems`), including 404s of unknown paths, 405s and
validation errors.

The OpenAPI document at /api/v1/openapi.json is generated from the same schemas that serialise
the responses (`schemas`, `params`), and the test suite checks the running app against it with
schemathesis.

Layout: this module builds the NinjaAPI and its URL patterns; `routers/` holds the endpoints by
resource; `problems` the errors; `schemas` and `params` the bodies out and in; `pagination` the
cursors; `list_sql` (PostgreSQL) and `list_python` (any database) the bindings list;
`serializers` the dict shapes several routers share; `auth`, `health`, `metrics` the rest.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from bindings.api import list_sql
from bindings.api.auth import BrowserSessionAuth, TokenAuth
from bindings.api.list_python import list_generic
from bindings.api.params import BindingFilters
from bindings.api.problems import (
    ProblemAPI,
    as_problem,
    install_handlers,
    read_only_document,
    unknown_api_path,
)
from bindings.api.routers import bindings, findings, polls, sources, whoami

__all__ = ["BindingFilters", "api", "api_urlpatterns", "list_generic", "list_sql"]

api = ProblemAPI(
    title="Binding Health API",
    version="1",
    description="Per-protocol reachability of AWS Load Balancer Controller TargetGroupBindings.",
    urls_namespace="api-v1",
    # Swagger UI from django-ninja's own static files ("ninja" in INSTALLED_APPS): no CDN, and
    # nothing inline the Content-Security-Policy would refuse. Public, like the document it shows.
    docs_url="/docs",
    docs_decorator=read_only_document,
    auth=[TokenAuth(), BrowserSessionAuth()],
)
install_handlers(api)
for _router in (whoami.router, sources.router, bindings.router, findings.router, polls.router):
    api.add_router("", _router)


def api_urlpatterns() -> list[URLPattern | URLResolver]:
    """URL patterns for bindings/urls.py: /api/v1/… (problem-wrapped) and the /api/ catch-all."""
    patterns: list[URLPattern | URLResolver] = []
    for pattern in api.urls[0]:
        assert isinstance(pattern, URLPattern)
        patterns.append(URLPattern(pattern.pattern, as_problem(pattern.callback), None, pattern.name))
    return [
        path("api/v1/", (patterns, "ninja", "api-v1")),
        re_path(r"^api(?:/(?P<rest>.*))?$", unknown_api_path),
    ]
