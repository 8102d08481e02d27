"""Two-factor for password accounts: enrolling an authenticator app (codes computed from the secret the page
shows), the sign-in's second step (not signed in before it; TOTP once only; recovery codes once only; failed
codes limited and audited), removing factors (password confirmed) and recovery codes regenerated."""

import re
import time

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client, RequestFactory

from audit.models import AuditEvent
from identity import signin, twofactor
from identity.models import RecoveryCode, WebAuthnCredential
from tests.conftest import PASSWORD
from tests.identity.twofactor_support import (
    client_signed_in,
    code_from_base32,
    enrol_totp,
    password_step,
    signed_in,
    totp_code,
)

pytestmark = pytest.mark.django_db


def _actions(org, action):
    return list(AuditEvent.objects.filter(org=org, action=action).order_by("seq"))


@pytest.fixture
def web(owner, org):
    return client_signed_in(owner)


def _recovery_codes(owner, org):
    """Give the owner an app and ten recovery codes (through the service, as enrolment does)."""
    enrol_totp(owner)
    return twofactor.regenerate_recovery_codes(twofactor.AuditContext.for_user(owner), owner, PASSWORD)


# --- enrolment ------------------------------------------------------------------------------------------------

def test_enrolling_an_authenticator_app_with_a_code_from_the_shown_secret(web, owner, org):
    page = web.get("/account/security/totp/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "QR code for your authenticator app" in html
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    assert twofactor.totp_device(owner) is None  # not active before it is confirmed

    wrong_code = "000000" if code_from_base32(secret) != "000000" else "111111"
    wrong = web.post("/account/security/totp/", {"code": wrong_code})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    assert twofactor.totp_device(owner) is None

    done = web.post("/account/security/totp/", {"code": code_from_base32(secret)})
    assert done.status_code == 302 and done["Location"] == "/account/security/"
    assert twofactor.totp_device(owner) is not None
    enrolled = _actions(org, "two_factor.enrolled")
    assert [e.after["kind"] for e in enrolled] == ["totp"]
    assert enrolled[0].actor_user_id == owner.pk

    # The first factor comes with ten recovery codes, shown once, stored hashed.
    shown = web.get("/account/security/").content.decode()
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", shown)
    assert len(set(codes)) == 10
    assert RecoveryCode.objects.filter(user=owner).count() == 10
    assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()
    assert not re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", web.get("/account/security/").content.decode())
    assert _actions(org, "two_factor.recovery_codes_generated")[0].after == {"count": 10}


def test_account_settings_link_to_the_security_page(web):
    assert 'href="/account/security/"' in web.get("/account/").content.decode()


def test_the_security_page_needs_a_sign_in(client):
    response = client.get("/account/security/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- the sign-in's second step ---------------------------------------------------------------------------------

def test_password_alone_does_not_sign_in_a_person_with_an_authenticator_app(client, owner, org):
    device = enrol_totp(owner)
    response = password_step(client, owner.email, next_url="/o/acme/settings/")
    assert response.status_code == 302 and response["Location"] == "/login/two-factor/"
    assert not signed_in(client)
    assert client.get("/o/acme/").status_code == 302  # still signed out: the org's pages want a sign-in
    assert "authenticator app" in client.get("/login/two-factor/").content.decode()

    done = client.post("/login/two-factor/", {"code": totp_code(device.key)})
    assert done.status_code == 302 and done["Location"] == "/o/acme/settings/"
    assert signed_in(client)
    assert client.get("/o/acme/settings/").status_code == 200
    signed = _actions(org, "user.signed_in")[-1]
    assert signed.after == {"method": "password+totp"}
    verified = _actions(org, "two_factor.verified")[-1]
    assert verified.after == {"kind": "totp", "method": "password"} and verified.actor_user_id == owner.pk


def test_a_totp_code_works_once(client, owner, org):
    device = enrol_totp(owner)
    code = totp_code(device.key)
    password_step(client, owner.email)
    assert client.post("/login/two-factor/", {"code": code}).status_code == 302
    client.post("/logout/")

    again = Client()
    password_step(again, owner.email)
    replayed = again.post("/login/two-factor/", {"code": code})
    assert replayed.status_code == 400 and not signed_in(again)
    failed = _actions(org, "two_factor.failed")
    assert [e.after["kind"] for e in failed] == ["totp"]
    assert _actions(org, "user.sign_in_failed")[-1].after == {"reason": "second_factor"}


def test_a_recovery_code_signs_in_once(client, owner, org):
    codes = _recovery_codes(owner, org)
    password_step(client, owner.email)
    response = client.post("/login/two-factor/", {"code": codes[0].upper()}, follow=True)  # capitals: still fine
    assert response.redirect_chain[0][1] == 302 and signed_in(client)
    assert "You signed in with a recovery code; 9 left." in response.content.decode()
    assert _actions(org, "user.signed_in")[-1].after == {"method": "password+recovery_code"}
    assert _actions(org, "two_factor.recovery_code_used")[-1].after == {"remaining": 9}

    other = Client()
    password_step(other, owner.email)
    assert other.post("/login/two-factor/", {"code": codes[0]}).status_code == 400
    assert not signed_in(other)
    assert other.post("/login/two-factor/", {"code": codes[1]}).status_code == 302
    assert twofactor.unused_recovery_codes(owner) == 8


def test_new_recovery_codes_replace_the_old_ones_after_the_password(web, owner, org):
    old = _recovery_codes(owner, org)
    refused = web.post("/account/security/recovery-codes/", {"confirm": "not my password"}, follow=True)
    assert "Confirm with your password" in refused.content.decode()
    response = web.post("/account/security/recovery-codes/", {"confirm": "correct-horse-battery-staple"}, follow=True)
    new = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", response.content.decode())
    assert len(set(new)) == 10 and not set(new) & set(old)

    client = Client()
    password_step(client, owner.email)
    assert client.post("/login/two-factor/", {"code": old[0]}).status_code == 400
    assert client.post("/login/two-factor/", {"code": new[0]}).status_code == 302


def test_failed_codes_are_limited_and_the_half_done_sign_in_dropped(client, owner, org, settings):
    settings.CSM_TWO_FACTOR_MAX_ATTEMPTS = 2
    device = enrol_totp(owner)
    password_step(client, owner.email)
    wrong = "123456" if totp_code(device.key) != "123456" else "654321"
    assert client.post("/login/two-factor/", {"code": wrong}).status_code == 400
    assert client.post("/login/two-factor/", {"code": "nope-nope"}).status_code == 400
    limited = client.post("/login/two-factor/", {"code": totp_code(device.key)})
    assert limited.status_code == 429 and "Too many failed sign-in attempts" in limited.content.decode()
    assert not signed_in(client)
    assert len(_actions(org, "two_factor.failed")) == 2
    # the password step has to be done again (and it is limited too)
    assert client.get("/login/two-factor/")["Location"] == "/login/"


def test_the_second_step_expires(client, owner, settings):
    device = enrol_totp(owner)
    settings.CSM_TWO_FACTOR_PENDING_SECONDS = -1
    password_step(client, owner.email)
    response = client.post("/login/two-factor/", {"code": totp_code(device.key)})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not signed_in(client)


def test_without_a_pending_sign_in_the_step_sends_to_the_sign_in_page(client):
    assert client.get("/login/two-factor/")["Location"] == "/login/"
    assert client.post("/login/two-factor/passkey-options/").status_code == 404


def test_a_person_without_a_factor_signs_in_with_the_password_alone(client, owner, org):
    response = password_step(client, owner.email)
    assert response.status_code == 302 and response["Location"] != "/login/two-factor/"
    assert signed_in(client)
    assert _actions(org, "user.signed_in")[-1].after == {"method": "password"}


# --- removing ---------------------------------------------------------------------------------------------------

def test_removing_the_app_needs_the_password_and_takes_the_recovery_codes_along(web, owner, org):
    _recovery_codes(owner, org)
    refused = web.post("/account/security/totp/remove/", {"confirm": "wrong"}, follow=True)
    assert "Confirm with your password" in refused.content.decode()
    assert twofactor.totp_device(owner) is not None

    web.post("/account/security/totp/remove/", {"confirm": "correct-horse-battery-staple"})
    assert twofactor.totp_device(owner) is None
    assert not RecoveryCode.objects.filter(user=owner).exists()
    assert _actions(org, "two_factor.removed")[-1].after == {"kind": "totp", "name": "Authenticator app"}
    client = Client()
    assert password_step(client, owner.email)["Location"] != "/login/two-factor/" and signed_in(client)


def test_the_last_factor_stays_while_an_org_requires_two_factor(web, owner, org):
    enrol_totp(owner)
    twofactor.set_require_two_factor(twofactor.AuditContext.for_user(owner), org, True, owner)
    response = web.post("/account/security/totp/remove/", {"confirm": "correct-horse-battery-staple"}, follow=True)
    assert "Acme Corp requires two-factor" in response.content.decode()
    assert twofactor.totp_device(owner) is not None


def test_someone_elses_passkey_cannot_be_removed(web, make_user):
    stranger = make_user()
    passkey = WebAuthnCredential.objects.create(user=stranger, name="theirs", credential_id="abc", public_key=b"k")
    response = web.post(f"/account/security/passkeys/{passkey.pk}/remove/", {"confirm": "correct-horse-battery-staple"})
    assert response.status_code == 404
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()


def test_the_admin_sign_in_form_does_not_skip_the_second_factor(client, make_user):
    staff = make_user("staff@example.com", is_staff=True, is_superuser=True)
    enrol_totp(staff)
    response = client.post("/admin/login/?next=/admin/", {"username": staff.email, "password": PASSWORD,
                                                          "next": "/admin/"})
    assert response.status_code == 302  # Django's admin signed the password in...
    admin = client.get("/admin/")
    assert admin.status_code == 302 and admin["Location"] == "/login/?next=/admin/"  # ...csm ends that session
    assert not signed_in(client)


def test_a_session_that_skipped_the_second_factor_ends(owner, org):
    enrol_totp(owner)
    client = Client()
    client.force_login(owner)  # no second factor passed in this session
    assert client.get("/o/acme/")["Location"] == "/login/?next=/o/acme/"
    assert not signed_in(client)
    assert client_signed_in(owner).get("/o/acme/").status_code == 200


def test_a_forged_passkey_answer_fails_and_is_audited(client, owner, org):
    WebAuthnCredential.objects.create(user=owner, name="laptop", credential_id="Zm9v", public_key=b"not-a-key")
    password_step(client, owner.email)
    assert client.post("/login/two-factor/passkey-options/").status_code == 200
    forged = '{"id": "Zm9v", "rawId": "Zm9v", "type": "public-key", "response": {}}'
    assert client.post("/login/two-factor/", {"credential": forged}).status_code == 400
    assert not signed_in(client)
    assert _actions(org, "two_factor.failed")[-1].after == {"kind": "webauthn", "method": "password"}


def _sso_request(client):
    """A request carrying ``client``'s session, as the SSO callback would have (identity.signin is called
    by it with method="sso")."""
    request = RequestFactory().get("/sso/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()
    return request


def _adopt_session(client, request):
    request.session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key


def test_after_sso_the_local_factor_is_still_asked_and_the_idps_amr_recorded(client, owner, org):
    device = enrol_totp(owner)
    request = _sso_request(client)
    response = signin.begin_sign_in(request, owner, method="sso", redirect_to="/o/acme/", amr=["pwd", "mfa"])
    assert response["Location"] == "/login/two-factor/" and "_auth_user_id" not in request.session
    _adopt_session(client, request)
    assert client.post("/login/two-factor/", {"code": totp_code(device.key)})["Location"] == "/o/acme/"
    assert _actions(org, "user.signed_in")[-1].after == {"method": "sso+totp", "amr": ["pwd", "mfa"]}


def test_sso_without_a_local_factor_signs_in_and_records_the_amr(owner, org, client):
    request = _sso_request(client)
    signin.begin_sign_in(request, owner, method="sso", redirect_to="/", amr=["otp"])
    assert request.session["_auth_user_id"] == str(owner.pk)
    assert _actions(org, "user.signed_in")[-1].after == {"method": "sso", "amr": ["otp"]}


def test_an_account_without_a_password_confirms_with_its_authenticator_app(make_user, org):
    sso_person = make_user("sso-only@example.com")
    sso_person.set_unusable_password()
    sso_person.save()
    device = enrol_totp(sso_person)
    WebAuthnCredential.objects.create(user=sso_person, name="phone", credential_id="cGhvbmU", public_key=b"k")
    web = client_signed_in(sso_person)
    assert "A code from your authenticator app" in web.get("/account/security/").content.decode()
    refused = web.post("/account/security/recovery-codes/", {"confirm": "000000x"}, follow=True)
    assert "Confirm with a code from your authenticator app" in refused.content.decode()
    web.post("/account/security/recovery-codes/", {"confirm": totp_code(device.key)})
    assert twofactor.unused_recovery_codes(sso_person) == 10
    passkey = WebAuthnCredential.objects.get(user=sso_person)
    next_code = totp_code(device.key, at=time.time() + 30)  # the current step's code was just used
    web.post(f"/account/security/passkeys/{passkey.pk}/remove/", {"confirm": next_code})
    assert not WebAuthnCredential.objects.filter(user=sso_person).exists()
