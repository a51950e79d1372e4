"""Alerts: verdict transitions and sources going stale, sent to webhooks (generic JSON, Slack,
Microsoft Teams) and to PagerDuty's Events API v2.

Two tasks, both thin:
- `send_alerts_task` (beat, every 15 s) finds new events and records one `AlertDelivery` per hook
  and event. `event_key` is unique per hook, so however many beats or workers run the scan at once,
  the database admits exactly one delivery per event; only the scan whose INSERT won enqueues it.
- `deliver_alert_task` posts one delivery, retrying connection errors and 5xx answers with
  exponential backoff up to BH_ALERT_MAX_ATTEMPTS; the status, attempts and last error are
  recorded on the row (the admin's delivery log). 4xx answers are not retried: the request is wrong.

Hook URLs are secrets (a Slack webhook URL is a credential): they are read from a file or an
environment variable at send time, and never stored, logged or put in `last_error`. A PagerDuty
hook's file or variable holds the routing key instead; it joins the stored payload only in the
request body, and the endpoint is BH_PAGERDUTY_EVENTS_URL. Every kind goes through `post_json`,
so all share its timeout, redirect and host rules.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from celery.utils.log import get_task_logger
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from bindings import freshness
from bindings import models as m
from bindings.collect.hooks import (  # noqa: F401 - part of this module's interface
    DeliveryError,
    HookUrlError,
    PermanentDeliveryError,
    check_hook_url,
    hook_secret,
    hook_url,
    host_allowed,
)
from bindings.textsafe import visible

task_logger = get_task_logger(__name__)

# Events older than this are not alerted on: a hook added today must not replay last month,
# and a beat outage longer than this loses alerts rather than flooding on recovery.
LOOKBACK = timedelta(hours=6)


# --- events -----------------------------------------------------------------------------------


def _verdict_word(verdict: str) -> str:
    return verdict.replace("_", " ") if verdict else "new"


def root_causes(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The most severe current finding per (binding id, protocol), as "CODE: message".

    Findings are the latest analysis, so this is the cause as of now, which is what an on-call
    reader acts on. A finding without a protocol applies to every protocol of its binding.
    """
    if not pairs:
        return {}
    best: dict[tuple[int, str], tuple[int, str]] = {}
    rows = m.Finding.objects.filter(binding_id__in={b for b, _ in pairs}).values_list(
        "binding_id", "protocol", "severity", "code", "message"
    )
    for binding_id, protocol, severity, code, message in rows.order_by("pk"):
        rank = m.SEVERITY_RANK.get(severity, 0)
        for key in [(binding_id, protocol)] if protocol else [p for p in pairs if p[0] == binding_id]:
            if key in pairs and (key not in best or rank > best[key][0]):
                best[key] = (rank, f"{code}: {message}"[:300])
    return {key: text for key, (_rank, text) in best.items()}


def transition_event(t: m.VerdictTransition, root_cause: str = "") -> dict[str, Any]:
    """The generic payload of a verdict transition."""
    b = t.binding
    return {
        "event": "verdict_changed",
        "cluster": b.cluster.name,
        "namespace": b.namespace,
        "name": b.name,
        "binding_id": b.pk,
        "protocol": t.protocol,
        "old": t.old,
        "new": t.new,
        "at": t.at.isoformat(),
        "summary": (
            f"{b.cluster.name} {b.namespace}/{b.name} {t.protocol}: "
            f"{_verdict_word(t.old)} → {_verdict_word(t.new)}"
        ),
        "root_cause": root_cause,
    }


def stale_event(kind: str, source: m.PolledSource, now: datetime) -> dict[str, Any]:
    """The generic payload of a source without a successful poll within three intervals."""
    last = source.last_success_at
    return {
        "event": "source_stale",
        "kind": kind,
        "source": source.name,
        "last_success_at": last.isoformat() if last else None,
        "last_error": source.last_error[:500],
        "at": now.isoformat(),
        "summary": (
            f"{kind} {source.name}: no successful poll since "
            f"{last.isoformat(timespec='seconds') if last else 'it was added'}"
        ),
    }


def _slack_escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup (links, mentions): escape them. Control and format
    characters (a bidi override that reverses a name, an ANSI sequence) show as escapes first."""
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(event: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body for an event."""
    text = _slack_escape(event["summary"])
    if event["event"] == "verdict_changed":
        icon = ":white_check_mark:" if event["new"] == "reachable" else ":rotating_light:"
    else:
        icon = ":hourglass:"
    fields = [
        {"type": "mrkdwn", "text": f"*{_slack_escape(str(k))}*\n{_slack_escape(str(v))}"}
        for k, v in event.items()
        if k not in ("summary", "event") and v not in (None, "")
    ][:10]  # Slack's limit per section
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *Binding Health*: {text}"}},
            {"type": "section", "fields": fields},
        ],
    }


