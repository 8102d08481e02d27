"""The journal's read API (/api/v2/journal/{org}/...): what an auditor, a witness agent or standard
tlog-tiles tooling fetches, checked the way they check it — signatures with journal.notes, proofs with
journal.merkle against the signed root, tiles against hashes recomputed from the entries."""

import base64
import hashlib
import json
import struct

import pytest

from journal import merkle, notes, signing
from journal.models import JournalHead, JournalLeaf
from journal.services import append_leaf, publish_checkpoint
from journal.tiles import TileRef, index_path, parse_entry_bundle, parse_hash_tile
from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

BASE = "/api/v2/journal/acme"


def mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 MTH, written out independently of journal.merkle."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def leaf_hashes(org) -> list[bytes]:
    payloads = JournalLeaf.objects.filter(org=org).order_by("index").values_list("payload", flat=True)
    return [hashlib.sha256(b"\x00" + p.encode()).digest() for p in payloads]


def signed_checkpoint(client, org_slug="acme") -> notes.Checkpoint:
    """Fetch the checkpoint and the keys, verify the signature with the newest key, parse the body."""
    keys = client.get(f"/api/v2/journal/{org_slug}/key").content.decode().splitlines()
    note = client.get(f"/api/v2/journal/{org_slug}/checkpoint").content.decode()
    return notes.parse_checkpoint(notes.verify_note(note, notes.parse_verifier(keys[0])))


def error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()["error"]
    assert set(body) == {"code", "message", "fields"}
    if field is not None:
        assert field in body["fields"], body
    return body


@pytest.fixture
def agent(api, org, token_for):
    return api(token=token_for(org, Role.SNAPSHOTTER))


@pytest.fixture
def journal(org, agent):
    """The org's journal after real writes (the org's creation, a token, an environment and a snapshot
    reported through the kosli report path), with a published checkpoint."""
    assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    sent = agent.put("/api/v2/environments/acme/prod/report/server", data=json.dumps(server_report(fp(1))),
                     content_type="application/json")
    assert sent.status_code == 201, sent.content
    ingest_report(sent.json()["id"])
    return publish_checkpoint(org.pk)


# --- checkpoint and keys ------------------------------------------------------------------------------

def test_checkpoint_is_a_signed_note_over_the_whole_journal(owner_api, org, journal):
    response = owner_api.get(f"{BASE}/checkpoint")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    checkpoint = signed_checkpoint(owner_api)
    size = JournalHead.objects.get(org=org).last_index
    assert checkpoint.size == size == journal.size and size >= 4
    assert checkpoint.origin.endswith("/api/v2/journal/acme")
    assert checkpoint.root == mth(leaf_hashes(org))


def test_checkpoint_signature_breaks_when_the_note_is_changed(owner_api, journal):
    keys = owner_api.get(f"{BASE}/key").content.decode().splitlines()
    note = owner_api.get(f"{BASE}/checkpoint").content.decode()
    origin, size, rest = note.split("\n", 2)
    forged = f"{origin}\n{int(size) + 1}\n{rest}"
    with pytest.raises(notes.NoteError):
        notes.verify_note(forged, notes.parse_verifier(keys[0]))


def test_no_checkpoint_yet_is_a_404(owner_api, org):
    body = error(owner_api.get(f"{BASE}/checkpoint"), 404)
    assert body["code"] == "not_found" and "no checkpoint" in body["message"]


def test_keys_newest_first_and_old_checkpoints_keep_verifying(owner_api, org, journal, settings, tmp_path):
    old_note = owner_api.get(f"{BASE}/checkpoint").content.decode()
    settings.CSM_JOURNAL_KEY_FILE = tmp_path / "journal.key"
    new_signer = signing.rotate("example.test/journal-key-2")
    publish_checkpoint(org.pk, resign=True)
    response = owner_api.get(f"{BASE}/key")
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    keys = response.content.decode().splitlines()
    assert keys[0] == str(new_signer.verifier) and len(keys) >= 2
    verifiers = [notes.parse_verifier(k) for k in keys]
    new_note = owner_api.get(f"{BASE}/checkpoint").content.decode()
    assert notes.verify_note(new_note, verifiers[0])
    assert any(_verifies(old_note, v) for v in verifiers[1:])
    assert not _verifies(old_note, verifiers[0])


