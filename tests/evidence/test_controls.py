"""Controls on the web (list, create, the control page with its decisions per trail, edit, archive,
unarchive; roles; another org) and flow templates that require a decision on a control."""

import json

import pytest
from django.test import Client
from django.utils.html import escape

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from evidence import controls, selectors
from evidence.models import Attestation, Control, Flow, Trail
from evidence.services import create_attestation, parse_template, upsert_flow
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, make_flow

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("test")


@pytest.fixture
def browser(owner):
    client = Client()
    client.force_login(owner)
    return client


def decide(client, trail, name, control, compliant, flow="backend"):
    return attest(client, "acme", flow, trail, "system", {
        "attestation_name": name, "type_name": "decision", "control": control,
        "attestation_data": {"is_compliant": compliant}})


def test_create_edit_archive_on_the_web(org, browser):
    """An owner creates a control from the list page, edits it on its page (links replace), archives and
    unarchives it; each write is audited; the list shows active controls, ``?archived=1`` the archived."""
    assert browser.get("/o/acme/controls/").status_code == 200
    page = browser.post("/o/acme/controls/", {"identifier": "RCTL-043", "name": "Peer review",
                                              "description": "every change reviewed",
                                              "links": "runbook=https://example.com/runbook"})
    assert page.status_code == 302 and page.url == "/o/acme/controls/RCTL-043/"
    control = Control.objects.get()
    assert control.links == {"runbook": "https://example.com/runbook"} and control.created_by
    shown = browser.get("/o/acme/controls/RCTL-043/").content.decode()
    assert "Peer review" in shown and 'href="https://example.com/runbook"' in shown and "No decisions yet" in shown

    saved = browser.post("/o/acme/controls/RCTL-043/", {"name": "Peer review of every change", "description": "",
                                                        "links": "spec=https://example.com/spec"})
    assert saved.status_code == 302
    control.refresh_from_db()
    assert (control.name, control.description, control.links, control.version) == (
        "Peer review of every change", "", {"spec": "https://example.com/spec"}, 2)

    browser.post("/o/acme/controls/RCTL-043/archive/")
    assert Control.objects.get().archived
    row = 'href="/o/acme/controls/RCTL-043/"'
    assert row not in browser.get("/o/acme/controls/").content.decode()
    assert row in browser.get("/o/acme/controls/?archived=1").content.decode()
    browser.post("/o/acme/controls/RCTL-043/unarchive/")
    assert not Control.objects.get().archived
    actions = list(AuditEvent.objects.filter(org=org, action__startswith="control.").order_by("seq")
                   .values_list("action", flat=True))
    assert actions == [AuditAction.CONTROL_CREATED, AuditAction.CONTROL_UPDATED, AuditAction.CONTROL_ARCHIVED,
                       AuditAction.CONTROL_UNARCHIVED]


def test_refused_input_is_explained_next_to_the_field(org, browser):
    """A bad identifier or a taken one is shown next to the identifier field, what was typed is kept; a
    link that is not http(s) is refused."""
    page = browser.post("/o/acme/controls/", {"identifier": "bad id", "name": "X"}).content.decode()
    assert '<ul class="errorlist" id="id_identifier_error">' in page and 'value="bad id"' in page
    controls.create_control(CTX, org, {"identifier": "C1", "name": "One"})
    page = browser.post("/o/acme/controls/", {"identifier": "C1", "name": "Again"}).content.decode()
    assert escape("A control with identifier 'C1' already exists in organization 'acme'") in page
    page = browser.post("/o/acme/controls/C1/", {"name": "One", "links": "x=javascript:alert(1)"}).content.decode()
    assert escape("link 'x' must be an http(s) URL") in page
    assert Control.objects.get().links == {}


def test_roles_and_other_orgs(org, other_org, member_of):
    """Readers and members see controls (no forms) and may not write them (403); another org's control is
    a 404 page."""
    controls.create_control(CTX, org, {"identifier": "C1", "name": "One"})
    Control.objects.create(org=other_org, identifier="THEIRS", name="Theirs")
    for role in (Role.READER, Role.MEMBER):
        client = Client()
        client.force_login(member_of(org, role))
        page = client.get("/o/acme/controls/")
        assert page.status_code == 200 and "C1" in page.content.decode() and "New control" not in page.content.decode()
        assert "Archive" not in client.get("/o/acme/controls/C1/").content.decode()
        assert client.post("/o/acme/controls/", {"identifier": "C2", "name": "Two"}).status_code == 403
        assert client.post("/o/acme/controls/C1/archive/").status_code == 403
        assert client.post("/o/acme/controls/C1/", {"name": "renamed"}).status_code == 403
        assert client.get("/o/acme/controls/THEIRS/").status_code == 404
    assert list(Control.objects.for_org(org).values_list("identifier", "name", "archived")) == [("C1", "One", False)]


