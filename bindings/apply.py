"""Apply a generated fix to a TargetGroupBinding from the dashboard: dry-run first, then confirm.

The only place where a request writes to a cluster (DESIGN.md "Fix manifests"). Two steps, each
recorded as a `FixApplication` audit row (who, when, what, result):

1. `fix_dry_run` reads the live TGB and sends the fix's `spec.networking` as a JSON merge patch with
   ``dryRun=All`` and field manager ``binding-health``, then diffs the live networking against the
   API server's answer. It asks the server first whether it supports dry-run for this resource (its
   OpenAPI v3 document declares a ``dryRun`` parameter for PATCH): a server that does not (the
   kmock emulator, for one) would *persist* a "dry-run" patch, so then no patch is sent and the
   diff is computed locally against the live object and labelled as such — never passed off as a
   server-side dry-run.
2. `fix_apply` re-reads the live TGB; if its resourceVersion moved since the dry-run, the change
   the user reviewed is no longer what would happen, so it stops with CONFLICT. Otherwise it sends
   the same merge patch for real, carrying that resourceVersion so the API server itself refuses
   (409) a write that races another one.

Only ``spec.networking`` is ever patched, whatever else a stored fix holds. Permission failures
(`bindings.apply_fix`, or the cluster's `allow_apply_fix` switch off) are recorded as DENIED.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
from dataclasses import dataclass
from typing import Any

import urllib3
import yaml
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from kubernetes import client as k8s

from bindings import kube, polling
from bindings import models as m
from bindings.errors import KubeError

logger = logging.getLogger(__name__)

FIELD_MANAGER = "binding-health"
APPLY_PERMISSION = "bindings.apply_fix"
# Short: a person waits on this request; a slow API server should fail fast and say so.
REQUEST_TIMEOUT = 15
Status = m.FixApplication.Status


class FixNotApplicable(ValueError):
    """The stored fix carries no `spec.networking` change that could be patched."""


@dataclass
class Outcome:
    """What one step did; `audit` is the FixApplication row written for it."""

    status: str
    message: str
    audit: m.FixApplication
    diff: str = ""
    resource_version: str = ""
    server_dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.status in (Status.DRY_RUN, Status.APPLIED)


def permission_problem(user: AbstractBaseUser | AnonymousUser, cluster: m.Cluster) -> str:
    """Why `user` may not apply fixes to `cluster`, or "" when they may."""
    if not cluster.allow_apply_fix:
        return (
            f"Applying fixes is switched off for cluster {cluster.name} "
            "(an operator can allow it in the admin)."
        )
    if not user.is_authenticated or not user.has_perm(APPLY_PERMISSION):
        return "You do not have the permission to apply fixes (bindings.apply_fix)."
    return ""


def networking_patch(fix: dict[str, Any] | None) -> dict[str, Any]:
    """The merge-patch body for a stored fix: `{"spec": {"networking": ...}}` and nothing else.

    Takes the fix's patch body when it has one, else the networking of its full manifest.
    """
    if not isinstance(fix, dict):
        raise FixNotApplicable("there is no automatic fix for this binding")
    candidates = []
    patch = fix.get("patch")
    if isinstance(patch, dict) and isinstance(patch.get("body"), dict):
        body = patch["body"]
        candidates.append(
            (body.get("spec") or {}).get("networking") if isinstance(body.get("spec"), dict) else None
        )
        candidates.append(body.get("networking"))
    manifest = fix.get("manifest")
    if isinstance(manifest, dict) and isinstance(manifest.get("spec"), dict):
        candidates.append(manifest["spec"].get("networking"))
    for networking in candidates:
        if isinstance(networking, dict) and networking:
            return {"spec": {"networking": copy.deepcopy(networking)}}
    raise FixNotApplicable("the fix changes no spec.networking of the TargetGroupBinding")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: what the API server does with `application/merge-patch+json`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def networking_diff(live: Any, result: Any, *, name: str) -> str:
    """A unified diff of two `spec.networking` values as YAML ("" when they are equal)."""

    def lines(value: Any) -> list[str]:
        if value is None:
            return ["# no spec.networking\n"]
        return yaml.safe_dump({"networking": value}, sort_keys=False, default_flow_style=False).splitlines(
            keepends=True
        )

    return "".join(
        difflib.unified_diff(lines(live), lines(result), fromfile=f"live {name}", tofile=f"after fix {name}")
    )


def _audit(
    *,
    binding: m.TargetGroupBinding,
    user: Any,
    status: str,
    patch: dict[str, Any] | None = None,
    diff: str = "",
    message: str = "",
) -> m.FixApplication:
    return m.FixApplication.objects.create(
        cluster=binding.cluster,
        binding=binding,
        namespace=binding.namespace,
        name=binding.name,
        user=user if getattr(user, "is_authenticated", False) else None,
        status=status,
        manifest=patch or {},
        diff=diff,
        message=message[:4000],
    )


def _api_version(binding: m.TargetGroupBinding) -> tuple[str, str]:
    group, _, version = (binding.api_version or f"{kube.TGB_GROUP}/v1beta1").partition("/")
    return group, version or "v1beta1"


def _client(cluster: m.Cluster) -> k8s.ApiClient:
    return kube.api_client_for(polling.kube_connection(cluster))


def _get_live(api: k8s.CustomObjectsApi, binding: m.TargetGroupBinding) -> dict[str, Any]:
    group, version = _api_version(binding)
    return api.get_namespaced_custom_object(
        group, version, binding.namespace, kube.TGB_PLURAL, binding.name, _request_timeout=REQUEST_TIMEOUT
    )


def _patch(
    api: k8s.CustomObjectsApi, binding: m.TargetGroupBinding, body: dict[str, Any], *, dry_run: bool
) -> dict[str, Any]:
    group, version = _api_version(binding)
    return api.patch_namespaced_custom_object(
        group,
        version,
        binding.namespace,
        kube.TGB_PLURAL,
        binding.name,
        body,
        dry_run="All" if dry_run else None,
        field_manager=FIELD_MANAGER,
        _content_type="application/merge-patch+json",
        _request_timeout=REQUEST_TIMEOUT,
    )


def server_supports_dry_run(api_client: k8s.ApiClient, binding: m.TargetGroupBinding) -> bool:
    """Whether the API server declares `dryRun` on PATCH of this binding's resource.

    Real API servers (dry-run is GA since 1.18) publish it in `/openapi/v3/apis/<group>/<version>`;
    an emulator that ignores the parameter would persist the "dry-run", so anything else is "no".
    """
    group, version = _api_version(binding)
    url = f"{api_client.configuration.host}/openapi/v3/apis/{group}/{version}"
    try:
        response = api_client.call_api(
            "GET", url, header_params={"Accept": "application/json"}, _request_timeout=REQUEST_TIMEOUT
        )
        response.read()
        if response.status != 200:
            return False
        document = json.loads(response.data or b"{}")
    except (ValueError, OSError, urllib3.exceptions.HTTPError, k8s.ApiException) as exc:
        logger.info("no OpenAPI v3 document for %s/%s: %s", group, version, exc)
        return False
    for path, item in (document.get("paths") or {}).items():
        if path.endswith(f"/{kube.TGB_PLURAL}/{{name}}") and isinstance(item, dict):
            operation = item.get("patch")
            if isinstance(operation, dict) and "dryRun" in json.dumps(operation.get("parameters", [])):
                return True
            if "dryRun" in json.dumps(item.get("parameters", [])):
                return True
    return False


def _api_error(exc: k8s.ApiException) -> str:
    """The API server's own message when it sent a Status, else the HTTP reason."""
    try:
        status = json.loads(exc.body or "{}")
        if isinstance(status, dict) and status.get("message"):
            return f"{exc.status} {status.get('reason') or exc.reason}: {status['message']}"
    except (TypeError, ValueError):
        pass
    return f"{exc.status} {exc.reason}"


