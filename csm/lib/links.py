"""The one guard for links built from reported data (build, commit, PR, origin URLs come from CI payloads):
only http(s) URLs become links; ``javascript:``, ``data:`` and anything unparsable are shown as text."""

from urllib.parse import urlsplit


def http_url(value) -> str:
    """``value`` when it is an absolute http(s) URL, else ""."""
    text = str(value or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else ""
