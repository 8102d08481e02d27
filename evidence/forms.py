"""Web forms of the evidence pages. Forms only take the input; ``evidence/controls.py`` validates and
writes (its refusals are shown next to the field they name)."""

from django import forms


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
