"""Access-control matrix and CSRF: every URL pattern of the project, every persona, every method.

The URL patterns are enumerated from the live resolver (the admin's and the API's included), so a
new URL without an entry in `EXPECTED` fails `test_every_url_pattern_has_an_expectation`. The
expectations themselves are written out here, by hand, from the access policy (README "Auth"),
never derived from the views under test:

- pages and partials: anonymous → login redirect; any signed-in user reads; poll needs
  bindings.poll_cluster (not change_cluster), apply needs bindings.apply_fix and a cluster that
  allows it;
- /api/: anonymous → 401 problem JSON (also when a CSRF check would apply); read tokens and
  sessions read; POST /polls needs the poll permission, held by the session's user or by the owner
  of a read-write token (a token never has more rights than its owner); expired and revoked
  tokens → 401;
- the admin: staff only, read-only models refuse add/change/delete even to superusers;
- /metrics: bearer token or allowed CIDR, else loopback only (the matrix requests come from a
  non-loopback address, the rules are covered by `test_metrics_access_rules`);
- /healthz, /readyz, the login and password-reset forms: public.

A bearer token authenticates the API only: on HTML pages it is no login.

`test_every_role_and_every_action` is the second table: roles (viewer, poller, editor, operator,
superuser) × actions on sources and tokens (poll by every route, edit connection fields, TLS and
apply switches, add sources, mint tokens), judged by their effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.crypto import get_random_string

from bindings import models as m
from tests.factories import load_scenario, make_token

pytestmark = pytest.mark.django_db

REMOTE = "203.0.113.7"  # a non-loopback client: /metrics refuses it unless configured
# viewer: signed in, no permissions; poller: may poll (poll_cluster, poll_awsaccount) and nothing
# else; operator: poll, change_cluster and apply_fix; staff: a superuser. tok_read/tok_write are the
# viewer's tokens, tok_poller is the poller's read-write token.
PERSONAS = (
    "anon",
    "viewer",
    "poller",
    "operator",
    "staff",
    "tok_read",
    "tok_write",
    "tok_poller",
    "tok_expired",
    "tok_revoked",
)
METHODS = ("GET", "POST")

# Outcome codes: a status, or
#   login  = 302 to /accounts/login/?next=…      alogin = 302 to /admin/login/?next=…
#   302    = any other redirect                  NNNp   = status NNN as application/problem+json
# Row order is PERSONAS: anon, viewer, poller, operator, staff, read token, write token (viewer's),
# write token (poller's), expired, revoked.
Row = tuple[str, str, str, str, str, str, str, str, str, str]
N = len(PERSONAS)

ALL_200: Row = ("200",) * N
ALL_405: Row = ("405",) * N
ALL_302: Row = ("302",) * N
# Dashboard pages: any signed-in user; a bearer token is not a login.
PAGE: Row = ("login", "200", "200", "200", "200", "login", "login", "login", "login", "login")
# Poll now (POST): needs bindings.poll_cluster; success redirects back to the cluster page.
POLL: Row = ("login", "403", "302", "302", "302", "login", "login", "login", "login", "login")
# Fix dry-run / apply (POST): needs bindings.apply_fix and Cluster.allow_apply_fix. The operator's
# request then reaches the (unreachable) API server and reports its error: 200, not 403.
APPLY: Row = ("login", "403", "403", "200", "200", "login", "login", "login", "login", "login")
# The JSON API: sessions and live tokens read; no credentials or dead tokens → 401 problem.
API_READ: Row = ("401p", "200", "200", "200", "200", "200", "200", "200", "401p", "401p")
# Polls: the permission, of the session's user or of a write token's owner (the viewer's write
# token polls nothing: the viewer may not).
API_POLL: Row = ("401p", "403p", "202", "202", "202", "403p", "403p", "202", "401p", "401p")
API_405: Row = ("405p",) * N
API_404: Row = ("404p",) * N
# The admin: staff only (non-staff, signed in or not, are sent to the admin's login).
_NO_ADMIN = ("alogin",) * 5
ADMIN_OK: Row = ("alogin", "alogin", "alogin", "alogin", "200", *_NO_ADMIN)
ADMIN_403: Row = ("alogin", "alogin", "alogin", "alogin", "403", *_NO_ADMIN)
ADMIN_404: Row = ("alogin", "alogin", "alogin", "alogin", "404", *_NO_ADMIN)
ADMIN_302: Row = ("alogin", "alogin", "alogin", "alogin", "302", *_NO_ADMIN)
ADMIN_405: Row = ("alogin", "alogin", "alogin", "alogin", "405", *_NO_ADMIN)
# Signed-in account pages (password change): any signed-in user.
_NO_LOGIN = ("login",) * 5
ACCOUNT: Row = ("login", "200", "200", "200", "200", *_NO_LOGIN)

# The admin's models, written out: a newly registered model produces URLs that are missing here.
# True = operators edit it (add/change/delete allowed to staff); False = observed state, read-only.
ADMIN_MODELS: dict[str, bool] = {
    "auth/group": True,
    "auth/user": True,
    "bindings/cluster": True,
    "bindings/awsaccount": True,
    "bindings/targetgroupbinding": False,
    "bindings/targetgroup": False,
    "bindings/registeredtarget": False,
    "bindings/loadbalancer": False,
    "bindings/listener": False,
    "bindings/networkinterface": False,
    "bindings/securitygroup": False,
    "bindings/pollrun": False,
    "bindings/kubeservice": False,
    "bindings/kubeendpointslice": False,
    "bindings/kubepod": False,
    "bindings/kubenode": False,
    "bindings/instance": False,
    "bindings/subnet": False,
    "bindings/vpc": False,
    "bindings/networkacl": False,
    "bindings/apitoken": True,
    "bindings/alerthook": True,
    "bindings/alertdelivery": False,
    "bindings/probesetting": True,
    "bindings/proberesult": False,
    "bindings/fixapplication": False,  # the apply audit: nobody edits or deletes it
}


def _admin_model_rows() -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for label, editable in ADMIN_MODELS.items():
        base = f"admin/{label}/"
        obj = "{obj[" + label + "]}"
        edit = ADMIN_OK if editable else ADMIN_403
        rows[base] = {"url": f"/{base}", "GET": ADMIN_OK, "POST": ADMIN_OK}
        rows[base + "add/"] = {"url": f"/{base}add/", "GET": edit, "POST": edit}
        rows[base + "<path:object_id>/history/"] = {
            "url": f"/{base}{obj}/history/",
            "GET": ADMIN_OK,
            "POST": ADMIN_OK,
        }
        # Without "post=yes" a delete POST only shows the confirmation page: nothing is deleted.
        rows[base + "<path:object_id>/delete/"] = {"url": f"/{base}{obj}/delete/", "GET": edit, "POST": edit}
        # Superusers may *view* read-only rows; saving them is refused.
        rows[base + "<path:object_id>/change/"] = {
            "url": f"/{base}{obj}/change/",
            "GET": ADMIN_OK,
            "POST": edit,
        }
        rows[base + "<path:object_id>/"] = {"url": f"/{base}{obj}/", "GET": ADMIN_302, "POST": ADMIN_302}
    return rows


EXPECTED: dict[str, dict[str, Any]] = {
    # --- dashboard pages and htmx partials ---
    "": {"url": "/", "GET": PAGE, "POST": ALL_405},
    "bindings/": {"url": "/bindings/", "GET": PAGE, "POST": ALL_405},
    "bindings/<int:pk>/": {"url": "/bindings/{binding}/", "GET": PAGE, "POST": ALL_405},
    "bindings/<int:pk>/fix/": {"url": "/bindings/{binding}/fix/", "GET": PAGE, "POST": ALL_405},
    # The fix download is an export: login required like the pages.
    "bindings/<int:pk>/fix.yaml": {"url": "/bindings/{binding}/fix.yaml", "GET": PAGE, "POST": ALL_405},
    "bindings/<int:pk>/fix/dry-run/": {
        "url": "/bindings/{binding}/fix/dry-run/",
        "GET": ALL_405,
        "POST": APPLY,
    },
    "bindings/<int:pk>/fix/apply/": {"url": "/bindings/{binding}/fix/apply/", "GET": ALL_405, "POST": APPLY},
    "clusters/<int:pk>/": {"url": "/clusters/{cluster}/", "GET": PAGE, "POST": ALL_405},
    "clusters/<int:pk>/poll/": {"url": "/clusters/{cluster}/poll/", "GET": ALL_405, "POST": POLL},
    "clusters/<int:pk>/poll-status/": {
        "url": "/clusters/{cluster}/poll-status/",
        "GET": PAGE,
        "POST": ALL_405,
    },
    "accounts/aws/<int:pk>/": {"url": "/accounts/aws/{account}/", "GET": PAGE, "POST": ALL_405},
    # --- machine endpoints ---
    "metrics": {"url": "/metrics", "GET": ("403",) * N, "POST": ALL_405},
    "healthz": {"url": "/healthz", "GET": ALL_200, "POST": ALL_405},
    "readyz": {"url": "/readyz", "GET": ALL_200, "POST": ALL_405},
    # --- the JSON API ---
    # The OpenAPI document describes the API, holds no data, and is public; it answers reads only.
    "api/v1/openapi.json": {"url": "/api/v1/openapi.json", "GET": ALL_200, "POST": API_405},
    # Its interactive view (Swagger UI, local assets) is public too.
    "api/v1/docs": {"url": "/api/v1/docs", "GET": ALL_200, "POST": API_405},
    "api/v1/clusters": {"url": "/api/v1/clusters", "GET": API_READ, "POST": API_405},
    "api/v1/accounts": {"url": "/api/v1/accounts", "GET": API_READ, "POST": API_405},
    "api/v1/bindings": {"url": "/api/v1/bindings", "GET": API_READ, "POST": API_405},
    "api/v1/bindings/<binding_id>": {"url": "/api/v1/bindings/{binding}", "GET": API_READ, "POST": API_405},
    "api/v1/bindings/<binding_id>/fix": {
        "url": "/api/v1/bindings/{binding}/fix",
        "GET": API_READ,
        "POST": API_405,
    },
    "api/v1/bindings/<binding_id>/history": {
        "url": "/api/v1/bindings/{binding}/history",
        "GET": API_READ,
        "POST": API_405,
    },
    "api/v1/findings": {"url": "/api/v1/findings", "GET": API_READ, "POST": API_405},
    # Who the caller is (the benchmarks' floor endpoint): any live session or token.
    "api/v1/whoami": {"url": "/api/v1/whoami", "GET": API_READ, "POST": API_405},
    "api/v1/polls": {"url": "/api/v1/polls", "GET": API_READ, "POST": API_POLL},
    "api/v1/": {"url": "/api/v1/", "GET": API_404, "POST": API_404},
    r"^api(?:/(?P<rest>.*))?$": {"url": "/api/v2/nothing", "GET": API_404, "POST": API_404},
    # --- single sign-on: off by default (BH_OIDC_ENABLED), so both routes are 404 for everybody ---
    "oidc/authenticate/": {"url": "/oidc/authenticate/", "GET": ("404",) * N, "POST": ("404",) * N},
    "oidc/callback/": {"url": "/oidc/callback/", "GET": ("404",) * N, "POST": ("404",) * N},
    # --- sign-in and account pages (django.contrib.auth) ---
    # An empty login POST re-renders the form (200): a failed attempt, counted by the rate limit.
    "accounts/login/": {"url": "/accounts/login/", "GET": ALL_200, "POST": ALL_200},
    # Logout is POST only (no logout by a cross-site <img>), then back to the login page.
    "accounts/logout/": {"url": "/accounts/logout/", "GET": ALL_405, "POST": ALL_302},
    "accounts/password_change/": {"url": "/accounts/password_change/", "GET": ACCOUNT, "POST": ACCOUNT},
    "accounts/password_change/done/": {
        "url": "/accounts/password_change/done/",
        "GET": ACCOUNT,
        "POST": ("login", "405", "405", "405", "405", *_NO_LOGIN),
    },
    # --- the admin ---
    "admin/": {"url": "/admin/", "GET": ADMIN_OK, "POST": ADMIN_OK},
    # The login form answers everyone; a staff user who is signed in already is sent on (302).
    "admin/login/": {
        "url": "/admin/login/",
        "GET": ("200", "200", "200", "200", "302", "200", "200", "200", "200", "200"),
        "POST": ALL_200,
    },
    # Non-staff are sent to the admin index (which sends them on to its login); staff log out by POST.
    "admin/logout/": {
        "url": "/admin/logout/",
        "GET": ("302", "302", "302", "302", "405", "302", "302", "302", "302", "302"),
        "POST": ALL_302,
    },
    "admin/password_change/": {"url": "/admin/password_change/", "GET": ADMIN_OK, "POST": ADMIN_OK},
    "admin/password_change/done/": {
        "url": "/admin/password_change/done/",
        "GET": ADMIN_OK,
        "POST": ADMIN_405,
    },
    # Autocomplete without a (valid) source field is refused even to staff.
    "admin/autocomplete/": {"url": "/admin/autocomplete/", "GET": ADMIN_403, "POST": ADMIN_405},
    "admin/jsi18n/": {"url": "/admin/jsi18n/", "GET": ADMIN_OK, "POST": ADMIN_405},
    # No model has get_absolute_url: "view on site" is a 404 for staff.
    "admin/r/<path:content_type_id>/<path:object_id>/": {
        "url": "/admin/r/{cluster_ct}/{cluster}/",
        "GET": ADMIN_404,
        "POST": ADMIN_404,
    },
    "admin/auth/user/<id>/password/": {
        "url": "/admin/auth/user/{viewer}/password/",
        "GET": ADMIN_OK,
        "POST": ADMIN_OK,
    },
    "admin/^(?P<app_label>auth|bindings)/$": {"url": "/admin/bindings/", "GET": ADMIN_OK, "POST": ADMIN_OK},
    "admin/(?P<url>.*)$": {"url": "/admin/no-such-page/", "GET": ADMIN_404, "POST": ADMIN_404},
    **_admin_model_rows(),
}


# --- enumerating the URL patterns -----------------------------------------------------------------


def url_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL pattern of the project as its full route string (resolver prefixes joined)."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from url_routes(entry.url_patterns, prefix + str(entry.pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern)


def test_every_url_pattern_has_an_expectation():
    routes = set(url_routes())

    assert routes - set(EXPECTED) == set(), "URL patterns without an access expectation"
    assert set(EXPECTED) - routes == set(), "expectations for URL patterns that no longer exist"
    assert len(routes) > 150  # the walk reached the admin's and the API's patterns


# --- the data and the personas ----------------------------------------------------------------------


@pytest.fixture
def world(cluster, alice, admin_user, django_user_model) -> dict[str, Any]:
    """The DNS scenario, one row of every admin model, and the eight personas' credentials."""
    cluster.allow_apply_fix = True
    cluster.save()
    bindings = load_scenario(cluster)
    binding = bindings["coredns-udp"]
    operator = django_user_model.objects.create_user("bob", "bob@example.invalid", "bob-password-1")
    operator.user_permissions.add(*_perms("poll_cluster", "poll_awsaccount", "change_cluster", "apply_fix"))
    poller = django_user_model.objects.create_user("pia", "pia@example.invalid", "pia-password-1")
    poller.user_permissions.add(*_perms("poll_cluster", "poll_awsaccount"))
    tokens = {
        "tok_read": make_token(alice, "read"),
        "tok_write": make_token(alice, "write"),
        "tok_poller": make_token(poller, "write"),
        "tok_expired": make_token(alice, "write", expires_at=timezone.now() - timedelta(minutes=1)),
        "tok_revoked": make_token(alice, "write", revoked=True),
    }
    ensure_one_of_each(cluster, binding)
    objects = {
        label: apps.get_model(*label.split("/")).objects.order_by("pk").first().pk for label in ADMIN_MODELS
    }
    return {
        "users": {"viewer": alice, "poller": poller, "operator": operator, "staff": admin_user},
        "tokens": tokens,
        "ids": {
            "binding": binding.pk,
            "cluster": cluster.pk,
            "account": cluster.aws_account_id,
            "viewer": alice.pk,
            "cluster_ct": ContentType.objects.get_for_model(m.Cluster).pk,
            "obj": objects,
        },
    }


