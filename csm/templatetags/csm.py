"""Shared template tags: navigation links, permission checks, fingerprints, relative times, bidi controls."""

from urllib.parse import quote

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from csm.lib import links
from csm.lib.text import reveal_bidi_controls
from tenants.permissions import has_permission

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context, name, *args, label="", also="", exact=False):
    """A nav link marked aria-current="page" on its page and the pages under it; ``also`` names (space
    separated, same arguments) other pages of its section, e.g. the members page for Settings. ``exact``:
    only its own page counts (a tab whose siblings live under its path, like General under /settings/)."""
    url = reverse(name, args=args)
    request = context.get("request")
    section = [url, *(reverse(other, args=args) for other in also.split())]
    current = request is not None and any(
        request.path == path or (not exact and path.count("/") > 3 and request.path.startswith(path))
        for path in section)
    # The attribute is markup, not a value: passed as a plain str, format_html would escape its quotes.
    current_attr = mark_safe(' aria-current="page"') if current else ""  # a constant string  # nosec B308
    return format_html('<a href="{}"{}>{}</a>', url, current_attr, label)


@register.filter
def role_can(permission, role):
    return has_permission(role, permission)


@register.filter
def short_sha(value, length=12):
    return (value or "")[: int(length)]


@register.simple_tag
def fingerprint(value):
    """A fingerprint shown short, with the full value in a title and a copy button."""
    if not value:
        return format_html('<span class="muted">unknown</span>')
    return format_html(
        '<code class="fp" title="{}">{}</code><button type="button" class="copy" data-copy="{}" '
        'aria-label="Copy fingerprint">copy</button>',
        value, value[:12], value,
    )


@register.filter
def ago(value):
    """A past moment as "just now" (under a minute), "5 minutes ago", "3 days ago"; "never" for none."""
    if not value:
        return "never"
    if hasattr(value, "tzinfo") and (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value).split(',')[0]} ago"


@register.filter
def http_url(value) -> str:
    """The URL when it is http(s), else "" (csm.lib.links): reported URLs never reach an href otherwise."""
    return links.http_url(value)
@register.filter(is_safe=True)
def bidi(value):
    """Untrusted text with its bidi controls shown as visible code points (csm/lib/text.py). Safe markup
    stays safe: the markers contain no HTML characters. Web pages get this for every response from
    csm.middleware.RevealBidiControlsMiddleware; templates rendered outside a response (PDF reports)
    apply it to every user-supplied value."""
    return reveal_bidi_controls(str(value)) if value is not None else value


# --- links to the things csm knows (h2) -------------------------------------------------------------------
# Every page names artifacts, environments, snapshots, flows, trails and commits through these tags, so a
# name is always a link to its page. ``org`` is the Org (or its slug). A value a URL cannot carry (which
# validated names never are) falls back to plain text rather than a broken link.


def _slug(org) -> str:
    return getattr(org, "slug", org) or ""


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.simple_tag
def artifact_link(org, fingerprint, name=""):
    """The artifact's name linked to its artifact page (by fingerprint, provenance or not); without a
    name the shortened fingerprint is the link text. No fingerprint: the name as text, marked unknown."""
    url = _url("artifact-detail", _slug(org), fingerprint) if fingerprint else ""
    if not url:
        return format_html('{} <span class="muted">(fingerprint unknown)</span>', name) if name else \
            format_html('<span class="muted">unknown</span>')
    if name:
        return format_html('<a href="{}" title="{}" data-link="artifact">{}</a>', url, fingerprint, name)
    return format_html('<a href="{}" data-link="artifact"><code class="fp" title="{}">{}</code></a>',
                       url, fingerprint, fingerprint[:12])


@register.simple_tag
def fingerprint_link(org, value):
    """A fingerprint shown short and linked to its artifact page, the full value in a title and a copy
    button (as ``{% fingerprint %}``)."""
    if not value:
        return format_html('<span class="muted">unknown</span>')
    return format_html(
        '<a href="{}" data-link="artifact"><code class="fp" title="{}">{}</code></a><button type="button" '
        'class="copy" data-copy="{}" aria-label="Copy fingerprint">copy</button>',
        _url("artifact-detail", _slug(org), value), value, value[:12], value,
    )


@register.simple_tag
def environment_link(org, name):
    url = _url("environment-detail", _slug(org), name) if name else ""
    return format_html('<a href="{}" data-link="environment">{}</a>', url, name) if url else name or ""


@register.simple_tag
def snapshot_link(org, env, index, label=""):
    """``#N`` (or ``label``) linked to snapshot N of ``env``."""
    if index in (None, ""):
        return ""
    text = label or f"#{index}"
    url = _url("snapshot-detail", _slug(org), getattr(env, "name", env), int(index))
    return format_html('<a href="{}" data-link="snapshot">{}</a>', url, text) if url else text


@register.simple_tag
def flow_link(org, flow):
    url = _url("flow-detail", _slug(org), flow) if flow else ""
    return format_html('<a href="{}" data-link="flow">{}</a>', url, flow) if url else flow or ""


@register.simple_tag
def trail_link(org, flow, trail):
    url = _url("trail-detail", _slug(org), flow, trail) if flow and trail else ""
    return format_html('<a href="{}" data-link="trail">{}</a>', url, trail) if url else trail or ""


@register.simple_tag
def commit_link(org, commit, url=""):
    """A git commit shown short: linked to the commit page the build reported when that is an http(s)
    URL, else to csm's search for it (the artifacts built from it)."""
    if not commit:
        return ""
    external = links.http_url(url)
    if external:
        return format_html('<a href="{}" rel="noopener noreferrer" title="{}"><code>{}</code></a>',
                           external, commit, commit[:7])
    search = _url("search", _slug(org))
    return format_html('<a href="{}?q={}" title="{}" data-link="commit"><code>{}</code></a>',
                       search, quote(commit), commit, commit[:7])


@register.simple_tag
def audit_target(org, event):
    """An audit event's target, linked to its page when it names one csm has a page for (environment,
    snapshot, flow, trail, policy, alert action); otherwise its label as text."""
    kind, label, target_id = event.target_type, event.target_label or "", event.target_id
    slug = _slug(org)
    url = ""
    if kind == "environment" and "/" in label:
        url = _url("environment-detail", slug, label.split("/", 1)[1])
    elif kind == "snapshot" and "#" in label:
        env, _, index = label.rpartition("#")
        url = _url("snapshot-detail", slug, env, int(index)) if index.isdigit() else ""
    elif kind == "flow":
        url = _url("flow-detail", slug, label)
    elif kind == "trail" and "/" in label:
        url = _url("trail-detail", slug, *label.split("/", 1))
    elif kind == "policy":
        url = _url("policy-detail", slug, label)
    elif kind == "action" and str(target_id).isdigit():
        url = _url("action-detail", slug, int(target_id))
    if url:
        return format_html('<a href="{}" data-link="{}">{}</a>', url, kind, label)
    return label


@register.filter
def pairs(mapping):
    """A dict's (key, value) pairs sorted by key: ``{% for k, v in tags|pairs %}`` (``tags.items`` would
    read a tag named ``items``)."""
    return sorted(mapping.items()) if isinstance(mapping, dict) else []
