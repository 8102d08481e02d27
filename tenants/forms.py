"""Web forms for sign-in, sign-up, orgs, members, invitations, service accounts and tokens. Forms only
validate input; the writes happen in tenants/services.py."""

from datetime import timedelta

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from csm.lib.clientip import client_ip as ip_of
from tenants import ratelimit
from tenants.choices import Role
from tenants.models import slug_validator
from tenants.services import ROTATION_GRACE_CHOICES

EXPIRY_CHOICES = [
    ("", "Never"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
]


class RateLimitedError(forms.ValidationError):
    """Raised by the sign-in form when the account or the IP is over its limit."""


class RateLimitedSignIn:
    """Refuses a sign-in early when the account or the client IP is over its limit (tenants.ratelimit),
    counts failures and clears the account's counter on success. Mixed into the site's and the admin's
    sign-in forms so both share one set of counters."""

    def __init__(self, request=None, *args, client_ip=None, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.client_ip = client_ip or (ip_of(request) if request is not None else None)
        self.rate_limited = False

    def clean(self):
        account = (self.cleaned_data.get("username") or "").strip()
        limited = ratelimit.check(account, self.client_ip)
        if limited is not None:
            self.rate_limited = True
            raise RateLimitedError(limited.message, code="rate_limited")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            ratelimit.record_failure(account, self.client_ip)
            raise
        ratelimit.record_success(account)
        return cleaned


class SignInForm(RateLimitedSignIn, AuthenticationForm):
    """Django's sign-in form, refused early when the account or the client IP is rate limited."""

    username = forms.CharField(label="Email", max_length=254,
                               widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))


class AdminSignInForm(RateLimitedSignIn, AdminAuthenticationForm):
    """The admin's sign-in form (staff only), under the same rate limits as the site's."""


class SignUpRequestForm(forms.Form):
    """First step of sign-up: the address to send the link to (the password is chosen from the link)."""

    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))


class SignUpForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(label="Password", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=password_validation.password_validators_help_text_html())
    password2 = forms.CharField(label="Password again", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, invited_email=None, fixed_email_help="You were invited with this address.", **kwargs):
        super().__init__(*args, **kwargs)
        if invited_email:
            self.fields["email"].initial = invited_email
            self.fields["email"].disabled = True
            self.fields["email"].help_text = fixed_email_help

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        if p1 and cleaned.get("email"):
            from django.contrib.auth import get_user_model

            candidate = get_user_model()(username=cleaned["email"], email=cleaned["email"])
            try:
                password_validation.validate_password(p1, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class OrgCreateForm(forms.Form):
    # app.js suggests the slug from the name (data-slug-*) until the user types a slug of their own.
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"data-slug-source": ""}))
    slug = forms.CharField(max_length=50, validators=[slug_validator],
                           widget=forms.TextInput(attrs={"data-slug-target": "", "autocapitalize": "none",
                                                         "spellcheck": "false"}),
                           help_text="Used in URLs and API paths: lowercase letters, digits and hyphens.")


class DefaultOrgForm(forms.Form):
    """The org the web app opens after sign-in: one of the person's orgs whose pages their role sees."""

    default_org = forms.ChoiceField(label="Open after sign-in")

    def __init__(self, *args, memberships=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_org"].choices = [(m.org.slug, f"{m.org.name} ({m.org.slug})") for m in memberships]


class OrgUpdateForm(forms.Form):
    name = forms.CharField(max_length=200)


class OrgRetentionForm(forms.Form):
    """Days after which stored report bodies / evidence files are dropped; empty keeps them forever.
    The bounds are checked by tenants.services.set_retention."""

    report_body_retention_days = forms.IntegerField(
        required=False, label="Drop report bodies after (days)",
        help_text="Ingested reports only; snapshots, hashes and sizes are kept. Empty: keep forever.")
    evidence_file_retention_days = forms.IntegerField(
        required=False, label="Drop evidence files after (days)",
        help_text="Counted from the newest attestation using the file; SHA-256, size and name are kept. "
                  "Empty: keep forever.")


def role_choices(can_manage_owners: bool):
    return [(value, label) for value, label in Role.choices if can_manage_owners or value != Role.OWNER]


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, can_manage_owners=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(can_manage_owners)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ServiceAccountForm(forms.Form):
    name = forms.CharField(max_length=100, validators=[slug_validator],
                           help_text="Lowercase letters, digits and hyphens, e.g. prod-agent.")
    role = forms.ChoiceField(choices=[(v, label) for v, label in Role.choices if v != Role.OWNER],
                             initial=Role.SNAPSHOTTER)
    description = forms.CharField(max_length=500, required=False)


def _split(text: str) -> list[str]:
    return [part for part in (text or "").replace(",", " ").split() if part]


class TokenForm(forms.Form):
    """A new token and its scope; names and networks are separated by commas or spaces. The service
    (tenants.services.create_api_token) validates the names and networks."""

    name = forms.CharField(max_length=100, initial="default")
    expires_in_days = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    scope_environments = forms.CharField(required=False, max_length=2000, label="Only environments",
                                         help_text="Names, separated by commas; empty: every environment.")
    scope_flows = forms.CharField(required=False, max_length=2000, label="Only flows",
                                  help_text="Names, separated by commas; empty: every flow.")
    allowed_networks = forms.CharField(required=False, max_length=2000, label="Only from networks",
                                       help_text="CIDR, e.g. 203.0.113.0/24, separated by commas; empty: any.")
    read_only = forms.BooleanField(required=False, label="Read-only")

    def expires_at(self):
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=int(days)) if days else None

    def scope(self) -> dict:
        data = self.cleaned_data
        return {"scope_environments": _split(data.get("scope_environments")),
                "scope_flows": _split(data.get("scope_flows")),
                "allowed_networks": _split(data.get("allowed_networks")),
                "read_only": bool(data.get("read_only"))}


class RotateForm(forms.Form):
    grace_seconds = forms.TypedChoiceField(choices=ROTATION_GRACE_CHOICES, coerce=int, initial=86400,
                                           label="Old token keeps working for")