def fix_dry_run(*, binding: m.TargetGroupBinding, user: Any, fix: dict[str, Any] | None) -> Outcome:
    """Step 1: show what the fix would change, recorded as DRY_RUN (or DENIED/FAILED/CONFLICT)."""
    problem = permission_problem(user, binding.cluster)
    if problem:
        return Outcome(
            Status.DENIED, problem, _audit(binding=binding, user=user, status=Status.DENIED, message=problem)
        )
    try:
        body = networking_patch(fix)
    except FixNotApplicable as exc:
        return Outcome(
            Status.FAILED,
            str(exc),
            _audit(binding=binding, user=user, status=Status.FAILED, message=str(exc)),
        )
    try:
        api_client = _client(binding.cluster)
    except KubeError as exc:
        return Outcome(
            Status.FAILED,
            str(exc),
            _audit(binding=binding, user=user, status=Status.FAILED, patch=body, message=str(exc)),
        )
    with api_client:
        api = k8s.CustomObjectsApi(api_client)
        try:
            live = _get_live(api, binding)
            rv = str((live.get("metadata") or {}).get("resourceVersion") or "")
            live_networking = (live.get("spec") or {}).get("networking")
            dry = server_supports_dry_run(api_client, binding)
            if dry:
                # The resourceVersion makes the server check, as the real patch will, that the
                # object is the one just read.
                answer = _patch(api, binding, {**body, "metadata": {"resourceVersion": rv}}, dry_run=True)
                result_networking = (answer.get("spec") or {}).get("networking")
                message = "Server-side dry-run (dryRun=All) accepted the patch; nothing was changed yet."
            else:
                result_networking = merge_patch(live.get("spec") or {}, body["spec"]).get("networking")
                message = (
                    "This API server does not support server-side dry-run for TargetGroupBindings, so no "
                    "dry-run was sent: the diff below is computed by Binding Health from the live object "
                    "and has not been validated by the API server."
                )
        except k8s.ApiException as exc:
            status = Status.CONFLICT if exc.status == 409 else Status.FAILED
            text = f"The API server refused the dry-run: {_api_error(exc)}"
            return Outcome(
                status, text, _audit(binding=binding, user=user, status=status, patch=body, message=text)
            )
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:  # unreachable, timed out
            text = f"Cannot reach cluster {binding.cluster.name}: {exc}"
            return Outcome(
                Status.FAILED,
                text,
                _audit(binding=binding, user=user, status=Status.FAILED, patch=body, message=text),
            )
    diff = networking_diff(live_networking, result_networking, name=f"{binding.namespace}/{binding.name}")
    if not diff:
        message += " The live binding already has this networking: applying changes nothing."
    audit = _audit(binding=binding, user=user, status=Status.DRY_RUN, patch=body, diff=diff, message=message)
    return Outcome(Status.DRY_RUN, message, audit, diff=diff, resource_version=rv, server_dry_run=dry)


