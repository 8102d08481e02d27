"""kosli CLI conformance (issue 15, h1): ``kosli status`` / ``kosli assert status`` (GET /ready), the
retired beta toggles, and unknown kosli paths.

cmd/kosli/status.go ``statusOptions.run``: GET {host}/ready with the usual headers (and the token, if one
is configured); on 200 or 201 the CLI prints the body as text (kosli's own server answers ``OK``); on
anything else ``kosli status`` prints "Kosli is Down" and ``kosli assert status`` (cmd/kosli/assertStatus.go)
fails. The failure paths below break a dependency for real (a closed port, an unwritable place), no mocks.
"""

import pytest
from django.test import override_settings

from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def evidence_root(settings, tmp_path):
    """Evidence storage in tmp, where the readiness probe writes (tests/evidence/conftest.py does the same)."""
    root = tmp_path / "evidence-store"
    settings.CSM_EVIDENCE_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


def _ready(token="no-token-configured"):
    return cli(token, "GET", "/ready")


def _lines(answer) -> dict[str, str]:
    text = answer.content.decode()
    head, *rest = text.splitlines()
    return {"status": head, **dict(line.split(": ", 1) for line in rest)}


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/1")
def test_ready_when_everything_answers(evidence_root):
    """All three dependencies answer: 200, text whose first line is kosli's ``OK``, then one line per check.
    The CLI's token is ignored (even a wrong one): readiness needs no authentication."""
    answer = _ready()
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    assert answer.content.decode().startswith("OK\n")
    lines = _lines(answer)
    assert lines == {"status": "OK", "database": "ok", "broker": "ok", "evidence storage": "writable"}
    assert "no-cache" in answer.get("Cache-Control", "") or "max-age=0" in answer.get("Cache-Control", "")
    assert [path for path in evidence_root.rglob("*") if path.is_file()] == []  # the probe file is deleted


@override_settings(CELERY_BROKER_URL="")
def test_ready_in_the_embedded_mode_says_there_is_no_broker(evidence_root):
    """The embedded default (no CELERY_BROKER_URL) runs background work in the web process: ready, and the
    body says there is no broker rather than pretending to have checked one."""
    answer = _ready()
    assert answer.status_code == 200
    assert _lines(answer)["broker"].startswith("none configured (embedded mode")


@override_settings(CELERY_BROKER_URL=CLOSED_PORT_BROKER)
def test_not_ready_when_the_broker_is_unreachable(evidence_root):
    """A broker that refuses connections: 503 naming the broker, so ``kosli assert status`` fails; the
    other checks still report. The broker's address is not in the answer (unauthenticated), the log has it."""
    answer = _ready()
    assert answer.status_code == 503
    lines = _lines(answer)
    assert lines["status"] == "NOT READY"
    assert lines["broker"].startswith("FAILED (")
    assert lines["database"] == "ok" and lines["evidence storage"] == "writable"
    assert "127.0.0.1" not in answer.content.decode()


@override_settings(CELERY_BROKER_URL="")
def test_not_ready_when_evidence_storage_is_not_writable(tmp_path, settings):
    """Evidence storage that cannot take a file (its location lies under a regular file, which even root
    cannot create a directory in): 503 naming the evidence storage."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker / "evidence")}}}
    answer = _ready()
    assert answer.status_code == 503
    lines = _lines(answer)
    assert lines["evidence storage"].startswith("FAILED (")
    assert lines["database"] == "ok"
    assert str(tmp_path) not in answer.content.decode()


def test_healthz_stays_the_liveness_probe(client):
    """/healthz answers "ok" whatever the dependencies: it says the process is alive, nothing more."""
    with override_settings(CELERY_BROKER_URL=CLOSED_PORT_BROKER):
        answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.content == b"ok"


# --- retired and unknown kosli paths --------------------------------------------------------------------

@pytest.mark.parametrize("enabled", [True, False])
def test_beta_toggles_are_gone(org, token_for, enabled):
    """cmd/kosli/enableBeta.go / disableBeta.go ``betaOptions.run``: PUT
    /api/v2/organizations/{org}/experimental_features with ``betaFeaturesPayload``
    (experimental_features_enabled). kosli retired beta toggles: 410 with a top-level message the CLI
    prints, for anyone (no token needed to learn it, no org revealed), never a 500."""
    for token in (token_for(org, "admin"), "csm_" + "x" * 40):
        answer = cli(token, "PUT", "/api/v2/organizations/acme/experimental_features",
                     {"experimental_features_enabled": enabled})
        assert answer.status_code == 410
        message = cli_error(answer)
        assert "retired" in message and "Nothing was changed" in message
        assert answer.json()["error"]["code"] == "gone"
    unknown_org = cli("", "PUT", "/api/v2/organizations/no-such-org/experimental_features", {})
    assert unknown_org.status_code == 410


def test_unknown_kosli_paths_are_a_json_404(org, token_for):
    """Any other path under /api/v2 that csm does not serve: a JSON 404 with the top-level message, which
    the CLI prints, whatever the method."""
    token = token_for(org, "admin")
    for method in ("GET", "POST", "PUT", "DELETE"):
        answer = cli(token, method, "/api/v2/organizations/acme/retired_thing", {} if method != "GET" else None)
        assert answer.status_code == 404, method
        assert cli_error(answer) == "No such endpoint."
