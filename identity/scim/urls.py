"""SCIM 2.0 endpoints, mounted at /scim/v2/ (csm/urls.py). Resource names as RFC 7644 spells them (``Users``),
also in lower case (``users``); a trailing slash is optional."""

from django.urls import re_path

from identity.scim import views


def _both(name: str, rest: str, view, url_name: str) -> list:
    """``name`` as spelled (reversible as ``url_name``) and in lower case."""
    return [re_path(rf"^{name}{rest}/?$", view, name=url_name), re_path(rf"^{name.lower()}{rest}/?$", view)]


urlpatterns = [
    *_both("ServiceProviderConfig", "", views.ServiceProviderConfigView.as_view(), "scim-service-provider-config"),
    *_both("Schemas", "", views.SchemasView.as_view(), "scim-schemas"),
    *_both("Schemas", "/(?P<schema_id>[^/]+)", views.SchemasView.as_view(), "scim-schema"),
    *_both("ResourceTypes", "", views.ResourceTypesView.as_view(), "scim-resource-types"),
    *_both("ResourceTypes", "/(?P<name>[^/]+)", views.ResourceTypesView.as_view(), "scim-resource-type"),
    *_both("Users", "", views.UsersView.as_view(), "scim-users"),
    *_both("Users", "/(?P<resource_id>[^/]+)", views.UserView.as_view(), "scim-user"),
    *_both("Groups", "", views.GroupsView.as_view(), "scim-groups"),
    *_both("Groups", "/(?P<resource_id>[^/]+)", views.GroupView.as_view(), "scim-group"),
    # Anything else (/Bulk, /Me, a typo): a SCIM 404, not the web app's HTML page.
    re_path(r"^.*$", views.unknown_endpoint, name="scim-unknown"),
]
