"""The report request form of the Reports page. It validates with the service's own rule
(``reports.params.validate_params``); the write happens in reports/services.py."""

import datetime

from django import forms
from django.utils import timezone

from csm.errors import ServiceError
from csm.web import add_service_error
from reports.choices import ReportKind
from reports.params import RANGE_KINDS, validate_params

PARAMS = ("environment", "fingerprint", "vulnerability", "from", "to")


def default_range() -> dict:
    """The last 30 days, through tomorrow (``to`` is exclusive)."""
    today = timezone.now().date()
    return {"from": (today - datetime.timedelta(days=30)).isoformat(),
            "to": (today + datetime.timedelta(days=1)).isoformat()}


class ReportRequestForm(forms.Form):
    """A kind and the parameters it uses; a range left empty (the "Download PDF" buttons send none) is
    the last 30 days — except for the exposure report, whose range is optional (empty: the whole
    history). ``cleaned_data["params"]`` holds what to pass to ``services.request_report``."""

    kind = forms.ChoiceField(choices=ReportKind.choices, initial=ReportKind.ENVIRONMENT)
    environment = forms.CharField(required=False, max_length=200)
    fingerprint = forms.CharField(required=False, max_length=64)
    vulnerability = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        # "from" is a Python keyword, so these two cannot be declared in the class body.
        self.fields["from"] = forms.CharField(required=False, max_length=40)
        self.fields["to"] = forms.CharField(required=False, max_length=40, label="To (exclusive)")

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        given = {key: cleaned[key] for key in PARAMS if cleaned.get(key)}
        raw = {**default_range(), **given} if cleaned.get("kind") in RANGE_KINDS else given
        try:
            cleaned["kind"], _, _ = validate_params(self.org, cleaned["kind"], raw)
        except ServiceError as error:
            add_service_error(self, error)
            return cleaned
        cleaned["params"] = {key: raw[key] for key in PARAMS if raw.get(key)}
        return cleaned
