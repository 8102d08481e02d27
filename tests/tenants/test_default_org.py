"""A person's default org (the account page; ``kosli get/update default-org`` in tests/kosli/test_identity.py):
the org the web app opens after sign-in, chosen among the person's orgs, audited."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tenants.choices import Role
from tenants.models import Membership, UserSettings
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _sign_in(client, email="owner@example.com"):
    assert client.post(reverse("login"), {"username": email, "password": PASSWORD}).status_code == 302


def test_sign_in_opens_the_default_org(client, org, owner, make_org):
    """Without a default the first org opens (alphabetically: acme); with one, that org opens after the next
    sign-in, and the change is in the audit log of both orgs."""
    second = make_org("zeta", owner, "Zeta")
    _sign_in(client)
    assert client.get("/").url == reverse("org-home", args=["acme"])

    page = client.get(reverse("account-settings"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "none chosen yet" in html and 'value="zeta"' in html and 'value="acme"' in html
    response = client.post(reverse("account-settings"), {"default_org": "zeta"})
    assert response.status_code == 302 and response.url == reverse("account-settings")
    assert UserSettings.objects.get(user=owner).default_org == second
    assert "now <strong>Zeta</strong>" in client.get(reverse("account-settings")).content.decode()
    event = AuditEvent.objects.get(org=second, action="user.default_org_changed")
    assert event.actor_user_id == owner.pk and event.after == {"default_org": "zeta"}

    client.post(reverse("logout"))
    _sign_in(client)
    assert client.get("/").url == reverse("org-home", args=["zeta"])

    client.post(reverse("account-settings"), {"default_org": "acme"})
    assert AuditEvent.objects.filter(org=second, action="user.default_org_changed").count() == 2  # left it
    assert AuditEvent.objects.filter(org=org, action="user.default_org_changed").count() == 1


def test_only_the_persons_own_viewable_orgs_can_be_chosen(client, org, owner, other_org, make_org, member_of):
    """Another org, or one where the person's role has no pages (snapshotter), is not offered and refused."""
    agent_org = make_org("agents", name="Agents")
    Membership.objects.create(org=agent_org, user=owner, role=Role.SNAPSHOTTER)
    _sign_in(client)
    html = client.get(reverse("account-settings")).content.decode()
    assert 'value="globex"' not in html and 'value="agents"' not in html
    for slug in ("globex", "agents"):
        page = client.post(reverse("account-settings"), {"default_org": slug})
        assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
    assert not UserSettings.objects.filter(user=owner).exists()


def test_a_default_org_the_person_left_is_ignored(client, org, owner, make_org, member_of):
    """Removed from the default org (or demoted to snapshotter): sign-in opens another org, and the API
    reports no default."""
    second = make_org("zeta", member_of(org, Role.ADMIN, "second@example.com"))
    Membership.objects.create(org=second, user=owner, role=Role.MEMBER)
    UserSettings.objects.create(user=owner, default_org=second)
    _sign_in(client)
    assert client.get("/").url == reverse("org-home", args=["zeta"])
    Membership.objects.filter(org=second, user=owner).update(role=Role.SNAPSHOTTER)
    client.post(reverse("logout"))
    _sign_in(client)
    assert client.get("/").url == reverse("org-home", args=["acme"])


def test_account_page_needs_sign_in(client):
    response = client.get(reverse("account-settings"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