def fix_apply(
    *, binding: m.TargetGroupBinding, user: Any, fix: dict[str, Any] | None, resource_version: str
) -> Outcome:
    """Step 2: patch for real, unless the live object moved since the dry-run the user reviewed."""
    problem = permission_problem(user, binding.cluster)
    if problem:
        return Outcome(
            Status.DENIED, problem, _audit(binding=binding, user=user, status=Status.DENIED, message=problem)
        )
    try:
        body = networking_patch(fix)
    except FixNotApplicable as exc:
        return Outcome(
            Status.FAILED,
            str(exc),
            _audit(binding=binding, user=user, status=Status.FAILED, message=str(exc)),
        )
    try:
        api_client = _client(binding.cluster)
    except KubeError as exc:
        return Outcome(
            Status.FAILED,
            str(exc),
            _audit(binding=binding, user=user, status=Status.FAILED, patch=body, message=str(exc)),
        )
    name = f"{binding.namespace}/{binding.name}"
    with api_client:
        api = k8s.CustomObjectsApi(api_client)
        try:
            live = _get_live(api, binding)
            live_rv = str((live.get("metadata") or {}).get("resourceVersion") or "")
            live_networking = (live.get("spec") or {}).get("networking")
            if not resource_version or live_rv != resource_version:
                text = (
                    f"{name} changed since the dry-run "
                    f"(resourceVersion {resource_version or '?'} → {live_rv}): "
                    "nothing was applied. Run the dry-run again to review the current change."
                )
                return Outcome(
                    Status.CONFLICT,
                    text,
                    _audit(binding=binding, user=user, status=Status.CONFLICT, patch=body, message=text),
                )
            answer = _patch(
                api, binding, {**body, "metadata": {"resourceVersion": resource_version}}, dry_run=False
            )
        except k8s.ApiException as exc:
            status = Status.CONFLICT if exc.status == 409 else Status.FAILED
            text = f"The API server refused the patch: {_api_error(exc)}"
            if exc.status == 409:
                text += " (someone else changed the binding; run the dry-run again)"
            return Outcome(
                status, text, _audit(binding=binding, user=user, status=status, patch=body, message=text)
            )
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            text = f"Cannot reach cluster {binding.cluster.name}: {exc}"
            return Outcome(
                Status.FAILED,
                text,
                _audit(binding=binding, user=user, status=Status.FAILED, patch=body, message=text),
            )
    result_networking = (answer.get("spec") or {}).get("networking")
    diff = networking_diff(live_networking, result_networking, name=name)
    new_rv = str((answer.get("metadata") or {}).get("resourceVersion") or "")
    text = (
        f"Patched spec.networking of {name} (field manager {FIELD_MANAGER}). The controller now reconciles "
        "the security-group rules; the next poll shows the new verdicts."
    )
    audit = _audit(binding=binding, user=user, status=Status.APPLIED, patch=body, diff=diff, message=text)
    return Outcome(Status.APPLIED, text, audit, diff=diff, resource_version=new_rv)
