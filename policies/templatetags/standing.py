"""Template tags for the three compliance states and authorization (``{% load standing %}``): every
page renders them through ``policies.standing`` so a state reads and looks the same everywhere, and
unknown is never green. Templates of lower apps may load this library (a template load is not an
import: the floors hold)."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from policies import standing

register = template.Library()


@register.simple_tag(takes_context=True)
def compliance_badge(context, compliant, status=None, environment=None, unknown_label=None):
    """A badge for ``compliant`` (True / False / None) or a decision ``status``. Unknown reads "Unknown —
    no policy" (or ``unknown_label``) and, given ``environment`` (a name) on an org page, links to the
    page where a policy is attached."""
    state = standing.compliance_state(compliant, status)
    label = standing.state_label(state)
    if state == standing.UNKNOWN and unknown_label:
        label = unknown_label
    badge = format_html('<span class="badge {}" data-state="{}">{}</span>', standing.state_badge(state), state, label)
    org = getattr(context.get("request"), "org", None)
    if state == standing.UNKNOWN and environment and org is not None and not unknown_label:
        url = reverse("policy-environment", args=[org.slug, environment])
        return format_html('{} <a href="{}">attach a policy</a>', badge, url)
    return badge


@register.simple_tag
def authorization_badge(authorization):
    """A badge for an artifact's ``authorization`` ("provenance", "allowlisted", "relaxed", "none");
    nothing when it is not known (no such field)."""
    if authorization not in ("provenance", "allowlisted", "relaxed", "none"):
        return ""
    return format_html('<span class="badge {}" data-authorization="{}">{}</span>',
                       standing.authorization_badge(authorization), authorization,
                       standing.authorization_label(authorization))


@register.filter
def compliance_state(compliant, status=None):
    return standing.compliance_state(compliant, status)