# PagerDuty: a binding turning blocked/partial opens (or updates) one alert per binding and
# protocol; reaching `reachable` resolves it. Other moves (to unknown, not_offered) are not pages.
PAGING_VERDICTS = frozenset({"blocked", "partial"})
RECOVERED_VERDICTS = frozenset({"reachable"})
PD_SEVERITY = {"blocked": "critical", "partial": "error"}
PD_SUMMARY_MAX = 1024  # Events API v2: payload.summary is at most 1024 characters
PD_DEDUP_MAX = 255  # Events API v2: dedup_key is at most 255 characters


def pagerduty_dedup_key(event: dict[str, Any]) -> str:
    """One PagerDuty alert per binding and protocol, or per stale source."""
    if event["event"] == "verdict_changed":
        key = f"binding-health/binding/{event['binding_id']}/{event['protocol']}"
    else:
        key = f"binding-health/{event['kind']}/{event['source']}/stale"
    return key[:PD_DEDUP_MAX]


def pagerduty_payload(event: dict[str, Any]) -> dict[str, Any] | None:
    """An Events API v2 body without `routing_key` (added at send time); None: not a page."""
    details = {k: v for k, v in event.items() if k not in ("summary",) and v not in (None, "")}
    if event["event"] == "verdict_changed":
        if event["new"] in PAGING_VERDICTS:
            action, severity = "trigger", PD_SEVERITY[event["new"]]
        elif event["new"] in RECOVERED_VERDICTS:
            # From any old verdict: blocked → unknown (a failed poll) → reachable must still close
            # the incident; resolving a key with no open alert is a no-op at PagerDuty.
            return {"event_action": "resolve", "dedup_key": pagerduty_dedup_key(event)}
        else:
            return None
        source = f"{event['cluster']}/{event['namespace']}/{event['name']}"
        component, group = f"{event['namespace']}/{event['name']}", event["cluster"]
        event_class = f"verdict {event['protocol']}"
    else:
        # A stale source is a warning; PagerDuty resolves it by hand or by its auto-resolve timer.
        action, severity = "trigger", "warning"
        source, component, group, event_class = (
            event["source"],
            event["source"],
            event["kind"],
            "source stale",
        )
    summary = event["summary"]
    if event.get("root_cause"):
        summary = f"{summary} ({event['root_cause']})"
    # Everything PagerDuty shows a responder, control and format characters as escapes (as on
    # every surface people read); the dedup key stays as it was, so open alerts still resolve.
    return {
        "event_action": action,
        "dedup_key": pagerduty_dedup_key(event),
        "client": "Binding Health",
        "payload": {
            "summary": visible(summary)[:PD_SUMMARY_MAX],
            "source": visible(source)[:255],
            "severity": severity,
            "timestamp": event["at"],
            "component": visible(component)[:255],
            "group": visible(group)[:255],
            "class": event_class,
            "custom_details": {k: visible(v) if isinstance(v, str) else v for k, v in details.items()},
        },
    }


def teams_payload(event: dict[str, Any]) -> dict[str, Any]:
    """A Teams workflow-webhook message carrying one Adaptive Card.

    Every value from the cluster (names, errors) goes into TextRuns, which Adaptive Cards render
    as plain text: TextBlock and FactSet text is markdown, where a hostile binding name could
    become a link. Control and format characters in them show as escapes.
    """
    if event["event"] == "verdict_changed":
        style = "good" if event["new"] == "reachable" else "attention"
    else:
        style = "warning"

    def line(label: str, value: Any) -> dict[str, Any]:
        return {
            "type": "RichTextBlock",
            "inlines": [
                {"type": "TextRun", "text": f"{label}: ", "weight": "bolder"},
                {"type": "TextRun", "text": visible(value)},
            ],
        }

    facts = [line(k, v) for k, v in event.items() if k not in ("summary", "event") and v not in (None, "")]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "Container",
                            "style": style,
                            "items": [
                                {
                                    "type": "RichTextBlock",
                                    "inlines": [
                                        {"type": "TextRun", "text": "Binding Health: ", "weight": "bolder"},
                                        {"type": "TextRun", "text": visible(event["summary"])},
                                    ],
                                }
                            ],
                        },
                        *facts,
                    ],
                },
            }
        ],
    }


def payload_for(hook: m.AlertHook, event: dict[str, Any]) -> dict[str, Any] | None:
    """The stored body of `event` for this hook's kind; None when the kind does not send it."""
    kind = hook.kind
    if kind == m.AlertHook.Kind.SLACK:
        return slack_payload(event)
    if kind == m.AlertHook.Kind.TEAMS:
        return teams_payload(event)
    if kind == m.AlertHook.Kind.PAGERDUTY:
        return pagerduty_payload(event)
    return event


