"""End to end with a real Celery worker: the API request is enqueued on commit, the worker generates
the report, the poll sees it done and the download matches its hash."""

import hashlib
import time

import pytest

from tenants.choices import Role


@pytest.mark.django_db(transaction=True)
def test_report_is_generated_by_a_real_worker(celery_worker, org, api, token_for):
    client = api(token=token_for(org, Role.READER))
    response = client.post(f"/api/v2/orgs/{org.slug}/reports",
                           {"kind": "org", "from": "2000-01-01", "to": "2100-01-01"}, format="json")
    assert response.status_code == 202
    detail_url = f"/api/v2/orgs/{org.slug}/reports/{response.json()['id']}"
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
    detail = client.get(detail_url).json()
    while detail["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        detail = client.get(detail_url).json()
    assert detail["status"] == "done", detail
    pdf = client.get(detail_url + "/pdf")
    assert hashlib.sha256(pdf.content).hexdigest() == detail["pdf_sha256"]
