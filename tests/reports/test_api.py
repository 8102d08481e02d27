"""REST API of audit reports: request (202), poll, download; validation names the field; readers may
generate and download the kinds they may read (tests/reports/test_access.py has the whole rule); other
orgs and outsiders get 404; roles without reports.view get 403."""

import hashlib

import pytest

from reports.models import AuditReport
from reports.tasks import generate_report
from tenants.choices import Role

pytestmark = pytest.mark.django_db

RANGE = {"from": "2000-01-01", "to": "2100-01-01"}


def url(org="acme", report_id=None, suffix=""):
    base = f"/api/v2/orgs/{org}/reports"
    return f"{base}/{report_id}{suffix}" if report_id else base


@pytest.fixture
def reader_api(org, api, token_for):
    return api(token=token_for(org, Role.READER))


def test_reader_requests_polls_and_downloads(reader_api, org):
    response = reader_api.post(url(), {"kind": "org", **RANGE}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["kind"] == "org" and body["pdf_sha256"] is None
    report_id = body["id"]
    assert reader_api.get(url(report_id=report_id, suffix="/pdf")).status_code == 409

    generate_report.run(report_id, {})
    detail = reader_api.get(url(report_id=report_id)).json()
    assert detail["status"] == "done" and detail["progress"] == 100
    assert detail["page_count"] >= 3 and detail["pdf_size"] > 1000
    assert detail["journal"]["report_leaf_index"] > detail["journal"]["covers_index"]
    assert detail["links"]["pdf"].endswith("/pdf")

    pdf = reader_api.get(url(report_id=report_id, suffix="/pdf"))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("attachment;") and pdf["X-Content-Type-Options"] == "nosniff"
    assert pdf["X-Content-SHA256"] == hashlib.sha256(pdf.content).hexdigest()
    assert hashlib.sha256(pdf.content).hexdigest() == detail["pdf_sha256"]
    data = reader_api.get(url(report_id=report_id, suffix="/json"))
    assert data.status_code == 200 and data["Content-Type"] == "application/json"
    assert hashlib.sha256(data.content).hexdigest() == detail["data_sha256"]
    assert data.json()["report"]["id"] == report_id

    listing = reader_api.get(url()).json()
    assert [item["id"] for item in listing["results"]] == [report_id]
    assert org.audit_events.filter(action="audit_report.downloaded").count() == 2


@pytest.mark.parametrize("body, field", [
    ({}, "kind"),
    ({"kind": "weekly"}, "kind"),
    ({"kind": "audit", "to": "2026-01-01"}, "from"),
    ({"kind": "audit", "from": "yesterday", "to": "2026-01-01"}, "from"),
    ({"kind": "audit", "from": "2026-02-01", "to": "2026-01-01"}, "to"),
    ({"kind": "org", "from": "2026-01-01"}, "to"),
    ({"kind": "artifact", "fingerprint": "ABC"}, "fingerprint"),
    ({"kind": "artifact", "fingerprint": "A" * 64}, "fingerprint"),
    ({"kind": "environment", **RANGE}, "environment"),
    ({"kind": "environment", "environment": "nope", **RANGE}, "environment"),
])
def test_validation_errors_name_the_field(owner_api, body, field):
    response = owner_api.post(url(), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()
    assert not AuditReport.objects.exists()


def test_other_orgs_reports_are_404(owner_api, org, other_org, api, token_for, make_user):
    from audit.context import AuditContext
    from reports.services import request_report

    theirs = request_report(AuditContext.system("t"), other_org, "audit", RANGE, role=Role.OWNER)
    assert owner_api.get(url(report_id=theirs.pk)).status_code == 404
    assert owner_api.get(url(report_id=theirs.pk, suffix="/pdf")).status_code == 404
    globex_reader = api(token=token_for(other_org, Role.READER))
    assert globex_reader.get(url()).status_code == 404
    assert globex_reader.post(url(), {"kind": "audit", **RANGE}, format="json").status_code == 404
    outsider = api(user=make_user())
    assert outsider.get(url()).status_code == 404


def test_snapshotter_may_not_generate(org, api, token_for):
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    response = agent.post(url(), {"kind": "audit", **RANGE}, format="json")
    assert response.status_code == 403 and "reports.view" in response.json()["error"]["message"]


def test_unauthenticated_is_401(api):
    assert api().get(url()).status_code == 401


def test_schema_declares_the_endpoints(owner_api):
    schema = owner_api.get("/api/schema/?format=json").json()
    assert "/api/v2/orgs/{org}/reports" in schema["paths"]
    assert "/api/v2/orgs/{org}/reports/{report_id}/pdf" in schema["paths"]
