"""Badges, relative times and the server-rendered timeline SVG.

Everything here builds HTML with `format_html`/`format_html_join`, so names, labels and messages
from clusters and AWS are always escaped: a hostile TGB name renders as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

# Text + symbol + colour class: colour alone never carries the verdict (WCAG 1.4.1).
VERDICTS = {
    "reachable": ("✓", "reachable"),
    "partial": ("◐", "partial"),
    "blocked": ("✗", "blocked"),
    "not_offered": ("–", "not offered"),
    "unknown": ("?", "unknown"),
}
SEVERITIES = {"critical": "!!", "warning": "!", "info": "i"}


def verdict_label(verdict: str) -> str:
    """Human label of a verdict code ("not_offered" -> "not offered")."""
    return VERDICTS.get(verdict, ("?", verdict or "unknown"))[1]


@register.simple_tag
def verdict_badge(verdict: str | None, protocol: str = "") -> SafeString:
    """`<span class="badge v-blocked">UDP ✗ blocked</span>`; unknown codes render as unknown."""
    code = verdict if verdict in VERDICTS else "unknown"
    symbol, label = VERDICTS[code]
    if protocol:
        return format_html(
            '<span class="badge v-{}"><span class="proto">{}</span> '
            '<span aria-hidden="true">{}</span> {}</span>',
            code,
            protocol,
            symbol,
            label,
        )
    return format_html(
        '<span class="badge v-{}"><span aria-hidden="true">{}</span> {}</span>', code, symbol, label
    )


@register.simple_tag
def severity_badge(severity: str | None) -> SafeString:
    """A severity pill: text first, colour second."""
    if not severity:
        return format_html('<span class="sev sev-none">{}</span>', "none")
    code = severity if severity in SEVERITIES else "info"
    return format_html('<span class="sev sev-{}">{}</span>', code, severity)


@register.filter
def verdict_text(verdict: str | None) -> str:
    return verdict_label(verdict or "")


def age_text(seconds: float) -> str:
    """Compact relative age: "8 s ago", "4 min ago", "3 h ago", "2 d ago"."""
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@register.simple_tag
def ago(value: datetime | None, never: str = "never") -> SafeString:
    """A `<time>` with the age as text; static/dashboard/dashboard.js keeps it ticking."""
    if value is None:
        return format_html('<span class="muted">{}</span>', never)
    return format_html(
        '<time datetime="{}" data-ago title="{}">{}</time>',
        value.isoformat(),
        value.strftime("%Y-%m-%d %H:%M:%S UTC"),
        age_text((timezone.now() - value).total_seconds()),
    )


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """`{{ dict|get_item:key }}` for keys that are not identifiers (protocol names, codes)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


# --- timeline -------------------------------------------------------------------------------------

_WIDTH = 720
_LEFT = 48
_ROW = 22
_HEALTH_HEIGHT = 60


def _segments(samples: Sequence[Any], protocol: str, end: datetime) -> list[tuple[datetime, datetime, str]]:
    """Collapse consecutive samples with the same verdict into (start, end, verdict) spans."""
    spans: list[tuple[datetime, datetime, str]] = []
    for index, sample in enumerate(samples):
        verdict = (sample.verdicts or {}).get(protocol, "")
        until = samples[index + 1].at if index + 1 < len(samples) else end
        if spans and spans[-1][2] == verdict:
            spans[-1] = (spans[-1][0], until, verdict)
        else:
            spans.append((sample.at, until, verdict))
    return spans


