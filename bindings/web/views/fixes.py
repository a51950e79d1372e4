"""A binding's fix: the panel (manifest, patch, alternatives), the YAML download, and the two
permission-guarded steps of applying it (dry-run review, then apply), both through
`bindings.services.apply`."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from bindings import models as m
from bindings.fixes import render as fix_render
from bindings.services import apply as fix_apply
from bindings.web import http, presenters
from bindings.web.http import HtmxHttpRequest

FIX_TEMPLATE = "dashboard/binding_fix.html"


def _fix_context(request: HttpRequest, binding: m.TargetGroupBinding) -> dict[str, Any]:
    stored = fix_apply.stored_fix(binding)
    fix = stored or {}
    health_commands = [
        {
            "command": presenters.as_text(item),
            "reason": item.get("reason", "") if isinstance(item, dict) else "",
        }
        for item in fix.get("healthCheck") or []
    ]
    return {
        "binding": binding,
        "fix": stored,
        "manifest_yaml": fix_render.stored_manifest_yaml(stored),
        "patch_command": (fix.get("patch") or {}).get("kubectl", ""),
        "sg_commands": [presenters.as_text(c) for c in fix.get("securityGroupCommands") or []],
        "acl_commands": [presenters.as_text(c) for c in fix.get("networkAclCommands") or []],
        "terraform": fix.get("terraform") or "",
        "health_commands": health_commands,
        "warnings": [presenters.as_text(w) for w in fix.get("warnings") or []],
        "fix_targets": fix.get("targets") or [],
        "explanation": [line for line in str(fix.get("explanation") or "").splitlines() if line.strip()],
        "audits": list(
            m.FixApplication.objects.filter(binding=binding).select_related("user").order_by("-at", "-pk")[:5]
        ),
        "applied": presenters.applied_state(binding, getattr(binding, "result", None)),
        **http.perms(request, binding.cluster),
    }


@require_GET
@login_required
def binding_fix(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The stored fix: manifest, patch command, alternatives, explanation, apply controls."""
    binding = http.binding_or_404(pk)
    return render(request, http.page_template(request, FIX_TEMPLATE, "panel"), _fix_context(request, binding))


@require_GET
@login_required
def binding_fix_yaml(request: HttpRequest, pk: int) -> HttpResponse:
    """Download the fix manifest as a YAML file."""
    binding = http.binding_or_404(pk)
    text = fix_render.stored_manifest_yaml(fix_apply.stored_fix(binding))
    if not text:
        return HttpResponse("No automatic fix for this binding.\n", status=404, content_type="text/plain")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{binding.namespace}-{binding.name}")[:150]
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe}-fix.yaml"'
    return response


def _apply_response(
    request: HtmxHttpRequest, binding: m.TargetGroupBinding, outcome: fix_apply.Outcome, step: str
) -> HttpResponse:
    context = _fix_context(request, binding)
    context.update(
        {"outcome": outcome, "step": step, "review_minutes": max(1, settings.BH_APPLY_REVIEW_SECONDS // 60)}
    )
    status = 403 if outcome.status == m.FixApplication.Status.DENIED else 200
    response = render(request, http.page_template(request, FIX_TEMPLATE, "apply"), context, status=status)
    if outcome.status == m.FixApplication.Status.APPLIED:
        # The detail page's live region shows "waiting for the controller" at once, not at its next tick.
        trigger_client_event(response, "bh:applied")
    return response


@require_POST
@login_required
def binding_fix_dry_run(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Step 1 of applying, the review: a server-side dry-run (or a clearly labelled local diff),
    recorded with the exact patch an apply of it sends."""
    binding = http.binding_or_404(pk)
    outcome = fix_apply.fix_dry_run(binding=binding, user=request.user)
    return _apply_response(request, binding, outcome, "dry-run")


@require_POST
@login_required
def binding_fix_apply(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Step 2: send the patch of the dry-run named in the form (`bindings.services.apply.apply_reviewed`)."""
    binding = http.binding_or_404(pk)
    outcome = fix_apply.apply_reviewed(request.POST.get("dry_run", "")[:20], request.user, binding=binding)
    return _apply_response(request, binding, outcome, "apply")
