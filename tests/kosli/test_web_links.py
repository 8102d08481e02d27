"""The web links the kosli CLI prints. ``kosli get trail --output markdown`` (cmd/kosli/getTrail.go,
``printTrailAsMarkdown``) links the trail, each attestation and each snapshot with kosli's web paths, built
with ``url.JoinPath(global.Host, global.Org, …)``: ``{host}/{org}/flows/{flow}/trails/{trail}`` (with
``?attestation_id={id}`` for an attestation) and ``{host}/{org}/environments/{env}/{snapshot index}``.
csm's pages live under ``/o/{org}/…``; these links must land there (and the target page, not the
redirect, decides who may see it)."""

import pytest

from tenants.choices import Role

pytestmark = pytest.mark.django_db


def test_trail_attestation_and_snapshot_links_land_on_csm_pages(client, org, owner):
    client.force_login(owner)
    assert client.get("/acme/flows/build/trails/run-7").url == "/o/acme/flows/build/trails/run-7/"
    assert client.get("/acme/flows/build/trails/run-7?attestation_id=42").url == \
        "/o/acme/flows/build/trails/run-7/attestations/42/"
    # an id that is not csm's (kosli ids are strings) still lands on the trail
    assert client.get("/acme/flows/build/trails/run-7?attestation_id=a1b2").url == \
        "/o/acme/flows/build/trails/run-7/"
    assert client.get("/acme/environments/prod/12").url == "/o/acme/environments/prod/snapshots/12/"


def test_the_page_behind_the_link_still_checks_access(client, org, other_org, member_of):
    """A member of another org follows a link into acme: a 404 like every page of an org not theirs; a
    snapshotter (no pages) is refused as on the pages."""
    client.force_login(member_of(other_org, Role.READER))
    assert client.get("/acme/flows/build/trails/run-7").status_code == 404
    assert client.get("/acme/environments/prod/12").status_code == 404
    client.force_login(member_of(org, Role.SNAPSHOTTER))
    assert client.get("/acme/flows/build/trails/run-7").status_code == 403
