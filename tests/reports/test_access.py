"""A report shows only what its requester may read through the API serving the same data.

Every expectation here is derived from that API, role by role: for each kind, the endpoint of its main
subject; for each part of a kind, the endpoint serving the same rows. A role the endpoint answers 403
must get a 403 naming the permission when it requests the kind, and a report without that part (with
a visible "Section omitted: requires X" note) when the part is optional. Downloading needs the
permission of every part the stored report contains. Reports are generated for real (WeasyPrint).

The attack of issue 11: a reader (403 on /audit-events) asked for an audit report (202) and its JSON held
the audit log and the member list; the environment report showed readers alert actions and deliveries.
"""

import datetime
import json
import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from alerts import services as alerts
from alerts.models import Action, AgentSilence, Delivery
from audit.context import AuditContext
from audit.services import summarize_denied_access
from evidence import services as evidence
from policies import services as policies
from reports.access import RULES
from reports.models import AuditReport
from reports.tasks import generate_report
from snapshots.services.environments import create_or_update_environment
from tenants.choices import Role
from tenants.models import Membership
from tenants.permissions import has_permission
from tenants.services import create_api_token, create_service_account
from tests.reports.conftest import assert_contains, pdf_text, save_png
from tests.reports.test_exposure_report import import_advisory
from tests.reports.test_kinds import COMMIT, PROVENANCE_POLICY, ROGUE, WEB, ingest

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("deploy-agent")
ROLES = [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.SNAPSHOTTER, Role.READER]
KINDS = ["audit", "environment", "artifact", "org", "exposure"]
ACTION = "pager-hook-7f3a"  # appears in a report only through the alerts part
SERVICE_ACCOUNT = "ci-robot-91c2"  # appears in an audit report only through the tokens part

ARTIFACT_API = f"/api/v2/artifacts/acme/backend/fingerprint/{WEB}"
COMPLIANCE_API = "/api/v2/orgs/acme/environments/production/compliance"
DELIVERIES_API = "/api/v2/orgs/acme/actions/{action}/deliveries"

# The endpoint serving the main subject of each kind.
SUBJECT_API = {
    "audit": "/api/v2/orgs/acme/audit-events",
    # its snapshots and events, not the environment's identity (GET .../{env} answers that to a snapshotter
    # too, for `kosli snapshot --auto-environment`)
    "environment": "/api/v2/environments/acme/production/events",
    "artifact": ARTIFACT_API,
    "org": "/api/v2/environments/acme",
    # where a vulnerability ran: the vulnerability API's answer for it
    "exposure": "/api/v2/vulnerabilities/acme/CVE-2024-22195",
}

# kind -> part -> (endpoint serving the same data, section ids of the part, figures of the part)
PARTS = {
    "audit": {
        "events": (SUBJECT_API["audit"], ["events"], ["Audit events"]),
        "actors": (SUBJECT_API["audit"], ["actors"], ["Distinct actors"]),
        "members": ("/api/v2/orgs/acme/members", ["members"], []),
        "tokens": ("/api/v2/orgs/acme/service-accounts", ["tokens"], []),
    },
    "environment": {
        "snapshots": ("/api/v2/snapshots/acme/production", ["snapshots"], ["Snapshots"]),
        "events": ("/api/v2/environments/acme/production/events", ["events"], ["Artifacts started"]),
        "reporters": ("/api/v2/snapshots/acme/production", ["reporters"], ["Reporters"]),
        "compliance": (COMPLIANCE_API, ["non-compliant", "policy-decisions"], ["Non-compliant periods"]),
        "provenance": (ARTIFACT_API, ["provenance"], ["Unauthorized artifacts started"]),
        "alerts": (DELIVERIES_API, ["alerts"], ["Alerts raised"]),
    },
    "artifact": {
        "evidence": (ARTIFACT_API, ["provenance", "attestations", "reasons"], ["Flows that reported it"]),
        "runs": (f"/api/v2/search/acme/sha/{WEB}", ["runs"], ["Environments it ran in"]),
    },
    "org": {
        "environments": (SUBJECT_API["org"], ["environments"], ["Environments"]),
        "compliance": (COMPLIANCE_API, ["non-compliant"], ["Non-compliant periods"]),
        "unauthorized": ("/api/v2/flows/acme", ["unauthorized"], ["Unauthorized artifacts"]),
        "silences": (DELIVERIES_API, ["silences"], ["Agent-silent gaps"]),
    },
    "exposure": {
        "advisory": (SUBJECT_API["exposure"], ["advisory", "affected"], ["Severity"]),
        "windows": (SUBJECT_API["exposure"], ["windows"], ["Exposure windows"]),
        "components": (ARTIFACT_API, ["components"], []),  # SBOM components are evidence
        "provenance": (ARTIFACT_API, ["provenance"], []),
        "fixes": ("/api/v2/snapshots/acme/production", ["fixes"], ["Environments fixed"]),
        "suppressed": (ARTIFACT_API, ["suppressed"], ["Suppressed by VEX"]),  # VEX statements: attestations
        "coverage": (SUBJECT_API["exposure"], ["coverage"], ["Coverage unknown (no SBOM)"]),
    },
}