def _perms(*codenames: str) -> list[Permission]:
    perms = list(Permission.objects.filter(codename__in=codenames, content_type__app_label="bindings"))
    assert len(perms) == len(codenames), codenames
    return perms


def ensure_one_of_each(cluster: m.Cluster, binding: m.TargetGroupBinding) -> None:
    """Rows for the admin models a scenario poll does not fill, so every change URL has an id."""
    account = cluster.aws_account
    assert account is not None
    Group.objects.get_or_create(name="sre")
    m.PollRun.objects.get_or_create(cluster=cluster, defaults={"status": m.PollRun.Status.SUCCESS})
    hook, _ = m.AlertHook.objects.get_or_create(name="pager", defaults={"url_env": "BH_TEST_HOOK_URL"})
    m.AlertDelivery.objects.get_or_create(hook=hook, event_key="k1", defaults={"payload": {}})
    m.ProbeSetting.objects.get_or_create(cluster=cluster, namespace=binding.namespace, name=binding.name)
    m.ProbeResult.objects.get_or_create(
        binding=binding, protocol="UDP", kind="dns", address="192.0.2.1", status="ok"
    )
    if not m.FixApplication.objects.exists():
        m.FixApplication.objects.create(
            cluster=cluster,
            binding=binding,
            namespace=binding.namespace,
            name=binding.name,
            status=m.FixApplication.Status.DRY_RUN,
            patch='{"spec": {}}',
        )
    if not m.KubePod.objects.exists():
        m.KubePod.objects.create(cluster=cluster, uid="pod-1", namespace="kube-system", name="pod-1")
    if not m.KubeNode.objects.exists():
        m.KubeNode.objects.create(cluster=cluster, uid="node-1", name="node-1")
    if not m.Instance.objects.exists():
        m.Instance.objects.create(account=account, instance_id="i-0123456789abcdef0")
    if not m.Subnet.objects.exists():
        m.Subnet.objects.create(account=account, subnet_id="subnet-1")
    if not m.Vpc.objects.exists():
        m.Vpc.objects.create(account=account, vpc_id="vpc-1")
    if not m.NetworkAcl.objects.exists():
        m.NetworkAcl.objects.create(account=account, acl_id="acl-1")


