"""Apply a generated fix to a TargetGroupBinding from the dashboard: review (dry-run), then apply it.

The only place where Binding Health writes to a cluster (docs/DESIGN.md "Fix manifests"). Every step is
recorded as a `FixApplication` audit row (who, when, what, result):

1. `fix_dry_run(binding=, user=)` is the review. It reads the live TGB and the binding's current
   fix, builds the JSON merge patch (`spec.networking` only, plus `metadata.resourceVersion` so the
   API server refuses it once the TGB moved) and records, in a DRY_RUN row: the user, the time,
   the TGB's uid and resourceVersion, the exact patch text and its SHA-256. It then shows the diff:
   a server-side dry-run (``dryRun=All``) of that very text when the server declares dry-run
   support for PATCH in its OpenAPI v3 document, else (the kmock emulator, which would *persist* a
   "dry-run") a diff computed locally against the live object and labelled as such.
2. `apply_reviewed(dry_run_id, user)` sends exactly the text that dry-run recorded (the stored fix
   is not read to build it), and only if: the same user made the dry-run within
   `BH_APPLY_REVIEW_SECONDS` (default 600), it was not applied before, the recorded text still
   matches its digest, the binding's current fix would still make the same `spec.networking`
   (a change of client networks since the review cannot widen what is sent), and the live TGB has
   the reviewed uid and resourceVersion. Anything else is refused and recorded, nothing sent.

Permission failures (`bindings.apply_fix`, or the cluster's `allow_apply_fix` switch off) are
recorded as DENIED.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from kubernetes import client as k8s

from bindings import models as m
from bindings.collect import kube
from bindings.collect.errors import KubeError
from bindings.fixes import render
from bindings.services import polling

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

    @property
    def dry_run_id(self) -> int | None:
        """The id to pass to `apply_reviewed` (a successful dry-run only)."""
        return self.audit.pk if self.status == Status.DRY_RUN else None


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
        return render.to_yaml({"networking": value}).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(lines(live), lines(result), fromfile=f"live {name}", tofile=f"after fix {name}")
    )


def stored_fix(binding: m.TargetGroupBinding) -> dict[str, Any] | None:
    """The fix the last analysis generated for `binding` (BindingResult.data["fix"]), or None."""
    result = getattr(binding, "result", None)  # absent: RelatedObjectDoesNotExist, an AttributeError
    fix = (result.data or {}).get("fix") if result else None
    return fix if isinstance(fix, dict) and fix else None


def patch_text(body: dict[str, Any]) -> str:
    """The body as the Kubernetes client puts it on the wire (`json.dumps` with its defaults).

    `json.dumps(json.loads(text)) == text` for such text, so sending the parsed text sends these
    exact bytes; the digest of the text is the digest of the request body.
    """
    return json.dumps(body)


def patch_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _audit(
    *,
    binding: m.TargetGroupBinding | None,
    user: Any,
    status: str,
    text: str = "",
    diff: str = "",
    message: str = "",
    reviewed: m.FixApplication | None = None,
    uid: str = "",
    resource_version: str = "",
    server_dry_run: bool = False,
) -> m.FixApplication:
    if binding is None and reviewed is not None:
        namespace, name, cluster = reviewed.namespace, reviewed.name, reviewed.cluster
    else:
        namespace = binding.namespace if binding else ""
        name = binding.name if binding else ""
        cluster = binding.cluster if binding else None
    return m.FixApplication.objects.create(
        cluster=cluster,
        binding=binding,
        namespace=namespace,
        name=name,
        user=user if getattr(user, "is_authenticated", False) else None,
        status=status,
        manifest=json.loads(text) if text else {},
        patch=text,
        patch_sha256=patch_digest(text) if text else "",
        diff=diff,
        message=message[:4000],
        reviewed=reviewed,
        uid=uid,
        resource_version=resource_version,
        server_dry_run=server_dry_run,
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


def _refuse(
    binding: m.TargetGroupBinding | None,
    user: Any,
    message: str,
    *,
    reviewed: m.FixApplication | None = None,
    status: str = Status.REFUSED,
    sent: bool = False,
) -> Outcome:
    # The row's patch text is what was *sent*: empty unless the request went out (then failed).
    audit = _audit(
        binding=binding,
        user=user,
        status=status,
        text=reviewed.patch if reviewed is not None and sent else "",
        message=message,
        reviewed=reviewed,
        uid=reviewed.uid if reviewed is not None else "",
        resource_version=reviewed.resource_version if reviewed is not None else "",
    )
    return Outcome(status, message, audit)


def fix_dry_run(*, binding: m.TargetGroupBinding, user: Any) -> Outcome:
    """Step 1, the review: what the binding's current fix would change, recorded as DRY_RUN.

    The DRY_RUN row records the live TGB's uid and resourceVersion and the exact patch text an
    apply of this review sends (with `metadata.resourceVersion`, so the API server refuses it if
    the TGB moved); `Outcome.audit.pk` is the id `apply_reviewed` takes. Refusals are recorded as
    DENIED (no permission), FAILED (no fix, unreachable) or CONFLICT.
    """
    problem = permission_problem(user, binding.cluster)
    if problem:
        return _refuse(binding, user, problem, status=Status.DENIED)
    try:
        networking = networking_patch(stored_fix(binding))
    except FixNotApplicable as exc:
        return _refuse(binding, user, str(exc), status=Status.FAILED)
    try:
        api_client = _client(binding.cluster)
    except KubeError as exc:
        return _refuse(binding, user, str(exc), status=Status.FAILED)
    with api_client:
        api = k8s.CustomObjectsApi(api_client)
        try:
            live = _get_live(api, binding)
            metadata = live.get("metadata") or {}
            rv, uid = str(metadata.get("resourceVersion") or ""), str(metadata.get("uid") or "")
            live_networking = (live.get("spec") or {}).get("networking")
            text = patch_text({**networking, "metadata": {"resourceVersion": rv}})
            dry = server_supports_dry_run(api_client, binding)
            if dry:
                answer = _patch(api, binding, json.loads(text), dry_run=True)
                result_networking = (answer.get("spec") or {}).get("networking")
                message = "Server-side dry-run (dryRun=All) accepted the patch; nothing was changed yet."
            else:
                result_networking = merge_patch(live.get("spec") or {}, networking["spec"]).get("networking")
                message = (
                    "This API server does not support server-side dry-run for TargetGroupBindings, so no "
                    "dry-run was sent: the diff below is computed by Binding Health from the live object "
                    "and has not been validated by the API server."
                )
        except k8s.ApiException as exc:
            status = Status.CONFLICT if exc.status == 409 else Status.FAILED
            return _refuse(
                binding, user, f"The API server refused the dry-run: {_api_error(exc)}", status=status
            )
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:  # unreachable, timed out
            return _refuse(
                binding, user, f"Cannot reach cluster {binding.cluster.name}: {exc}", status=Status.FAILED
            )
    diff = networking_diff(live_networking, result_networking, name=f"{binding.namespace}/{binding.name}")
    if not diff:
        message += " The live binding already has this networking: applying changes nothing."
    audit = _audit(
        binding=binding,
        user=user,
        status=Status.DRY_RUN,
        text=text,
        diff=diff,
        message=message,
        uid=uid,
        resource_version=rv,
        server_dry_run=dry,
    )
    return Outcome(Status.DRY_RUN, message, audit, diff=diff, resource_version=rv, server_dry_run=dry)


def _review_problem(review: m.FixApplication, user: Any, now: Any) -> str:
    """Why `review` may not be applied by `user` now (before asking the cluster), or ""."""
    what = f"dry-run #{review.pk} of {review.namespace}/{review.name}"
    if review.user_id is None or review.user_id != getattr(user, "pk", None):
        return f"The {what} was made by another user: review the change yourself (run the dry-run)."
    window = int(getattr(settings, "BH_APPLY_REVIEW_SECONDS", 600))
    age = (now - review.at).total_seconds()
    if age > window:
        return (
            f"The {what} is {int(age)} s old, older than the {window} s a review stays valid "
            "(BH_APPLY_REVIEW_SECONDS): run the dry-run again."
        )
    if review.used_at is not None:
        return (
            f"The {what} was already applied at {review.used_at:%Y-%m-%d %H:%M:%S %Z}: run the dry-run again."
        )
    if not review.patch or patch_digest(review.patch) != review.patch_sha256:
        return f"The {what} has no intact recorded patch (its digest does not match): run the dry-run again."
    if review.binding is None:
        return f"{review.namespace}/{review.name} is no longer known to Binding Health: nothing was applied."
    return ""


def apply_reviewed(
    dry_run_id: int | str | None, user: Any, *, binding: m.TargetGroupBinding | None = None
) -> Outcome:
    """Step 2: send exactly the patch that dry-run `dry_run_id` recorded, or refuse.

    Used by the dashboard's Apply button and by headless callers alike; `user` is a Django user.
    `binding`, when given (the page the button was on), must be the dry-run's binding. Every call
    writes one FixApplication row pointing at the dry-run: APPLIED (with the text and digest
    sent), or REFUSED / DENIED / CONFLICT / FAILED with the reason. It refuses, without sending
    anything, when: there is no such dry-run, another user made it, it is older than
    `BH_APPLY_REVIEW_SECONDS`, it was already applied, its recorded patch does not match its
    digest, the binding's current fix no longer makes the reviewed `spec.networking` (e.g. the
    cluster's client networks changed since), or the live TGB's uid or resourceVersion moved.
    The stored fix is never sent: only the recorded text, whose bytes are the request body.
    """
    review = _load_review(dry_run_id)
    # Permission first: who may not apply learns nothing about other people's reviews.
    target = review.binding if review is not None else binding
    problem = _apply_permission_problem(user, review, target, binding)
    if problem:
        return _refuse(binding or target, user, problem, reviewed=review, status=Status.DENIED)
    if review is None:
        return _refuse(
            binding, user, "Apply needs the id of a dry-run (review the change first): nothing was applied."
        )
    if binding is not None and review.binding_id != binding.pk:
        return _refuse(
            binding,
            user,
            f"Dry-run #{review.pk} is not a review of this binding: nothing was applied.",
            reviewed=review,
        )
    problem = _review_problem(review, user, timezone.now())
    if problem:
        return _refuse(target, user, problem, reviewed=review)
    assert target is not None  # _review_problem refuses a review whose binding is gone
    name = f"{target.namespace}/{target.name}"
    if _fix_changed_since(review, target):
        return _refuse(
            target,
            user,
            f"The fix for {name} changed since dry-run #{review.pk} (the analysis now proposes a different "
            "spec.networking, e.g. after a change of the cluster's client networks, or none): nothing was "
            "applied. Run the dry-run again to review the current change.",
            reviewed=review,
        )
    try:
        api_client = _client(target.cluster)
    except KubeError as exc:
        return _refuse(target, user, str(exc), reviewed=review, status=Status.FAILED)
    sent = _send_review(api_client, review, target, user)
    if isinstance(sent, Outcome):
        return sent
    live_networking, answer = sent
    result_networking = (answer.get("spec") or {}).get("networking")
    diff = networking_diff(live_networking, result_networking, name=name)
    new_rv = str((answer.get("metadata") or {}).get("resourceVersion") or "")
    message = (
        f"Patched spec.networking of {name} with the patch reviewed in dry-run #{review.pk} "
        f"(sha256 {review.patch_sha256[:12]}…, field manager {FIELD_MANAGER}). The controller now reconciles "
        "the security-group rules; the next poll shows the new verdicts."
    )
    audit = _audit(
        binding=target,
        user=user,
        status=Status.APPLIED,
        text=review.patch,
        diff=diff,
        message=message,
        reviewed=review,
        uid=review.uid,
        resource_version=review.resource_version,
    )
    return Outcome(Status.APPLIED, message, audit, diff=diff, resource_version=new_rv)


def _load_review(dry_run_id: int | str | None) -> m.FixApplication | None:
    """The DRY_RUN row `dry_run_id` names, or None (no such row, or not an id at all)."""
    try:
        return (
            m.FixApplication.objects.select_related("binding__cluster", "cluster")
            .filter(pk=int(str(dry_run_id)), status=Status.DRY_RUN)
            .first()
        )
    except (TypeError, ValueError):
        return None


def _apply_permission_problem(
    user: Any,
    review: m.FixApplication | None,
    target: m.TargetGroupBinding | None,
    binding: m.TargetGroupBinding | None,
) -> str:
    """Why `user` may not apply here (on the review's cluster and, when given, the page's), or ""."""
    cluster = target.cluster if target is not None else (review.cluster if review is not None else None)
    if cluster is not None:
        problem = permission_problem(user, cluster)
    elif not user.is_authenticated or not user.has_perm(APPLY_PERMISSION):
        problem = f"You do not have the permission to apply fixes ({APPLY_PERMISSION})."
    else:
        problem = ""
    if binding is not None and not problem:
        problem = permission_problem(user, binding.cluster)
    return problem


def _fix_changed_since(review: m.FixApplication, target: m.TargetGroupBinding) -> bool:
    """Does the binding's current fix make a different `spec.networking` than the reviewed patch?"""
    reviewed_networking = (json.loads(review.patch).get("spec") or {}).get("networking")
    try:
        current = networking_patch(stored_fix(target))["spec"]["networking"]
    except FixNotApplicable:
        current = None
    return bool(current != reviewed_networking)


