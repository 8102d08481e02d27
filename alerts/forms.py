"""Web forms of the alerts pages. Forms only validate, with the rules of alerts/services.py
(``validate_action``); the writes happen in the services."""

from django import forms

from csm.web import add_service_error
from snapshots.models import Environment

from . import services
from .choices import ActionType, MinSeverity, Trigger
from .models import Action

TRIGGERS = [(t.value, t.label) for t in Trigger if t != Trigger.ON_TEST]


class ActionForm(forms.Form):
    """Create an action (``action=None``) or edit one: its type is fixed once created, so the edit form
    has no type field and validates against the action's."""

    name = forms.CharField(max_length=100)
    type = forms.ChoiceField(choices=ActionType.choices, initial=ActionType.WEBHOOK)
    url = forms.CharField(label="URL (webhook / Slack)", required=False, max_length=2000,
                          widget=forms.URLInput(attrs={"size": 40}))
    email = forms.CharField(required=False, max_length=254, widget=forms.EmailInput)
    triggers = forms.MultipleChoiceField(choices=TRIGGERS, widget=forms.CheckboxSelectMultiple,
                                         error_messages={"required": "Give at least one trigger."})
    environments = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             help_text="None checked: every environment")
    min_severity = forms.ChoiceField(
        label="Minimum severity", required=False, choices=[("", "Every severity"), *MinSeverity.choices],
        help_text="For the vulnerability triggers: name only vulnerabilities at least this severe (unknown "
                  "severity always counts)")

    def __init__(self, *args, org, action: Action | None = None, **kwargs):
        if action is not None:
            kwargs.setdefault("initial", services.action_state(action))
        super().__init__(*args, **kwargs)
        self.org, self.action = org, action
        names = Environment.objects.for_org(org).exclude(type="logical").order_by("name").values_list(
            "name", flat=True)
        # An edited action may still name an environment that was archived or made logical since.
        known = list(dict.fromkeys([*names, *(action.environments if action else [])]))
        self.fields["environments"].choices = [(name, name) for name in known]
        if action is not None:
            del self.fields["type"]
            del self.fields["url" if action.type == ActionType.EMAIL else "email"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = {"type": self.action.type if self.action else cleaned["type"], "url": "", "email": "", **cleaned}
        try:
            cleaned.update(services.validate_action(self.org, data))
        except services.ActionError as error:
            add_service_error(self, error)
        return cleaned

    def changes(self) -> dict:
        """The cleaned fields as keyword arguments of ``create_action`` / ``update_action``."""
        return {key: self.cleaned_data[key] for key in ("name", "type", "url", "email", "environments", "triggers",
                                                         "min_severity")
                if key in self.fields}
