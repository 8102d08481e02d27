"""The org dashboard at /o/<org>/: each environment's standing and numbers, what runs now and needs
attention, recent changes, failing alert deliveries, the first-run checklist ticking itself from the
org's real state, the org's own figures on the side, and nothing of another org."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts import services as alert_services
from alerts.choices import DeliveryStatus
from alerts.models import Delivery
from audit.context import AuditContext
from policies import services as policy_services
from snapshots.models import Environment
from tenants.choices import Role
from tenants.services import create_api_token, create_service_account
from tests.alerts.conftest import receiver as hook_receiver  # noqa: F401  (the local webhook receiver fixture)
from tests.policies.helpers import PROVENANCE_POLICY, fp, ingest, make_env, report_flow_artifact

pytestmark = pytest.mark.django_db
CTX = AuditContext.system("test")


@pytest.fixture
def browser(client, owner):
    client.force_login(owner)
    return client


def row_of(html: str, env: str) -> str:
    start = html.index(f'<tr data-env="{env}">')
    return html[start:html.index("</tr>", start)]


def cell(row: str, testid: str) -> str:
    return re.search(rf'data-testid="{testid}">(.*?)</td>', row, re.S).group(1)


@pytest.fixture
def populated(org, request, django_capture_on_commit_callbacks):
    """prod: policed (provenance required), web built by a flow, rogue unauthorized and non-compliant;
    staging: no policy, one artifact built by a flow; edge: silent for two days; a webhook that fails."""
    webhook_target = request.getfixturevalue("hook_receiver")
    action, _ = alert_services.create_action(CTX, org, "pager", "webhook", url=webhook_target.url,
                                             triggers=["ON_STARTED_ARTIFACT"])
    webhook_target.default_status = 500
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    prod, staging = make_env(org, "prod"), make_env(org, "staging")
    with django_capture_on_commit_callbacks(execute=False):
        policy_services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
        policy_services.attach_policies(CTX, org, prod, ["needs-provenance"])
    ingest(prod, {"web": fp(1)}, capture=django_capture_on_commit_callbacks)
    ingest(prod, {"web": fp(1), "rogue": fp(2)}, capture=django_capture_on_commit_callbacks)
    ingest(staging, {"web": fp(1)}, capture=django_capture_on_commit_callbacks)
    edge = make_env(org, "edge")
    Environment.objects.filter(pk=edge.pk).update(created_at=timezone.now() - timedelta(days=2))
    delivery = Delivery.objects.filter(org=org).order_by("id").first()
    with django_capture_on_commit_callbacks(execute=False):
        alert_services.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status in (DeliveryStatus.RETRYING, DeliveryStatus.FAILED)
    return {"prod": prod, "staging": staging, "action": action, "delivery": delivery}


def test_environment_rows_show_standing_numbers_and_links(browser, populated):
    page = browser.get(reverse("org-home", args=["acme"]))
    assert page.status_code == 200
    html = page.content.decode()
    prod = row_of(html, "prod")
    assert 'data-state="non-compliant"' in cell(prod, "state")
    assert cell(prod, "running").strip() == "2"
    assert 'href="/o/acme/environments/prod/"' in prod
    assert 'href="/o/acme/policies/environments/prod/"' in prod
    assert 'data-testid="changes">2</span>' in prod  # web started, then rogue started
    assert "<svg" in prod and 'data-testid="silent"' not in prod
    staging = row_of(html, "staging")
    # No policy polices staging: csm cannot vouch for it, so it is "unknown", never green.
    assert 'data-state="unknown"' in cell(staging, "state") and "badge ok" not in cell(staging, "state")
    assert cell(staging, "running").strip() == "1"
    edge = row_of(html, "edge")
    assert 'data-testid="silent"' in edge and cell(edge, "running").strip() == "0"


def test_attention_lists_what_runs_unauthorized_or_non_compliant(browser, populated):
    html = browser.get(reverse("org-home", args=["acme"])).content.decode()
    table = html[html.index('data-testid="attention"'):]
    table = table[:table.index("</table>")]
    assert f'href="/o/acme/artifacts/{fp(2)}/"' in table and ">rogue</a>" in table
    assert "unauthorized" in table and 'href="/o/acme/environments/prod/"' in table
    assert ">web</a>" not in table  # built by a flow: nothing to say
    assert browser.get(f"/o/acme/artifacts/{fp(2)}/").status_code == 200


def test_recent_changes_and_failing_deliveries_are_linked(browser, populated):
    html = browser.get(reverse("org-home", args=["acme"])).content.decode()
    changes = html[html.index('data-testid="recent-changes"'):]
    changes = changes[:changes.index("</table>")]
    assert 'href="/o/acme/environments/prod/snapshots/2/"' in changes
    assert changes.count("badge ok") == 3  # three starts: web and rogue in prod, web in staging
    deliveries = html[html.index('data-testid="failing-deliveries"'):]
    deliveries = deliveries[:deliveries.index("</table>")]
    assert f'href="/o/acme/alerts/{populated["action"].pk}/"' in deliveries and ">pager</a>" in deliveries
    for href in set(re.findall(r'href="(/o/acme/[^"]+)"', changes + deliveries)):
        assert browser.get(href).status_code == 200, href


def test_the_side_keeps_the_org_figures_and_the_activity(browser, populated, org):
    html = browser.get(reverse("org-home", args=["acme"])).content.decode()
    side = html[html.index('data-testid="org-side"'):]
    assert "Members" in side and "Pending invitations" in side and "Active service accounts" in side
    assert 'data-testid="recent-activity"' in side and "/o/acme/audit/" in side


def test_a_reader_sees_no_deliveries_and_no_audit(client, populated, org, member_of):
    client.force_login(member_of(org, Role.READER))
    html = client.get(reverse("org-home", args=["acme"])).content.decode()
    assert 'data-testid="dashboard-environments"' in html
    assert 'data-testid="failing-deliveries"' not in html and 'data-testid="recent-activity"' not in html


def test_another_orgs_data_never_shows(client, populated, other_org):
    client.force_login(other_org.memberships.first().user)
    html = client.get(reverse("org-home", args=["globex"])).content.decode()
    assert "/environments/prod/" not in html and "rogue" not in html and "pager" not in html
    assert fp(2)[:12] not in html and fp(1)[:12] not in html
    assert client.get(reverse("org-home", args=["acme"])).status_code == 404


def test_queries_do_not_grow_with_environments(browser, org, django_capture_on_commit_callbacks):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(reverse("org-home", args=["acme"])).status_code == 200
        return len(queries)

    for n in range(2):
        env = make_env(org, f"env-{n}")
        ingest(env, {f"a{n}": fp(100 + n), f"b{n}": fp(200 + n)}, capture=django_capture_on_commit_callbacks)
    few = count()
    for n in range(2, 8):
        env = make_env(org, f"env-{n}")
        ingest(env, {f"a{n}": fp(100 + n), f"b{n}": fp(200 + n)}, capture=django_capture_on_commit_callbacks)
    assert count() == few


def steps(html: str) -> dict[str, bool]:
    return {key: done == "1" for key, done in re.findall(r'data-step="(\w+)" data-done="([01])"', html)}


def test_an_empty_org_gets_the_checklist_ticking_itself(browser, org, settings, django_capture_on_commit_callbacks):
    settings.CSM_BASE_URL = "https://csm.example.com"
    home = reverse("org-home", args=["acme"])
    html = browser.get(home).content.decode()
    assert steps(html) == {"token": False, "agent": False, "snapshot": False, "flow": False, "policy": False}
    command = re.search(r'data-testid="agent-command">(.*?)</pre>', html, re.S).group(1)
    assert "CSM_HOST=https://csm.example.com" in command and "CSM_ORG=acme" in command
    assert "csm-agent snapshot" in command and "--auto-environment" in command
    assert 'href="/o/acme/service-accounts/"' in html

    account = create_service_account(CTX, org, "agent", Role.SNAPSHOTTER)
    create_api_token(CTX, org, "agent", service_account=account)
    assert steps(browser.get(home).content.decode())["token"] is True
    env = make_env(org, "prod")
    assert steps(browser.get(home).content.decode()) == {
        "token": True, "agent": True, "snapshot": False, "flow": False, "policy": False}
    ingest(env, {"web": fp(1)}, capture=django_capture_on_commit_callbacks)
    report_flow_artifact(org, "web-flow", fp(1))
    assert steps(browser.get(home).content.decode()) == {
        "token": True, "agent": True, "snapshot": True, "flow": True, "policy": False}
    with django_capture_on_commit_callbacks(execute=False):
        policy_services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    assert steps(browser.get(home).content.decode())["policy"] is False  # written, not attached yet
    with django_capture_on_commit_callbacks(execute=False):
        policy_services.attach_policies(CTX, org, env, ["needs-provenance"])
    html = browser.get(home).content.decode()
    assert 'data-testid="getting-started"' not in html  # every step done: the checklist steps aside
