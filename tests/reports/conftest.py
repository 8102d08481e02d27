"""Fixtures for audit report tests: generate a report in-process, read its PDF as text, render pages
to PNG for people to look at, and a local HTTP server that records any request made to it."""

import contextlib
import http.server
import subprocess
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from audit.context import AuditContext
from reports.models import AuditReport
from reports.services import request_report
from reports.tasks import generate_report
from tenants.choices import Role
from tenants.models import Membership

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"


@pytest.fixture
def generate():
    """generate(org, kind, user=None, role=None, **params) -> the finished AuditReport, built in this
    process, as requested by ``user`` with their role in ``org`` (or ``role``; the owner's by default)."""

    def make(org, kind, user=None, ctx=None, role=None, **params):
        ctx = ctx or (AuditContext.for_user(user) if user else AuditContext.system("test"))
        if role is None:
            membership = Membership.objects.filter(org=org, user=user).first() if user else None
            role = membership.role if membership else Role.OWNER
        report = request_report(ctx, org, kind, params, role=role)
        generate_report.run(str(report.pk), ctx.to_dict())
        return AuditReport.objects.select_related("output").get(pk=report.pk)

    return make


def pdf_text(report: AuditReport) -> str:
    """Text of the stored PDF via pdftotext (poppler), whitespace collapsed."""
    result = subprocess.run(["pdftotext", "-", "-"], input=bytes(report.output.pdf), capture_output=True,
                            check=True)
    text = result.stdout.decode().replace("\u2068", "").replace("\u2069", "")  # the ledgers' bidi isolates
    return " ".join(text.split())


def pdf_pages(report: AuditReport) -> int:
    import io

    return len(PdfReader(io.BytesIO(bytes(report.output.pdf))).pages)


def save_png(report: AuditReport, name: str, pages: int = 3) -> list[Path]:
    """First pages as PNG in test-artifacts/reports/ (gitignored), for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / f"{name}.pdf"
    pdf.write_bytes(bytes(report.output.pdf))
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", str(pages), str(pdf), str(ARTIFACTS / name)],
                   check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_server():
    """(port, hits): a local HTTP server recording every path requested from it."""

    class Handler(_Recorder):
        hits: list[str] = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], Handler.hits
    finally:
        server.shutdown()
        server.server_close()


def assert_contains(text: str, *expected: str) -> None:
    """Each string appears in the PDF text; spaces and case are ignored because table cells wrap long
    hashes and figure labels are printed in capitals."""
    squashed = text.replace(" ", "").lower()
    missing = [item for item in expected if item.replace(" ", "").lower() not in squashed]
    assert not missing, f"not in the PDF: {missing}"


@contextlib.contextmanager
def row_locked(model, pk):
    """Hold a row lock (SELECT … FOR UPDATE) on ``model`` row ``pk`` from a connection of its own, until
    the block ends: a writer that needs the row (the POST locking its org, the worker storing a report
    under the journal head) waits there, so a test can look at the state before that write."""
    import psycopg
    from django.db import connection

    settings_dict = connection.settings_dict
    with psycopg.connect(dbname=settings_dict["NAME"], user=settings_dict["USER"] or None,
                         password=settings_dict["PASSWORD"] or None, host=settings_dict["HOST"] or None,
                         port=settings_dict["PORT"] or None) as conn:
        with conn.transaction():
            table = model._meta.db_table
            row = conn.execute(f"SELECT 1 FROM {table} WHERE {model._meta.pk.column} = %s FOR UPDATE",  # noqa: S608
                               [pk]).fetchone()
            assert row, f"no {table} row {pk}"
            yield
