"""Flows and trails as the kosli CLI creates them, templates, and tenancy / role checks."""

import json

import pytest

from audit.choices import AuditAction
from audit.models import AuditEvent
from tests.evidence.conftest import attest, begin_trail, make_flow

pytestmark = pytest.mark.django_db

KOSLI_TEMPLATE = """\
version: 1
trail:
  attestations:
  - name: jira-ticket
    type: generic
  artifacts:
  - name: backend
    attestations:
    - name: unit-tests
      type: junit
    - name: sbom
      type: sbom
"""


def test_create_then_update_a_flow_with_the_legacy_json_body(reporter):
    body = {"name": "backend", "description": "d", "visibility": "private", "template": ["artifact", "unit-test"]}
    created = reporter.put("/api/v2/flows/acme", body, format="json")
    assert created.status_code == 201
    assert created.json()["template"] == {
        "trail": [], "artifacts": [{"name": "*", "attestations": [{"name": "unit-test", "type": ""}]}]}
    body["description"] = "changed"
    updated = reporter.put("/api/v2/flows/acme", body, format="json")
    assert updated.status_code == 200
    assert updated.json()["description"] == "changed"
    actions = list(AuditEvent.objects.filter(target_type="flow").order_by("seq").values_list("action", flat=True))
    assert actions == [AuditAction.FLOW_CREATED, AuditAction.FLOW_UPDATED]


def test_flow_with_a_kosli_template_file(reporter):
    response = reporter.put("/api/v2/flows/acme/template_file", {
        "data_json": json.dumps({"name": "backend", "description": "", "visibility": "private"}),
        "template_file": _file("template.yml", KOSLI_TEMPLATE.encode()),
    }, format="multipart")
    assert response.status_code == 201, response.content
    template = response.json()["template"]
    assert template["trail"] == [{"name": "jira-ticket", "type": "generic"}]
    assert template["artifacts"] == [{"name": "backend", "attestations": [
        {"name": "unit-tests", "type": "junit"}, {"name": "sbom", "type": "sbom"}]}]


def test_bad_template_is_a_400_naming_the_field(reporter):
    response = reporter.put("/api/v2/flows/acme", {"name": "x", "template": {"trail": "nope"}}, format="json")
    assert response.status_code == 400
    assert "template.trail" in response.json()["error"]["fields"]
    response = reporter.put("/api/v2/flows/acme", {"name": "bad/name"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_trail_begun_like_kosli_begin_trail_and_missing_attestations(reporter):
    make_flow(reporter, template={"trail": [{"name": "jira-ticket"}, {"name": "review"}]})
    trail = begin_trail(reporter, commit="b" * 40)
    assert trail["git_commit"] == "b" * 40
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "jira-ticket"}).status_code == 201
    compliance = reporter.get("/api/v2/trails/acme/backend/build-1").json()["compliance"]
    assert compliance["compliant"] is False
    assert compliance["reasons"] == ["missing attestation review"]
    listed = reporter.get("/api/v2/trails/acme/backend").json()
    assert [t["name"] for t in listed] == ["build-1"]


def test_other_orgs_flows_are_404(reporter, other_org, api, token_for):
    make_flow(reporter)
    begin_trail(reporter)
    outsider = api(token=token_for(other_org, "member"))
    assert outsider.get("/api/v2/flows/acme").status_code == 404
    assert outsider.get("/api/v2/trails/acme/backend/build-1").status_code == 404
    assert attest(outsider, "acme", "backend", "build-1", "generic", {"attestation_name": "x"}).status_code == 404
    # and the other org's own namespace has no such flow
    assert outsider.get(f"/api/v2/flows/{other_org.slug}/backend").status_code == 404


def test_reader_reads_but_cannot_report_or_attest(reporter, reader_api):
    make_flow(reporter)
    begin_trail(reporter)
    assert reader_api.get("/api/v2/flows/acme").status_code == 200
    assert reader_api.put("/api/v2/flows/acme", {"name": "other"}, format="json").status_code == 403
    response = attest(reader_api, "acme", "backend", "build-1", "generic", {"attestation_name": "x"})
    assert response.status_code == 403
    assert "evidence.report" in response.json()["error"]["message"]


def test_snapshotter_cannot_attest(reporter, api, token_for, org):
    make_flow(reporter)
    snapshotter = api(token=token_for(org, "snapshotter"))
    response = attest(snapshotter, "acme", "backend", "build-1", "generic", {"attestation_name": "x"})
    assert response.status_code == 403


def _file(name, data):
    import io

    handle = io.BytesIO(data)
    handle.name = name
    return handle
