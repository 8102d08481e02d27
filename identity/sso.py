"""OpenID Connect SSO per org: configuration (audited writes), the authorization-code flow with PKCE, state
and nonce, ID-token validation, just-in-time membership and the "SSO required" rule (docs/identity.md).

    /sso/start/?email=…  ──► verified domain → org → start_sign_in ──► the org's IdP (authorize endpoint)
    /sso/<org>/start/    ──┘
    IdP ──► /sso/callback/ ──► finish (state, code exchange, ID token: signature via JWKS, iss, aud, exp, nonce)
                           ──► provision: the account linked to the token's subject (SsoIdentity); else a new
                               account (JIT) or one this org manages, linked; else LinkRequired ──► /sso/link/
                               (the account's password confirms the link); membership (JIT, role from groups),
                               then identity.signin.begin_sign_in(method="sso")
                           ──► test: an admin's test sign-in verifies an email domain

The client is Authlib's (PKCE S256 challenge, random state and nonce) with its JOSE layer joserfc for the
ID token; every request to the IdP goes through csm.lib.outbound (SSRF guard, timeouts, no redirects)."""

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote, urlencode

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from csm.lib import outbound, secretbox
from identity import orgsettings
from identity.models import (
    GroupRoleMapping,
    OrgIdentitySettings,
    ScimUser,
    SsoDomain,
    SsoIdentity,
    SsoProvider,
    role_for_groups,
)
from tenants import ratelimit
from tenants.choices import Role
from tenants.models import Membership, Org

PENDING_KEY = "csm_sso_pending"
LINK_KEY = "csm_sso_link"  # an account link waiting for the password (begin_link)
LINK_TIMEOUT_SECONDS = 10 * 60
USED_KEY = "csm_sso_used_states"
CALLBACK_PATH = "/sso/callback/"
SCOPES = "openid email profile groups"
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
MAX_METADATA_BYTES = 256 * 1024
PRIVATE_SETTING = "CSM_SSO_ALLOW_PRIVATE_ISSUERS"
CLAIM_FAILURES = {  # an ID-token claim that fails its check → (reason recorded in sso.failed, message)
    "iss": ("wrong_issuer", "The ID token was issued by another identity provider."),
    "aud": ("wrong_audience", "The ID token was issued to another application (audience)."),
    "exp": ("expired", "The ID token has expired."),
    "nonce": ("nonce_mismatch", "The ID token does not belong to this sign-in (nonce)."),
}


class SsoFailure(Exception):
    """A refused SSO sign-in: ``reason`` (a fixed code, recorded in ``sso.failed``), a message for the person,
    the HTTP status of the error page and the org whose trail records it (None when no org is known)."""

    def __init__(self, reason: str, message: str, status: int = 400, org: Org | None = None, email: str = ""):
        super().__init__(message)
        self.reason, self.message, self.status, self.org, self.email = reason, message, status, org, email


def redirect_uri() -> str:
    """The one callback URL csm registers at every IdP (built from CSM_BASE_URL, never from the request)."""
    return settings.CSM_BASE_URL + CALLBACK_PATH


def _domain_of(email: str) -> str:
    return email.rsplit("@", 1)[1].lower() if "@" in email else ""


def _ctx_target(user) -> tuple:
    return ("user", user.pk, user.email or user.get_username())


# --- the IdP's metadata ---------------------------------------------------------------------------------

