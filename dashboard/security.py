"""Content-Security-Policy header for every response.

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