def _verifies(note: str, verifier) -> bool:
    try:
        notes.verify_note(note, verifier)
    except notes.NoteError:
        return False
    return True


# --- entries ------------------------------------------------------------------------------------------

def test_entry_is_the_exact_hashed_bytes(owner_api, org, journal):
    checkpoint = signed_checkpoint(owner_api)
    leaves = list(JournalLeaf.objects.filter(org=org).order_by("index"))
    for leaf in leaves:
        response = owner_api.get(f"{BASE}/entries/{leaf.index - 1}")  # Merkle index = journal index - 1
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response["Cache-Control"] == "private, max-age=31536000, immutable"
        assert response.content == leaf.payload.encode()
        assert json.loads(response.content)["index"] == leaf.index
    fetched = [hashlib.sha256(b"\x00" + owner_api.get(f"{BASE}/entries/{i}").content).digest()
               for i in range(checkpoint.size)]
    assert mth(fetched) == checkpoint.root


def test_entries_need_audit_view(api, org, journal, member_of, token_for, agent):
    for role in (Role.MEMBER, Role.READER):
        body = error(api(user=member_of(org, role)).get(f"{BASE}/entries/0"), 403)
        assert "audit.view" in body["message"]
        error(api(user=member_of(org, role)).get(f"{BASE}/tile/entries/000.p/1"), 403)
    assert "audit.view" in error(agent.get(f"{BASE}/entries/0"), 403)["message"]
    admin = api(token=token_for(org, Role.ADMIN))
    assert admin.get(f"{BASE}/entries/0").status_code == 200


# --- proofs -------------------------------------------------------------------------------------------

def test_every_inclusion_proof_verifies_against_the_signed_root(owner_api, org, journal):
    checkpoint = signed_checkpoint(owner_api)
    hashes = leaf_hashes(org)
    for index in range(checkpoint.size):
        response = owner_api.get(f"{BASE}/proof/inclusion", {"index": index})
        assert response.status_code == 200
        body = response.json()
        assert body["index"] == index and body["size"] == checkpoint.size
        proof = [base64.b64decode(h) for h in body["hashes"]]
        assert merkle.root_from_inclusion(index, checkpoint.size, hashes[index], proof) == checkpoint.root
        if proof:
            flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            assert merkle.root_from_inclusion(index, checkpoint.size, hashes[index], flipped) != checkpoint.root


def test_inclusion_proof_in_an_older_tree(owner_api, org, journal):
    hashes = leaf_hashes(org)
    body = owner_api.get(f"{BASE}/proof/inclusion", {"index": 1, "size": 3}).json()
    assert body["size"] == 3
    proof = [base64.b64decode(h) for h in body["hashes"]]
    assert merkle.root_from_inclusion(1, 3, hashes[1], proof) == mth(hashes[:3])


def test_consistency_between_two_signed_checkpoints(owner_api, org, journal):
    first = signed_checkpoint(owner_api)
    for n in range(5):
        append_leaf(org, "audit_event", {"n": n})
    publish_checkpoint(org.pk)
    second = signed_checkpoint(owner_api)
    assert second.size == first.size + 5
    response = owner_api.get(f"{BASE}/proof/consistency", {"from": first.size})
    assert response.status_code == 200
    body = response.json()
    assert body["from"] == first.size and body["to"] == second.size
    proof = [base64.b64decode(h) for h in body["hashes"]]
    assert merkle.verify_consistency(first.size, second.size, first.root, second.root, proof)
    other_root = mth(leaf_hashes(org)[1:first.size + 1])  # a history that was rewritten
    assert not merkle.verify_consistency(first.size, second.size, other_root, second.root, proof)
    explicit = owner_api.get(f"{BASE}/proof/consistency", {"from": 2, "to": first.size}).json()
    assert merkle.verify_consistency(2, first.size, mth(leaf_hashes(org)[:2]), first.root,
                                     [base64.b64decode(h) for h in explicit["hashes"]])