def _fetch_json(url: str, what: str) -> dict:
    try:
        response = outbound.get(url, headers={"Accept": "application/json"}, timeout=settings.CSM_SSO_TIMEOUT_SECONDS,
                                private_setting=PRIVATE_SETTING, max_bytes=MAX_METADATA_BYTES)
    except outbound.OutboundRefused as exc:
        raise SsoFailure("idp_refused", f"The identity provider's {what} may not be fetched: {exc}", 502) from None
    except OSError as exc:
        raise SsoFailure("idp_unreachable", f"The identity provider's {what} could not be fetched ({exc}).",
                         502) from None
    if response.status != 200:
        raise SsoFailure("idp_unreachable", f"The identity provider's {what} answered HTTP {response.status}.", 502)
    try:
        data = json.loads(response.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SsoFailure("idp_unreachable", f"The identity provider's {what} is not a JSON object.", 502)
    return data


def _cache_key(kind: str, value: str) -> str:
    return f"csm:sso:{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:32]


def discover(issuer: str, *, refresh: bool = False) -> dict:
    """The IdP's discovery document (``<issuer>/.well-known/openid-configuration``), cached. Its ``issuer``
    must equal the configured one exactly (OpenID Connect Discovery 1.0, section 4.3)."""
    key = _cache_key("discovery", issuer)
    document = None if refresh else cache.get(key)
    if document is None:
        document = _fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
        if document.get("issuer") != issuer:
            raise SsoFailure("issuer_mismatch", f"The identity provider calls itself {document.get('issuer')!r}, "
                                                f"not {issuer!r}: the issuer URL must match exactly.", 502)
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise SsoFailure("idp_unreachable", f"The discovery document has no {name}.", 502)
        cache.set(key, document, settings.CSM_SSO_METADATA_CACHE_SECONDS)
    return document


def signing_keys(jwks_uri: str, kid: str | None) -> KeySet:
    """The IdP's signing keys from its JWKS, cached; fetched again at once when the token names a key id the
    cached set lacks (the IdP rotated its keys)."""
    key = _cache_key("jwks", jwks_uri)
    jwks = cache.get(key)
    known = {k.get("kid") for k in (jwks or {}).get("keys", [])}
    if jwks is None or (kid and kid not in known):
        jwks = _fetch_json(jwks_uri, "signing keys (JWKS)")
        cache.set(key, jwks, settings.CSM_SSO_METADATA_CACHE_SECONDS)
    try:
        return KeySet.import_key_set({"keys": [k for k in jwks.get("keys", []) if k.get("use", "sig") == "sig"]})
    except (jose_errors.JoseError, ValueError, TypeError) as exc:
        raise SsoFailure("idp_unreachable", f"The identity provider's signing keys are unusable ({exc}).", 502) \
            from None


def validate_id_token(id_token: str, *, issuer: str, client_id: str, nonce: str, jwks_uri: str,
                      now: int | None = None) -> dict:
    """The claims of ``id_token`` once its signature (JWKS), issuer, audience, expiry and nonce check out
    (OpenID Connect Core 1.0, 3.1.3.7); SsoFailure naming the first check that failed otherwise."""
    try:
        header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "==="))
    except (ValueError, IndexError, UnicodeError):
        raise SsoFailure("malformed_token", "The identity provider sent a malformed ID token.") from None
    keys = signing_keys(jwks_uri, header.get("kid") if isinstance(header, dict) else None)
    try:
        token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
    except (jose_errors.BadSignatureError, jose_errors.InvalidKeyIdError):
        raise SsoFailure("bad_signature", "The ID token's signature does not verify with the identity provider's "
                                          "published keys.") from None
    except jose_errors.JoseError as exc:
        raise SsoFailure("malformed_token", f"The ID token cannot be read ({exc.error}).") from None
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=60, iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
        exp={"essential": True}, nonce={"essential": True, "value": nonce})
    try:
        registry.validate(claims)
    except jose_errors.ExpiredTokenError:
        raise SsoFailure("expired", "The ID token has expired.") from None
    except jose_errors.ClaimError as exc:
        claim = str(getattr(exc, "claim", "") or "").split(",")[0]
        reason, message = CLAIM_FAILURES.get(claim, ("malformed_token", f"The ID token's claim {claim!r} is invalid."))
        raise SsoFailure(reason, message) from None
    except jose_errors.JoseError as exc:
        raise SsoFailure("malformed_token", f"The ID token's claims are invalid ({exc.error}).") from None
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise SsoFailure("wrong_audience", "The ID token was issued to another application (azp).")
    if not claims.get("sub"):
        raise SsoFailure("malformed_token", "The ID token names no subject.")
    return claims


# --- configuration (org settings page) -------------------------------------------------------------------

def _normalize_domain(value: str) -> str:
    domain = (value or "").strip().lower().lstrip("@").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and not label.startswith("-")
            for label in labels):
        raise ServiceError(f"{value!r} is not a domain name (like example.com).", field="domain")
    return domain


