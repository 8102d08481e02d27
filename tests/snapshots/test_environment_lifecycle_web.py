"""The environment page's Rename form (``environments.manage``) and a logical environment's Join / Remove
member buttons (``environments.edit``): the API's audited services, from the page."""

import pytest
from django.test import Client

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from snapshots.models import Environment
from snapshots.services.environments import create_or_update_environment
from tenants.choices import Role

pytestmark = pytest.mark.django_db


def _env(org, name, kind="server"):
    return create_or_update_environment(AuditContext.system("test"), org, name, kind)[0]


def test_rename_from_the_page_and_the_old_name_redirects(org, owner):
    _env(org, "prod")
    client = Client()
    client.force_login(owner)
    assert b'data-testid="environment-rename"' in client.get("/o/acme/environments/prod/").content
    answer = client.post("/o/acme/environments/prod/rename/", {"new_name": "production"})
    assert answer.status_code == 302 and answer["Location"] == "/o/acme/environments/production/"
    assert client.get("/o/acme/environments/prod/")["Location"] == "/o/acme/environments/production/"
    assert b"Formerly" in client.get("/o/acme/environments/production/").content
    assert AuditEvent.objects.filter(org=org, action=AuditAction.ENVIRONMENT_RENAMED).count() == 1
    # a refused name is shown, nothing changes
    _env(org, "staging")
    client.post("/o/acme/environments/production/rename/", {"new_name": "staging"})
    assert Environment.objects.filter(org=org, name="production").exists()


def test_logical_members_from_the_page(org, owner, member_of, other_org):
    mix = _env(org, "mix", "logical")
    _env(org, "web", "server")
    client = Client()
    client.force_login(owner)
    page = client.get("/o/acme/environments/mix/")
    assert b'data-testid="environment-join"' in page.content and b'<option value="web">' in page.content
    assert client.post("/o/acme/environments/mix/members/", {"action": "join", "environment": "web"}
                       ).status_code == 302
    assert [e.name for e in mix.included_environments.all()] == ["web"]
    assert client.post("/o/acme/environments/mix/members/", {"action": "leave", "environment": "web"}
                       ).status_code == 302
    assert list(mix.included_environments.all()) == []
    assert AuditEvent.objects.filter(org=org, action=AuditAction.ENVIRONMENT_UPDATED,
                                     target_id=str(mix.pk)).count() == 2

    reader = Client()
    reader.force_login(member_of(org, Role.READER))
    assert b'data-testid="environment-join"' not in reader.get("/o/acme/environments/mix/").content
    assert b'data-testid="environment-rename"' not in reader.get("/o/acme/environments/mix/").content
    assert reader.post("/o/acme/environments/mix/members/", {"action": "join", "environment": "web"}
                       ).status_code == 403
    assert reader.post("/o/acme/environments/mix/rename/", {"new_name": "x"}).status_code == 403
    outsider = Client()
    outsider.force_login(member_of(other_org, Role.OWNER))
    assert outsider.post("/o/acme/environments/mix/rename/", {"new_name": "x"}).status_code == 404
    assert list(mix.included_environments.all()) == [] and Environment.objects.filter(name="mix").exists()