def test_bad_proof_parameters_are_400_naming_the_parameter(owner_api, journal):
    size = journal.size
    cases = [
        ("inclusion", {}, "index"),
        ("inclusion", {"index": "abc"}, "index"),
        ("inclusion", {"index": "-1"}, "index"),
        ("inclusion", {"index": "1.5"}, "index"),
        ("inclusion", {"index": str(size)}, "index"),
        ("inclusion", {"index": "0", "size": "x"}, "size"),
        ("inclusion", {"index": "0", "size": str(size + 1)}, "size"),
        ("inclusion", {"index": "3", "size": "3"}, "index"),
        ("inclusion", {"index": "9" * 30}, "index"),
        ("consistency", {}, "from"),
        ("consistency", {"from": "two"}, "from"),
        ("consistency", {"from": "-2"}, "from"),
        ("consistency", {"from": str(size + 1)}, "from"),
        ("consistency", {"from": "3", "to": "2"}, "from"),
        ("consistency", {"from": "1", "to": str(size + 1)}, "to"),
        ("consistency", {"from": "1", "to": "1e3"}, "to"),
    ]
    for kind, params, field in cases:
        body = error(owner_api.get(f"{BASE}/proof/{kind}", params), 400, field)
        assert body["code"] == "invalid", (kind, params, body)


def test_errors_are_json_whatever_the_client_accepts(owner_api, journal):
    response = owner_api.get(f"{BASE}/proof/inclusion", {"index": "x"}, HTTP_ACCEPT="text/plain")
    error(response, 400, "index")
    response = owner_api.get(f"{BASE}/tile/0/1", HTTP_ACCEPT="application/octet-stream")
    error(response, 400, "tile")


# --- tiles --------------------------------------------------------------------------------------------

def test_partial_level_0_tile_and_entry_bundle(owner_api, org, journal):
    size = journal.size
    hashes = leaf_hashes(org)
    response = owner_api.get(f"{BASE}/tile/0/000.p/{size}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"] == "public, max-age=60"
    assert response.content == b"".join(hashes)
    narrower = owner_api.get(f"{BASE}/tile/0/000.p/2")
    assert narrower.content == b"".join(hashes[:2])
    bundle = owner_api.get(f"{BASE}/tile/entries/000.p/{size}")
    assert bundle.status_code == 200 and bundle["Cache-Control"] == "private, max-age=60"
    assert parse_bundle(bundle.content) == [p.encode() for p in
                                            JournalLeaf.objects.filter(org=org).order_by("index")
                                            .values_list("payload", flat=True)]
    # Not yet published: the full tile, a wider partial tile, the next tile, a tile of level 1.
    for path in ("0/000", f"0/000.p/{size + 1}", "0/001.p/1", "1/000.p/1", "0/x001/000", "entries/000",
                 f"entries/000.p/{size + 1}"):
        body = error(owner_api.get(f"{BASE}/tile/{path}"), 404)
        assert body["code"] == "not_found", path


def parse_bundle(data: bytes) -> list[bytes]:
    """A C2SP entry bundle: each entry after its big-endian uint16 length."""
    entries, at = [], 0
    while at < len(data):
        (length,) = struct.unpack(">H", data[at:at + 2])
        entries.append(data[at + 2:at + 2 + length])
        at += 2 + length
    assert at == len(data)
    return entries