@transaction.atomic
def save_provider(ctx: AuditContext, org: Org, *, issuer: str, client_id: str, client_secret: str | None,
                  enabled: bool, default_role: str, groups_claim: str) -> SsoProvider:
    """Create or change the org's IdP configuration. ``client_secret`` None or "" keeps the stored one. The
    issuer is checked by fetching its discovery document; a changed issuer un-verifies the org's domains
    (they were proven through the old IdP) and removes its account links (SsoIdentity: the old IdP's subjects)."""
    issuer = (issuer or "").strip()
    if not issuer.startswith(("https://", "http://")):
        raise ServiceError("Enter the issuer URL of your identity provider (https://…).", field="issuer")
    if default_role not in Role.values:
        raise ServiceError(f"Unknown role {default_role!r}.", field="default_role")
    if default_role == Role.OWNER:
        raise ServiceError("New members cannot become owners by default; map an IdP group to the owner role.",
                           field="default_role")
    groups_claim = (groups_claim or "").strip() or "groups"
    client_id = (client_id or "").strip()
    if not client_id:
        raise ServiceError("Enter the client id csm has at your identity provider.", field="client_id")
    try:
        discover(issuer, refresh=True)
    except SsoFailure as failure:
        raise ServiceError(failure.message, field="issuer") from None
    provider = SsoProvider.objects.select_for_update().filter(org=org).first()
    before = None
    if provider is None:
        provider = SsoProvider(org=org)
    else:
        before = {"issuer": provider.issuer, "client_id": provider.client_id, "enabled": provider.enabled,
                  "default_role": provider.default_role, "groups_claim": provider.groups_claim}
    issuer_changed = provider.pk is not None and provider.issuer != issuer
    secret_changed = bool(client_secret)
    if secret_changed:
        provider.set_client_secret(client_secret)
    if not provider.has_secret:
        raise ServiceError("Enter the client secret.", field="client_secret")
    provider.issuer, provider.client_id, provider.enabled = issuer, client_id, enabled
    provider.default_role, provider.groups_claim, provider.updated_at = default_role, groups_claim, timezone.now()
    provider.save()
    unverified, unlinked = [], 0
    if issuer_changed:  # the old IdP's proofs and subjects say nothing about the new one's people
        unverified = list(SsoDomain.objects.filter(org=org).exclude(verified_at=None).values_list("domain", flat=True))
        SsoDomain.objects.filter(org=org).update(verified_at=None, verified_by=None)
        unlinked, _ = SsoIdentity.objects.filter(org=org).delete()
    after = {"issuer": issuer, "client_id": client_id, "enabled": enabled, "default_role": default_role,
             "groups_claim": groups_claim, "client_secret_changed": secret_changed}
    if unverified:
        after["domains_unverified"] = unverified
    if unlinked:
        after["identities_unlinked"] = unlinked
    record_event(ctx, org, AuditAction.SSO_CONFIGURED, ("sso_provider", provider.pk, issuer), before=before,
                 after=after)
    return provider


@transaction.atomic
def add_domain(ctx: AuditContext, org: Org, domain: str) -> SsoDomain:
    """List an email domain for the org's SSO (unverified until an admin's test sign-in proves it)."""
    domain = _normalize_domain(domain)
    if SsoDomain.objects.filter(domain=domain).exclude(verified_at=None).exclude(org=org).exists():
        raise ServiceError(f"{domain} is already verified by another organization.", field="domain",
                           code="conflict")
    row, created = SsoDomain.objects.get_or_create(org=org, domain=domain)
    if created:
        record_event(ctx, org, AuditAction.SSO_DOMAIN_ADDED, ("sso_domain", row.pk, domain))
    return row


@transaction.atomic
def remove_domain(ctx: AuditContext, org: Org, domain_id: int) -> None:
    row = SsoDomain.objects.for_org(org).filter(pk=domain_id).first()
    if row is None:
        raise ServiceError("No such domain.", code="not_found")
    record_event(ctx, org, AuditAction.SSO_DOMAIN_REMOVED, ("sso_domain", row.pk, row.domain),
                 before={"verified": row.verified})
    row.delete()


