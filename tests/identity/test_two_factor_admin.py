"""Django admin shows second factors read-only and never the authenticator secret (django-otp's own admin,
which edits devices and shows their keys and QR codes, is replaced)."""

import pytest
from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from identity.models import RecoveryCode, WebAuthnCredential
from tests.identity.twofactor_support import client_signed_in, enrol_totp

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [TOTPDevice, WebAuthnCredential, RecoveryCode], ids=lambda m: m.__name__)
def test_second_factors_are_read_only_in_the_admin(model, make_user):
    staff = make_user(is_staff=True, is_superuser=True)
    request = client_signed_in(staff).get("/admin/").wsgi_request
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_the_admin_never_shows_the_totp_secret(make_user, owner):
    device = enrol_totp(owner)
    staff = client_signed_in(make_user(is_staff=True, is_superuser=True))
    listing = staff.get("/admin/otp_totp/totpdevice/")
    detail = staff.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert listing.status_code == 200 and detail.status_code == 200
    assert device.key not in listing.content.decode() + detail.content.decode()
    qr_page = staff.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/", follow=True)  # django-otp's QR view
    assert device.key not in qr_page.content.decode() and "otpauth://" not in qr_page.content.decode()
