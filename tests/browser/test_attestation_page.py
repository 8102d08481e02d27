"""An attestation page in a real browser: a failed pytest run's JUnit attestation names the failing test,
its message and the start of its output, the rest folded behind "Show more" (a plain <details>: works
under the strict Content-Security-Policy, no script); the trail's row links to the page."""

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tenants.choices import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""

FAILING = "def test_checkout_total():\n" + "".join(f"    step_{n} = {n}\n" for n in range(30)) + \
    "    assert step_29 == 30, 'total is off by one'\n"


def junit_from_pytest(tmp_path) -> bytes:
    (tmp_path / "test_shop.py").write_text(FAILING)
    report = tmp_path / "report.xml"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO", "PYTEST"))}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
                    f"--junitxml={report}", "--rootdir", str(tmp_path), "-c", "/dev/null",
                    str(tmp_path / "test_shop.py")], cwd=tmp_path, capture_output=True, check=False, env=env)
    return report.read_bytes()


def tar_gz(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_failed_junit_attestation_page(page, live_server, sign_in, org, owner, token_for, api, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "ev")}}}
    ci = api(token=token_for(org, Role.MEMBER, name="github-actions"))
    assert ci.put("/api/v2/flows/acme", {"name": "shop"}, format="json").status_code == 201
    upload = io.BytesIO(tar_gz("report.xml", junit_from_pytest(tmp_path)))
    upload.name = "evidence.tgz"
    response = ci.post("/api/v2/attestations/acme/shop/trail/build-7/junit",
                       {"data_json": json.dumps({"attestation_name": "unit-tests"}), "attachment_file": upload},
                       format="multipart")
    assert response.status_code == 201, response.content

    page.add_init_script(WATCH)
    sign_in(page, "owner@example.com")
    page.goto(live_server.url + "/o/acme/flows/shop/trails/build-7/")
    page.get_by_role("link", name="unit-tests").click()
    page.wait_for_url("**/attestations/*/")
    failures = page.locator("[data-testid=junit-failures]")
    assert "test_checkout_total" in failures.inner_text()
    assert "total is off by one" in failures.inner_text()
    more = failures.locator("details.more")
    assert not more.locator("pre").is_visible()  # the full output is folded
    more.locator("summary").click()
    assert more.locator("pre").is_visible() and "step_29 == 30" in more.locator("pre").inner_text()
    assert "step_29 = 29" not in failures.locator("pre").first.inner_text()  # the preview is the start only
    assert "github-actions" in page.locator("[data-testid=reporter]").inner_text()
    assert page.evaluate("window.__csp") == []