@transaction.atomic
def set_group_role(ctx: AuditContext, org: Org, group: str, role: str) -> GroupRoleMapping:
    """Map an IdP group (groups-claim value, SCIM group name) to a role; replaces the group's mapping."""
    group = (group or "").strip()
    if not group or len(group) > 200:
        raise ServiceError("Enter the group name exactly as the identity provider sends it (at most 200 "
                           "characters).", field="group")
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}.", field="role")
    mapping = GroupRoleMapping.objects.select_for_update().filter(org=org, group=group).first()
    before = {"role": mapping.role} if mapping else None
    if mapping is None:
        mapping = GroupRoleMapping(org=org, group=group)
    mapping.role = role
    mapping.save()
    record_event(ctx, org, AuditAction.SSO_GROUP_MAPPING_SET, ("group_role_mapping", mapping.pk, group),
                 before=before, after={"role": role})
    return mapping


@transaction.atomic
def remove_group_role(ctx: AuditContext, org: Org, mapping_id: int) -> None:
    mapping = GroupRoleMapping.objects.for_org(org).filter(pk=mapping_id).first()
    if mapping is None:
        raise ServiceError("No such group mapping.", code="not_found")
    record_event(ctx, org, AuditAction.SSO_GROUP_MAPPING_REMOVED, ("group_role_mapping", mapping.pk, mapping.group),
                 before={"role": mapping.role})
    mapping.delete()


@transaction.atomic
def set_require_sso(ctx: AuditContext, org: Org, required: bool) -> OrgIdentitySettings:
    """Turn "SSO required" on or off. On needs an enabled IdP and a verified domain, or nobody could sign in."""
    if required:
        provider = SsoProvider.objects.filter(org=org, enabled=True).first()
        if provider is None or not SsoDomain.objects.filter(org=org).exclude(verified_at=None).exists():
            raise ServiceError("Enable SSO and verify at least one email domain (test sign-in) before requiring "
                               "SSO.", field="require_sso")
    return orgsettings.set_switch(ctx, org, "require_sso", required)


# --- routing ----------------------------------------------------------------------------------------------

def org_for_email(email: str) -> Org | None:
    """The org whose verified domain ``email`` is in and whose SSO is enabled, or None."""
    domain = _domain_of((email or "").strip())
    if not domain:
        return None
    row = SsoDomain.objects.filter(domain=domain).exclude(verified_at=None).select_related("org").first()
    if row is None or not SsoProvider.objects.filter(org=row.org, enabled=True).exists():
        return None
    return row.org


def sso_required_orgs(user) -> list[tuple[Org, str]]:
    """(org, role) of each org where ``user`` is an active member and SSO is required with an enabled IdP."""
    memberships = Membership.objects.filter(user=user, suspended_at=None, org__identity_settings__require_sso=True,
                                            org__sso_provider__enabled=True).select_related("org")
    return [(m.org, m.role) for m in memberships]


# --- the flow ---------------------------------------------------------------------------------------------

def start(request, org: Org, *, purpose: str = "sign_in", redirect_to: str = "/", login_hint: str = "") -> str:
    """Begin an authorization-code flow at ``org``'s IdP: a fresh state, nonce and PKCE verifier go into the
    session (one pending sign-in per session; starting again replaces it). Returns the URL to send the
    browser to. ``purpose`` "test" is an admin's test sign-in that verifies a domain."""
    provider = SsoProvider.objects.filter(org=org).first()
    if provider is None or (purpose == "sign_in" and not provider.enabled):
        raise SsoFailure("sso_disabled", f"{org.name} does not sign in with SSO.", 404, org)
    document = discover(provider.issuer)
    verifier = generate_token(64)
    pending = {"state": generate_token(32), "nonce": generate_token(32), "verifier": verifier, "org": org.pk,
               "purpose": purpose, "next": redirect_to, "started": int(time.time()),
               "user": request.user.pk if purpose == "test" else None}
    request.session[PENDING_KEY] = pending
    params = {"response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri(),
              "scope": SCOPES, "state": pending["state"], "nonce": pending["nonce"],
              "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    if login_hint:
        params["login_hint"] = login_hint
    if purpose == "test":
        params["prompt"] = "login"  # the admin signs in at the IdP as the test user, not as whoever is there
    endpoint = document["authorization_endpoint"]
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params, quote_via=quote)


