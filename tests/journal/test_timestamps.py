"""RFC 3161 timestamps on checkpoints (CSM_JOURNAL_TSA_URL) against a real TSA — OpenSSL's ``ts -reply``
behind a local HTTP server — checked with ``openssl ts -verify``, and served at
GET /api/v2/journal/{org}/checkpoint/timestamp."""

import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.context import AuditContext
from audit.services import record_event
from journal.notes import cosign, cosignature_verifier, split_note
from journal.selectors import served_note
from journal.services import checkpoint_now
from journal.tasks import publish_due_checkpoints_task
from journal.timestamps import REPLY_TYPE, TimestampError, check_response, note_digest, timestamp_checkpoint
from journal.witness import add_cosignatures
from tenants.choices import Role
from tests.journal.tsa import LocalTSA

URL = "/api/v2/journal/acme/checkpoint/timestamp"


@pytest.fixture(scope="module")
def tsa_server(tmp_path_factory):
    server = LocalTSA(tmp_path_factory.mktemp("tsa"))
    yield server
    server.close()


@pytest.fixture
def tsa(tsa_server, settings):
    tsa_server.requests, tsa_server.mode = 0, "ok"
    settings.CSM_JOURNAL_TSA_URL = tsa_server.url
    settings.CSM_JOURNAL_TSA_ALLOW_PRIVATE = True  # the test TSA listens on 127.0.0.1
    return tsa_server


def append(org, n=1):
    for i in range(n):
        record_event(AuditContext.system("test"), org, "org.updated", target=("org", org.pk, f"change {i}"))


def publish(org, capture):
    """Publish a checkpoint and run what its commit triggers (embedded mode: the timestamp at once)."""
    with capture(execute=True):
        checkpoint = checkpoint_now(org)
    checkpoint.refresh_from_db()
    return checkpoint


@pytest.fixture
def embedded(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.mark.django_db
def test_a_new_checkpoint_gets_a_token_that_openssl_verifies_over_the_signed_note(
        org, tsa, embedded, django_capture_on_commit_callbacks, owner_api):
    append(org)
    checkpoint = publish(org, django_capture_on_commit_callbacks)
    token = bytes(checkpoint.timestamp_token)
    assert tsa.requests == 1
    result = tsa.verify(token, checkpoint.note.encode())
    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stderr
    assert tsa.verify(token, checkpoint.note.encode() + b"x").returncode != 0
    assert check_response(token, note_digest(checkpoint.note))["gen_time"].native is not None

    response = owner_api.get(URL, HTTP_ACCEPT=REPLY_TYPE)
    assert response.status_code == 200
    assert response["Content-Type"] == REPLY_TYPE and response.content == token
    assert response["Csm-Checkpoint-Size"] == str(checkpoint.size)
    assert owner_api.get(URL, {"size": checkpoint.size}).content == token


@pytest.mark.django_db
def test_the_documented_offline_check_works_on_the_served_note_with_witness_lines(
        org, tsa, embedded, django_capture_on_commit_callbacks, settings, tmp_path):
    """docs/journal-witnesses.md: ``sed '/^$/{n;q}'`` cuts the served note back to what csm signed and
    timestamped, then ``openssl ts -verify``."""
    witness = Ed25519PrivateKey.generate()
    verifier = cosignature_verifier("w.example/w", witness.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    settings.CSM_JOURNAL_WITNESS_KEYS = [str(verifier)]
    append(org)
    checkpoint = publish(org, django_capture_on_commit_callbacks)
    add_cosignatures(org, cosign(split_note(checkpoint.note)[0], "w.example/w", witness, 1_800_000_000).line)
    served = served_note(checkpoint)
    assert served != checkpoint.note
    (tmp_path / "served.txt").write_text(served)
    cut = subprocess.run(["sed", "/^$/{n;q}", str(tmp_path / "served.txt")], capture_output=True, check=True).stdout
    assert cut == checkpoint.note.encode()
    assert tsa.verify(bytes(checkpoint.timestamp_token), cut).returncode == 0


@pytest.mark.django_db
def test_the_token_is_set_once_and_never_replaced(org, tsa, embedded, django_capture_on_commit_callbacks):
    append(org)
    checkpoint = publish(org, django_capture_on_commit_callbacks)
    token = bytes(checkpoint.timestamp_token)
    assert timestamp_checkpoint(checkpoint.pk) is True
    checkpoint.refresh_from_db()
    assert bytes(checkpoint.timestamp_token) == token and tsa.requests == 1


@pytest.mark.django_db
def test_a_private_tsa_address_is_refused_unless_the_operator_allows_it(
        org, tsa, embedded, settings, django_capture_on_commit_callbacks):
    settings.CSM_JOURNAL_TSA_ALLOW_PRIVATE = False
    assert settings.CSM_WEBHOOK_ALLOW_PRIVATE  # the webhooks' permission does not open the TSA's
    append(org)
    checkpoint = publish(org, django_capture_on_commit_callbacks)  # the checkpoint itself is not held up
    assert checkpoint.timestamp_token is None and tsa.requests == 0
    with pytest.raises(TimestampError, match="CSM_JOURNAL_TSA_ALLOW_PRIVATE"):
        timestamp_checkpoint(checkpoint.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("mode, problem", [("other-imprint", "another message imprint"), ("http500", "HTTP 500"),
                                           ("reject", "answered rejection"), ("garbage", "not a TimeStampResp")])
def test_a_tsa_answer_that_is_not_a_token_for_this_note_is_not_kept(org, tsa, mode, problem):
    append(org)
    checkpoint = checkpoint_now(org)
    tsa.mode = mode
    with pytest.raises(TimestampError, match=problem):
        timestamp_checkpoint(checkpoint.pk)
    checkpoint.refresh_from_db()
    assert checkpoint.timestamp_token is None


@pytest.mark.django_db
def test_the_periodic_task_timestamps_a_latest_checkpoint_whose_task_was_lost(org, tsa):
    append(org)
    checkpoint = checkpoint_now(org)  # no commit callback here: as if the timestamp message were lost
    publish_due_checkpoints_task()  # too young: left to its own task
    assert tsa.requests == 0
    publish_due_checkpoints_task(timestamp_min_age_seconds=0)
    checkpoint.refresh_from_db()
    assert tsa.verify(bytes(checkpoint.timestamp_token), checkpoint.note.encode()).returncode == 0


@pytest.mark.django_db
def test_without_a_tsa_nothing_is_requested_and_the_endpoint_says_so(org, owner_api, embedded,
                                                                        django_capture_on_commit_callbacks):
    append(org)
    checkpoint = publish(org, django_capture_on_commit_callbacks)
    assert checkpoint.timestamp_token is None
    response = owner_api.get(URL)
    assert response.status_code == 404
    assert "no TSA is configured" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_endpoint_parameters_tenancy_and_roles(org, other_org, tsa, embedded, django_capture_on_commit_callbacks,
                                               api, member_of, token_for, owner_api):
    append(org)
    checkpoint = publish(org, django_capture_on_commit_callbacks)
    for bad in ("x", "-1", "1.5", "²"):
        response = owner_api.get(URL, {"size": bad})
        assert response.status_code == 400 and "size" in response.json()["error"]["fields"]
    assert owner_api.get(URL, {"size": checkpoint.size + 1}).status_code == 404
    assert api(user=member_of(other_org, Role.OWNER)).get(URL).status_code == 404
    assert api(token=token_for(org, Role.SNAPSHOTTER)).get(URL).status_code == 200
    assert api().get(URL).status_code == 401
    assert api(user=member_of(org, Role.READER)).get(URL).status_code == 200
