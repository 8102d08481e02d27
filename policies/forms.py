"""Web forms of the policies pages. Forms only validate, with the rules the services apply (the policy
parser, the reserved names, the models' validators); the writes happen in policies/services.py."""

from django import forms
from django.utils import timezone

from evidence.models import Flow
from snapshots.models import Environment

from .models import AllowlistEntry, Policy, PolicyFormat
from .parsing import PolicyError
from .services import RESERVED_NAMES, parse_content


class PolicyContentForm(forms.Form):
    """A new version of an existing policy: its source (YAML or Rego, the policy's format), a comment
    and (optionally) a new description."""

    description = forms.CharField(max_length=1000, required=False)
    content = forms.CharField(label="Policy", strip=False,
                              widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}))
    comment = forms.CharField(label="Comment for this version", max_length=1000, required=False)

    def __init__(self, *args, policy_format: str = PolicyFormat.YAML, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy_format = policy_format
        self.fields["content"].label = f"Policy ({'Rego' if policy_format == PolicyFormat.REGO else 'YAML'})"

    def content_format(self) -> str:
        return self.policy_format

    def clean(self):
        data = super().clean()
        content = data.get("content")
        if content is not None and "content" not in self.errors:
            try:  # the rules the service applies (a Rego policy is compiled, bounded, in a child process)
                parse_content(self.content_format(), content)
            except PolicyError as error:
                self.add_error("content", forms.ValidationError([str(problem) for problem in error.problems],
                                                                code="invalid"))
        return data


class PolicyForm(forms.ModelForm, PolicyContentForm):
    """A new policy: a name (the model's slug rule, not a reserved path segment) and its first version."""

    class Meta:
        model = Policy
        fields = ["name", "description"]

    format = forms.ChoiceField(choices=PolicyFormat.choices, initial=PolicyFormat.YAML, required=False,
                               help_text="YAML: kosli's environment policy rules. Rego: a package policy module with "
                                         "an allow rule, as kosli evaluate runs it (input: docs/policies.md).")
    field_order = ["name", "description", "format", "content", "comment"]

    def content_format(self) -> str:
        return self.data.get("format") or PolicyFormat.YAML if self.is_bound else PolicyFormat.YAML

    def clean(self):
        super().clean()  # the model form's checks; then the content in its format
        return PolicyContentForm.clean(self)

    def clean_name(self):
        name = self.cleaned_data["name"]
        if name in RESERVED_NAMES:
            raise forms.ValidationError(f"{name!r} is reserved; choose another name.", code="reserved")
        return name


class FlowChoiceForm(forms.Form):
    """Choose a flow of the org (a Rego policy's gate)."""

    flow = forms.ModelChoiceField(queryset=Flow.objects.none(), to_field_name="name",
                                  error_messages={"invalid_choice": "Choose one of your flows."})

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flow"].queryset = Flow.objects.for_org(org).order_by("name")


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