def _take_pending(request) -> dict:
    """Pop the pending sign-in (single use) after matching the returned state; remember used states so a
    replayed callback is recognised and recorded in its org's trail."""
    state = request.GET.get("state", "")
    pending = request.session.pop(PENDING_KEY, None)
    used = request.session.get(USED_KEY, [])
    if pending is None:
        org_id = next((org for used_state, org in used if used_state == state), None) if state else None
        org = Org.objects.filter(pk=org_id).first() if org_id else None
        if org is not None:
            raise SsoFailure("replayed", "This sign-in response was already used. Start again.", 400, org)
        raise SsoFailure("no_pending_sign_in", "No SSO sign-in is in progress in this browser (or it expired). "
                                               "Start again from the sign-in page.")
    request.session[USED_KEY] = [[pending["state"], pending["org"]], *used][:5]
    org = Org.objects.filter(pk=pending["org"]).first()
    if org is None:
        raise SsoFailure("no_pending_sign_in", "The organization of this sign-in no longer exists.")
    if not state or not hmac.compare_digest(state, pending["state"]):
        raise SsoFailure("state_mismatch", "The sign-in response does not belong to the sign-in started here "
                                           "(state mismatch). Start again.", 400, org)
    if int(time.time()) - pending["started"] > settings.CSM_SSO_SIGN_IN_TIMEOUT_SECONDS:
        raise SsoFailure("expired_state", "The sign-in took too long. Start again.", 400, org)
    return pending


def _exchange_code(provider: SsoProvider, document: dict, code: str, verifier: str, org: Org) -> str:
    try:
        secret = provider.client_secret()
    except secretbox.SecretUnreadable:
        raise SsoFailure("secret_unreadable", "The SSO client secret cannot be read (the server's encryption key "
                                              "changed); an admin must enter it again.", 500, org) from None
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(),
            "code_verifier": verifier}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" in methods:
        basic = f"{quote(provider.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    else:
        form.update(client_id=provider.client_id, client_secret=secret)
    try:
        response = outbound.post(document["token_endpoint"], urlencode(form).encode(), headers,
                                 timeout=settings.CSM_SSO_TIMEOUT_SECONDS, private_setting=PRIVATE_SETTING)
    except outbound.OutboundRefused as exc:
        raise SsoFailure("idp_refused", f"The identity provider may not be called: {exc}", 502, org) from None
    except OSError as exc:
        raise SsoFailure("idp_unreachable", f"The identity provider could not be reached ({exc}).", 502, org) \
            from None
    try:
        body = json.loads(response.body)
    except ValueError:
        body = {}
    if response.status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        detail = body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
        raise SsoFailure("token_exchange_failed", f"The identity provider refused the sign-in code "
                                                  f"(HTTP {response.status}{': ' + detail if detail else ''}).",
                         400, org)
    return body["id_token"]


def finish(request) -> tuple[str, Org, dict, dict]:
    """Check the callback and return (purpose, org, claims, pending); SsoFailure otherwise."""
    pending = _take_pending(request)
    org = Org.objects.get(pk=pending["org"])
    if request.GET.get("error"):
        detail = request.GET.get("error_description") or request.GET.get("error")
        raise SsoFailure("idp_error", f"The identity provider did not sign you in: {detail[:200]}", 403, org)
    provider = SsoProvider.objects.filter(org=org).first()
    if provider is None or (pending["purpose"] == "sign_in" and not provider.enabled):
        raise SsoFailure("sso_disabled", f"{org.name} no longer signs in with SSO.", 403, org)
    if "iss" in request.GET and request.GET["iss"] != provider.issuer:  # RFC 9207 mix-up defence
        raise SsoFailure("wrong_issuer", "The sign-in response came from another identity provider.", 400, org)
    code = request.GET.get("code", "")
    if not code:
        raise SsoFailure("no_code", "The identity provider sent no sign-in code.", 400, org)
    try:
        document = discover(provider.issuer)
        id_token = _exchange_code(provider, document, code, pending["verifier"], org)
        claims = validate_id_token(id_token, issuer=provider.issuer, client_id=provider.client_id,
                                   nonce=pending["nonce"], jwks_uri=document["jwks_uri"])
    except SsoFailure as failure:
        failure.org = org
        raise
    email = claims.get("email")
    email = email.strip().lower() if isinstance(email, str) else ""
    if "@" not in email:
        raise SsoFailure("no_email", "The identity provider sent no email address (the 'email' scope and claim "
                                     "are needed).", 403, org)
    if claims.get("email_verified") is not True:
        raise SsoFailure("email_unverified", f"The identity provider has not verified {email}; csm signs in "
                                             f"verified addresses only.", 403, org, email)
    claims["email"] = email
    return pending["purpose"], org, claims, pending