def test_control_page_shows_decisions_per_trail(org, browser, reporter):
    """The control's page counts every decision (compliant / non-compliant) and shows the latest decision
    of each trail, linked to the trail and the attestation; the list counts them too; the trail page and
    the attestation page show the decision with a link to its control."""
    controls.create_control(CTX, org, {"identifier": "RCTL-043", "name": "Peer review"})
    make_flow(reporter)
    for trail in ("build-1", "build-2"):
        begin_trail(reporter, name=trail)
    assert decide(reporter, "build-1", "review", "RCTL-043", False).status_code == 201
    assert decide(reporter, "build-1", "review", "RCTL-043", True).status_code == 201
    assert decide(reporter, "build-2", "review", "RCTL-043", False).status_code == 201
    summary = controls.decisions_of(Control.objects.get())
    assert (summary["total"], summary["compliant"], summary["non_compliant"]) == (3, 1, 2)
    assert (summary["latest_compliant"], summary["latest_non_compliant"]) == (1, 1)
    latest = {row["trail"].name: (row["latest"].is_compliant, row["count"]) for row in summary["trails"]}
    assert latest == {"build-1": (True, 2), "build-2": (False, 1)}

    page = browser.get("/o/acme/controls/RCTL-043/").content.decode()
    assert "3 decisions" in page and "1 compliant" in page and "2 non-compliant" in page
    for trail in ("build-1", "build-2"):
        assert f'href="/o/acme/flows/backend/trails/{trail}/"' in page
    listed = browser.get("/o/acme/controls/").content.decode()
    assert "1 compliant" in listed and "2 non-compliant" in listed
    trail_page = browser.get("/o/acme/flows/backend/trails/build-2/").content.decode()
    assert "decision: control RCTL-043 (Peer review) is not met" in trail_page
    assert 'control <a href="/o/acme/controls/RCTL-043/">RCTL-043</a>' in trail_page
    decision = Attestation.objects.get(trail__name="build-2")
    detail = browser.get(f"/o/acme/flows/backend/trails/build-2/attestations/{decision.pk}/").content.decode()
    assert 'data-testid="decision-detail"' in detail and 'href="/o/acme/controls/RCTL-043/"' in detail
    assert "not met" in detail


def test_template_requires_a_decision_on_a_control(org, reporter):
    """A template entry ``{type: decision, control: RCTL-043}`` (kosli YAML ``for_control`` too; the name
    defaults to the identifier) requires a decision of that name on that control: missing → INCOMPLETE,
    a decision on another control does not count, a compliant one on it makes the trail compliant."""
    assert parse_template("version: 1\ntrail:\n  attestations:\n  - type: decision\n    for_control: RCTL-043\n") == {
        "trail": [{"name": "RCTL-043", "type": "decision", "control": "RCTL-043"}], "artifacts": []}
    with pytest.raises(controls.ServiceError) as bad:
        parse_template({"trail": [{"name": "x", "type": "junit", "control": "RCTL-043"}]})
    assert "type must be decision" in bad.value.message
    for identifier in ("RCTL-043", "RCTL-001"):
        controls.create_control(CTX, org, {"identifier": identifier, "name": identifier})
    make_flow(reporter, template={"trail": [{"name": "review", "type": "decision", "control": "RCTL-043"}]})
    begin_trail(reporter)
    trail = Trail.objects.get()
    assert selectors.trail_compliance(trail)["reasons"] == ["missing attestation review"]
    status = reporter.get("/api/v2/trails/acme/backend/build-1", HTTP_USER_AGENT="Kosli/v2").json()
    [entry] = status["compliance_status"]["attestations_statuses"]
    assert (entry["attestation_type"], entry["status"]) == ("decision", "MISSING")

    assert decide(reporter, "build-1", "review", "RCTL-001", True).status_code == 201
    assert selectors.trail_compliance(trail)["reasons"] == ["attestation review must be a decision on control RCTL-043"]
    assert decide(reporter, "build-1", "review", "RCTL-043", True).status_code == 201
    compliance = selectors.trail_compliance(trail)
    assert compliance["compliant"] and compliance["attestations"][0]["control"] == "RCTL-043"


def test_decision_is_in_the_journal_leaf(org, reporter):
    """The decision's journal leaf names its control, so verify_audit catches a row re-pointed later."""
    controls.create_control(CTX, org, {"identifier": "RCTL-043", "name": "Peer review"})
    flow, _ = upsert_flow(CTX, org, {"name": "backend"})
    decision = create_attestation(CTX, org, flow, "build-1", "decision", {
        "attestation_name": "review", "control": "RCTL-043", "attestation_data": {"is_compliant": True}})
    assert json.loads(decision.leaf.payload)["data"]["control"] == "RCTL-043"
    assert decision.summary["control"] == "RCTL-043" and Flow.objects.get().name == "backend"
