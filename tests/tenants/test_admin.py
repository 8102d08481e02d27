"""Django admin: every tenant model is there with an org filter; the audit trail is read-only."""

import pytest
from django.apps import apps
from django.contrib import admin

from audit.models import AuditEvent
from tenants.models import ApiToken, Org

pytestmark = pytest.mark.django_db


def _tenant_models():
    """Every model of every app with an ``org`` foreign key: new apps are covered without a list."""
    return [
        model for model in apps.get_models()
        if any(getattr(field, "related_model", None) is Org and field.name == "org" for field in model._meta.fields)
    ]


TENANT_MODELS = _tenant_models()


def test_every_tenant_model_is_in_the_admin():
    missing = [model.__name__ for model in TENANT_MODELS if model not in admin.site._registry]
    assert missing == []


@pytest.fixture
def staff_client(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_tenant_models_filter_by_org(model):
    assert "org" in admin.site._registry[model].list_filter


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_changelists_render_with_the_org_filter(staff_client, org, model):
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/?org__id__exact={org.pk}"
    assert staff_client.get(url).status_code == 200


def test_audit_trail_cannot_be_changed_or_deleted_in_admin(staff_client, org):
    event = AuditEvent.objects.filter(org=org).first()
    model_admin = admin.site._registry[AuditEvent]
    request = staff_client.get("/admin/").wsgi_request
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert not model_admin.has_add_permission(request)
    assert staff_client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_revoke_action_is_audited(staff_client, org, token_for):
    token_for(org)
    token = ApiToken.objects.get(org=org)
    staff_client.post("/admin/tenants/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(org=org, action="token.revoked", target_id=str(token.pk)).exists()


def test_renaming_an_org_in_admin_is_audited(staff_client, org):
    staff_client.post(f"/admin/tenants/org/{org.pk}/change/", {"name": "Renamed"})
    org.refresh_from_db()
    assert org.name == "Renamed"
    assert AuditEvent.objects.filter(org=org, action="org.updated").exists()
