"""The Reports page: a reader generates, sees the list with status and hashes, downloads; the
"Download PDF" include posts a report request; other orgs are 404."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from reports.models import AuditReport
from reports.tasks import generate_report
from tenants.choices import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader_client(client, org, member_of):
    client.force_login(member_of(org, Role.READER, "reader@example.com"))
    return client


def test_reader_generates_and_downloads_from_the_page(reader_client, org):
    page = reader_client.get(reverse("report-list", args=[org.slug]))
    assert page.status_code == 200 and b"Generate report" in page.content
    response = reader_client.post(reverse("report-list", args=[org.slug]),
                                  {"kind": "org", "from": "2000-01-01", "to": "2100-01-01"})
    assert response.status_code == 302
    report = AuditReport.objects.get()
    assert report.requested_by == "reader@example.com"
    page = reader_client.get(reverse("report-list", args=[org.slug]))
    row = reverse("report-row", args=[org.slug, report.pk])
    assert f'hx-get="{row}"'.encode() in page.content  # the row polls itself while it runs
    status = reader_client.get(reverse("report-status", args=[org.slug, report.pk])).json()
    assert status["status"] == "pending"

    generate_report.run(str(report.pk), {})
    page = reader_client.get(reverse("report-list", args=[org.slug])).content.decode()
    report.refresh_from_db()
    assert "done" in page and report.output.pdf_sha256[:12] in page and "hx-get" not in page
    pdf = reader_client.get(reverse("report-pdf", args=[org.slug, report.pk]))
    assert pdf.status_code == 200 and bytes(pdf.content)[:5] == b"%PDF-"
    assert pdf["X-Content-Type-Options"] == "nosniff"


def test_form_errors_name_the_field(reader_client, org):
    response = reader_client.post(reverse("report-list", args=[org.slug]),
                                  {"kind": "artifact", "fingerprint": "nope"})
    assert response.status_code == 400 and b"lowercase 64-hex" in response.content
    assert not AuditReport.objects.exists()


def test_form_shows_each_problem_next_to_its_field_and_keeps_the_input(reader_client, org):
    url = reverse("report-list", args=[org.slug])
    cases = [
        ({"kind": "artifact", "fingerprint": "nope"}, "fingerprint", "A fingerprint is a lowercase 64-hex SHA-256."),
        ({"kind": "org", "from": "2020-02-01", "to": "2020-01-01"}, "to",
         "'to' must be after 'from' (the range is from ≤ t < to)."),
        ({"kind": "environment", "environment": "nowhere"}, "environment",
         "No environment named 'nowhere' in this org."),
        ({"kind": "bogus"}, "kind", "Select a valid choice. bogus is not one of the available choices."),
    ]
    for data, field, message in cases:
        page = reader_client.post(url, data)
        assert page.status_code == 400
        html = page.content.decode()
        assert f'<ul class="errorlist" id="id_{field}_error"><li>{escape(message)}</li></ul>' in html, field
        for key, value in data.items():
            if key != "kind":
                assert f'value="{value}"' in html, key
    assert not AuditReport.objects.exists()


def test_download_button_include_posts_a_request(rf, org, owner):
    from django.template.loader import render_to_string

    from tenants.access import OrgAccess

    request = rf.get("/")
    request.user = owner
    html = render_to_string("reports/_download_button.html", {
        "kind": "artifact", "fingerprint": "a" * 64, "current_org": org,
        "org_access": OrgAccess(org, Role.READER)}, request=request)
    assert 'action="/o/acme/reports/"' in html and 'value="artifact"' in html and "Download PDF" in html
    html = render_to_string("reports/_download_button.html", {
        "kind": "environment", "environment": "prod", "current_org": org,
        "org_access": OrgAccess(org, Role.SNAPSHOTTER)}, request=request)
    assert html.strip() == ""


def test_other_org_pages_are_404(client, org, other_org, make_user, member_of):
    from audit.context import AuditContext
    from reports.services import request_report

    theirs = request_report(AuditContext.system("t"), other_org, "audit", {"from": "2000-01-01", "to": "2001-01-01"},
                            role=Role.OWNER)
    client.force_login(member_of(org, Role.READER))
    assert client.get(reverse("report-list", args=[other_org.slug])).status_code == 404
    assert client.get(reverse("report-status", args=[org.slug, theirs.pk])).status_code == 404
    assert client.get(reverse("report-pdf", args=[org.slug, theirs.pk])).status_code == 404


def test_download_pdf_buttons_on_environment_artifact_and_audit_pages(client, org, owner):
    from audit.context import AuditContext
    from snapshots.services.environments import create_or_update_environment

    create_or_update_environment(AuditContext.system("t"), org, "prod", "server")
    client.force_login(owner)
    pages = [reverse("environment-detail", args=[org.slug, "prod"]),
             reverse("artifact-detail", args=[org.slug, "a" * 64]),
             reverse("audit-log", args=[org.slug])]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert b'data-testid="report-button"' in response.content and b"Download PDF" in response.content, page
    response = client.post(reverse("report-list", args=[org.slug]), {"kind": "artifact", "fingerprint": "a" * 64})
    assert response.status_code == 302 and AuditReport.objects.filter(kind="artifact").exists()
