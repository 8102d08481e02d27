"""The flow page's Archive / Unarchive / Rename buttons (``evidence.views.flow_manage``): the same audited
services as the API, for org owners and admins (``evidence.manage``) only."""

import pytest
from django.test import Client

from audit.choices import AuditAction
from audit.models import AuditEvent
from evidence.models import Flow
from tenants.choices import Role
from tests.evidence.conftest import make_flow

pytestmark = pytest.mark.django_db


def test_owner_archives_renames_and_the_old_name_redirects(org, owner, reporter):
    make_flow(reporter)
    client = Client()
    client.force_login(owner)
    page = client.get("/o/acme/flows/backend/")
    assert page.status_code == 200 and b'data-testid="flow-manage"' in page.content

    answer = client.post("/o/acme/flows/backend/manage/", {"action": "archive"})
    assert answer.status_code == 302 and Flow.objects.get(org=org).archived
    assert b"backend" not in client.get("/o/acme/flows/").content.split(b"<tbody>")[1]
    assert b"backend" in client.get("/o/acme/flows/?archived=1").content.split(b"<tbody>")[1]
    assert b'data-testid="flow-archived"' in client.get("/o/acme/flows/backend/").content

    answer = client.post("/o/acme/flows/backend/manage/", {"action": "rename", "new_name": "backend-api"})
    assert answer.status_code == 302 and answer["Location"] == "/o/acme/flows/backend-api/"
    assert client.get("/o/acme/flows/backend/")["Location"] == "/o/acme/flows/backend-api/"
    assert AuditEvent.objects.filter(org=org, action=AuditAction.FLOW_RENAMED).count() == 1
    assert AuditEvent.objects.filter(org=org, action=AuditAction.FLOW_ARCHIVED).count() == 1


def test_member_sees_no_buttons_and_may_not_post(org, member_of, reporter, other_org):
    make_flow(reporter)
    client = Client()
    client.force_login(member_of(org, Role.MEMBER))
    assert b'data-testid="flow-manage"' not in client.get("/o/acme/flows/backend/").content
    assert client.post("/o/acme/flows/backend/manage/", {"action": "archive"}).status_code == 403
    assert not Flow.objects.get(org=org).archived
    outsider = Client()
    outsider.force_login(member_of(other_org, Role.OWNER))
    assert outsider.post("/o/acme/flows/backend/manage/", {"action": "archive"}).status_code == 404
