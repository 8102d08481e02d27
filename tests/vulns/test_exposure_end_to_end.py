"""Issue 16's "done when", end to end with real parts: a cyclonedx-py SBOM and an OpenVEX document sent
through the attestation API and indexed by a real Celery worker, snapshots through the real report
services, ``import_vulns`` of real OSV records (Jinja2: CVE-2019-10906 = GHSA-462w-v97r-4m45 =
PYSEC-2019-217), the vulnerability API asked by every alias, and the alert a new advisory raises reaching
a local webhook receiver through the worker."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from alerts import services as alert_services
from alerts.models import Delivery
from audit.context import AuditContext
from tenants.choices import Role
from tests.alerts.conftest import receiver  # noqa: F401 (the local webhook receiver fixture)
from tests.conftest import wait_for
from tests.evidence.conftest import attest, begin_trail, make_flow
from tests.policies.helpers import ingest, make_env
from tests.vulns.exposure_support import fp
from tests.vulns.osv_support import SBOM
from vulns.models import ComponentPackage, VexStatement, VulnerabilityMatch

OSV = Path(__file__).parent / "fixtures" / "osv"
WEB, API, WORKER = fp(0xE1), fp(0xE2), fp(0xE3)
ALIASES = ("CVE-2019-10906", "ghsa-462w-v97r-4m45", "PYSEC-2019-217")


def _openvex(fingerprint: str, vulnerability: str) -> bytes:
    """An OpenVEX 0.2.0 document, as vexctl writes one, declaring the image not affected."""
    return json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/api-1",
        "author": "security@example.com", "timestamp": "2026-12-01T10:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": vulnerability},
                        "products": [{"@id": f"pkg:oci/api@sha256%3A{fingerprint}"}],
                        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
                        "impact_statement": "the sandboxed environment is never used"}],
    }).encode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_cve_asked_by_any_alias_shows_where_it_runs_since_when_and_a_new_advisory_alerts(
        org, token_for, api, receiver, celery_worker):  # noqa: F811 (receiver: the fixture imported above)
    client = api(token=token_for(org, Role.MEMBER))
    make_flow(client)
    begin_trail(client)
    sbom = (SBOM / "python-venv.cdx.json").read_bytes()  # made by cyclonedx-py: jinja2 2.10 among others
    for fingerprint in (WEB, API):
        response = attest(client, "acme", "backend", "build-1", "sbom",
                          {"attestation_name": f"sbom-{fingerprint[-2:]}", "artifact_fingerprint": fingerprint},
                          sbom, "bom.cdx.json")
        assert response.status_code == 201, response.content
    response = attest(client, "acme", "backend", "build-1", "vex",
                      {"attestation_name": "vex", "artifact_fingerprint": API}, _openvex(API, "CVE-2019-10906"),
                      "api.openvex.json")
    assert response.status_code == 201, response.content
    # The worker indexes both SBOMs and the VEX document once their transactions commit.
    wait_for(lambda: ComponentPackage.objects.filter(org=org, artifact_fingerprint=API).exists()
             and ComponentPackage.objects.filter(org=org, artifact_fingerprint=WEB).exists()
             and VexStatement.objects.filter(org=org, artifact_fingerprint=API).exists(), "indexing")

    prod = make_env(org, "prod")
    ingest(prod, {"web": WEB, "api": API, "worker": WORKER})  # #1: all three start
    ingest(prod, {"api": API, "worker": WORKER})              # #2: web exits
    ingest(prod, {"web": WEB, "api": API, "worker": WORKER})  # #3: web is back
    times = dict(prod.snapshots.values_list("index", "created_at"))
    alert_services.create_action(AuditContext.system("test"), org, "security", "webhook", url=receiver.url,
                                 triggers=["ON_NEW_VULNERABILITY_AFFECTS_RUNNING"])

    call_command("import_vulns", str(OSV / "pypi"))

    # The alert: the import's matches reach the webhook through the worker, naming the running artifact.
    [request] = receiver.wait_for(1)
    event = json.loads(request["body"])
    assert event["event_type"] == "ON_NEW_VULNERABILITY_AFFECTS_RUNNING" and event["environment"] == "prod"
    alerted = {v["id"]: sorted(a["name"] for a in v["artifacts"]) for v in event["vulnerabilities"]}
    assert alerted["CVE-2019-10906"] == ["web"]  # api is declared not affected: no alert for it
    delivery = wait_for(lambda: Delivery.objects.filter(status="delivered").first(), "the delivery")
    assert delivery.delivered_at >= delivery.source_at
    # Two records of one vulnerability (GHSA and PYSEC) × two artifacts; one group in every answer.
    assert VulnerabilityMatch.objects.filter(org=org, group_id="CVE-2019-10906").count() == 4

    # The question, by every alias, in any case: the same answer.
    reader = api(token=token_for(org, Role.READER))
    answers = [reader.get(f"/api/v2/vulnerabilities/acme/{alias}") for alias in ALIASES]
    assert [a.status_code for a in answers] == [200, 200, 200]
    body = answers[0].json()
    assert body["group_id"] == "CVE-2019-10906"
    assert all({**a.json(), "id": None} == {**body, "id": None} for a in answers[1:])  # ``id``: as asked
    assert {"CVE-2019-10906", "GHSA-462w-v97r-4m45", "PYSEC-2019-217"} <= set(body["aliases"])
    # Runs now: web since snapshot #3; ran before: web in #1 only (it exited in #2).
    assert [(w["environment"], w["artifact_name"], w["fingerprint"], w["from_index"], w["to_index"])
            for w in body["running"]] == [("prod", "web", WEB, 3, None)]
    assert body["running"][0]["components"] == ["pkg:pypi/jinja2@2.10"]
    assert body["running"][0]["since"].replace("Z", "+00:00") == times[3].isoformat()
    assert [(w["environment"], w["fingerprint"], w["from_index"], w["to_index"]) for w in body["history"]] == [
        ("prod", WEB, 1, 2)]
    # Suppressed, with its justification, not dropped.
    [suppressed] = body["suppressed"]
    assert suppressed["fingerprint"] == API
    assert suppressed["suppression"]["justification"] == "vulnerable_code_not_in_execute_path"
    # The gap stated: worker runs without an SBOM, so its exposure is unknown.
    assert [(c["fingerprint"], c["reason"]) for c in body["coverage_unknown"]] == [(WORKER, "no_sbom")]
