"""The real tool at test time: ``cyclonedx-py environment`` over a fresh virtualenv, attested and
matched against the real pip and setuptools advisories. Which versions the virtualenv holds depends on
the Python running the tests, so the expectation is computed from the SBOM with ``packaging`` (an
oracle independent of univers)."""

import json

import pytest
from packaging.version import Version

from tenants.choices import Role
from tests.evidence.conftest import begin_trail, cyclonedx_sbom, evidence_root, make_flow  # noqa: F401
from tests.vulns.osv_support import attest_sbom, load
from vulns import matching
from vulns.models import VulnerabilityMatch

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FIXED = {"pip": ("GHSA-mq26-g339-26xf", "23.3"), "setuptools": ("GHSA-r9hx-vwmv-q579", "65.5.1")}


def test_an_sbom_made_now_by_cyclonedx_py_is_matched(org, token_for, api, cyclonedx_sbom):  # noqa: F811
    for osv_id, _ in FIXED.values():
        load(osv_id)
    client = api(token=token_for(org, Role.MEMBER))
    make_flow(client)
    begin_trail(client)
    components = {c["name"].lower(): c for c in json.loads(cyclonedx_sbom)["components"]}
    assert "pip" in components, "cyclonedx-py listed no pip"
    expected = {(components[name]["purl"], osv_id, (fixed,)) for name, (osv_id, fixed) in FIXED.items()
                if name in components and Version(components[name]["version"]) < Version(fixed)}

    matching.index_sbom(attest_sbom(client, cyclonedx_sbom).pk)
    assert {(m.package.purl, m.advisory.osv_id, tuple(m.fixed))
            for m in VulnerabilityMatch.objects.for_org(org).select_related("package", "advisory")} == expected