def persona_client(persona: str, world: dict[str, Any], **client_kwargs: Any) -> Client:
    headers: dict[str, str] = {}
    if persona in world["tokens"]:
        headers["Authorization"] = f"Bearer {world['tokens'][persona]}"
    client = Client(REMOTE_ADDR=REMOTE, headers=headers, **client_kwargs)
    if persona in world["users"]:
        client.force_login(world["users"][persona])
    return client


def outcome(response: Any) -> str:
    """The response as an outcome code (see the table's legend)."""
    status = response.status_code
    if status in (301, 302, 303):
        location = response["Location"]
        if location.startswith("/accounts/login/?next="):
            return "login"
        if location.startswith("/admin/login/?next="):
            return "alogin"
        return "302"
    if response.get("Content-Type", "").startswith("application/problem+json"):
        return f"{status}p"
    return str(status)


def request(client: Client, method: str, url: str) -> Any:
    if url == "/api/v1/polls" and method == "POST":
        return client.post(url, {"cluster": "demo"}, content_type="application/json")
    return client.generic(method, url) if method != "POST" else client.post(url, {})


@pytest.fixture
def no_side_effects() -> Iterator[None]:
    """Queued polls go nowhere (no worker in these tests)."""
    with (
        patch("bindings.tasks.poll_cluster_task.delay_on_commit"),
        patch("bindings.tasks.poll_account_task.delay_on_commit"),
    ):
        yield


