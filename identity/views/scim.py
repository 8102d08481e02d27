"""The org's SCIM settings page (``/o/<org>/settings/scim/``): the base URL to give the identity provider, SCIM
tokens (created and shown once, revoked), the default role of provisioned members, and what was provisioned.
Writes go through identity/scim/services.py, which audits them."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.web import org_view
from identity.models import GroupRoleMapping, ScimGroup, ScimSettings, ScimToken, ScimUser
from identity.scim import services
from tenants.choices import Role

_ONCE_KEY = "csm_scim_token_once"
PERMISSION = "members.manage"


class ScimTokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="identity provider",
                           help_text="What uses it, e.g. “Okta” or “Entra ID”.")


class DefaultRoleForm(forms.Form):
    default_role = forms.ChoiceField(choices=[(r.value, r.label) for r in Role if r != Role.OWNER],
                                     label="Default role",
                                     help_text="For provisioned members none of whose groups maps to a role.")


@org_view(PERMISSION)
def scim_settings(request):
    org = request.org
    users = ScimUser.objects.for_org(org)
    return render(request, "identity/scim_settings.html", {
        "base_url": settings.CSM_BASE_URL + reverse("scim-users").removesuffix("Users"),
        "tokens": ScimToken.objects.for_org(org).select_related("created_by"),
        "token_form": ScimTokenForm(),
        "role_form": DefaultRoleForm(initial={"default_role": ScimSettings.of(org).default_role}),
        "mappings": GroupRoleMapping.objects.for_org(org),
        "groups": ScimGroup.objects.for_org(org).order_by("display_name"),
        "user_count": users.count(),
        "inactive_count": users.filter(active=False).count(),
        "new_secret": request.session.pop(_ONCE_KEY, None),
    })


@org_view(PERMISSION)
@require_POST
def scim_token_create(request):
    form = ScimTokenForm(request.POST)
    if form.is_valid():
        try:
            token, plaintext = services.create_scim_token(AuditContext.from_request(request), request.org,
                                                          form.cleaned_data["name"], created_by=request.user)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            request.session[_ONCE_KEY] = {"label": f"New SCIM token “{token.name}”", "value": plaintext}
    else:
        messages.error(request, "Give the token a name of at most 100 characters.")
    return redirect("scim-settings", request.org.slug)


@org_view(PERMISSION)
@require_POST
def scim_token_revoke(request, token_id):
    token = get_object_or_404(ScimToken.objects.for_org(request.org), pk=token_id)
    services.revoke_scim_token(AuditContext.from_request(request), token)
    messages.success(request, f"Revoked {token.prefix}…; the identity provider using it is refused from now on.")
    return redirect("scim-settings", request.org.slug)


@org_view(PERMISSION)
@require_POST
def scim_default_role(request):
    form = DefaultRoleForm(request.POST)
    if form.is_valid():
        try:
            services.set_default_role(AuditContext.from_request(request), request.org,
                                      form.cleaned_data["default_role"])
            messages.success(request, "Saved. Roles change at the next group change of each member.")
        except ServiceError as error:
            messages.error(request, error.message)
    else:
        messages.error(request, "Choose a role other than owner.")
    return redirect("scim-settings", request.org.slug)


urlpatterns = [
    path("o/<slug:org>/settings/scim/", scim_settings, name="scim-settings"),
    path("o/<slug:org>/settings/scim/tokens/", scim_token_create, name="scim-token-create"),
    path("o/<slug:org>/settings/scim/tokens/<int:token_id>/revoke/", scim_token_revoke, name="scim-token-revoke"),
    path("o/<slug:org>/settings/scim/default-role/", scim_default_role, name="scim-default-role"),
]
