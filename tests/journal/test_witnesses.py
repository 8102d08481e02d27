"""Witness cosignatures (C2SP tlog-cosignature): POST /api/v2/journal/{org}/cosignature, the configured
witness keys, the served note, the audit trail and the k-of-n check verifiers use."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from audit.context import AuditContext
from audit.models import AuditEvent
from audit.services import record_event
from journal import signing
from journal.models import JournalCosignature
from journal.notes import NoteError, cosign, cosignature_verifier, split_note, verify_note
from journal.selectors import served_note
from journal.services import checkpoint_now
from journal.witness import parse_witness_keys, quorum
from tenants.choices import Role

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v2/journal/acme/cosignature"


class Witness:
    """A witness with its own Ed25519 key, as a real one would run it."""

    def __init__(self, name):
        self.name = name
        self.private = Ed25519PrivateKey.generate()
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = cosignature_verifier(name, public)

    def line(self, note, timestamp=1_800_000_000):
        return cosign(split_note(note)[0], self.name, self.private, timestamp).line


@pytest.fixture
def witnesses(settings):
    ones = [Witness(f"witness-{n}.example/w") for n in range(3)]
    settings.CSM_JOURNAL_WITNESS_KEYS = [str(w.verifier) for w in ones]
    return ones


def grow(org, events=1):
    """Append leaves (audit events) and publish a checkpoint covering them."""
    for n in range(events):
        record_event(AuditContext.system("test"), org, "org.updated", target=("org", org.pk, f"change {n}"))
    return checkpoint_now(org)


def post(client, text, path=URL):
    return client.post(path, data=text.encode(), content_type="text/plain")


@pytest.mark.django_db
def test_a_witness_line_is_stored_served_after_csms_signature_and_audited(org, owner_api, witnesses, owner):
    checkpoint = grow(org)
    response = post(owner_api, witnesses[0].line(checkpoint.note))
    assert response.status_code == 200, response.content
    assert response.json() == {"cosignatures": [{"witness": witnesses[0].name, "key_id": witnesses[0].verifier.id_hex,
                                                 "timestamp": 1_800_000_000, "tree_size": checkpoint.size}]}
    served = served_note(checkpoint)
    assert served.startswith(checkpoint.note)
    assert verify_note(served, signing.current_signer().verifier) == split_note(checkpoint.note)[0]
    assert quorum(served, [w.verifier for w in witnesses], 1) == [witnesses[0].name]
    event = AuditEvent.objects.get(org=org, action="journal.cosigned")
    assert event.actor_user_id == owner.pk
    assert event.after["witness"] == witnesses[0].name and event.after["tree_size"] == checkpoint.size


@pytest.mark.django_db
def test_several_lines_at_once_and_a_repeat_is_a_no_op(org, owner_api, witnesses):
    checkpoint = grow(org)
    lines = witnesses[0].line(checkpoint.note) + witnesses[1].line(checkpoint.note)
    assert post(owner_api, lines).status_code == 200
    again = post(owner_api, lines)
    assert again.status_code == 200
    assert [c["witness"] for c in again.json()["cosignatures"]] == [witnesses[0].name, witnesses[1].name]
    assert JournalCosignature.objects.filter(checkpoint=checkpoint).count() == 2
    assert AuditEvent.objects.filter(org=org, action="journal.cosigned").count() == 2
    assert quorum(served_note(checkpoint), [w.verifier for w in witnesses], 2) == sorted(
        [witnesses[0].name, witnesses[1].name])


@pytest.mark.django_db
def test_a_whole_cosigned_note_of_an_earlier_checkpoint_lands_on_that_checkpoint(org, owner_api, witnesses):
    earlier = grow(org)
    latest = grow(org, 3)
    assert latest.size > earlier.size
    cosigned = earlier.note + witnesses[2].line(earlier.note)  # csm's own line is in it too: skipped
    response = post(owner_api, cosigned)
    assert response.status_code == 200, response.content
    assert response.json()["cosignatures"][0]["tree_size"] == earlier.size
    assert JournalCosignature.objects.get().checkpoint_id == earlier.pk
    assert served_note(latest) == latest.note


@pytest.mark.django_db
def test_a_bare_line_lands_on_the_recent_checkpoint_it_cosigns(org, owner_api, witnesses):
    """A witness racing a busy log cosigned the checkpoint it fetched, not the one that is latest now."""
    earlier = grow(org)
    latest = grow(org)
    response = post(owner_api, witnesses[0].line(earlier.note) + witnesses[1].line(latest.note))
    assert response.status_code == 200
    assert [c["tree_size"] for c in response.json()["cosignatures"]] == [earlier.size, latest.size]
    assert JournalCosignature.objects.get(witness=witnesses[0].name).checkpoint_id == earlier.pk
    assert served_note(latest) == latest.note + witnesses[1].line(latest.note)


@pytest.mark.django_db
def test_a_line_over_no_checkpoint_of_the_org_is_refused_naming_the_witness(org, owner_api, witnesses):
    checkpoint = grow(org)
    grow(org)
    forged_body = checkpoint.note.replace(f"\n{checkpoint.size}\n", f"\n{checkpoint.size + 100}\n", 1)
    response = post(owner_api, witnesses[0].line(forged_body))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "does not verify over any of the org's latest 2 checkpoints" in error["message"]
    assert witnesses[0].name in error["message"]
    assert error["fields"] == {"body": [error["message"]]}
    assert not JournalCosignature.objects.exists()


@pytest.mark.django_db
def test_an_unknown_witness_is_refused_and_nothing_of_the_body_is_stored(org, owner_api, witnesses):
    checkpoint = grow(org)
    stranger = Witness("stranger.example/w")
    response = post(owner_api, witnesses[0].line(checkpoint.note) + stranger.line(checkpoint.note))
    assert response.status_code == 400
    assert "stranger.example/w" in response.json()["error"]["message"]
    assert "not a configured witness" in response.json()["error"]["message"]
    assert not JournalCosignature.objects.exists()
    assert not AuditEvent.objects.filter(action="journal.cosigned").exists()


@pytest.mark.django_db
def test_a_forged_line_under_a_configured_name_is_refused(org, owner_api, witnesses):
    checkpoint = grow(org)
    forger = Witness(witnesses[0].name)  # same name, another key: another key id
    response = post(owner_api, forger.line(checkpoint.note))
    assert response.status_code == 400
    assert not JournalCosignature.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body, problem", [
    ("", "empty"),
    ("hello\n", "not a signature line"),
    ("\u2014 witness-0.example/w !!!\n", "not base64"),
    ("origin\n1\nnot-a-root\n\n\u2014 w AAAAAAAA\n", "not a checkpoint"),
])
def test_malformed_bodies_are_400_naming_the_problem(org, owner_api, witnesses, body, problem):
    grow(org)
    response = post(owner_api, body)
    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413(org, owner_api, witnesses):
    checkpoint = grow(org)
    response = post(owner_api, witnesses[0].line(checkpoint.note) * 100)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.django_db
def test_no_checkpoint_yet_is_404(make_org, api, witnesses, make_user):
    owner = make_user()
    make_org("fresh", owner)
    assert post(api(user=owner), "\u2014 w AAAAAAAAAAAA\n", "/api/v2/journal/fresh/cosignature").status_code == 404


@pytest.mark.django_db
def test_tenancy_and_roles(org, other_org, api, member_of, token_for, witnesses):
    checkpoint = grow(org)
    line = witnesses[0].line(checkpoint.note)
    outsider = member_of(other_org, Role.OWNER)
    assert post(api(user=outsider), line).status_code == 404
    assert post(api(), line).status_code == 401
    assert post(api(user=member_of(org, Role.READER)), line).status_code == 200
    # Agents are witnesses (csm-verify monitor --cosign-key posts with the agent's token).
    assert post(api(token=token_for(org, Role.SNAPSHOTTER)), line).status_code == 200


def test_quorum_counts_each_trusted_witness_once_and_names_the_shortfall():
    body = "example.com/log\n5\n" + "A" * 43 + "=\n"
    ws = [Witness(f"w{n}") for n in range(3)]
    note = body + "\n" + "".join(w.line(body + "\n\u2014 x AAAAAAAA\n") for w in ws[:2])
    trusted = [w.verifier for w in ws]
    assert quorum(note, trusted, 2) == ["w0", "w1"]
    with pytest.raises(NoteError, match="2 of the required 3"):
        quorum(note, trusted, 3)
    doubled = note + ws[0].line(body + "\n\u2014 x AAAAAAAA\n", timestamp=1)
    with pytest.raises(NoteError, match="2 of the required 3"):
        quorum(doubled, trusted, 3)
    other_body = body.replace("\n5\n", "\n6\n")
    forged = body + "\n" + ws[2].line(other_body + "\n\u2014 x AAAAAAAA\n")
    with pytest.raises(NoteError, match="0 of the required 1"):
        quorum(forged, trusted, 1)
    with pytest.raises(NoteError, match="needs at least 4 trusted"):
        quorum(note, trusted, 4)


def test_witness_keys_are_checked_naming_the_bad_one():
    good = Witness("good.example/w")
    assert parse_witness_keys([str(good.verifier)]) == {good.verifier.id: good.verifier}
    with pytest.raises(ImproperlyConfigured, match="bogus"):
        parse_witness_keys([str(good.verifier), "bogus+00000000+AAAA"])
    note_key = signing.generate_signer("notes.example/k").verifier  # an Ed25519 note key, not a witness key
    with pytest.raises(ImproperlyConfigured, match="not a cosignature key"):
        parse_witness_keys([str(note_key)])


def test_a_bad_witness_key_stops_the_process_at_startup():
    good = Witness("good.example/w")
    env = {**os.environ, "CSM_JOURNAL_WITNESS_KEYS": f"{good.verifier}, broken+deadbeef+AAAA",
           "DJANGO_SETTINGS_MODULE": "csm.test_settings"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "broken+deadbeef+AAAA" in result.stderr
    env["CSM_JOURNAL_WITNESS_KEYS"] = str(good.verifier)
    assert subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                          capture_output=True).returncode == 0


@pytest.mark.django_db
def test_check_witnesses_command_reports_each_orgs_quorum(org, owner_api, witnesses):
    signing.register(signing.current_signer())  # the key history row (the signer is cached per process)
    checkpoint = grow(org)
    assert post(owner_api, witnesses[0].line(checkpoint.note) + witnesses[1].line(checkpoint.note)).status_code == 200
    out = StringIO()
    call_command("check_witnesses", "--quorum", "2", "--org", "acme", stdout=out)
    assert out.getvalue() == (f"acme: ok, tree size {checkpoint.size} cosigned by "
                              f"{witnesses[0].name}, {witnesses[1].name}\n")
    err = StringIO()
    with pytest.raises(CommandError, match="witness check failed"):
        call_command("check_witnesses", "--quorum", "3", stderr=err)
    assert "acme: FAILED" in err.getvalue() and "2 of the required 3" in err.getvalue()
    grow(org)  # a newer checkpoint nobody cosigned yet
    with pytest.raises(CommandError):
        call_command("check_witnesses", "--quorum", "1", stderr=StringIO())
    with pytest.raises(CommandError, match="between 1 and the 3"):
        call_command("check_witnesses", "--quorum", "4")