# --- the matrix ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_access_matrix(persona, world, no_side_effects, settings):
    settings.BH_LOGIN_MAX_ATTEMPTS = 1000  # the empty login POSTs below are failed sign-ins
    index = PERSONAS.index(persona)
    client = persona_client(persona, world)
    mismatches = []
    cells = 0
    for route, row in sorted(EXPECTED.items()):
        url = row["url"].format(**world["ids"])
        for method in METHODS:
            response = request(client, method, url)
            cells += 1
            got, want = outcome(response), row[method][index]
            if got != want:
                mismatches.append(f"{method} {url} ({route}): expected {want}, got {got}")
            if "logout" in route and persona in world["users"]:
                client.force_login(world["users"][persona])  # logged out by that POST: sign in again
    assert not mismatches, "\n".join(mismatches)
    assert cells == len(EXPECTED) * len(METHODS)


def test_the_matrix_counts(world):
    """For the report: URL patterns × methods × personas, every cell explicit."""
    assert len(EXPECTED) * len(METHODS) * len(PERSONAS) == len(EXPECTED) * 20
    for route, row in EXPECTED.items():
        for method in METHODS:
            assert len(row[method]) == len(PERSONAS), route


def test_a_redirect_to_login_names_the_page_to_return_to(world):
    response = Client().get(f"/bindings/{world['ids']['binding']}/fix.yaml")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/bindings/{world['ids']['binding']}/fix.yaml"


