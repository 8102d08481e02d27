"""Shared template tags: navigation links, permission checks, fingerprints, relative times, bidi controls."""

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from csm.lib import links
from csm.lib.text import reveal_bidi_controls
from tenants.permissions import has_permission

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context, name, *args, label="", also=""):
    """A nav link marked aria-current="page" on its page and the pages under it; ``also`` names (space
    separated, same arguments) other pages of its section, e.g. the members page for Settings."""
    url = reverse(name, args=args)
    request = context.get("request")
    section = [url, *(reverse(other, args=args) for other in also.split())]
    current = request is not None and any(
        request.path == path or (path.count("/") > 3 and request.path.startswith(path)) for path in section)
    # The attribute is markup, not a value: passed as a plain str, format_html would escape its quotes.
    return format_html('<a href="{}"{}>{}</a>', url, mark_safe(' aria-current="page"') if current else "", label)


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
