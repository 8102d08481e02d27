"""Every HTML page carries a strict Content-Security-Policy, and no page has an inline script or inline
style the policy would block (tests/browser/test_csp.py checks the same pages in a real browser)."""

import json
import re

import pytest

from audit.context import AuditContext
from evidence import services as evidence
from policies import services as policies
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("deploy-agent")
FP = "c3" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"
POLICY = "_schema: https://kosli.com/schemas/policy/environment/v1\nartifacts:\n  provenance:\n    required: {}\n"
STRICT = {"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
          "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"}


def build_world(org, owner, capture, evidence_root):
    """An org with one of everything a page shows: environment with two snapshots, flow, trail, artifact,
    evidence file, policy with two versions, alert action, personal token. Returns the pages to visit."""
    from django.conf import settings

    from alerts import services as alerts
    from tenants import services as tenants

    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(evidence_root)}}}
    with capture(execute=False):
        env, _ = create_or_update_environment(CTX, org, "prod", "server", description="production")
        flow, _ = evidence.upsert_flow(CTX, org, {"name": "backend", "description": "the API"})
        evidence.report_artifact(CTX, org, flow, {"fingerprint": FP, "filename": "api", "trail_name": "release-1",
                                                  "git_commit": COMMIT})
        policies.save_policy(CTX, org, "provenance", POLICY.format("true"))
        policies.save_policy(CTX, org, "provenance", POLICY.format("false"))
        policies.attach_policies(CTX, org, env, ["provenance"])
        alerts.create_action(CTX, org, "ops-mail", "email", email="ops@example.com",
                             triggers=["ON_NON_COMPLIANT_ENV"])
        tenants.create_api_token(AuditContext.for_user(owner), org, "laptop", user=owner)
    for artifacts in ({"api": FP}, {"api": FP, "worker": "d4" * 32}):
        body = {"artifacts": [{"digests": {name: fp}, "creationTimestamp": 1_700_000_000}
                              for name, fp in artifacts.items()]}
        with capture(execute=False):
            report, _ = accept_report(CTX, env, "server", json.dumps(body).encode())
        ingest_report(report.pk)
    return [
        "/o/acme/", "/o/acme/environments/", "/o/acme/environments/prod/", "/o/acme/environments/prod/snapshots/2/",
        "/o/acme/diff/?env1=prod&at1=1&env2=prod&at2=2", f"/o/acme/search/?q={FP[:8]}", "/o/acme/flows/",
        "/o/acme/flows/backend/", "/o/acme/flows/backend/trails/release-1/", f"/o/acme/artifacts/{FP}/",
        "/o/acme/policies/", "/o/acme/policies/provenance/?from=1&to=2", "/o/acme/policies/environments/prod/",
        "/o/acme/alerts/", "/o/acme/reports/", "/o/acme/audit/", "/o/acme/settings/", "/o/acme/members/",
        "/o/acme/service-accounts/", "/o/acme/tokens/",
    ]


@pytest.fixture
def pages(org, owner, django_capture_on_commit_callbacks, tmp_path):
    return build_world(org, owner, django_capture_on_commit_callbacks, tmp_path / "evidence")


def _directives(header: str) -> set[str]:
    return {part.strip() for part in header.split(";") if part.strip()}


def test_every_page_has_a_strict_policy_and_nothing_inline(client, owner, pages):
    client.force_login(owner)
    for url in [*pages, "/login/", "/signup/", "/password-reset/"]:
        if url in ("/login/", "/signup/", "/password-reset/"):
            client.logout()
        response = client.get(url)
        assert response.status_code == 200, url
        assert _directives(response["Content-Security-Policy"]) == STRICT, url
        html = response.content.decode()
        inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", html)
                          if "src=" not in tag and 'type="application/json"' not in tag]
        assert inline_scripts == [], url
        assert "<style" not in html and not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url  # no inline event handlers either


def test_error_pages_and_admin_have_the_policy_but_json_does_not(client, owner):
    assert _directives(client.get("/no-such-page/")["Content-Security-Policy"]) == STRICT
    assert _directives(client.get("/admin/login/")["Content-Security-Policy"]) == STRICT
    client.force_login(owner)
    api = client.get("/api/v2/orgs/acme/members")
    assert "Content-Security-Policy" not in api


def test_api_docs_get_their_own_policy_and_load_nothing_from_elsewhere(client, owner):
    """Swagger UI and Redoc come from csm's own static files (drf-spectacular-sidecar), so the docs work
    offline and their policy allows no other origin and no inline script."""
    client.force_login(owner)
    for path in ("/api/docs/", "/api/redoc/"):
        docs = client.get(path)
        assert docs.status_code == 200, path
        policy = _directives(docs["Content-Security-Policy"])
        assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy, policy
        html = docs.content.decode()
        assert "http://" not in html and "https://" not in html, path  # no CDN, no web fonts
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
        assert assets, path
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
