"""The org's journal page: what a member sees of the verifiable journal and how to check it."""

import pytest

from journal import signing
from journal.services import append_leaf, publish_checkpoint
from tenants.choices import Role

pytestmark = pytest.mark.django_db


def test_page_shows_the_latest_signed_checkpoint_the_key_and_how_to_verify(client, org, member_of):
    append_leaf(org, "audit_event", {"secret": "leaf content never shown"})
    checkpoint = publish_checkpoint(org.pk)
    client.force_login(member_of(org, Role.READER))
    html = client.get(f"/o/{org.slug}/journal/").content.decode()
    assert checkpoint.note.split("\n\n")[0] in html  # the checkpoint body (origin, size, root)
    assert "\u2014 " + checkpoint.key_name in html  # its signature line
    verifier = str(signing.current_signer().verifier)
    assert verifier in html and "current" in html
    assert "csm-verify monitor --state ~/.csm-witness" in html and f"--org {org.slug}" in html
    assert "leaf content never shown" not in html  # hashes and signatures only, never a leaf


def test_page_before_the_first_checkpoint_and_for_outsiders(client, org, other_org, member_of):
    client.force_login(member_of(org, Role.READER))
    response = client.get(f"/o/{other_org.slug}/journal/")
    assert response.status_code == 404
    org_page = client.get(f"/o/{org.slug}/journal/").content.decode()
    # Org creation appended a leaf, but its after-commit checkpoint never ran inside this test's transaction.
    assert "No checkpoint yet: the first one is signed as soon as the journal has a record." in org_page
