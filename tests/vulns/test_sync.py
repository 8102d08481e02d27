"""Sources over HTTP and the periodic sync: a local HTTP server serves osv.dev-style zips of real records
(tests/vulns/fixtures/osv), with ETag / Last-Modified, through the outbound guard."""

import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO, StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from csm.celery import app
from tests.conftest import wait_for
from vulns import osv
from vulns.models import Advisory, VulnSource
from vulns.tasks import sync_vuln_sources

FIXTURES = Path(__file__).parent / "fixtures"


def zip_bytes(*directories: Path) -> bytes:
    """A zip laid out like osv.dev's per-ecosystem all.zip: one record per member, at the top level (a later
    directory's record replaces an earlier one of the same name, as a new publication does)."""
    members = {path.name: path for directory in directories for path in sorted(directory.rglob("*.json"))}
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(members.items()):
            archive.write(path, name)
    return buffer.getvalue()


class OsvMirror:
    """A local stand-in for osv.dev's bucket: ``/all.zip`` with an ETag and Last-Modified (answering 304 to a
    matching conditional GET), ``/stream.zip`` without Content-Length, ``/moved.zip`` a redirect."""

    def __init__(self):
        self.body = zip_bytes(FIXTURES / "osv")
        self.etag = '"v1"'
        self.last_modified = "Wed, 02 Dec 2026 10:00:00 GMT"
        self.requests: list[dict] = []
        self.bytes_sent = 0
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                mirror.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                if self.path == "/moved.zip":
                    self.send_response(302)
                    self.send_header("Location", "http://example.org/all.zip")
                    self.end_headers()
                    return
                if self.path not in ("/all.zip", "/stream.zip"):
                    self.send_error(404)
                    return
                if self.headers.get("If-None-Match") == mirror.etag:
                    self.send_response(304)
                    self.send_header("ETag", mirror.etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("ETag", mirror.etag)
                self.send_header("Last-Modified", mirror.last_modified)
                if self.path == "/all.zip":
                    self.send_header("Content-Length", str(len(mirror.body)))
                self.end_headers()
                self.wfile.write(mirror.body)
                mirror.bytes_sent += len(mirror.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/all.zip") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def publish(self, body: bytes, etag: str) -> None:
        self.body, self.etag = body, etag
        self.last_modified = "Thu, 03 Dec 2026 10:00:00 GMT"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    server = OsvMirror()
    yield server
    server.close()


@pytest.fixture
def allow_loopback(settings):
    settings.CSM_VULN_SOURCES_ALLOW_PRIVATE = True  # the mirror runs on 127.0.0.1


def run_import(*sources) -> str:
    out = StringIO()
    call_command("import_vulns", *sources, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_an_unchanged_url_costs_one_conditional_request_and_transfers_nothing(mirror, allow_loopback):
    url = mirror.url()
    assert "11 created, 0 updated, 0 unchanged, 2 withdrawn, 0 rejected" in run_import(url)
    assert mirror.bytes_sent == len(mirror.body)
    source = VulnSource.objects.get(location=url)
    assert (source.etag, source.last_modified, source.last_bytes) == ('"v1"', mirror.last_modified, len(mirror.body))

    out = run_import(url)

    assert "not modified since the last import (nothing downloaded)" in out
    assert "0 created, 0 updated, 0 unchanged" in out
    assert len(mirror.requests) == 2 and mirror.bytes_sent == len(mirror.body)  # the second sent no body
    assert mirror.requests[1]["if-none-match"] == '"v1"'
    assert mirror.requests[1]["if-modified-since"] == mirror.last_modified
    source.refresh_from_db()
    assert (source.last_status, source.last_bytes) == ("not_modified", 0)


@pytest.mark.django_db
def test_a_new_publication_of_the_url_is_downloaded_and_only_the_changed_record_written(mirror, allow_loopback):
    url = mirror.url()
    run_import(url)
    mirror.publish(zip_bytes(FIXTURES / "osv", FIXTURES / "osv-updates"), '"v2"')

    out = run_import(url)

    assert "0 created, 1 updated, 12 unchanged" in out
    assert Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr").group_id == "CVE-2024-21907"
    assert VulnSource.objects.get(location=url).etag == '"v2"'


@pytest.mark.django_db
def test_a_loopback_url_is_refused_unless_the_operator_allows_it(mirror, settings):
    settings.CSM_WEBHOOK_ALLOW_PRIVATE = True  # allowing webhooks does not open vulnerability sources
    settings.CSM_VULN_SOURCES_ALLOW_PRIVATE = False

    with pytest.raises(CommandError, match="refused") as caught:
        run_import(mirror.url())

    assert "CSM_VULN_SOURCES_ALLOW_PRIVATE=1" in str(caught.value)
    assert mirror.requests == [] and not Advisory.objects.exists()
    assert VulnSource.objects.get(location=mirror.url()).last_status == "error"


@pytest.mark.django_db
@pytest.mark.parametrize("path, message", [("/all.zip", "announces"), ("/stream.zip", "exceeds")])
def test_a_download_beyond_the_size_limit_is_stopped(mirror, allow_loopback, settings, path, message):
    settings.CSM_VULN_DOWNLOAD_MAX_BYTES = 4096

    with pytest.raises(CommandError, match=message) as caught:
        run_import(mirror.url(path))

    assert "CSM_VULN_DOWNLOAD_MAX_BYTES" in str(caught.value)
    assert not Advisory.objects.exists()
    assert VulnSource.objects.get(location=mirror.url(path)).etag == ""  # the next run downloads again


@pytest.mark.django_db
def test_a_redirect_is_not_followed_and_an_error_status_fails_the_source(mirror, allow_loopback):
    with pytest.raises(CommandError, match="HTTP 302 .*redirects are not followed.*http://example.org/all.zip"):
        run_import(mirror.url("/moved.zip"))
    with pytest.raises(CommandError, match="HTTP 404"):
        run_import(mirror.url("/gone.zip"))


@pytest.mark.django_db
def test_the_periodic_sync_imports_the_configured_sources(mirror, allow_loopback, settings):
    settings.CSM_VULN_SOURCES = [mirror.url(), str(FIXTURES / "osv-updates")]

    first = sync_vuln_sources()
    second = sync_vuln_sources()

    assert first == {"created": 11, "updated": 1, "unchanged": 0, "older": 0, "withdrawn": 2, "rejected": 0,
                     "failed": 0, "not_modified": 0}
    assert second["not_modified"] == 1 and second["unchanged"] == 1 and second["created"] == 0
    assert len(mirror.requests) == 2


@pytest.mark.django_db
def test_the_sync_is_off_without_sources_and_waits_for_a_running_import(mirror, allow_loopback, settings):
    settings.CSM_VULN_SOURCES = []
    assert sync_vuln_sources() is None
    settings.CSM_VULN_SOURCES = [mirror.url()]
    with osv.sync_lock():
        assert sync_vuln_sources() is None  # one sync at a time
    assert mirror.requests == [] and not Advisory.objects.exists()


def test_the_sync_is_on_the_beat_schedule_and_registered_for_the_embedded_scheduler():
    entry = django_settings.CELERY_BEAT_SCHEDULE["vulns-sync-sources"]
    assert entry == {"task": "vulns.sync_vuln_sources", "schedule": django_settings.CSM_VULN_SYNC_INTERVAL_SECONDS}
    app.loader.import_default_modules()
    assert "vulns.sync_vuln_sources" in app.tasks


@pytest.mark.integration
def test_a_real_worker_runs_the_sync(mirror, allow_loopback, settings, celery_worker):
    settings.CSM_VULN_SOURCES = [mirror.url()]

    sync_vuln_sources.delay()

    wait_for(lambda: VulnSource.objects.filter(location=mirror.url(), last_status="ok").exists(), "the sync")
    assert Advisory.objects.count() == 13
