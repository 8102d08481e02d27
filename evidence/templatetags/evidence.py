"""Template filters of the evidence vault pages."""

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def http_url(value) -> str:
    """``value`` when it is an http(s) URL, else "" — reported URLs (build, commit, PR, origin) come from
    CI payloads, and a ``javascript:`` link must never reach an href."""
    text = str(value or "").strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in ("http", "https") else ""
