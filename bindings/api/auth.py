"""Authentication for the JSON API: Django sessions for the browser, bearer tokens for scripts.

A token is `bh_` + 43 url-safe random characters. Only its first characters (`prefix`, to tell
tokens apart in the admin) and a SHA-256 digest are stored, so a database dump reveals no usable
token; the admin shows the token once, at creation. A plain SHA-256 is enough here (no slow hash):
the input is 256 random bits, not a password, so there is nothing to brute-force.

Tokens must never reach a log: nothing here logs the header, and failures say only "invalid".
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import SessionAuth
from ninja.security.http import HttpBearer

from bindings import models as m

TOKEN_PREFIX = "bh_"  # noqa: S105 - a public marker of our tokens, not a secret
PREFIX_LENGTH = 11  # "bh_" + 8 random characters: enough to recognise a token, useless to guess it
# `last_used_at` is informational; writing it on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def token_digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_generate() -> tuple[str, str, str]:
    """A new token as (token, prefix, digest). Only prefix and digest are to be stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token[:PREFIX_LENGTH], token_digest(token)


# Tokens recently verified by this process: digest -> (verified at, token with its user).
_recent: dict[str, tuple[datetime, m.ApiToken]] = {}


def forget_tokens(**_kwargs: Any) -> None:
    """Drop this process's verified tokens (a token or user changed here; other processes wait
    out BH_API_TOKEN_CACHE_SECONDS). Now, and again once the change is committed: a request in
    another thread could re-cache the row as it was before the commit in between."""
    _recent.clear()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_recent.clear)


def token_authenticate(token: str, *, now: Any = None) -> m.ApiToken | None:
    """The live token matching `token` (with its user loaded), or None.

    One query (token joined with its user), plus an UPDATE at most once a minute per token. A
    script polling the API sends the same token many times a second: a token verified within the
    last BH_API_TOKEN_CACHE_SECONDS (default 5) is answered from memory — a quarter of a list
    request's CPU. So a revocation reaches other processes within that time; expiry is exact.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = now or timezone.now()
    digest = token_digest(token)
    hit = _recent.get(digest)
    ttl = timedelta(seconds=settings.BH_API_TOKEN_CACHE_SECONDS)
    if hit is not None and timedelta(0) <= now - hit[0] < ttl:
        api_token = copy.copy(hit[1])  # each request gets its own token and user objects
        api_token.user = copy.copy(hit[1].user)
    else:
        api_token = (
            m.ApiToken.objects.select_related("user")
            .filter(digest=digest, revoked=False, user__is_active=True)
            .first()
        )
        if api_token is None:
            _recent.pop(digest, None)
            return None
        if ttl:
            if len(_recent) >= 1000:  # bounded: many tokens in turn must not grow a worker
                _recent.clear()
            cached = copy.copy(api_token)
            cached.user = copy.copy(api_token.user)
            _recent[digest] = (now, cached)
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional UPDATE: concurrent requests in the same minute write at most once.
        m.ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=api_token.pk
        ).update(last_used_at=now)
        api_token.last_used_at = now
        entry = _recent.get(digest)  # one lookup: another thread may clear the cache in between
        if entry is not None:
            entry[1].last_used_at = now
    return api_token


class TokenAuth(HttpBearer):
    """`Authorization: Bearer bh_…`. Returns the token's user; the token is kept on the request."""

    def __call__(self, request: HttpRequest) -> Any:
        # Ninja's HttpBearer logs an unexpected header under DEBUG; a header may hold a token,
        # so parse it here without logging anything.
        value = request.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        request.api_token = api_token  # type: ignore[attr-defined]
        request.user = api_token.user
        return api_token.user


class BrowserSessionAuth(SessionAuth):
    """The dashboard's login session (CSRF-checked on unsafe methods, as ninja's SessionAuth)."""

    def __call__(self, request: HttpRequest) -> Any:
        # A request that sent a bearer header meant token auth: a bad token must not fall back
        # to a session cookie that happens to ride along.
        if request.headers.get("Authorization"):
            return None
        # Without a signed-in session there is nothing for CSRF to protect: answer 401 (the
        # caller has no credentials) rather than the CSRF check's 403 (it has the wrong ones).
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return super().__call__(request)


def can_write(request: HttpRequest, permission: str) -> bool:
    """May this authenticated request change things (enqueue polls)?

    The user's Django permission decides, read now (a permission taken away counts at once).
    A token acts with at most its owner's rights: it must be read-write *and* its owner must
    hold `permission` — a viewer's read-write token polls nothing the viewer may not.
    """
    api_token = getattr(request, "api_token", None)
    if api_token is not None and api_token.scope != m.ApiToken.Scope.WRITE:
        return False
    user = getattr(request, "user", AnonymousUser())
    return bool(user.is_authenticated and user.is_active and user.has_perm(permission))
