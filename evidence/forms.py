"""Web forms of the evidence pages. Forms only parse what a person types into the shapes the services take
(``services.create_custom_type`` validates and compiles everything, as it does for the API;
``evidence/controls.py`` validates and writes controls, its refusals shown next to the field they name)."""

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



def _links_text(links: dict) -> str:
    return "\n".join(f"{name}={url}" for name, url in links.items())


class ControlForm(forms.Form):
    """Create a control (``control=None``: identifier, name, description, links) or edit one (its
    identifier is fixed)."""

    identifier = forms.CharField(max_length=120, help_text="e.g. RCTL-043: letters, digits, . - _ ~")
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    links = forms.CharField(required=False, max_length=60_000, widget=forms.Textarea(attrs={"rows": 2}),
                            help_text="one name=URL per line")

    def __init__(self, *args, control=None, **kwargs):
        if control is not None:
            kwargs.setdefault("initial", {"name": control.name, "description": control.description,
                                          "links": _links_text(control.links)})
        super().__init__(*args, **kwargs)
        if control is not None:
            del self.fields["identifier"]

    def clean_links(self) -> dict:
        links = {}
        for number, line in enumerate(self.cleaned_data.get("links", "").splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, url = line.partition("=")
            if not sep or not name.strip() or not url.strip():
                raise forms.ValidationError(f"line {number}: write name=URL")
            links[name.strip()] = url.strip()
        return links

    def payload(self) -> dict:
        return {key: value for key, value in self.cleaned_data.items()}
