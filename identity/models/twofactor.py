"""Second factors of a person's own account (docs/identity.md, "Two-factor").

The authenticator app (TOTP) is django-otp's ``TOTPDevice`` (otp_totp). Passkeys and recovery codes are
ours: django-otp's static tokens are stored in plain text, and it has no WebAuthn device. These rows belong
to a person, not to an org, so they have no ``org`` (every org of the person sees the audit events)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class WebAuthnCredential(models.Model):
    """A passkey or security key registered by a person as a second factor (WebAuthn, py_webauthn).

    ``credential_id`` is the authenticator's id (base64url, as browsers send it back), ``public_key`` the
    COSE public key the assertions are checked against, ``sign_count`` the authenticator's counter (a
    counter that goes backwards means a cloned authenticator; the assertion is refused)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webauthn_credentials")
    name = models.CharField(max_length=100)
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "created_at", "pk"]
        verbose_name = "passkey"

    def __str__(self):
        return f"passkey {self.name!r} of {self.user}"


class RecoveryCode(models.Model):
    """One single-use recovery code of a person: only its keyed hash (HMAC-SHA256) is stored; the codes are
    shown once, when generated. Generating a new set deletes the old one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="recovery_code_unique")]
        ordering = ["user", "pk"]

    def __str__(self):
        return f"recovery code of {self.user} ({'used' if self.used_at else 'unused'})"