def test_an_anonymous_api_request_is_a_401_problem_with_a_challenge(world):
    response = Client().get("/api/v1/bindings")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_apply_is_refused_when_the_cluster_does_not_allow_it(world):
    m.Cluster.objects.filter(pk=world["ids"]["cluster"]).update(allow_apply_fix=False)
    client = persona_client("operator", world)

    for step in ("dry-run", "apply"):
        response = client.post(f"/bindings/{world['ids']['binding']}/fix/{step}/", {})
        assert response.status_code == 403, step
    made = m.FixApplication.objects.filter(user=world["users"]["operator"])
    assert set(made.values_list("status", flat=True)) == {m.FixApplication.Status.DENIED}


def test_apply_takes_only_the_users_own_review(world):
    """Apply sends a reviewed patch only to the user who reviewed it: not even a superuser may
    apply someone else's dry-run, nor apply without one (both 200 with the refusal, recorded)."""
    binding = m.TargetGroupBinding.objects.get(pk=world["ids"]["binding"])
    review = m.FixApplication.objects.create(
        cluster=binding.cluster,
        binding=binding,
        namespace=binding.namespace,
        name=binding.name,
        user=world["users"]["operator"],
        status=m.FixApplication.Status.DRY_RUN,
        patch='{"spec": {"networking": {}}}',
    )
    staff = persona_client("staff", world)

    theirs = staff.post(f"/bindings/{binding.pk}/fix/apply/", {"dry_run": review.pk})
    none = staff.post(f"/bindings/{binding.pk}/fix/apply/", {})

    assert theirs.status_code == 200 and "made by another user" in theirs.content.decode()
    assert none.status_code == 200 and "needs the id of a dry-run" in none.content.decode()
    made = m.FixApplication.objects.filter(user=world["users"]["staff"]).order_by("pk")
    assert [(a.status, a.reviewed_id) for a in made] == [("refused", review.pk), ("refused", None)]


def test_metrics_access_rules(world, settings):
    # Neither token nor CIDRs: loopback only.
    settings.BH_METRICS_TOKEN = ""
    settings.BH_METRICS_ALLOWED_CIDRS = []
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR=REMOTE).get("/metrics").status_code == 403
    # A forwarded-for header is not trusted.
    assert Client(REMOTE_ADDR=REMOTE, HTTP_X_FORWARDED_FOR="127.0.0.1").get("/metrics").status_code == 403
    # An API token or a session is no metrics credential.
    assert persona_client("tok_write", world).get("/metrics").status_code == 403
    assert persona_client("staff", world).get("/metrics").status_code == 403

    # A token: required from anywhere not in the CIDRs (loopback included once a token is set).
    settings.BH_METRICS_TOKEN = "metrics-secret-0123456789"  # noqa: S105 - test value
    assert Client(REMOTE_ADDR=REMOTE).get("/metrics").status_code == 401
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 401
    wrong = Client(REMOTE_ADDR=REMOTE, headers={"Authorization": "Bearer nope"})
    assert wrong.get("/metrics").status_code == 403
    right = Client(REMOTE_ADDR=REMOTE, headers={"Authorization": "Bearer metrics-secret-0123456789"})
    assert right.get("/metrics").status_code == 200

    # CIDRs: those clients without a token, others still need it.
    settings.BH_METRICS_ALLOWED_CIDRS = ["203.0.113.0/24"]
    assert Client(REMOTE_ADDR=REMOTE).get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="198.51.100.9").get("/metrics").status_code == 401


