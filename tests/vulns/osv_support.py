"""Test support of the matching tests: the real OSV records of ``fixtures/osv-matching`` as ``Advisory`` /
``AffectedPackage`` rows (through the importer, ``vulns.osv.import_documents``), and SBOM attestations
sent through the real attestation API the way ``kosli attest sbom`` sends them."""

import copy
import json
from pathlib import Path

from evidence.models import Attestation
from tests.evidence.conftest import attest, tar_gz
from vulns import osv
from vulns.models import Advisory

FIXTURES = Path(__file__).parent / "fixtures"
OSV = FIXTURES / "osv-matching"
SBOM = FIXTURES / "sbom"
FINGERPRINT = "5" * 64


def osv_record(osv_id: str) -> dict:
    return json.loads((OSV / f"{osv_id}.json").read_text())


def variant(osv_id: str, change) -> dict:
    """A copy of a real record with one change (``change(record)`` edits it in place)."""
    record = copy.deepcopy(osv_record(osv_id))
    change(record)
    return record


def load(record: dict | str) -> Advisory:
    """Store one OSV record through the importer (created or replaced in place)."""
    record = osv_record(record) if isinstance(record, str) else record
    result = osv.import_documents([record], location="tests/vulns/fixtures/osv-matching")
    assert not result.rejected, result
    return Advisory.objects.get(osv_id=record["id"])


def load_all() -> dict[str, Advisory]:
    return {path.stem: load(json.loads(path.read_text())) for path in sorted(OSV.glob("*.json"))}


def cyclonedx(*purls: str) -> bytes:
    """A minimal CycloneDX 1.5 JSON document listing ``purls`` (for ecosystems no local tool builds)."""
    components = []
    for purl in purls:
        name = purl.split("@")[0].rsplit("/", 1)[-1]
        version = purl.split("@")[1].split("?")[0] if "@" in purl else ""
        components.append({"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl})
    return json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                       "components": components}).encode()


def attest_sbom(client, document: bytes, org="acme", fingerprint=FINGERPRINT, name="sbom", trail="build-1",
                data=None) -> Attestation:
    """POST an ``sbom`` attestation through the API; the stored attestation."""
    payload = {"attestation_name": name, **({"artifact_fingerprint": fingerprint} if fingerprint else {}),
               **(data or {})}
    response = attest(client, org, "backend", trail, "sbom", payload, tar_gz({"bom.cdx.json": document}))
    assert response.status_code == 201, response.content
    return Attestation.objects.filter(org__slug=org, name=name).order_by("-pk").first()
