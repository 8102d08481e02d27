"""ID-token validation with real tokens from real providers: signature via the provider's JWKS (refetched for
an unknown key id), issuer, audience, expiry and nonce — and a misconfigured issuer caught when saving."""

import base64
import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.core.cache import cache

from audit.context import AuditContext
from csm.errors import ServiceError
from identity import sso
from tests.identity.sso_support import (  # noqa: F401 - fixtures
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    TEST_BASE_URL,
    idp_sign_in,
    oidc_provider,
    second_oidc_provider,
    sso_settings,
)

pytestmark = pytest.mark.django_db
NONCE = "nonce-of-this-test"


def id_token_from(provider, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login="alice", nonce=NONCE):
    """A real ID token: the code flow run against ``provider`` for ``client_id`` outside csm."""
    verifier = generate_token(64)
    query = urlencode({"response_type": "code", "client_id": client_id, "scope": sso.SCOPES, "state": "s",
                       "nonce": nonce, "redirect_uri": TEST_BASE_URL + sso.CALLBACK_PATH,
                       "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
    callback = idp_sign_in(f"{provider.issuer}/auth?{query}", login)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = requests.post(f"{provider.issuer}/token", auth=(client_id, client_secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": TEST_BASE_URL + sso.CALLBACK_PATH,
        "code_verifier": verifier})
    response.raise_for_status()
    return response.json()["id_token"]


def validate(provider, token, **overrides):
    options = {"issuer": provider.issuer, "client_id": CLIENT_ID, "nonce": NONCE,
               "jwks_uri": provider.issuer + "/jwks", **overrides}
    return sso.validate_id_token(token, **options)


def reason_of(call) -> str:
    with pytest.raises(sso.SsoFailure) as failure:
        call()
    return failure.value.reason


def test_a_genuine_token_validates(oidc_provider, sso_settings):  # noqa: F811
    claims = validate(oidc_provider, id_token_from(oidc_provider))
    assert claims["email"] == "alice@acme.test" and claims["email_verified"] is True
    assert claims["groups"] == ["csm-admins", "staff"]


def test_token_for_another_application_is_refused(oidc_provider, sso_settings):  # noqa: F811
    token = id_token_from(oidc_provider, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    assert reason_of(lambda: validate(oidc_provider, token)) == "wrong_audience"


def test_token_of_another_issuer_is_refused(oidc_provider, second_oidc_provider, sso_settings):  # noqa: F811
    token = id_token_from(second_oidc_provider)
    # even with the other provider's genuine keys, the issuer must be the configured one
    assert reason_of(lambda: validate(oidc_provider, token, jwks_uri=second_oidc_provider.issuer + "/jwks")) \
        == "wrong_issuer"
    # and with the configured provider's keys, the signature does not verify
    assert reason_of(lambda: validate(oidc_provider, token)) == "bad_signature"


def test_altered_claims_break_the_signature(oidc_provider, sso_settings):  # noqa: F811
    header, payload, signature = id_token_from(oidc_provider).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
    claims["email"] = "ceo@acme.test"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert reason_of(lambda: validate(oidc_provider, f"{header}.{forged}.{signature}")) == "bad_signature"


def test_unsigned_token_is_refused(oidc_provider, sso_settings):  # noqa: F811
    _, payload, _ = id_token_from(oidc_provider).split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    assert reason_of(lambda: validate(oidc_provider, f"{none_header}.{payload}.")) in ("bad_signature",
                                                                                      "malformed_token")


def test_expired_token_is_refused(oidc_provider, sso_settings):  # noqa: F811
    token = id_token_from(oidc_provider)
    assert reason_of(lambda: validate(oidc_provider, token, now=int(time.time()) + 24 * 3600)) == "expired"


def test_token_of_another_sign_in_is_refused(oidc_provider, sso_settings):  # noqa: F811
    token = id_token_from(oidc_provider, nonce="someone-elses-nonce")
    assert reason_of(lambda: validate(oidc_provider, token)) == "nonce_mismatch"


def test_unknown_key_id_refetches_the_jwks(oidc_provider, sso_settings):  # noqa: F811
    """The IdP rotated its keys: the cached JWKS lacks the token's kid, so csm fetches the JWKS again."""
    from joserfc.jwk import RSAKey

    stale = {"keys": [RSAKey.generate_key(2048, parameters={"kid": "retired", "use": "sig"}).as_dict(private=False)]}
    cache.set(sso._cache_key("jwks", oidc_provider.issuer + "/jwks"), stale, 3600)
    assert validate(oidc_provider, id_token_from(oidc_provider))["email"] == "alice@acme.test"
    cached = cache.get(sso._cache_key("jwks", oidc_provider.issuer + "/jwks"))
    assert "retired" not in {key["kid"] for key in cached["keys"]}


def test_misconfigured_issuer_is_refused_when_saving(org, oidc_provider, sso_settings):  # noqa: F811
    with pytest.raises(ServiceError) as error:
        sso.save_provider(AuditContext.system("test"), org, issuer=oidc_provider.issuer + "/", client_id=CLIENT_ID,
                          client_secret=CLIENT_SECRET, enabled=True, default_role="member", groups_claim="groups")
    assert error.value.field == "issuer"
    assert f"calls itself '{oidc_provider.issuer}'" in error.value.message


def test_unreachable_issuer_is_refused_when_saving(org, sso_settings):  # noqa: F811
    with pytest.raises(ServiceError) as error:
        sso.save_provider(AuditContext.system("test"), org, issuer="http://127.0.0.1:9/", client_id=CLIENT_ID,
                          client_secret=CLIENT_SECRET, enabled=True, default_role="member", groups_claim="groups")
    assert error.value.field == "issuer" and "could not be fetched" in error.value.message
