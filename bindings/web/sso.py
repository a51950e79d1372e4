"""Optional single sign-on (OpenID Connect, authorization code flow) with mozilla-django-oidc.

Off by default (BH_OIDC_ENABLED). Local passwords keep working for the demo and break-glass.
Users are created on first sign-in; their roles follow the groups in a configurable ID-token /
userinfo claim (BH_OIDC_GROUPS_CLAIM), mapped in settings (BH_OIDC_ROLE_GROUPS), never in code:

- viewer   — may sign in and read (every page needs only a signed-in user);
- may-apply — also the `bindings.apply_fix` permission (through the group MAY_APPLY_GROUP);
- admin    — staff and superuser (the Django admin).

The identity provider is the source of truth for SSO users: each sign-in re-applies the roles, so
removing someone from a group takes effect at their next sign-in. When the mapping names any
groups, a user in none of them is refused. A provider that cannot be reached or answers nonsense
is logged with the endpoint and the reason, and the sign-in page says single sign-on failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core import checks
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

logger = logging.getLogger(__name__)

ROLES = ("viewer", "may-apply", "admin")
MAY_APPLY_GROUP = "binding-health may-apply"
MAX_GROUPS = 1000  # a claim is attacker-influenced input when the IdP is misconfigured: bound it
MAX_GROUP_LENGTH = 256
REQUIRED = (
    "OIDC_RP_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET",
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
)


def username_from_email(email: str) -> str:
    """OIDC_USERNAME_ALGO: the e-mail is the username (readable in the audit log)."""
    return email[:150]


def groups_in(claims: dict[str, Any]) -> set[str]:
    """The groups claim as a set: a list, or one space/comma-separated string (some IdPs)."""
    value = claims.get(settings.BH_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        items: Iterable[Any] = value.replace(",", " ").split()
    elif isinstance(value, list):
        items = value
    else:
        return set()
    return {str(g)[:MAX_GROUP_LENGTH] for g in list(items)[:MAX_GROUPS] if isinstance(g, str | int)}


def roles_for(groups: set[str]) -> set[str]:
    mapping: dict[str, list[str]] = settings.BH_OIDC_ROLE_GROUPS
    return {role for role, wanted in mapping.items() if role in ROLES and groups & set(wanted)}


def _mapping_names_groups() -> bool:
    return any(settings.BH_OIDC_ROLE_GROUPS.get(role) for role in ROLES)


def apply_roles(user: Any, roles: set[str]) -> None:
    admin = "admin" in roles
    user.is_staff = user.is_superuser = admin
    user.save(update_fields=["is_staff", "is_superuser"])
    group, _ = Group.objects.get_or_create(name=MAY_APPLY_GROUP)
    group.permissions.add(Permission.objects.get(codename="apply_fix", content_type__app_label="bindings"))
    if "may-apply" in roles or admin:
        user.groups.add(group)
    else:
        user.groups.remove(group)


try:
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend
    from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView
except ImportError:  # SSO is optional: without the package the product runs with local logins
    OIDCAuthenticationBackend = object  # type: ignore[assignment,misc]
    OIDCAuthenticationCallbackView = OIDCAuthenticationRequestView = None  # type: ignore[assignment,misc]


class RoleMappingBackend(OIDCAuthenticationBackend):  # type: ignore[misc,valid-type]
    """mozilla-django-oidc's backend plus group → role mapping and clear provider errors."""

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            # The endpoint, never the query or the tokens; the reason names the failure.
            url = getattr(exc.request, "url", "") or ""
            where = urlsplit(url)
            logger.error(
                "single sign-on: the identity provider at %s://%s%s failed: %s",
                where.scheme,
                where.netloc,
                where.path,
                exc.__class__.__name__ + (f" {exc.response.status_code}" if exc.response is not None else ""),
            )
        except SuspiciousOperation as exc:
            logger.error("single sign-on: the identity provider's answer was rejected: %s", exc)
        return None

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not super().verify_claims(claims):
            logger.warning("single sign-on: refused, the claims have no e-mail (scope 'email' missing?)")
            return False
        if _mapping_names_groups() and not roles_for(groups_in(claims)):
            logger.warning(
                "single sign-on: refused %s: none of their groups (claim %r) maps to a role",
                claims.get("email"),
                settings.BH_OIDC_GROUPS_CLAIM,
            )
            return False
        return True

    def create_user(self, claims: dict[str, Any]) -> Any:
        with transaction.atomic():
            user = super().create_user(claims)
            user.first_name = str(claims.get("given_name", ""))[:150]
            user.last_name = str(claims.get("family_name", ""))[:150]
            user.set_unusable_password()  # SSO users have no local password to guess
            user.save()
            apply_roles(user, roles_for(groups_in(claims)) | {"viewer"})
        logger.info("single sign-on: created user %s", user.get_username())
        return user

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        apply_roles(user, roles_for(groups_in(claims)) | {"viewer"})
        return user


def _enabled_or_404() -> None:
    if not settings.BH_OIDC_ENABLED or OIDCAuthenticationRequestView is None:
        raise Http404("single sign-on is not enabled")


def start(request: HttpRequest) -> HttpResponse:
    _enabled_or_404()
    return OIDCAuthenticationRequestView.as_view()(request)


def callback(request: HttpRequest) -> HttpResponse:
    _enabled_or_404()
    return OIDCAuthenticationCallbackView.as_view()(request)


# Same names as mozilla_django_oidc.urls so its views' reverse() calls resolve.
urlpatterns = [
    path("authenticate/", start, name="oidc_authentication_init"),
    path("callback/", callback, name="oidc_authentication_callback"),
]


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context: whether to offer the SSO button, and its label."""
    return {"sso_enabled": settings.BH_OIDC_ENABLED, "sso_label": settings.BH_OIDC_LABEL}


@checks.register(checks.Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """`manage.py check` (and every start-up) names a missing or unsafe SSO setting."""
    if not settings.BH_OIDC_ENABLED:
        return []
    errors: list[checks.CheckMessage] = []
    if OIDCAuthenticationRequestView is None:
        errors.append(
            checks.Error("BH_OIDC_ENABLED is on but mozilla-django-oidc is not installed", id="bh.E101")
        )
    for name in REQUIRED:
        if not getattr(settings, name, ""):
            errors.append(checks.Error(f"BH_OIDC_ENABLED is on but {name} is empty", id="bh.E102"))
    for name in REQUIRED[2:]:
        url = getattr(settings, name, "") or ""
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if url and (
            parts.scheme not in ("https", "http")
            or not parts.netloc
            or (parts.scheme == "http" and not loopback)
        ):
            errors.append(
                checks.Error(
                    f"{name}={url!r} is not an https URL of the identity provider",
                    hint="Copy it from the provider's /.well-known/openid-configuration.",
                    id="bh.E103",
                )
            )
    unknown = set(settings.BH_OIDC_ROLE_GROUPS) - set(ROLES)
    if unknown:
        errors.append(
            checks.Error(
                f"BH_OIDC_ROLE_GROUPS names unknown roles {sorted(unknown)}; roles are {list(ROLES)}",
                id="bh.E104",
            )
        )
    return errors