def groups_of(provider: SsoProvider, claims: dict) -> list[str]:
    value = claims.get(provider.groups_claim) or []
    if isinstance(value, str):
        value = [value]
    return [str(group) for group in value if isinstance(group, str | int)]


def verify_domain(ctx: AuditContext, org: Org, user, email: str) -> SsoDomain:
    """An admin's test sign-in with ``email`` (verified by the IdP) proves the org's IdP speaks for its domain."""
    domain = _domain_of(email)
    if not Membership.objects.filter(org=org, user=user, suspended_at=None, role__in=[Role.OWNER, Role.ADMIN]).exists():
        raise SsoFailure("not_allowed", "Only the org's owners and admins can verify a domain.", 403, org, email)
    try:
        with transaction.atomic():
            row = SsoDomain.objects.select_for_update().filter(org=org, domain=domain).first()
            if row is None:
                raise SsoFailure("domain_not_listed", f"The test sign-in used {email}, but {domain} is not one of "
                                                      f"{org.name}'s SSO domains. Add it first.", 403, org, email)
            if row.verified_at is None:
                row.verified_at, row.verified_by = timezone.now(), user
                row.save(update_fields=["verified_at", "verified_by"])
                record_event(ctx, org, AuditAction.SSO_DOMAIN_VERIFIED, ("sso_domain", row.pk, domain),
                             after={"email": email})
    except IntegrityError:
        raise SsoFailure("domain_claimed", f"{domain} is already verified by another organization.", 403, org,
                         email) from None
    return row


class LinkRequired(Exception):  # noqa: N818 - not an error: the sign-in continues on the link page
    """The ID token names an address of an existing csm account that this org does not manage: its owner must
    confirm with the account's password before the IdP identity is linked (``begin_link`` / ``link_account``)."""

    def __init__(self, org: Org, user, subject: str, email: str, groups: list[str]):
        super().__init__(email)
        self.org, self.user, self.subject, self.email, self.groups = org, user, subject, email, groups


def managed_by(org: Org, user) -> bool:
    """True when ``org`` manages ``user``'s account: no usable password, no SSO link or SCIM resource of another
    org, and every membership (suspended ones too) in ``org`` — an account SCIM or this org's SSO created. Such
    an account has no owner besides the org, so its IdP may sign it in without a password confirmation."""
    if user.has_usable_password():
        return False
    if SsoIdentity.objects.filter(user=user).exclude(org=org).exists() or \
            ScimUser.objects.filter(user=user).exclude(org=org).exists():
        return False
    return not Membership.objects.filter(user=user).exclude(org=org).exists()


def _link(ctx: AuditContext, org: Org, user, subject: str, email: str, via: str) -> SsoIdentity:
    """Link the IdP subject to ``user`` (replacing the user's earlier link in this org: an IdP that re-created
    the person gives a new subject) and record ``sso.account_linked``."""
    if SsoIdentity.objects.filter(org=org, subject=subject).exclude(user=user).exists():
        raise SsoFailure("subject_linked", f"This {org.name} identity-provider account is already linked to "
                                           f"another csm account.", 409, org, email)
    row = SsoIdentity.objects.select_for_update().filter(org=org, user=user).first()
    before = {"subject": row.subject, "email": row.email} if row else None
    if row is None:
        row = SsoIdentity(org=org, user=user)
    row.subject, row.email, row.created_at, row.last_used_at = subject, email, timezone.now(), timezone.now()
    row.save()
    record_event(ctx, org, AuditAction.SSO_ACCOUNT_LINKED, _ctx_target(user), before=before,
                 after={"subject": subject, "email": email, "via": via})
    return row


