"""Login rate limiting for the dashboard's and the admin's sign-in forms.

Django's login views accept unlimited password guesses. This wrapper counts failed sign-ins in
the cache (Redis in production, so every web replica shares the counts) per username and per
client address, and once either reaches `BH_LOGIN_MAX_ATTEMPTS` within `BH_LOGIN_WINDOW_SECONDS`
answers 429 *before* the password is checked, so a locked-out guesser learns nothing and costs
no password hashing.

- Per username: stops a guesser spreading over many addresses from trying one account forever.
- Per address: stops one client from spraying passwords over many usernames.
- The client address is `security.client_address`, as for /metrics: REMOTE_ADDR, or behind
  `BH_TRUSTED_PROXIES` reverse proxies the address the outermost one saw (else every client
  would share the proxy's address and one guesser could lock everyone out).
- A failure is a POST answered with the re-rendered form (200); success redirects (302). That
  holds for `django.contrib.auth.views.LoginView` and `admin.site.login` alike, so one wrapper
  serves both without copying the admin's login view.
- Usernames are hashed into the cache key: keys stay short and valid for any cache backend, and
  a cache dump does not list who was targeted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template import engines

from bindings.security import client_address

logger = logging.getLogger(__name__)

KEY_PREFIX = "bh:login-failures:"
View = Callable[..., HttpResponse]

_LOCKED_TEMPLATE = """{% extends "base.html" %}
{% block title %}Too many sign-in attempts{% endblock %}
{% block content %}
<section class="login card">
  <h1>Too many sign-in attempts</h1>
  <p class="error" role="alert">{{ message }}</p>
</section>
{% endblock %}"""


def max_attempts() -> int:
    return int(getattr(settings, "BH_LOGIN_MAX_ATTEMPTS", 10))


def window_seconds() -> int:
    return int(getattr(settings, "BH_LOGIN_WINDOW_SECONDS", 900))


def _keys(request: HttpRequest) -> list[str]:
    """The counters this request's outcome is charged to: its username's and its address's."""
    username = str(request.POST.get("username", "")).strip().lower()
    address = client_address(request) or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        if ip.version == 6:
            # One customer holds a whole /64: count it as one address, or a guesser rotates through it.
            address = str(ipaddress.ip_network(f"{ip}/64", strict=False))
    keys = [KEY_PREFIX + "ip:" + hashlib.sha256(address.encode()).hexdigest()[:32]]
    if username:
        keys.append(KEY_PREFIX + "user:" + hashlib.sha256(username.encode()).hexdigest()[:32])
    return keys


def _failures(key: str) -> int:
    value = cache.get(key)
    return value if isinstance(value, int) else 0


def is_locked(request: HttpRequest) -> bool:
    """Has this username or this address used up its failed attempts for the window?"""
    limit = max_attempts()
    return limit > 0 and any(_failures(key) >= limit for key in _keys(request))


def record_failure(request: HttpRequest) -> None:
    """Count one failed sign-in against the username and the address.

    A fixed window starts at the first failure. incr() is atomic on Redis, so concurrent guesses
    cannot lose counts; but the file and memory caches implement incr() as a set() with the
    default timeout, which would slide the window, so the window's end is kept beside the count
    and re-applied with touch().
    """
    window = window_seconds()
    now = time.time()
    for key in _keys(request):
        if cache.add(key, 1, timeout=window):
            cache.set(key + ":until", now + window, timeout=window)
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr(): start a new window
            cache.set(key, 1, timeout=window)
            cache.set(key + ":until", now + window, timeout=window)
            continue
        until = cache.get(key + ":until")
        if isinstance(until, int | float):
            cache.touch(key, max(1, math.ceil(until - now)))


def clear_username(request: HttpRequest) -> None:
    """A successful sign-in resets its username's count. The address count stays: an attacker
    with one valid account must not be able to reset the limit on their own address."""
    for key in _keys(request):
        if ":user:" in key:
            cache.delete_many([key, key + ":until"])


def locked_response(request: HttpRequest) -> HttpResponse:
    minutes = max(1, math.ceil(window_seconds() / 60))
    message = (
        "Too many failed sign-in attempts for this account or from this address. "
        f"Try again in {minutes} minutes, or ask an administrator to reset your password."
    )
    body = engines["django"].from_string(_LOCKED_TEMPLATE).render({"message": message}, request)
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(window_seconds())
    return response


def rate_limited(view: View) -> View:
    """Wrap a login view: 429 while locked; count POSTs answered with the form again."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        if is_locked(request):
            # No username in the log line: it may be a password typed into the wrong field.
            logger.warning("login refused: too many failures from %s", client_address(request))
            return locked_response(request)
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            record_failure(request)
        elif response.status_code in (301, 302, 303):
            clear_username(request)
        return response

    return wrapper


login_view = rate_limited(LoginView.as_view())


def admin_login_view(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    # Resolved at request time so tests or a custom AdminSite see the current admin.site.login.
    return admin.site.login(request, extra_context)


admin_login = rate_limited(admin_login_view)