@register.simple_tag
def timeline_svg(samples: Sequence[Any], protocols: Sequence[str], now: datetime | None = None) -> SafeString:
    """Verdict bands per protocol and a healthy-target step line, as one inline SVG.

    `samples` are HistorySample rows, oldest first. No chart library: a few rects and a polyline.
    """
    if not samples:
        return format_html('<p class="muted">{}</p>', "No history yet: samples are written at each poll.")
    end = now or timezone.now()
    start = samples[0].at
    # The bands fill the width: a binding first seen a minute ago shows that minute, not a sliver.
    span = max((end - start).total_seconds(), 1.0)
    inner = _WIDTH - _LEFT - 8

    def x(at: datetime) -> float:
        return round(_LEFT + inner * (at - start).total_seconds() / span, 1)

    parts: list[SafeString] = []
    for row, protocol in enumerate(protocols):
        y = 8 + row * _ROW
        parts.append(format_html('<text x="0" y="{}" class="tl-label">{}</text>', y + 13, protocol))
        for begin, until, verdict in _segments(samples, protocol, end):
            code = verdict if verdict in VERDICTS else "unknown"
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="16" class="tl-{}">'
                    "<title>{} {} from {} to {}</title></rect>",
                    x(begin),
                    y,
                    max(round(x(until) - x(begin), 1), 1.5),
                    code,
                    protocol,
                    verdict_label(verdict),
                    begin.strftime("%m-%d %H:%M"),
                    until.strftime("%m-%d %H:%M"),
                )
            )
    top = 8 + len(protocols) * _ROW + 10
    highest = max(max(s.healthy + s.unhealthy + s.other for s in samples), 1)

    def y_of(count: int) -> float:
        return round(top + _HEALTH_HEIGHT - _HEALTH_HEIGHT * count / highest, 1)

    points: list[str] = []
    for index, sample in enumerate(samples):
        until = samples[index + 1].at if index + 1 < len(samples) else end
        points.append(f"{x(sample.at)},{y_of(sample.healthy)}")
        points.append(f"{x(until)},{y_of(sample.healthy)}")
    parts.append(format_html('<text x="0" y="{}" class="tl-label">healthy</text>', top + 30))
    parts.append(
        format_html(
            '<text x="{}" y="{}" class="tl-axis" text-anchor="end">{}</text>', _LEFT - 4, top + 8, highest
        )
    )
    parts.append(
        format_html(
            '<text x="{}" y="{}" class="tl-axis" text-anchor="end">0</text>', _LEFT - 4, top + _HEALTH_HEIGHT
        )
    )
    parts.append(
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="tl-base"/>',
            _LEFT,
            top + _HEALTH_HEIGHT,
            _WIDTH - 8,
            top + _HEALTH_HEIGHT,
        )
    )
    parts.append(format_html('<polyline points="{}" class="tl-healthy"/>', " ".join(points)))
    bottom = top + _HEALTH_HEIGHT + 16
    parts.append(
        format_html(
            '<text x="{}" y="{}" class="tl-axis">{}</text>', _LEFT, bottom, start.strftime("%m-%d %H:%M")
        )
    )
    parts.append(
        format_html(
            '<text x="{}" y="{}" class="tl-axis" text-anchor="end">{}</text>',
            _WIDTH - 8,
            bottom,
            "now" if now is None else end.strftime("%m-%d %H:%M"),
        )
    )
    latest = samples[-1]
    summary = (
        ", ".join(f"{p} {verdict_label((latest.verdicts or {}).get(p, ''))}" for p in protocols)
        + f"; {latest.healthy} healthy"
    )
    return format_html(
        '<svg class="timeline" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>Verdicts and healthy targets since {}: now {}</title>{}</svg>",
        _WIDTH,
        bottom + 4,
        f"Timeline since {start:%Y-%m-%d %H:%M}: now {summary}",
        start.strftime("%Y-%m-%d %H:%M"),
        summary,
        format_html_join("", "{}", ((p,) for p in parts)),
    )


@register.filter
def duration_ms(value: int | None) -> str:
    """ "1.2 s" / "340 ms" / "–"."""
    if value is None:
        return "–"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value} ms"


@register.filter
def seconds_text(value: int | float | timedelta | None) -> str:
    if value is None:
        return "–"
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return age_text(seconds).removesuffix(" ago")
