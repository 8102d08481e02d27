"""Alias groups carried by matches: when an import links an advisory into another group, the matches it
already has (per org, written by matching) carry the new ``group_id`` at once, so asking for the CVE finds
them."""

import copy
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from evidence.models import SbomComponent
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, make_flow
from tests.evidence.test_attestation_types import SPDX_JSON
from vulns import osv
from vulns.models import Advisory, ComponentPackage, VulnerabilityMatch

FIXTURES = Path(__file__).parent / "fixtures"
FINGERPRINT = "5" * 64

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    root = tmp_path / "evidence-store"
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}


@pytest.fixture
def newtonsoft_component(org, token_for, api):
    """An SPDX SBOM (syft's shape) listing Newtonsoft.Json 12.0.3, attested on a trail of the org."""
    client = api(token=token_for(org, Role.MEMBER))
    make_flow(client, org=org.slug)
    begin_trail(client, org=org.slug)
    document = copy.deepcopy(SPDX_JSON)
    document["packages"] = [{
        "name": "Newtonsoft.Json", "SPDXID": "SPDXRef-Package-dotnet-Newtonsoft.Json", "versionInfo": "12.0.3",
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": "pkg:nuget/Newtonsoft.Json@12.0.3"}]}]
    response = attest(client, org.slug, "backend", "build-1", "sbom", {"attestation_name": "sbom"},
                      json.dumps(document).encode(), filename="backend.spdx.json")
    assert response.status_code == 201, response.content
    return SbomComponent.objects.for_org(org).get(name="Newtonsoft.Json")


def test_matches_follow_their_advisory_into_its_new_group(org, newtonsoft_component):
    call_command("import_vulns", str(FIXTURES / "osv" / "nuget"), stdout=StringIO())
    advisory = Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr")
    package = ComponentPackage.objects.create(
        org=org, component=newtonsoft_component, attestation=newtonsoft_component.attestation,
        artifact_fingerprint=FINGERPRINT, purl=newtonsoft_component.purl, purl_type="nuget",
        package_key="nuget/newtonsoft.json", version="12.0.3")
    match = VulnerabilityMatch.objects.create(org=org, advisory=advisory, package=package,
                                              artifact_fingerprint=FINGERPRINT, group_id=advisory.group_id,
                                              fixed=["13.0.1"])
    assert match.group_id == "GHSA-5crp-9r3c-p9vr"

    call_command("import_vulns", str(FIXTURES / "osv-updates"), stdout=StringIO())

    match.refresh_from_db()
    assert match.group_id == "CVE-2024-21907"
    assert VulnerabilityMatch.objects.for_org(org).filter(
        group_id__in={a.group_id for a in osv.group_for("CVE-2024-21907")}).get() == match
