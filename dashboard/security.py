"""Request-level security: the Content-Security-Policy header and the client's address.

Content-Security-Policy, on every response:

Django 5.2 has no built-in CSP (it arrives in 6.0). The policy here is one constant string, so a
dozen lines of our own beat a dependency: the pages need no inline scripts (htmx and django-htmx's
script are static files, and `base.html` turns off htmx's injected indicator style with its
``htmx-config`` meta tag), hence ``script-src 'self'`` with no ``'unsafe-inline'``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    """Adds `settings.BH_CONTENT_SECURITY_POLICY` unless a view set its own (or the policy is empty)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = str(getattr(settings, "BH_CONTENT_SECURITY_POLICY", "") or "")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and HEADER not in response:
            response[HEADER] = self.policy
        return response


def client_address(request: HttpRequest) -> str:
    """The address of the client, for the login rate limit and the /metrics allow-list.

    With `BH_TRUSTED_PROXIES` = 0 (the default) that is REMOTE_ADDR: a forwarded-for header is
    not trusted, since anyone can send one. Behind N reverse proxies that each append the address
    they saw to X-Forwarded-For, the client is the N-th entry from the right: entries further left
    were written by the client itself and prove nothing. A header shorter than N (a request that
    bypassed a proxy) falls back to REMOTE_ADDR.
    """
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    proxies = int(getattr(settings, "BH_TRUSTED_PROXIES", 0) or 0)
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    return hops[-proxies] if len(hops) >= proxies else remote