def _send_review(
    api_client: k8s.ApiClient, review: m.FixApplication, target: m.TargetGroupBinding, user: Any
) -> Outcome | tuple[Any, dict[str, Any]]:
    """Check the live TGB is the reviewed one, claim the review, send its recorded patch: the live
    object's networking and the API server's answer, or the refusal (recorded) as an Outcome."""
    name = f"{target.namespace}/{target.name}"
    sent = False
    with api_client:
        api = k8s.CustomObjectsApi(api_client)
        try:
            live = _get_live(api, target)
            metadata = live.get("metadata") or {}
            live_rv, live_uid = str(metadata.get("resourceVersion") or ""), str(metadata.get("uid") or "")
            live_networking = (live.get("spec") or {}).get("networking")
            if live_uid != review.uid or live_rv != review.resource_version:
                moved = (
                    f"uid {review.uid or '?'} → {live_uid or '?'}"
                    if live_uid != review.uid
                    else f"resourceVersion {review.resource_version or '?'} → {live_rv}"
                )
                return _refuse(
                    target,
                    user,
                    f"{name} changed since dry-run #{review.pk} ({moved}): nothing was applied. "
                    "Run the dry-run again to review the current change.",
                    reviewed=review,
                    status=Status.CONFLICT,
                )
            # Claimed before sending, so two tabs applying one review send it at most once.
            now = timezone.now()
            if not m.FixApplication.objects.filter(pk=review.pk, used_at__isnull=True).update(used_at=now):
                return _refuse(
                    target,
                    user,
                    f"Dry-run #{review.pk} was already applied: nothing was sent again.",
                    reviewed=review,
                )
            sent = True
            answer = _patch(api, target, json.loads(review.patch), dry_run=False)
        except k8s.ApiException as exc:
            status = Status.CONFLICT if exc.status == 409 else Status.FAILED
            what = "the patch" if sent else f"to read {name}"
            text = f"The API server refused {what}: {_api_error(exc)}"
            if exc.status == 409:
                text += " (someone else changed the binding; run the dry-run again)"
            return _refuse(target, user, text, reviewed=review, status=status, sent=sent)
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            return _refuse(
                target,
                user,
                f"Cannot reach cluster {target.cluster.name}: {exc}",
                reviewed=review,
                status=Status.FAILED,
                sent=sent,
            )
    return live_networking, answer
