"""Rego policies on the web pages: created with the format chosen (a syntax error shown by line on the
form), the policy page with its format, source and version hashes, flow gates attached and detached
by POST-only views (managers only), and a snapshot's page naming each Rego decision's hashes."""

import pytest
from django.test import Client

from policies import rego, services
from policies.models import FlowPolicyAttachment, Policy
from tenants.choices import Role
from tests.policies.helpers import CTX, fp, ingest, make_env, report_flow_artifact
from tests.policies.test_rego import NEEDS_FLOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_create_a_rego_policy_on_the_web(org, browser):
    bad = browser.post("/o/acme/policies/new/", {"name": "needs-flow", "format": "rego",
                                                  "content": "package policy\n\nallow if {\n    x :=\n}\n"})
    assert bad.status_code == 200
    assert "line 4: invalid Rego: " in bad.content.decode() and not Policy.objects.exists()
    created = browser.post("/o/acme/policies/new/", {"name": "needs-flow", "format": "rego", "content": NEEDS_FLOW})
    assert created.status_code == 302 and Policy.objects.get().format == "rego"
    page = browser.get("/o/acme/policies/needs-flow/").content.decode()
    assert 'data-testid="policy-format">Rego' in page and rego.sha256_text(NEEDS_FLOW)[:12] in page
    assert "Policy (Rego)" in page and "Gates the trails of" in page
    # a new version is validated as Rego too
    refused = browser.post("/o/acme/policies/needs-flow/", {"content": "package policy\nx := \n"})
    assert refused.status_code == 200 and "invalid Rego" in refused.content.decode()
    assert Policy.objects.get().latest_version == 1


def test_gate_a_flow_from_the_policy_page(org, browser, member_of, django_capture_on_commit_callbacks):
    from evidence.models import Flow

    Flow.objects.create(org=org, name="backend")
    services.save_policy(CTX, org, "needs-flow", NEEDS_FLOW, policy_format="rego")
    member = Client()
    member.force_login(member_of(org, Role.MEMBER))
    assert member.post("/o/acme/policies/needs-flow/gate/", {"flow": "backend"}).status_code == 403
    assert browser.get("/o/acme/policies/needs-flow/gate/").status_code == 405
    with django_capture_on_commit_callbacks(execute=False):
        gated = browser.post("/o/acme/policies/needs-flow/gate/", {"flow": "backend"})
    assert gated.status_code == 302 and FlowPolicyAttachment.objects.filter(flow__name="backend").exists()
    page = browser.get("/o/acme/policies/needs-flow/").content.decode()
    assert 'href="/o/acme/flows/backend/"' in page and "Stop gating" in page
    unknown = browser.post("/o/acme/policies/needs-flow/gate/", {"flow": "nope"})
    assert unknown.status_code == 400 and "Choose one of your flows." in unknown.content.decode()
    assert browser.post("/o/acme/policies/needs-flow/ungate/", {"flow": "backend"}).status_code == 302
    assert not FlowPolicyAttachment.objects.exists()


def test_snapshot_compliance_page_names_the_rego_hashes(org, browser, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-flow", NEEDS_FLOW, policy_format="rego")
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-flow"])
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    snapshot = ingest(env, {"web:1": fp(1), "rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    page = browser.get(f"/o/acme/policies/environments/prod/snapshots/{snapshot.index}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "needs-flow: rogue:1 has no provenance" in html
    assert html.count('data-testid="rego-decision"') == 2
    assert "needs-flow v1: denied" in html and "needs-flow v1: allowed" in html
    assert rego.sha256_text(NEEDS_FLOW)[:12] in html and 'href="/api/v2/policies/acme/inputs/' in html