# What the table below must come to, written out so a change to either side is seen.
MAY_REQUEST = {
    Role.OWNER: {"audit", "environment", "artifact", "org", "exposure"},
    Role.ADMIN: {"audit", "environment", "artifact", "org", "exposure"},
    Role.MEMBER: {"environment", "artifact", "org", "exposure"},
    Role.SNAPSHOTTER: set(),
    Role.READER: {"environment", "artifact", "org", "exposure"},
}


def report_range():
    today = timezone.now().date()
    return {"from": (today - datetime.timedelta(days=7)).isoformat(),
            "to": (today + datetime.timedelta(days=3)).isoformat()}


@pytest.fixture
def world(org, django_capture_on_commit_callbacks, settings, tmp_path):
    """An environment that ran a built service and an unbuilt miner under a provenance policy, an alert
    action that fired (and detected a silent agent), and a service account with a token."""
    settings.CSM_EVIDENCE_ROOT = tmp_path / "evidence"
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "ev")}}}
    capture = django_capture_on_commit_callbacks
    with capture(execute=False):
        env, _ = create_or_update_environment(CTX, org, "production", "server")
        flow, _ = evidence.upsert_flow(CTX, org, {"name": "backend", "description": "API service"})
        evidence.report_artifact(CTX, org, flow, {"fingerprint": WEB, "filename": "web-api", "trail_name": "r-42",
                                                  "git_commit": COMMIT})
        evidence.create_attestation(CTX, org, flow, "r-42", "generic",
                                    {"attestation_name": "code-review", "artifact_fingerprint": WEB,
                                     "is_compliant": True})
        policies.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
        policies.attach_policies(CTX, org, env, ["needs-provenance"])
        alerts.create_action(CTX, org, ACTION, "webhook", url="http://127.0.0.1:9/",
                             triggers=list(alerts.ALERT_TRIGGERS))
        account = create_service_account(CTX, org, SERVICE_ACCOUNT, Role.SNAPSHOTTER)
        create_api_token(CTX, org, "agent", service_account=account)
    ingest(env, {"web-api": WEB}, capture)
    ingest(env, {"web-api": WEB, "rogue-miner": ROGUE}, capture)
    import_advisory()  # what the exposure report is asked about
    with capture(execute=False):
        alerts.check_agent_silence(now=timezone.now() + datetime.timedelta(hours=2))
    assert Delivery.objects.filter(event_type="ON_STARTED_ARTIFACT").exists()
    assert AgentSilence.objects.exists()
    return env


@pytest.fixture
def as_role(org, owner, member_of, api):
    """as_role(role) -> (user, API client signed in as a person holding that role in org)."""
    people = {}

    def make(role):
        if role not in people:
            user = owner if role == Role.OWNER else member_of(org, role, f"{role}@example.com")
            people[role] = (user, api(user=user))
        return people[role]

    return make


def api_status(client, endpoint: str) -> tuple[bool, str]:
    """(may read, the permission the endpoint named when it refused)."""
    if "{action}" in endpoint:
        endpoint = endpoint.format(action=Action.objects.get(name=ACTION).pk)
    response = client.get(endpoint)
    assert response.status_code in (200, 403), (endpoint, response.status_code)  # a 404 is a wrong URL here
    if response.status_code == 200:
        return True, ""
    return False, re.search(r"permission '([\w.]+)'", response.json()["error"]["message"]).group(1)


def params(kind: str) -> dict:
    return {"environment": {"environment": "production", **report_range()}, "artifact": {"fingerprint": WEB},
            "org": report_range(), "audit": report_range(), "exposure": {"vulnerability": "CVE-2024-22195"}}[kind]


def request(client, kind: str):
    return client.post("/api/v2/orgs/acme/reports", {"kind": kind, **params(kind)}, format="json")


