"""Single sign-on against a real OpenID Connect provider on loopback.

The provider (below) is small but real: it serves the authorization endpoint (code + state back
to the redirect URI), a token endpoint that checks the client's credentials, the code, the
redirect URI and the PKCE verifier and returns an RS256 ID token signed with PyJWT, its JWKS,
and a userinfo endpoint that checks the bearer access token. mozilla-django-oidc talks to it over
HTTP exactly as to a production IdP: nothing in the product is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from werkzeug import Request, Response

from bindings.web import sso

pytestmark = pytest.mark.django_db

CLIENT_ID = "binding-health"
CLIENT_SECRET = "s3cret-client"


class LoopbackProvider:
    """An OpenID Connect provider on a pytest-httpserver (authorization code flow, PKCE)."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.issuer = httpserver.url_for("").rstrip("/")
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.user: dict = {}
        httpserver.expect_request("/authorize").respond_with_handler(self.authorize)
        httpserver.expect_request("/token", method="POST").respond_with_handler(self.token)
        httpserver.expect_request("/jwks").respond_with_handler(self.jwks)
        httpserver.expect_request("/userinfo").respond_with_handler(self.userinfo)

    def settings(self) -> dict:
        return {
            "BH_OIDC_ENABLED": True,
            "AUTHENTICATION_BACKENDS": [
                "bindings.web.sso.RoleMappingBackend",
                "django.contrib.auth.backends.ModelBackend",
            ],
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/jwks",
            "BH_OIDC_GROUPS_CLAIM": "groups",
            "BH_OIDC_ROLE_GROUPS": {
                "viewer": ["sre"],
                "may-apply": ["sre-oncall"],
                "admin": ["platform-admins"],
            },
        }

    def authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            return Response("bad client", status=400)
        assert "openid" in args.get("scope", "").split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "redirect_uri": args["redirect_uri"],
            "nonce": args.get("nonce"),
            "challenge": args.get("code_challenge"),
            "user": dict(self.user),
        }
        query = urlencode({"code": code, "state": args["state"]})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def token(self, request: Request) -> Response:
        form = request.form
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Response(
                json.dumps({"error": "invalid_client"}), status=401, content_type="application/json"
            )
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return Response(
                json.dumps({"error": "invalid_grant"}), status=400, content_type="application/json"
            )
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return Response(
                json.dumps({"error": "invalid_grant"}), status=400, content_type="application/json"
            )
        user = grant["user"]
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": user["sub"], "iat": now, "exp": now + 300}
        claims.update({k: v for k, v in user.items() if k != "sub"})
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        access = secrets.token_urlsafe(24)
        self.tokens[access] = user
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        return Response(json.dumps(body), content_type="application/json")

    def jwks(self, request: Request) -> Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return Response(json.dumps({"keys": [jwk]}), content_type="application/json")

    def userinfo(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        user = self.tokens.get(auth.removeprefix("Bearer "))
        if user is None:
            return Response("", status=401)
        return Response(json.dumps(user), content_type="application/json")


@pytest.fixture
def provider(httpserver):
    idp = LoopbackProvider(httpserver)
    with override_settings(**idp.settings()):
        yield idp


def sign_in(client, provider, **user) -> tuple[int, str]:
    """The browser's round trip: start at the product, visit the IdP, come back to the callback."""
    provider.user = {"sub": user.pop("sub", "u-1"), **user}
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302 and start["Location"].startswith(provider.issuer + "/authorize?")
    at_idp = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert at_idp.status_code == 302
    back = urlsplit(at_idp.headers["Location"])
    done = client.get(back.path, parse_qs(back.query))
    return done.status_code, done.get("Location", "")


def test_a_first_sign_in_creates_the_user_with_roles_from_groups(client, provider):
    status, location = sign_in(
        client,
        provider,
        email="ana@example.com",
        given_name="Ana",
        groups=["sre", "sre-oncall", "unrelated"],
    )

    assert status == 302 and location == "/"
    user = get_user_model().objects.get(email="ana@example.com")
    assert user.username == "ana@example.com" and user.first_name == "Ana"
    assert not user.has_usable_password()
    assert user.has_perm("bindings.apply_fix") and not user.is_staff and not user.is_superuser
    assert client.get("/").status_code == 200  # signed in


def test_roles_follow_the_groups_at_every_sign_in(client, provider):
    sign_in(client, provider, email="bo@example.com", groups=["platform-admins"])
    user = get_user_model().objects.get(email="bo@example.com")
    assert user.is_staff and user.is_superuser

    client.logout()
    sign_in(client, provider, email="bo@example.com", groups=["sre"])

    user = get_user_model().objects.get(email="bo@example.com")
    assert not user.is_staff and not user.is_superuser
    assert not get_user_model().objects.get(pk=user.pk).has_perm("bindings.apply_fix")
    assert get_user_model().objects.filter(email="bo@example.com").count() == 1


def test_a_groups_claim_as_one_string_is_understood(client, provider):
    sign_in(client, provider, email="cy@example.com", groups="sre platform-admins")

    assert get_user_model().objects.get(email="cy@example.com").is_superuser


def test_a_user_in_no_mapped_group_is_refused(client, provider, caplog):
    with caplog.at_level(logging.WARNING):
        status, location = sign_in(client, provider, email="eve@example.com", groups=["marketing"])

    assert status == 302 and location == "/accounts/login/?sso=failed"
    assert not get_user_model().objects.filter(email="eve@example.com").exists()
    assert "none of their groups" in caplog.text
    page = client.get(location).content.decode()
    assert "Single sign-on failed" in page


def test_the_mapping_lives_in_settings(client, provider, settings):
    settings.BH_OIDC_GROUPS_CLAIM = "roles"
    settings.BH_OIDC_ROLE_GROUPS = {"admin": ["ops"]}

    sign_in(client, provider, email="di@example.com", roles=["ops"], groups=["platform-admins"])

    assert get_user_model().objects.get(email="di@example.com").is_superuser


def test_a_wrong_client_secret_fails_clearly_in_the_log(client, provider, settings, caplog):
    settings.OIDC_RP_CLIENT_SECRET = "wrong"
    with caplog.at_level(logging.ERROR):
        status, location = sign_in(client, provider, email="fo@example.com", groups=["sre"])

    assert location == "/accounts/login/?sso=failed"
    assert f"identity provider at {provider.issuer}/token failed: HTTPError 401" in caplog.text
    assert "wrong" not in caplog.text


def test_an_unreachable_provider_fails_clearly_and_local_login_still_works(
    client, provider, settings, caplog, django_user_model
):
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"  # nothing listens on 9
    django_user_model.objects.create_user("breakglass", "bg@example.invalid", "bg-password-1")
    with caplog.at_level(logging.ERROR):
        _status, location = sign_in(client, provider, email="gu@example.com", groups=["sre"])

    assert location == "/accounts/login/?sso=failed"
    assert "identity provider at http://127.0.0.1:9/token failed: ConnectionError" in caplog.text
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with single sign-on" in page
    response = client.post("/accounts/login/", {"username": "breakglass", "password": "bg-password-1"})
    assert response.status_code == 302


def test_a_token_signed_by_another_key_is_rejected(client, provider, caplog):
    real_jwks = provider.jwks
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def wrong_jwks(request):
        provider.key, saved = other, provider.key
        try:
            return real_jwks(request)
        finally:
            provider.key = saved

    provider.server.clear_all_handlers()
    provider.server.expect_request("/authorize").respond_with_handler(provider.authorize)
    provider.server.expect_request("/token", method="POST").respond_with_handler(provider.token)
    provider.server.expect_request("/jwks").respond_with_handler(wrong_jwks)
    with caplog.at_level(logging.ERROR):
        _status, location = sign_in(client, provider, email="ha@example.com", groups=["sre"])

    assert location == "/accounts/login/?sso=failed"
    assert not get_user_model().objects.filter(email="ha@example.com").exists()
    assert "answer was rejected" in caplog.text


def test_sso_is_off_by_default(client, settings):
    assert settings.BH_OIDC_ENABLED is False
    assert client.get("/oidc/authenticate/").status_code == 404
    assert "single sign-on" not in client.get("/accounts/login/").content.decode().lower()


def test_the_settings_check_names_what_is_wrong(settings):
    settings.BH_OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = ""
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://idp.example.com/token"
    settings.BH_OIDC_ROLE_GROUPS = {"superhero": ["x"]}

    found = [(e.id, e.msg) for e in sso.check_settings()]

    assert ("bh.E102", "BH_OIDC_ENABLED is on but OIDC_RP_CLIENT_ID is empty") in found
    assert any(
        i == "bh.E103" and "OIDC_OP_TOKEN_ENDPOINT='http://idp.example.com/token'" in t for i, t in found
    )
    assert any(i == "bh.E104" and "superhero" in t for i, t in found)
    with pytest.raises(Exception, match="bh.E10"):
        call_command("check")
