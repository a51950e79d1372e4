"""Where an alert hook's URL (or PagerDuty routing key) comes from, and whether it may be called.

The worker's outbound boundary for alerts, beside the credentials boundary it builds on: the URL
is read at the moment of use from a file under BH_CREDENTIALS_DIRS or an environment variable,
and only an http(s) URL whose host is in BH_WEBHOOK_ALLOWED_HOSTS passes. The model's validation
(`AlertHook.clean`) and every delivery (`bindings.services.alerts`) ask the same functions. Takes
any object with the hook's fields (`name`, `kind`, `url_file`, `url_env`): collectors import no
models.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from django.conf import settings

from bindings.collect.credentials import URL_FILE_MAX_BYTES, CredentialPathError, read_credential

PAGERDUTY = "pagerduty"  # AlertHook.Kind.PAGERDUTY's value (tests pin that they agree)


class DeliveryError(Exception):
    """A delivery failed in a way worth retrying (network error, timeout, 5xx)."""


class PermanentDeliveryError(Exception):
    """A delivery failed in a way a retry cannot fix (4xx, no URL configured)."""


class HookUrlError(PermanentDeliveryError):
    """The hook's URL cannot be used: its file is outside BH_CREDENTIALS_DIRS, unreadable or too
    large, it is not http(s), or its host is not in BH_WEBHOOK_ALLOWED_HOSTS. The message never
    holds the URL itself (a Slack webhook URL is a credential), at most its host."""


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Is `host` in the allow-list? Entries are exact names or "*.domain" for its subdomains;
    an empty list allows every host."""
    if not allowed:
        return True
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]) and len(host) > len(entry) - 1:
            return True
        if host == entry:
            return True
    return False


def check_hook_url(url: str) -> str:
    """`url` if it is http(s) and its host is allowed, else HookUrlError (which names the host)."""
    if not url:
        raise HookUrlError("no URL: the hook's file or environment variable is empty")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise HookUrlError("the hook URL cannot be parsed") from None
    if parts.scheme not in ("https", "http") or not host:
        raise HookUrlError("the hook URL is not an http(s) URL with a host")
    if not host_allowed(host, settings.BH_WEBHOOK_ALLOWED_HOSTS):
        shown = host.encode("ascii", "backslashreplace").decode()[:255]
        raise HookUrlError(f"the hook's host {shown!r} is not in BH_WEBHOOK_ALLOWED_HOSTS")
    return url


def hook_url(hook: Any) -> str:
    """The hook's URL, read now from its file (under BH_CREDENTIALS_DIRS, at most
    URL_FILE_MAX_BYTES) or environment variable, and checked by `check_hook_url`."""
    return check_hook_url(hook_secret(hook))


def hook_secret(hook: Any) -> str:
    """What the hook's file (under BH_CREDENTIALS_DIRS, at most URL_FILE_MAX_BYTES) or environment
    variable holds now: a URL, or PagerDuty's routing key. Not checked here: `hook_url` checks URLs."""
    what = "routing key" if hook.kind == PAGERDUTY else "URL"
    if hook.url_file:
        try:
            return read_credential(
                hook.url_file, what=f"alert hook {ascii(hook.name)} {what} file", max_bytes=URL_FILE_MAX_BYTES
            ).strip()
        except CredentialPathError as exc:
            raise HookUrlError(str(exc)) from None
    return os.environ.get(hook.url_env, "").strip() if hook.url_env else ""
