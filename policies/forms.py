"""Web forms of the policies pages. Forms only validate, with the rules the services apply (the policy
parser, the reserved names, the models' validators); the writes happen in policies/services.py."""

from django import forms
from django.utils import timezone

from snapshots.models import Environment

from .models import AllowlistEntry, Policy
from .parsing import PolicyError, parse_policy
from .services import RESERVED_NAMES


class PolicyContentForm(forms.Form):
    """A new version of an existing policy: its YAML, a comment and (optionally) a new description."""

    description = forms.CharField(max_length=1000, required=False)
    content = forms.CharField(label="Policy (YAML)", strip=False,
                              widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}))
    comment = forms.CharField(label="Comment for this version", max_length=1000, required=False)

    def clean_content(self):
        content = self.cleaned_data["content"]
        try:
            parse_policy(content)
        except PolicyError as error:
            raise forms.ValidationError([str(problem) for problem in error.problems], code="invalid") from None
        return content


class PolicyForm(forms.ModelForm, PolicyContentForm):
    """A new policy: a name (the model's slug rule, not a reserved path segment) and its first version."""

    class Meta:
        model = Policy
        fields = ["name", "description"]

    field_order = ["name", "description", "content", "comment"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if name in RESERVED_NAMES:
            raise forms.ValidationError(f"{name!r} is reserved; choose another name.", code="reserved")
        return name


class EnvironmentChoiceForm(forms.Form):
    """Pick one of the org's environments by name (attach / detach a policy)."""

    environment = forms.ModelChoiceField(queryset=Environment.objects.none(), to_field_name="name",
                                         error_messages={"invalid_choice": "No such environment."})

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = Environment.objects.for_org(org).exclude(type="logical")


class PolicyChoiceForm(forms.Form):
    """Pick one of the org's policies by name (attach it from an environment's page)."""

    policy = forms.ModelChoiceField(queryset=Policy.objects.none(), to_field_name="name",
                                    error_messages={"invalid_choice": "No such policy."})

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = Policy.objects.for_org(org)


class AllowlistEntryForm(forms.ModelForm):
    """Allowlist one artifact (by fingerprint) in an environment, for a reason, until an optional expiry."""

    class Meta:
        model = AllowlistEntry
        fields = ["fingerprint", "artifact_name", "reason", "expires_at"]
        labels = {"expires_at": "Expires (optional)"}
        widgets = {
            "fingerprint": forms.TextInput(attrs={"size": 40, "pattern": "[0-9a-f]{64}"}),
            "artifact_name": forms.TextInput,
            "expires_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        }
        error_messages = {"reason": {"required": "Give a reason."}}

    def clean_fingerprint(self):
        fingerprint = self.cleaned_data["fingerprint"].strip().lower()
        if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise forms.ValidationError("The fingerprint must be a 64-hex SHA-256.", code="invalid")
        return fingerprint

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.", code="past")
        return expires_at
