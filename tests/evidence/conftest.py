"""Fixtures of the evidence vault tests: evidence stored under a per-test directory, a reporting token,
a flow, and helpers that send requests exactly as the kosli CLI builds them (multipart ``data_json`` +
``attachment_file`` tar.gz)."""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tenants.choices import Role

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    root = tmp_path / "evidence-store"
    settings.CSM_EVIDENCE_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


@pytest.fixture
def reporter(org, token_for, api):
    """An API client with a member-role service-account token (may report, may not override)."""
    return api(token=token_for(org, Role.MEMBER))


@pytest.fixture
def admin_api(org, token_for, api):
    return api(token=token_for(org, Role.ADMIN))


@pytest.fixture
def reader_api(org, token_for, api):
    return api(token=token_for(org, Role.READER))


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A tar.gz like the kosli CLI's ``evidence.tgz``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def attest(client, org, flow, trail, kind, data, attachment=None, filename="evidence.tgz"):
    """POST an attestation the way ``kosli attest <kind>`` does."""
    body = {"data_json": json.dumps(data, indent=4)}
    if attachment is not None:
        upload = io.BytesIO(attachment)
        upload.name = filename
        body["attachment_file"] = upload
    return client.post(f"/api/v2/attestations/{org}/{flow}/trail/{trail}/{kind}", body, format="multipart")


def make_flow(client, org="acme", name="backend", template=None):
    payload = {"name": name, "description": "the backend service", "visibility": "private"}
    if template is not None:
        payload["template"] = template
    response = client.put(f"/api/v2/flows/{org}", payload, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def begin_trail(client, org="acme", flow="backend", name="build-1", commit=None):
    data = {"name": name, "description": "", "user_data": {}}
    if commit:
        data["git_commit_info"] = {"sha1": commit, "message": "a change", "author": "dev <dev@example.com>",
                                   "timestamp": 1700000000, "branch": "main"}
    response = client.put(f"/api/v2/trails/{org}/{flow}", {"data_json": json.dumps(data)}, format="multipart")
    assert response.status_code in (200, 201), response.content
    return response.json()


def report_artifact(client, fingerprint, org="acme", flow="backend", trail="build-1", name="backend-image",
                    commit="a" * 40):
    payload = {"fingerprint": fingerprint, "filename": "backend:1.0", "git_commit": commit,
               "git_commit_info": {"sha1": commit, "message": "m", "author": "a", "timestamp": 1, "branch": "main"},
               "build_url": "https://ci.example.com/build/1", "commit_url": f"https://git.example.com/c/{commit}",
               "repo_url": "https://git.example.com/backend", "template_reference_name": name, "trail_name": trail}
    return client.post(f"/api/v2/artifacts/{org}/{flow}", payload, format="json")


SERVED_SECRET = "served-by-the-local-server-7f3a"


@pytest.fixture
def counting_server():
    """(base URL, hits): a real HTTP server on 127.0.0.1 that records every request made to it. It
    answers ``/redirect`` with a 302 to ``/json`` and anything else with a JSON document holding
    ``SERVED_SECRET``, so a test can tell both that csm asked and whether the answer leaked back."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            if self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", "/json")
                self.end_headers()
                return
            body = json.dumps({"type": "integer", "description": SERVED_SECRET, "enum": [SERVED_SECRET]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_HEAD = do_GET  # noqa: N815 - counted all the same

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# Evidence files made by the real tools, once per session.


@pytest.fixture(scope="session", name="pytest_junit_xml")  # a conftest function named pytest_* is a hook
def junit_xml_made_by_pytest(tmp_path_factory) -> bytes:
    """JUnit XML written by a real pytest run: 2 passed, 1 failed, 1 skipped."""
    work = tmp_path_factory.mktemp("junit")
    (work / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_adds():\n    assert 1 + 1 == 2\n\n"
        "def test_concat():\n    assert 'a' + 'b' == 'ab'\n\n"
        "def test_broken():\n    assert 2 * 2 == 5\n\n"
        "@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n")
    report = work / "report.xml"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO", "PYTEST"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
                          f"--junitxml={report}", "--rootdir", str(work), "-c", "/dev/null",
                          str(work / "test_sample.py")], cwd=work, capture_output=True, check=False, env=env)
    assert report.exists(), run.stdout + run.stderr
    return report.read_bytes()


@pytest.fixture(scope="session")
def cyclonedx_sbom(tmp_path_factory) -> bytes:
    """A CycloneDX JSON SBOM made by ``cyclonedx-py environment`` over a fresh virtualenv."""
    work = tmp_path_factory.mktemp("sbom")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, capture_output=True)
    out = work / "sbom.json"
    subprocess.run([str(VENV_BIN / "cyclonedx-py"), "environment", "--of", "JSON", "-o", str(out),
                    str(work / "venv" / "bin" / "python")], check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="session")
def bandit_sarif(tmp_path_factory) -> bytes:
    """SARIF written by ``bandit -f sarif`` over a small insecure file (one HIGH, one LOW finding)."""
    work = tmp_path_factory.mktemp("sarif")
    (work / "insecure.py").write_text("import subprocess\n\n\ndef run(cmd):\n"
                                      "    return subprocess.call(cmd, shell=True)\n")
    out = work / "out.sarif"
    subprocess.run([str(VENV_BIN / "bandit"), "-q", "-f", "sarif", "-o", str(out), str(work / "insecure.py")],
                   capture_output=True, check=False)
    return out.read_bytes()
