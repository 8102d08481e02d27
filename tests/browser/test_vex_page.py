"""A VEX attestation's page in a real browser: vexctl's OpenVEX sample attested about the image it names,
read from the trail's list to the statements table, then filtered by status with the page's own form (no
script: it works under the strict Content-Security-Policy)."""

import io
import json
from pathlib import Path

import pytest

from tenants.choices import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).parent.parent / "vulns" / "fixtures" / "vex"
NGINX = "13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0"  # the digest the vexctl sample names
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


def test_vex_attestation_page(page, live_server, sign_in, org, owner, token_for, api, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "ev")}}}
    ci = api(token=token_for(org, Role.MEMBER, name="github-actions"))
    assert ci.put("/api/v2/flows/acme", {"name": "web"}, format="json").status_code == 201
    document = json.loads((FIXTURES / "openvex-vexctl-sample-history.openvex.json").read_bytes())
    document["statements"].append({"vulnerability": {"name": "CVE-2024-0001"}, "status": "affected",
                                   "action_statement": "upgrade libxml2",
                                   "products": [{"@id": "pkg:oci/nginx@sha256:" + "0" * 64}]})
    upload = io.BytesIO(json.dumps(document).encode())
    upload.name = "nginx.openvex.json"
    response = ci.post("/api/v2/attestations/acme/web/trail/release-3/vex",
                       {"data_json": json.dumps({"attestation_name": "nginx-vex", "artifact_fingerprint": NGINX}),
                        "attachment_file": upload}, format="multipart")
    assert response.status_code == 201, response.content

    page.add_init_script(WATCH)
    sign_in(page, "owner@example.com")
    page.goto(live_server.url + "/o/acme/flows/web/trails/release-3/")
    page.get_by_role("link", name="nginx-vex").click()
    page.wait_for_url("**/attestations/*/")
    statements = page.locator("[data-testid=vex-statements]")
    assert statements.locator("tbody tr").count() == 3
    text = statements.inner_text()
    assert "CVE-2023-27103" in text and "component_not_present" in text and "whole artifact" in text
    assert "another artifact" in text and "upgrade libxml2" in text
    page.select_option("#vex-status", "affected")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**status=affected**")
    assert page.locator("[data-testid=vex-statements] tbody tr").count() == 1
    assert "CVE-2024-0001" in page.locator("[data-testid=vex-statements]").inner_text()
    assert page.evaluate("window.__csp") == []
