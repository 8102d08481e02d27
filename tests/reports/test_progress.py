"""Generating a report from the Reports page: the request is queued and the page answers at once, the
new row shows its progress through its HTMX polling partial (queued → running → done, with a real
Celery worker), the same request while one is in flight is not queued twice, the flash message says
what is true, and the form carries the disable-on-submit hook and a select of the org's environments."""

import re

import pytest
from django.urls import reverse

from audit.context import AuditContext
from csm.celery import app as celery_app
from journal.models import JournalHead
from reports.models import AuditReport
from snapshots.services.environments import create_or_update_environment
from tenants.choices import Role
from tests.conftest import real_worker, wait_for
from tests.reports.conftest import row_locked

ORG_RANGE = {"kind": "org", "from": "2000-01-01", "to": "2100-01-01"}


@pytest.fixture
def reader_client(client, org, member_of):
    client.force_login(member_of(org, Role.READER, "reader@example.com"))
    return client


def row_state(client, org, report) -> tuple[str, str]:
    """(data-status, the row's HTML) as the polling partial answers it."""
    response = client.get(reverse("report-row", args=[org.slug, report.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith("<tr") and f'data-report="{report.pk}"' in html
    return re.search(r'data-status="(\w+)"', html).group(1), html


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db(transaction=True)
def test_row_partial_answers_queued_then_running_then_done_with_a_real_worker(reader_client, org):
    response = reader_client.post(reverse("report-list", args=[org.slug]), ORG_RANGE, follow=True)
    report = AuditReport.objects.get()
    assert any(m.startswith("Report queued: “Org compliance summary") for m in messages_of(response))
    assert "Generating" not in response.content.decode()
    row_url = reverse("report-row", args=[org.slug, report.pk])

    status, html = row_state(reader_client, org, report)
    assert status == "pending" and "queued" in html and "waiting for a worker" in html
    assert f'hx-get="{row_url}"' in html and 'hx-trigger="every 2s"' in html and 'hx-swap="outerHTML"' in html

    # The worker claims the report and builds it, then waits for the org's journal head (held here) to
    # store it: the row shows it running with its percent and step.
    head = JournalHead.objects.get(org=org)
    with real_worker(["reports"]):
        with row_locked(JournalHead, head.pk):
            status, html = wait_for(lambda: (s := row_state(reader_client, org, report))[0] == "running" and s,
                                    "the worker to claim the report")
            progress = re.search(r'data-testid="report-progress">(\d+)% · ([A-Za-z ]+)<', html)
            assert progress and 0 < int(progress.group(1)) < 100, html
            assert f'hx-get="{row_url}"' in html and "<progress" in html and "PDF</a>" not in html
        status, html = wait_for(lambda: (s := row_state(reader_client, org, report))[0] in ("done", "failed") and s,
                                "the report to finish")
    assert status == "done", html
    assert "hx-get" not in html and "hx-trigger" not in html  # polling stops on a finished row
    assert reverse("report-pdf", args=[org.slug, report.pk]) in html
    report.refresh_from_db()
    assert report.output.pdf_sha256[:12] in html


@pytest.mark.django_db
def test_the_same_request_in_flight_is_not_queued_twice(reader_client, org, owner):
    url = reverse("report-list", args=[org.slug])
    reader_client.post(url, ORG_RANGE)
    again = reader_client.post(url, ORG_RANGE, follow=True)
    assert AuditReport.objects.count() == 1
    assert any("is already being generated (requested by reader@example.com)" in m for m in messages_of(again))
    # another range is another report; so is the same range asked by a role that sees other sections
    reader_client.post(url, {**ORG_RANGE, "to": "2099-01-01"})
    assert AuditReport.objects.count() == 2
    reader_client.force_login(owner)
    reader_client.post(url, ORG_RANGE)
    assert AuditReport.objects.count() == 3
    # a finished report is no reason not to generate a fresh one
    AuditReport.objects.update(status="failed")
    reader_client.post(url, ORG_RANGE)
    assert AuditReport.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_in_process_tasks_answer_with_the_finished_report(reader_client, org):
    """The embedded default runs tasks in-process after commit: the report is done when the page
    answers, the message says so (no stale "queued"), and its row does not poll."""
    celery_app.conf.task_always_eager = True
    try:
        response = reader_client.post(reverse("report-list", args=[org.slug]), ORG_RANGE, follow=True)
    finally:
        celery_app.conf.task_always_eager = False
    report = AuditReport.objects.get()
    assert report.status == "done"
    assert any(m.endswith("is ready: download it below.") for m in messages_of(response))
    html = response.content.decode()
    assert "queued" not in html and "Generating" not in html and "hx-get" not in html
    assert reverse("report-pdf", args=[org.slug, report.pk]) in html


@pytest.mark.django_db
def test_form_has_the_disable_on_submit_hook_and_an_environment_select(reader_client, org):
    ctx = AuditContext.system("t")
    for name in ("staging", "prod-eu"):
        create_or_update_environment(ctx, org, name, "server")
    html = reader_client.get(reverse("report-list", args=[org.slug])).content.decode()
    form = re.search(r'<form [^>]*data-testid="report-form"[^>]*>', html).group(0)
    assert "data-disable-on-submit" in form
    assert re.search(r'<button type="submit" data-busy-label="Queuing…">Generate report</button>', html)
    select = re.search(r'<select name="environment".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "prod-eu", "staging"]
    assert ">Choose an environment</option>" in select and "production" not in html
    # a prefilled name keeps its value (and the error names it on submit)
    html = reader_client.get(reverse("report-list", args=[org.slug]) + "?kind=environment&environment=prod-eu")
    assert '<option value="prod-eu" selected>' in html.content.decode()


@pytest.mark.django_db
def test_an_org_without_environments_says_so(reader_client, org):
    html = reader_client.get(reverse("report-list", args=[org.slug])).content.decode()
    assert ">No environments in this org yet</option>" in html


@pytest.mark.django_db
def test_row_partial_of_another_org_is_404(client, org, other_org, member_of):
    from reports.services import request_report

    theirs = request_report(AuditContext.system("t"), other_org, "org", {"from": "2000-01-01", "to": "2001-01-01"},
                            role=Role.OWNER)
    client.force_login(member_of(org, Role.READER))
    assert client.get(reverse("report-row", args=[org.slug, theirs.pk])).status_code == 404
    assert client.get(reverse("report-row", args=[other_org.slug, theirs.pk])).status_code == 404
