"""Web forms of the evidence pages. Forms only parse what a person types into the shapes the services take
(``services.create_custom_type`` validates and compiles everything, as it does for the API)."""

import json

from django import forms

from evidence.services import MAX_SUMMARY_NAME

CODE = {"spellcheck": "false", "class": "code"}


class CustomTypeForm(forms.Form):
    """A custom attestation type's definition: a new type, or a new version of one (``name`` is then fixed)."""

    name = forms.CharField(max_length=100, help_text="Letters, digits, '.', '-', '_' and '~'; starts with a "
                                                     "letter or a digit.")
    description = forms.CharField(max_length=10_000, required=False)
    schema = forms.CharField(label="JSON Schema", required=False, strip=False,
                             widget=forms.Textarea(attrs={"rows": 8, **CODE}),
                             help_text="The attestation data must satisfy it (leave empty for any data).")
    rule = forms.CharField(label="Rule (csm expression)", max_length=4096, required=False,
                           widget=forms.TextInput(attrs=CODE),
                           help_text="e.g. coverage >= 80 and not flaky")
    jq_rules = forms.CharField(label="jq rules, one per line", required=False, strip=False,
                               widget=forms.Textarea(attrs={"rows": 4, **CODE}),
                               help_text="kosli's --jq rules: every one must evaluate to true, e.g. .age >= 21")
    summary = forms.CharField(label="Summary, one NAME=EXPRESSION per line", required=False, strip=False,
                              widget=forms.Textarea(attrs={"rows": 3, **CODE}),
                              help_text="kosli's --summary: jq expressions whose values are shown with each "
                                        "attestation, e.g. Critical=.critical_count")

    def __init__(self, *args, fixed_name: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if fixed_name is not None:
            del self.fields["name"]
        self.fixed_name = fixed_name

    @staticmethod
    def initial_for(custom) -> dict:
        return {"description": custom.description,
                "schema": json.dumps(custom.schema, indent=2) if custom.schema else "",
                "rule": custom.rule, "jq_rules": "\n".join(custom.jq_rules),
                "summary": "\n".join(f"{e['name']}={e['expression']}" for e in custom.summary)}

    def clean_schema(self):
        text = self.cleaned_data["schema"].strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"not valid JSON: {error}") from None

    def clean_jq_rules(self):
        return [line.strip() for line in self.cleaned_data["jq_rules"].splitlines() if line.strip()]

    def clean_summary(self):
        entries = []
        for number, line in enumerate(self.cleaned_data["summary"].splitlines(), 1):
            if not line.strip():
                continue
            name, found, expression = line.partition("=")
            if not found or not name.strip() or not expression.strip() or expression.startswith("="):
                raise forms.ValidationError(f"line {number} must be NAME=EXPRESSION")
            if len(name.strip()) > MAX_SUMMARY_NAME:
                raise forms.ValidationError(f"line {number}: the name is longer than {MAX_SUMMARY_NAME} characters")
            entries.append({"name": name.strip(), "expression": expression.strip()})
        return entries

    def definition(self) -> dict:
        data = dict(self.cleaned_data)
        data["name"] = self.fixed_name if self.fixed_name is not None else data["name"]
        return data