# --- scan -------------------------------------------------------------------------------------


def _stale(source: m.PolledSource, now: datetime) -> bool:
    """Stale and worth an alert: tried at least once (a source just added is not an outage)."""
    if not source.enabled or source.last_polled_at is None:
        return False
    return freshness.is_stale(source.last_success_at, source.poll_interval_seconds, now)


def _record(hook: m.AlertHook, key: str, payload: dict[str, Any], transition_id: int | None) -> int | None:
    """Insert one delivery; None when another scan already did (the unique key decides)."""
    try:
        with transaction.atomic():
            delivery = m.AlertDelivery.objects.create(
                hook=hook, event_key=key, payload=payload, transition_id=transition_id
            )
    except IntegrityError:
        return None
    return delivery.pk


def first_judgements_of(transitions: list[m.VerdictTransition]) -> set[int]:
    """The `unknown -> …` transitions among these that are a binding's first real verdict.

    A binding's first analysis can run before its AWS side was ever polled (cluster and account
    polls are independent), giving `unknown` and then the first real verdict: not a change. Only
    positive evidence counts — the transition just before, for the same binding and protocol, is
    the first sighting `"" -> unknown` — so a binding whose older history was pruned, or that was
    judged before, still alerts. One query over at most LOOKBACK before the oldest candidate.
    """
    if not transitions:
        return set()
    earliest = min(t.at for t in transitions) - LOOKBACK
    history: dict[tuple[int, str], list[tuple[datetime, int, str, str]]] = {}
    for binding_id, protocol, at, pk, old, new in (
        m.VerdictTransition.objects.filter(
            binding_id__in={t.binding_id for t in transitions},
            at__gte=earliest,
            at__lte=max(t.at for t in transitions),
        )
        .order_by("at", "pk")
        .values_list("binding_id", "protocol", "at", "pk", "old", "new")
    ):
        history.setdefault((binding_id, protocol), []).append((at, pk, old, new))
    first = set()
    for t in transitions:
        before = [
            row for row in history.get((t.binding_id, t.protocol), ()) if (row[0], row[1]) < (t.at, t.pk)
        ]
        if before and before[-1][2:] == ("", "unknown"):
            first.add(t.pk)
    return first


def alerts_scan(*, now: datetime | None = None) -> list[int]:
    """Record the deliveries due now and return their ids. Idempotent: a rerun records nothing."""
    now = now or timezone.now()
    hooks = list(m.AlertHook.objects.filter(enabled=True).prefetch_related("clusters"))
    if not hooks:
        return []
    scopes = {h.pk: {c.pk for c in h.clusters.all()} for h in hooks}
    existing = set(
        m.AlertDelivery.objects.filter(hook__in=hooks, created_at__gte=now - 2 * LOOKBACK).values_list(
            "hook_id", "event_key"
        )
    )
    created: list[int] = []

    def offer(hook: m.AlertHook, key: str, event: dict[str, Any], transition_id: int | None = None) -> None:
        if (hook.pk, key) in existing:
            return
        payload = payload_for(hook, event)
        if payload is None:
            return
        pk = _record(hook, key, payload, transition_id)
        if pk is not None:
            created.append(pk)

    if any(h.on_transitions for h in hooks):
        transitions = (
            m.VerdictTransition.objects.filter(at__gte=now - LOOKBACK)
            .exclude(old="")  # a first sighting is not a change
            .select_related("binding__cluster")
            .only(
                "pk",
                "protocol",
                "old",
                "new",
                "at",
                "binding__namespace",
                "binding__name",
                "binding__cluster",
                "binding_id",
            )
            .order_by("at", "pk")
        )
        transitions = list(transitions)
        first_judgements = first_judgements_of([t for t in transitions if t.old == "unknown"])
        causes = root_causes(
            {
                (t.binding_id, t.protocol)
                for t in transitions
                if t.pk not in first_judgements and t.new != "reachable"
            }
        )
        for t in transitions:
            if t.pk in first_judgements:
                continue  # the first verdict after "not polled yet" is not a change either
            event = transition_event(t, causes.get((t.binding_id, t.protocol), ""))
            for hook in hooks:
                scope = scopes[hook.pk]
                if hook.on_transitions and (not scope or t.binding.cluster_id in scope):
                    offer(hook, f"transition:{t.pk}", event, t.pk)

    if any(h.on_stale for h in hooks):
        clusters = list(m.Cluster.objects.all())
        for kind, sources in (("cluster", clusters), ("account", list(m.AwsAccount.objects.all()))):
            for source in sources:
                if not _stale(source, now):
                    continue
                # One alert per stale episode: the key names the last success it is stale since.
                since = source.last_success_at.isoformat() if source.last_success_at else "never"
                key = f"stale:{kind}:{source.pk}:{since}"
                event = stale_event(kind, source, now)
                for hook in hooks:
                    scope = scopes[hook.pk]
                    if not hook.on_stale:
                        continue
                    if scope:
                        ids = (
                            {source.pk}
                            if kind == "cluster"
                            else {c.pk for c in clusters if c.aws_account_id == source.pk}
                        )
                        if not scope & ids:
                            continue
                    offer(hook, key, event)
    return created


