"""Forms of the snapshot journal's web pages."""

from django import forms

from snapshots.services.environments import MAX_REASON


class EnvironmentAuthorizationForm(forms.Form):
    """Require or relax authorization in an environment. Relaxing asks for the environment's name typed
    out (as GitHub asks before a dangerous change) and a reason, both kept in the audit trail."""

    require_authorization = forms.TypedChoiceField(
        choices=[("true", "Required"), ("false", "Relaxed")], coerce=lambda value: value == "true",
        label="Authorization")
    reason = forms.CharField(max_length=MAX_REASON, label="Why", widget=forms.TextInput(attrs={"size": 40}))
    confirm = forms.CharField(max_length=100, required=False, label="Type the environment's name to confirm")

    def __init__(self, *args, environment=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.environment = environment

    def clean(self):
        data = super().clean()
        if data.get("require_authorization") is False and self.environment is not None \
                and data.get("confirm", "").strip() != self.environment.name:
            self.add_error("confirm", f"Type {self.environment.name} to confirm relaxing authorization.")
        return data