def test_full_tiles_and_level_1_from_300_leaves(owner_api, org, journal):
    for n in range(300):
        append_leaf(org, "audit_event", {"n": n})
    checkpoint = publish_checkpoint(org.pk)
    size = checkpoint.size
    hashes = leaf_hashes(org)
    full = owner_api.get(f"{BASE}/tile/0/000")
    assert full.status_code == 200
    assert full["Cache-Control"] == "public, max-age=31536000, immutable"
    assert full.content == b"".join(hashes[:256])
    rest = owner_api.get(f"{BASE}/tile/0/001.p/{size - 256}")
    assert rest.content == b"".join(hashes[256:size])
    level_1 = owner_api.get(f"{BASE}/tile/1/000.p/1")
    assert level_1.status_code == 200 and level_1["Cache-Control"] == "public, max-age=60"
    assert level_1.content == mth(hashes[:256])
    # The tiles alone rebuild the signed root: hash level 8 from tile 1, the rest from tile 0.
    right = mth(hashes[256:size])
    assert hashlib.sha256(b"\x01" + level_1.content + right).digest() == signed_checkpoint(owner_api).root
    bundle = owner_api.get(f"{BASE}/tile/entries/000")
    assert bundle["Cache-Control"] == "private, max-age=31536000, immutable"
    entries = parse_bundle(bundle.content)
    assert len(entries) == 256
    assert [hashlib.sha256(b"\x00" + e).digest() for e in entries] == hashes[:256]
    error(owner_api.get(f"{BASE}/tile/1/000"), 404)


def test_malformed_tile_paths_are_400_naming_the_problem(owner_api, journal):
    cases = {
        "": "level", "0": "index is missing", "0/": "index is missing", "0/1": "'1'", "0/0000": "'0000'",
        "00/000": "level", "64/000": "level", "a/000": "level", "0/000.p/0": "partial width",
        "0/000.p/256": "partial width", "0/000.p/01": "partial width", "0/000.p/": "partial width",
        "0/x000/001": "x000", "0/001/002": "'001'", "0/x1/000": "'x1'",
        "0/x001/x002/x003/x004/x005/x006/x007/008": "groups",
        "entries/": "index is missing", "entries/abc": "'abc'", "entries/000.p/300": "partial width",
        "entries/000/extra": "'000'",
    }
    for path, words in cases.items():
        body = error(owner_api.get(f"{BASE}/tile/{path}"), 400, "tile")
        assert body["message"].startswith("malformed tile path") and words in body["message"], (path, body)


def test_tile_paths_round_trip():
    assert index_path(1234067) == "x001/x234/067"
    assert index_path(0) == "000" and index_path(1000) == "x001/000"
    assert parse_hash_tile("2/x001/x234/067.p/5") == TileRef(2, 1234067, 5)
    assert parse_entry_bundle("x001/000") == TileRef(None, 1000, None)
    for ref in (TileRef(0, 0, None), TileRef(3, 999, 255), TileRef(None, 10**18, 1)):
        parse = parse_entry_bundle if ref.level is None else parse_hash_tile
        assert parse(ref.path.split("/", 1)[1] if ref.level is None else ref.path) == ref


# --- who may read ---------------------------------------------------------------------------------------

READABLE = ["checkpoint", "key", "proof/inclusion?index=0", "proof/consistency?from=1", "tile/0/000.p/1"]


def test_every_role_reads_checkpoints_keys_proofs_and_hash_tiles(api, org, journal, member_of, agent):
    clients = [agent] + [api(user=member_of(org, role)) for role in (Role.MEMBER, Role.READER, Role.ADMIN)]
    for client in clients:
        for path in READABLE:
            assert client.get(f"{BASE}/{path}").status_code == 200, path
    checkpoint = signed_checkpoint(agent)  # a witness agent verifies with what it may read
    assert checkpoint.size == journal.size


def test_another_orgs_journal_is_a_404(api, org, other_org, journal, make_user, token_for):
    publish_checkpoint(other_org.pk)
    outsiders = [api(token=token_for(other_org, Role.ADMIN)), api(user=make_user())]
    for client in outsiders:
        for path in [*READABLE, "entries/0", "tile/entries/000.p/1"]:
            error(client.get(f"{BASE}/{path}"), 404)
    error(api(token=token_for(other_org, Role.ADMIN)).get("/api/v2/journal/no-such-org/checkpoint"), 404)


def test_anonymous_is_a_401(api, journal):
    assert api().get(f"{BASE}/checkpoint").status_code == 401