# --- delivery ---------------------------------------------------------------------------------


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is never followed: the hook's URL was checked, the redirect target was not (a
    blind SSRF into the worker's network). urllib then raises the 3xx as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_RefuseRedirects)


PD_ROUTING_KEY_LENGTH = 32  # Events API v2: "the 32 character Integration Key"


def request_for(hook: m.AlertHook, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where to POST a stored payload, and the body, secrets filled in now from file or env."""
    if hook.kind == m.AlertHook.Kind.PAGERDUTY:
        secret = hook_secret(hook)  # a key, not a URL: the URL checks apply to the endpoint instead
        if not secret:
            raise PermanentDeliveryError("no routing key: the hook's file or environment variable is empty")
        if len(secret) != PD_ROUTING_KEY_LENGTH or not secret.isalnum():
            # Say what is wrong without echoing the key (it is a credential).
            raise PermanentDeliveryError(
                f"the routing key is not a PagerDuty integration key "
                f"({PD_ROUTING_KEY_LENGTH} letters and digits; this one has {len(secret)} characters)"
            )
        return settings.BH_PAGERDUTY_EVENTS_URL, {"routing_key": secret, **payload}
    return hook_url(hook), payload  # HookUrlError names an empty, unreadable or disallowed URL


def post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST `payload`; raise DeliveryError (retry) or PermanentDeliveryError (don't)."""
    check_hook_url(url)
    body = json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "binding-health-alerts"},
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        # HTTPError's text has the status, never the URL; keep it that way in last_error (and
        # leave out a redirect's Location: it is the receiver's, and may carry anything).
        message = f"HTTP {exc.code} {exc.reason}"
        if 300 <= exc.code < 400:
            raise PermanentDeliveryError(
                f"{message}: the hook answered with a redirect, and redirects are never followed; "
                "configure the final URL"
            ) from None
        if exc.code >= 500 or exc.code == 429:
            raise DeliveryError(message) from None
        raise PermanentDeliveryError(message) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"connection failed: {reason.__class__.__name__}: {reason}"[:500]) from None


def deliver(delivery_id: int, *, final_attempt: bool) -> str:
    """Send one delivery; raise DeliveryError to be retried unless this is the final attempt. The
    row records every attempt (the Celery task `deliver_alert_task` owns the retry policy)."""
    delivery = m.AlertDelivery.objects.select_related("hook").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone"
    if delivery.status != m.AlertDelivery.Status.PENDING:
        return delivery.status  # a redelivered message after success (acks_late): send nothing
    m.AlertDelivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts + 1)
    delivery.attempts += 1
    try:
        url, body = request_for(delivery.hook, delivery.payload)
        post_json(url, body, timeout=settings.BH_ALERT_TIMEOUT_SECONDS)
    except PermanentDeliveryError as exc:
        error = str(exc)
        if delivery.hook.kind == m.AlertHook.Kind.PAGERDUTY and error.startswith(("HTTP 400", "HTTP 404")):
            error += " (PagerDuty rejected the event: check the routing key and BH_PAGERDUTY_EVENTS_URL)"
        _finish(delivery, m.AlertDelivery.Status.FAILED, error)
        # A misconfigured hook must be visible where operators look, not only in the admin.
        task_logger.warning("alert %s to hook %s failed for good: %s", delivery.pk, delivery.hook.name, error)
        return "failed"
    except DeliveryError as exc:
        final = final_attempt
        _finish(
            delivery, m.AlertDelivery.Status.FAILED if final else m.AlertDelivery.Status.PENDING, str(exc)
        )
        task_logger.warning(
            "alert %s to hook %s failed (attempt %d): %s",
            delivery.pk,
            delivery.hook.name,
            delivery.attempts,
            exc,
        )
        if final:
            return "failed"
        raise
    _finish(delivery, m.AlertDelivery.Status.SENT, "", sent_at=timezone.now())
    return "sent"


def _finish(delivery: m.AlertDelivery, status: str, error: str, sent_at: datetime | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "last_error": error[:2000]}
    if sent_at is not None:
        fields["sent_at"] = sent_at
    m.AlertDelivery.objects.filter(pk=delivery.pk).update(**fields)
