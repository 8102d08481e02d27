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


class ChangeWindowsForm(forms.Form):
    """An environment's change windows in the page's notation (snapshots.change_windows.windows_from_text):
    one window per line, ``mon-fri 09:00-17:00``; empty: no windows."""

    windows = forms.CharField(required=False, max_length=5000, label="Change windows",
                              widget=forms.Textarea(attrs={"rows": 3, "cols": 30,
                                                           "placeholder": "mon-fri 09:00-17:00"}),
                              help_text="One window per line: days and hours, e.g. mon-fri 09:00-17:00 or "
                                        "fri 22:00-02:00 (past midnight). Empty: no windows, nothing is flagged.")
    tz = forms.CharField(max_length=64, label="Time zone", initial="UTC",
                         widget=forms.TextInput(attrs={"size": 20, "placeholder": "Europe/Berlin"}))