def generated(client, kind: str) -> AuditReport:
    response = request(client, kind)
    assert response.status_code == 202, response.json()
    generate_report.run(response.json()["id"], {})
    report = AuditReport.objects.select_related("output").get(pk=response.json()["id"])
    assert report.status == "done", report.error
    return report


def test_every_declared_part_is_checked_here():
    assert {kind: set(parts) for kind, parts in PARTS.items()} == {
        kind: {part.key for part in rule.parts} for kind, rule in RULES.items()}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_requesting_a_kind_needs_what_its_subject_api_needs(world, as_role, client, org, role, kind):
    user, client_api = as_role(role)
    may_read, named = api_status(client_api, SUBJECT_API[kind])
    assert may_read == (kind in MAY_REQUEST[role])
    expected = named if has_permission(role, "reports.view") else "reports.view"

    response = request(client_api, kind)
    if may_read:
        assert response.status_code == 202, response.json()
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "permission_denied" and f"'{expected}'" in error["message"], error

    # the same request still in flight would be reused by the page: let the API's one be finished
    AuditReport.objects.filter(kind=kind).update(status="failed")
    client.force_login(user)
    page = client.post(reverse("report-list", args=[org.slug]), {"kind": kind, **params(kind)})
    if may_read:
        assert page.status_code == 302
    else:
        assert page.status_code == 403 and expected in page.content.decode()
    assert AuditReport.objects.filter(kind=kind).count() == (2 if may_read else 0)


@pytest.mark.parametrize("role, kind", [(role, kind) for role in ROLES for kind in KINDS
                                        if kind in MAY_REQUEST[role]])
def test_each_part_is_in_the_report_iff_its_api_lets_the_requester_read_it(world, as_role, role, kind):
    _, client_api = as_role(role)
    report = generated(client_api, kind)
    data = json.loads(bytes(report.output.data_json))
    section_ids = {section["id"] for section in data["sections"]}
    figures = {label for label, _ in data["summary"]["figures"]}
    text = pdf_text(report)
    included = {item["id"] for item in data["report"]["sections"]["included"]}
    omitted = {item["id"]: item for item in data["report"]["sections"]["omitted"]}
    assert report.sections["included"] == sorted(included, key=list(PARTS[kind]).index)

    for part, (endpoint, sections, part_figures) in PARTS[kind].items():
        may_read, named = api_status(client_api, endpoint)
        assert (part in included) == may_read, part
        assert set(sections) <= section_ids if may_read else not set(sections) & section_ids, part
        assert set(part_figures) <= figures if may_read else not set(part_figures) & figures, part
        if not may_read:
            assert omitted[part]["requires"] == [named]
            assert omitted[part]["note"] == f"Section omitted: requires {named}"
            assert_contains(text, f"Section omitted: requires {named}")
    if not omitted:
        assert "section omitted" not in text.lower()


def later():
    """A moment after the current window of refused attempts has closed."""
    return timezone.now() + datetime.timedelta(seconds=settings.CSM_ACCESS_DENIED_WINDOW_SECONDS + 2)


def test_reader_asking_for_the_audit_log_as_a_report_is_refused(world, as_role, org, client):
    user, reader = as_role(Role.READER)
    assert reader.get("/api/v2/orgs/acme/audit-events").status_code == 403
    response = request(reader, "audit")
    assert response.status_code == 403
    message = "Your role 'reader' lacks the permission 'audit.view', which the audit-trail report needs."
    assert response.json() == {"error": {"code": "permission_denied", "fields": {}, "message": message},
                               "message": message}
    assert not AuditReport.objects.exists()
    # Audited: the first refusal of the window (the audit-events GET) is an event; the report request
    # is counted and summarized once the window has closed (refusals are aggregated, docs/operations.md).
    denied = org.audit_events.filter(action="access.denied", after__permission="audit.view")
    assert denied.count() == 1
    summarize_denied_access(now=later())
    assert org.audit_events.get(action="access.denied_repeated").after["more"] == 1
    client.force_login(user)
    page = client.post(reverse("report-list", args=[org.slug]), {"kind": "audit", **report_range()})
    assert page.status_code == 403 and "audit.view" in page.content.decode() and b"Not allowed" in page.content
    assert not AuditReport.objects.exists()
    form = client.get(reverse("report-list", args=[org.slug])).content.decode()
    assert 'value="audit"' not in form and 'value="environment"' in form


