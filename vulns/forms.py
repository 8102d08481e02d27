"""Forms of the vulnerability pages: the list's filter and the component search (GET forms)."""

from django import forms

from .choices import VulnSeverity
from .pages import MAX_QUERY


class EnvironmentForm(forms.Form):
    """One environment of the org, by name (empty: every environment); ``cleaned_data["environment"]`` is
    the Environment or None."""

    environment = forms.ChoiceField(required=False, label="Environment")

    def __init__(self, data, environments):
        super().__init__(data, auto_id="vf-%s")
        self.environments = {e.name: e for e in environments}
        self.fields["environment"].choices = [("", "every environment"), *((n, n) for n in self.environments)]

    def clean_environment(self):
        name = self.cleaned_data.get("environment") or ""
        return self.environments.get(name) if name else None


class VulnerabilityFilterForm(EnvironmentForm):
    """The list's filter: an environment of the org (by name), a severity, running now only."""

    severity = forms.ChoiceField(required=False, label="Severity",
                                 choices=[("", "any severity"), *VulnSeverity.choices])
    running = forms.BooleanField(required=False, label="Running now only")


class ComponentSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=MAX_QUERY, label="Package URL, name or name@version")