def _account_for(ctx: AuditContext, org: Org, claims: dict):
    """The csm account the ID token's person is, linking it when that is safe (docs/identity.md, "how accounts
    are matched"): by subject; else a new account; else an account this org manages; else LinkRequired
    (password confirmation) or SsoFailure (an account another org manages)."""
    email, subject = claims["email"], str(claims["sub"])
    identity = SsoIdentity.objects.select_for_update().filter(org=org, subject=subject).select_related("user") \
        .first()
    if identity is not None:  # (a) a returning person, whatever address the IdP sends now
        if not identity.user.is_active:
            raise SsoFailure("account_disabled", "This account is disabled.", 403, org, email)
        identity.last_used_at = timezone.now()
        identity.save(update_fields=["last_used_at"])
        return identity.user
    if not SsoDomain.objects.filter(org=org, domain=_domain_of(email)).exclude(verified_at=None).exists():
        raise SsoFailure("domain_not_verified", f"{_domain_of(email)} is not a verified SSO domain of {org.name}.",
                         403, org, email)
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).order_by("pk").first()
    if user is None:  # (b) nobody has the address: a new account, just in time, without a password
        username = email[:150]
        if User.objects.filter(username=username).exists():  # a username that happens to be this address
            username = f"{email[:130]}-{generate_token(8)}"
        user = User(username=username, email=email)
        user.set_unusable_password()
        user.save()
        _link(ctx, org, user, subject, email, "new_account")
        return user
    if not user.is_active:
        raise SsoFailure("account_disabled", "This account is disabled.", 403, org, email)
    if Membership.objects.filter(org=org, user=user).exclude(suspended_at=None).exists():
        raise SsoFailure("membership_suspended", f"Your membership in {org.name} is suspended; ask its admins.",
                         403, org, email)
    if managed_by(org, user):  # (c) an account SCIM or this org's SSO created
        _link(ctx, org, user, subject, email, "managed_account")
        return user
    if user.has_usable_password():  # (d) the account is its owner's: they confirm with its password
        raise LinkRequired(org, user, subject, email, groups_of(SsoProvider.objects.get(org=org), claims))
    raise SsoFailure("account_managed_elsewhere", f"The csm account {email} is managed by another "
                                                  f"organization's single sign-on or provisioning; {org.name}'s "
                                                  f"identity provider cannot sign it in.", 403, org, email)


def _join(ctx: AuditContext, org: Org, user, email: str, groups: list[str]) -> None:
    """``user``'s membership in ``org``: created with the role from groups (else the default role), or updated
    when a group mapping applies (never demoting the org's last owner)."""
    provider = SsoProvider.objects.get(org=org)
    user_ctx = AuditContext.for_user(user, request_id=ctx.request_id, ip=ctx.ip, user_agent=ctx.user_agent)
    membership = Membership.objects.select_for_update().filter(org=org, user=user).first()
    if membership is None:
        role = role_for_groups(org, groups, provider.default_role)
        membership = Membership.objects.create(org=org, user=user, role=role, source="sso")
        record_event(user_ctx, org, AuditAction.MEMBER_ADDED, ("membership", membership.pk, email),
                     after={"role": role, "source": "sso", "groups": groups})
        return
    if membership.suspended_at is not None:
        raise SsoFailure("membership_suspended", f"Your membership in {org.name} is suspended; ask its admins.",
                         403, org, email)
    mapped = role_for_groups(org, groups, None)
    if mapped is not None and mapped != membership.role:
        last_owner = membership.role == Role.OWNER and not Membership.objects.filter(
            org=org, role=Role.OWNER, suspended_at=None).exclude(pk=membership.pk).exists()
        if not last_owner:  # the org always keeps an owner, whatever the IdP's groups say
            before = {"role": membership.role}
            membership.role = mapped
            membership.save(update_fields=["role"])
            record_event(user_ctx, org, AuditAction.MEMBER_ROLE_CHANGED, ("membership", membership.pk, email),
                         before=before, after={"role": mapped, "source": "sso", "groups": groups})


