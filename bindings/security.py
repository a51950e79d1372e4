"""Request-level security: the Content-Security-Policy header and the client's address.

Content-Security-Policy, on every response:

Django 5.2 has no built-in CSP (it arrives in 6.0). The policy here is one constant string, so a
dozen lines of our own beat a dependency: the pages need no inline scripts (htmx and django-htmx's
script are static files, and `base.html` turns off htmx's injected indicator style with its
``htmx-config`` meta tag), hence ``script-src 'self'`` with no ``'unsafe-inline'``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache

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


@lru_cache(maxsize=16)
def networks_of(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parsed networks of a settings list (validated at start-up by `settings.envcidrs`)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def probe_fence() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Where a probe setting's hand-configured address may point (`collect.probes.target_refusal`):
    BH_PROBE_ALLOWED_NETWORKS; empty for anywhere but the addresses never probed."""
    return networks_of(tuple(getattr(settings, "BH_PROBE_ALLOWED_NETWORKS", ()) or ()))


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a client presents it; IPv4-mapped IPv6 reads as IPv4. None if not one."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def address_in(address: str, cidrs: Iterable[str]) -> bool:
    """Is `address` inside one of `cidrs`?"""
    ip = parse_address(address)
    return ip is not None and any(ip.version == n.version and ip in n for n in networks_of(tuple(cidrs)))


def _hop_address(text: str) -> str | None:
    """One X-Forwarded-For entry as a plain address: ports and brackets dropped, else None."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    ip = parse_address(text)
    return None if ip is None else str(ip)


def client_address(request: HttpRequest) -> str:
    """The address of the client, for the login rate limit and the /metrics allow-list.

    REMOTE_ADDR, unless the peer is one of our reverse proxies: `BH_TRUSTED_PROXIES` (how many
    proxies append to X-Forwarded-For) > 0 and REMOTE_ADDR in `BH_TRUSTED_PROXY_CIDRS`. Then the
    header is read from the right — each proxy appended the address it saw — over at most that
    many entries, stopping at the first address that is not one of our proxies: that is the
    client. Entries further left were written by the client and prove nothing. A request from any
    other peer (one that bypassed the proxy) cannot choose its address with the header, and an
    entry that is not an address makes the peer's own address count.
    """
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    proxies = int(getattr(settings, "BH_TRUSTED_PROXIES", 0) or 0)
    proxy_cidrs = tuple(getattr(settings, "BH_TRUSTED_PROXY_CIDRS", ()) or ())
    if proxies <= 0 or not address_in(remote, proxy_cidrs):
        return remote
    hops = [h for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    address = remote
    for hop in reversed(hops[-proxies:]):
        parsed = _hop_address(hop)
        if parsed is None:
            return remote
        address = parsed
        if not address_in(address, proxy_cidrs):
            break
    return address