# --- CSRF ---------------------------------------------------------------------------------------------

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Routes whose unsafe requests a signed-in browser makes (the table's POST rows, minus pure 405s).
STATE_CHANGING = sorted(
    route for route, row in EXPECTED.items() if row["POST"][PERSONAS.index("staff")] not in ("405", "405p")
)


def csrf_client(persona: str, world: dict[str, Any]) -> tuple[Client, str]:
    """A browser that enforces CSRF, with a CSRF cookie as a page load would have set it."""
    client = persona_client(persona, world, enforce_csrf_checks=True)
    secret = get_random_string(32)
    client.cookies["csrftoken"] = secret
    return client, secret


def _unsafe(client: Client, method: str, url: str, **extra: Any) -> Any:
    if url == "/api/v1/polls":
        return client.generic(method, url, '{"cluster": "demo"}', content_type="application/json", **extra)
    return client.generic(method, url, "", content_type="application/x-www-form-urlencoded", **extra)


def test_csrf_covers_the_state_changing_routes():
    """The list below is what the CSRF tests exercise; it must include the dangerous ones."""
    for route in (
        "clusters/<int:pk>/poll/",
        "bindings/<int:pk>/fix/dry-run/",
        "bindings/<int:pk>/fix/apply/",
        "api/v1/polls",
        "accounts/login/",
        "accounts/logout/",
        "admin/login/",
        "admin/bindings/cluster/add/",
        "admin/bindings/apitoken/add/",
        "admin/auth/user/<path:object_id>/delete/",
    ):
        assert route in STATE_CHANGING


def test_every_unsafe_request_without_a_csrf_token_is_refused(world, no_side_effects):
    """Signed-in staff (allowed everything) send each unsafe method to every route, as a form post
    and as an htmx request: no token, no change. Pages answer Django's CSRF 403, the API a 403
    problem, or 405/404 where the route has no such operation — never a success."""
    mismatches = []
    client, _ = csrf_client("staff", world)
    for route, row in sorted(EXPECTED.items()):
        url = row["url"].format(**world["ids"])
        for method in UNSAFE:
            if route == "api/v1/polls" and method == "POST":
                allowed = {"403p"}
            elif route.startswith(("api/", "^api")):
                allowed = {"405p", "404p"}
            else:
                allowed = {"403"}
            for htmx in (False, True):
                extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
                got = outcome(_unsafe(client, method, url, **extra))
                if got not in allowed:
                    mismatches.append(f"{method} {url} htmx={htmx}: expected one of {allowed}, got {got}")
    assert not mismatches, "\n".join(mismatches)


def test_every_state_changing_request_with_a_csrf_token_is_accepted(world, no_side_effects, settings):
    """The same requests with the token get the outcome the matrix expects for staff."""
    settings.BH_LOGIN_MAX_ATTEMPTS = 1000
    mismatches = []
    for route in STATE_CHANGING:
        row = EXPECTED[route]
        url = row["url"].format(**world["ids"])
        for htmx in (False, True):
            client, secret = csrf_client("staff", world)  # fresh: a logout must not leak over
            extra = {"HTTP_X_CSRFTOKEN": secret}
            want = row["POST"][PERSONAS.index("staff")]
            if htmx:
                extra["HTTP_HX_REQUEST"] = "true"
                if route == "clusters/<int:pk>/poll/":
                    want = "200"  # htmx gets the poll partial instead of a redirect
            got = outcome(_unsafe(client, "POST", url, **extra))
            if got != want:
                mismatches.append(f"POST {url} htmx={htmx}: expected {want}, got {got}")
    assert not mismatches, "\n".join(mismatches)


def test_the_admin_poll_now_action_needs_a_csrf_token(world, no_side_effects):
    data = {"action": "poll_now", "_selected_action": [str(world["ids"]["cluster"])], "index": "0"}
    client, secret = csrf_client("staff", world)
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        refused = client.post("/admin/bindings/cluster/", data)
        assert refused.status_code == 403
        delay.assert_not_called()
        accepted = client.post("/admin/bindings/cluster/", data, HTTP_X_CSRFTOKEN=secret)
        assert accepted.status_code == 302
        delay.assert_called_once()


def test_a_bearer_token_needs_no_csrf_token_but_a_session_cookie_does(world):
    body = '{"cluster": "demo"}'
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        token_client, _ = csrf_client("tok_poller", world)
        token_response = token_client.post("/api/v1/polls", body, content_type="application/json")
        assert token_response.status_code == 202
        assert delay.call_count == 1

        session_client, secret = csrf_client("staff", world)
        refused = session_client.post("/api/v1/polls", body, content_type="application/json")
        assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
        assert "CSRF" in refused.json()["detail"]
        assert delay.call_count == 1

        accepted = session_client.post(
            "/api/v1/polls", body, content_type="application/json", HTTP_X_CSRFTOKEN=secret
        )
        assert accepted.status_code == 202
        assert delay.call_count == 2


def test_a_bad_bearer_token_does_not_fall_back_to_a_session_cookie_riding_along(world):
    client, secret = csrf_client("staff", world)
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(
            "/api/v1/polls",
            '{"cluster": "demo"}',
            content_type="application/json",
            HTTP_AUTHORIZATION="Bearer bh_forged",
            HTTP_X_CSRFTOKEN=secret,
        )
    assert response.status_code == 401
    delay.assert_not_called()


def test_pages_give_htmx_the_csrf_token(world):
    """htmx posts (Poll now, dry-run, apply) carry the token through base.html's hx-headers."""
    client = persona_client("operator", world)
    html = client.get(f"/bindings/{world['ids']['binding']}/fix/").content.decode()

    token = re.search(r"hx-headers='\{\"x-csrftoken\": \"([^\"]+)\"\}'", html)
    assert token and len(token.group(1)) >= 32


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_redirects_after_poll_and_login_stay_on_this_site(target, world, no_side_effects):
    operator = persona_client("operator", world)
    response = operator.post(f"/clusters/{world['ids']['cluster']}/poll/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == f"/clusters/{world['ids']['cluster']}/"

    response = Client().post(
        f"/accounts/login/?next={target}", {"username": "alice", "password": "alice-password-1"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_there_is_no_self_service_password_reset(client, db):
    """Reset mails need outgoing mail a self-hosted install rarely has; operators reset passwords."""
    assert client.get("/accounts/password_reset/").status_code == 404
    assert client.get("/accounts/reset/MQ/bogus-token/").status_code == 404


# --- who may do what: every role × every action on sources and tokens ---------------------------------
#
# The table above covers URLs; this one covers *actions*, judged by their effect (a poll queued, a
# row changed, a token minted) rather than by status codes. Written by hand from docs/security.md:
# polling is its own right (poll_cluster / poll_awsaccount), connection fields, the TLS switch, the
# apply switch and adding sources are for superusers, tokens for others only superusers mint.

ROLES = ("viewer", "poller", "editor", "operator", "superuser")
# viewer: signed in, nothing else. poller: poll_* only (not staff). editor: staff with view/change
# on sources and add/change on tokens, no poll. operator: editor + poll_* + apply_fix. superuser.
ACTIONS: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    "dashboard poll (cluster)": (False, True, False, True, True),
    "API poll, session (cluster)": (False, True, False, True, True),
    "API poll, session (account)": (False, True, False, True, True),
    "API poll, own write token (cluster)": (False, True, False, True, True),
    "API poll, own write token (account)": (False, True, False, True, True),
    "admin Poll now (cluster)": (False, False, False, True, True),
    "admin Poll now (account)": (False, False, False, True, True),
    "admin edit poll interval": (False, False, True, True, True),
    "admin edit API URL": (False, False, False, False, True),
    "admin edit token file": (False, False, False, False, True),
    "admin turn TLS verification off": (False, False, False, False, True),
    "admin allow apply on the cluster": (False, False, False, False, True),
    "admin edit account role ARN": (False, False, False, False, True),
    "admin add cluster": (False, False, False, False, True),
    "admin mint token for self": (False, False, True, True, True),
    "admin mint token for another user": (False, False, False, False, True),
}


@pytest.fixture
def role_users(django_user_model, alice, admin_user) -> dict[str, Any]:
    poller = django_user_model.objects.create_user("pia", password="pia-password-1")
    poller.user_permissions.add(*_perms("poll_cluster", "poll_awsaccount"))
    editing = (
        "view_cluster",
        "change_cluster",
        "view_awsaccount",
        "change_awsaccount",
        "view_apitoken",
        "add_apitoken",
        "change_apitoken",
    )
    editor = django_user_model.objects.create_user("eve", password="eve-password-1", is_staff=True)
    editor.user_permissions.add(*_perms(*editing))
    operator = django_user_model.objects.create_user("otto", password="otto-password-1", is_staff=True)
    operator.user_permissions.add(*_perms(*editing, "poll_cluster", "poll_awsaccount", "apply_fix"))
    return {
        "viewer": alice,
        "poller": poller,
        "editor": editor,
        "operator": operator,
        "superuser": admin_user,
    }


def _cluster_form(cluster: m.Cluster, **overrides: str) -> dict[str, str]:
    """The complete change form as the admin renders it for a superuser; others' extra fields
    are ignored by the admin (read-only for them)."""
    data = {
        "name": cluster.name,
        "enabled": "on",
        "aws_account": str(cluster.aws_account_id),
        "poll_interval_seconds": str(cluster.poll_interval_seconds),
        "probe_kind": cluster.probe_kind,
        "connection": cluster.connection,
        "kubeconfig_path": cluster.kubeconfig_path,
        "kube_context": cluster.kube_context,
        "api_url": cluster.api_url,
        "token_file": cluster.token_file,
        "ca_file": cluster.ca_file,
        "client_networks-TOTAL_FORMS": "0",
        "client_networks-INITIAL_FORMS": "0",
    }
    if cluster.verify_ssl:
        data["verify_ssl"] = "on"
    if cluster.allow_apply_fix:
        data["allow_apply_fix"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _do(action: str, client: Client, user: Any, cluster: m.Cluster, other: Any, token_dir: Any) -> bool:
    """Attempt `action` as `user`; True when it took effect."""
    account = cluster.aws_account
    assert account is not None
    url = f"/admin/bindings/cluster/{cluster.pk}/change/"
    with (
        patch("bindings.tasks.poll_cluster_task.delay_on_commit") as poll_cluster,
        patch("bindings.tasks.poll_account_task.delay_on_commit") as poll_account,
    ):
        if action == "dashboard poll (cluster)":
            client.post(f"/clusters/{cluster.pk}/poll/")
        elif action.startswith("API poll"):
            body = {"cluster": cluster.name} if "(cluster)" in action else {"account": account.name}
            headers = {}
            if "token" in action:
                headers["HTTP_AUTHORIZATION"] = f"Bearer {make_token(user, 'write')}"
                client = Client()  # the token alone, no session
            client.post("/api/v1/polls", body, content_type="application/json", **headers)
        elif action.startswith("admin Poll now"):
            target = ("cluster", cluster.pk) if "(cluster)" in action else ("awsaccount", account.pk)
            client.post(
                f"/admin/bindings/{target[0]}/",
                {"action": "poll_now", "index": "0", "_selected_action": [str(target[1])]},
            )
        if action.startswith(("dashboard poll", "API poll", "admin Poll now")):
            return bool(poll_cluster.call_count or poll_account.call_count)

    def changed(**overrides: str) -> m.Cluster:
        client.post(url, _cluster_form(cluster, **overrides))
        return m.Cluster.objects.get(pk=cluster.pk)

    if action == "admin edit poll interval":
        return changed(poll_interval_seconds="777").poll_interval_seconds == 777
    if action == "admin edit API URL":
        return changed(api_url="https://attacker.example").api_url == "https://attacker.example"
    if action == "admin edit token file":
        token = token_dir / "token"
        token.write_text("t")
        return changed(token_file=str(token)).token_file == str(token)
    if action == "admin turn TLS verification off":
        form = _cluster_form(cluster, api_url="https://kube.example.invalid")
        form.pop("verify_ssl", None)
        client.post(url, form)
        return not m.Cluster.objects.get(pk=cluster.pk).verify_ssl
    if action == "admin allow apply on the cluster":
        return changed(allow_apply_fix="on").allow_apply_fix
    if action == "admin edit account role ARN":
        arn = "arn:aws:iam::999999999999:role/other"
        form = {"name": account.name, "account_id": account.account_id, "region": account.region}
        form |= {"enabled": "on", "poll_interval_seconds": "300", "role_arn": arn}
        client.post(f"/admin/bindings/awsaccount/{account.pk}/change/", form)
        return m.AwsAccount.objects.get(pk=account.pk).role_arn == arn
    if action == "admin add cluster":
        form = _cluster_form(cluster, name="added", api_url="https://kube.example.invalid")
        client.post("/admin/bindings/cluster/add/", form)
        return m.Cluster.objects.filter(name="added").exists()
    if action.startswith("admin mint token"):
        owner = user if action.endswith("self") else other
        before = m.ApiToken.objects.filter(user=owner, name="minted").count()
        form = {
            "name": "minted",
            "user": str(owner.pk),
            "scope": "write",
            "expires_at_0": "",
            "expires_at_1": "",
        }
        client.post("/admin/bindings/apitoken/add/", form)
        return m.ApiToken.objects.filter(user=owner, name="minted").count() > before
    raise AssertionError(f"no such action: {action}")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_and_every_action(role, role_users, cluster, credentials_dir, django_user_model):
    other = django_user_model.objects.create_superuser("root2", "root2@example.invalid", "root2-password-1")
    user = role_users[role]
    mismatches = []
    for action, row in ACTIONS.items():
        client = Client()
        client.force_login(user)
        cluster.refresh_from_db()
        got = _do(action, client, user, cluster, other, credentials_dir)
        want = row[ROLES.index(role)]
        if got != want:
            mismatches.append(
                f"{role} {action}: expected {'allowed' if want else 'refused'}, got the opposite"
            )
    assert not mismatches, "\n".join(mismatches)


def test_anonymous_unsafe_api_requests_are_401_not_csrf_403(world, no_side_effects):
    """No session, a client that enforces CSRF (as curl or a script is to the server): the API
    answers 401 (no credentials) where the route takes the method, else 405/404 — never the CSRF
    check's 403, which would tell a script its credentials were wrong when it sent none."""
    mismatches = []
    for cookie in (False, True):
        client = Client(REMOTE_ADDR=REMOTE, enforce_csrf_checks=True)
        if cookie:
            client.cookies["csrftoken"] = get_random_string(32)
        for route, row in sorted(EXPECTED.items()):
            if not route.startswith(("api/", "^api")):
                continue
            url = row["url"].format(**world["ids"])
            for method in UNSAFE:
                want = {"401p"} if (route, method) == ("api/v1/polls", "POST") else {"405p", "404p"}
                got = outcome(_unsafe(client, method, url))
                if got not in want:
                    mismatches.append(f"{method} {url} cookie={cookie}: expected {want}, got {got}")
    assert not mismatches, "\n".join(mismatches)