@transaction.atomic
def provision(ctx: AuditContext, org: Org, claims: dict):
    """The person the ID token names (``_account_for``) and their membership in ``org`` (``_join``). Returns
    the user; LinkRequired when the account's owner must confirm with its password; SsoFailure when refused."""
    provider = SsoProvider.objects.get(org=org)
    user = _account_for(ctx, org, claims)
    _join(ctx, org, user, claims["email"], groups_of(provider, claims))
    return user


# --- linking an existing account (its owner confirms with the password) -----------------------------------

def begin_link(request, pending: LinkRequired, redirect_to: str) -> None:
    """Keep the link to confirm in the session (one at a time, single use, ``CSM_SSO_LINK_TIMEOUT_SECONDS``)."""
    request.session[LINK_KEY] = {
        "org": pending.org.pk, "subject": pending.subject, "email": pending.email, "user": pending.user.pk,
        "groups": pending.groups, "next": redirect_to,
        "expires": int(time.time()) + LINK_TIMEOUT_SECONDS}


def pending_link(request) -> tuple[dict, Org, object] | None:
    """(the pending link, its org, its account) while one is pending and unexpired; None otherwise (an
    expired one is dropped)."""
    pending = request.session.get(LINK_KEY)
    if not isinstance(pending, dict):
        return None
    org = Org.objects.filter(pk=pending.get("org")).first()
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if pending.get("expires", 0) < time.time() or org is None or user is None:
        request.session.pop(LINK_KEY, None)
        return None
    return pending, org, user


def cancel_link(request) -> None:
    request.session.pop(LINK_KEY, None)


class LinkPasswordError(Exception):
    """A wrong password on the link page (or too many attempts: ``limited``)."""

    def __init__(self, message: str, *, limited: bool = False):
        super().__init__(message)
        self.message, self.limited = message, limited


def link_account(ctx: AuditContext, request, password: str, client_ip: str | None):
    """Confirm the pending link with the account's password (rate limited with the sign-in counters). Returns
    (user, next URL) once linked (``sso.account_linked`` via password, membership as on every SSO sign-in);
    raises LinkPasswordError for a wrong password (``sso.failed`` reason ``link_password``), SsoFailure when
    the link is gone or refused."""
    found = pending_link(request)
    if found is None:
        raise SsoFailure("no_pending_link", "No account link is waiting for confirmation in this browser (or it "
                                            "expired after 10 minutes). Sign in with SSO again.")
    pending, org, user = found
    account = user.email or user.get_username()
    limited = ratelimit.check(account, client_ip)
    if limited is not None:
        raise LinkPasswordError(limited.message, limited=True)
    if not user.check_password(password or ""):
        ratelimit.record_failure(account, client_ip)
        record_failure(ctx, SsoFailure("link_password", "The password to link the account was wrong.", 403, org,
                                       pending["email"]))
        raise LinkPasswordError("That is not the password of this csm account.")
    ratelimit.record_success(account)
    request.session.pop(LINK_KEY, None)  # single use
    provider = SsoProvider.objects.filter(org=org, enabled=True).first()
    if provider is None:
        raise SsoFailure("sso_disabled", f"{org.name} no longer signs in with SSO.", 403, org, pending["email"])
    with transaction.atomic():
        _link(ctx, org, user, pending["subject"], pending["email"], "password")
        _join(ctx, org, user, pending["email"], pending["groups"])
    return user, pending["next"]


def record_failure(ctx: AuditContext, failure: SsoFailure) -> None:
    """``sso.failed`` with the reason in the org's trail (nothing when no org is known)."""
    if failure.org is None:
        return
    after = {"reason": failure.reason, "message": failure.message}
    if failure.email:
        after["email"] = failure.email
    with transaction.atomic():
        record_event(ctx, failure.org, AuditAction.SSO_FAILED, None, after=after)


def record_recovery_sign_in(ctx: AuditContext, user, orgs: list[Org]) -> None:
    """An owner signed in with a password although their org requires SSO (the break-glass path)."""
    with transaction.atomic():
        for org in orgs:
            record_event(ctx, org, AuditAction.SSO_RECOVERY_SIGN_IN, _ctx_target(user), after={"method": "password"})