def test_readers_environment_report_has_no_alerts_and_says_so(world, as_role):
    _, reader = as_role(Role.READER)
    report = generated(reader, "environment")
    content = bytes(report.output.data_json).decode()
    data = json.loads(content)
    assert ACTION not in content and "ON_STARTED_ARTIFACT" not in content
    assert "alerts" not in {section["id"] for section in data["sections"]}
    assert "Alerts raised" not in dict(data["summary"]["figures"])
    assert report.sections == {"role": "reader", "included": ["snapshots", "events", "reporters", "compliance",
                                                               "provenance"],
                               "omitted": [{"id": "alerts", "title": "Alerts raised", "requires": ["actions.view"]}]}
    text = pdf_text(report)
    assert ACTION not in text
    assert_contains(text, "Sections omitted", "Alerts raised", "Section omitted: requires actions.view")
    save_png(report, "environment-reader", pages=4)
    detail = reader.get(f"/api/v2/orgs/acme/reports/{report.pk}").json()
    assert detail["sections"]["omitted"][0]["requires"] == ["actions.view"]
    # the reader may download what was built for them
    assert reader.get(f"/api/v2/orgs/acme/reports/{report.pk}/json").status_code == 200
    # a member (actions.view) sees the alerts in theirs
    _, member = as_role(Role.MEMBER)
    theirs = generated(member, "environment")
    assert ACTION in bytes(theirs.output.data_json).decode() and "omitted" not in pdf_text(theirs).lower()


@pytest.mark.parametrize("kind, permission", [("environment", "actions.view"), ("audit", "audit.view"),
                                              ("org", "actions.view")])
def test_admins_report_cannot_be_downloaded_by_a_reader(world, as_role, org, client, kind, permission):
    _, admin = as_role(Role.ADMIN)
    report = generated(admin, kind)
    user, reader = as_role(Role.READER)
    assert reader.get(f"/api/v2/orgs/acme/reports/{report.pk}").status_code == 200  # it may see it exists
    for fmt in ("pdf", "json"):
        response = reader.get(f"/api/v2/orgs/acme/reports/{report.pk}/{fmt}")
        assert response.status_code == 403 and response["Content-Type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == "permission_denied" and f"'{permission}'" in error["message"], error
    client.force_login(user)
    page = client.get(reverse("report-pdf", args=[org.slug, report.pk]))
    assert page.status_code == 403 and permission in page.content.decode()
    assert b"%PDF" not in page.content
    listing = client.get(reverse("report-list", args=[org.slug])).content.decode()
    assert f"requires {permission}" in listing and reverse("report-pdf", args=[org.slug, report.pk]) not in listing
    assert not org.audit_events.filter(action="audit_report.downloaded").exists()
    # refusals are aggregated per window (docs/operations.md): the first is an event, the two repeats a
    # count that the summary records once the window has closed
    assert org.audit_events.filter(action="access.denied", after__permission=permission).count() == 1
    summarize_denied_access(now=later())
    assert org.audit_events.get(action="access.denied_repeated", after__permission=permission).after["more"] == 2
    assert admin.get(f"/api/v2/orgs/acme/reports/{report.pk}/pdf").status_code == 200


def test_a_member_whose_role_was_lowered_cannot_download_what_they_requested(world, as_role, org, client):
    user, member = as_role(Role.MEMBER)
    report = generated(member, "environment")
    assert "alerts" in report.sections["included"]
    Membership.objects.filter(org=org, user=user).update(role=Role.READER)
    response = member.get(f"/api/v2/orgs/acme/reports/{report.pk}/json")
    assert response.status_code == 403 and "'actions.view'" in response.json()["error"]["message"]
    client.force_login(user)
    assert client.get(reverse("report-json", args=[org.slug, report.pk])).status_code == 403


def test_a_report_stored_before_plans_existed_needs_every_permission_of_its_kind(world, as_role):
    _, member = as_role(Role.MEMBER)
    report = generated(member, "environment")
    AuditReport.objects.filter(pk=report.pk).update(sections={})
    _, reader = as_role(Role.READER)
    assert reader.get(f"/api/v2/orgs/acme/reports/{report.pk}/pdf").status_code == 403
    assert member.get(f"/api/v2/orgs/acme/reports/{report.pk}/pdf").status_code == 200


def test_the_service_refuses_a_kind_the_role_cannot_read(org):
    from csm.errors import ServiceError
    from reports.services import request_report

    with pytest.raises(ServiceError) as refused:
        request_report(AuditContext.system("t"), org, "audit", report_range(), role=Role.READER)
    assert refused.value.status == 403 and "audit.view" in refused.value.message
    assert not AuditReport.objects.exists()
