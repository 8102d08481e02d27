"""Every record that appends a journal leaf answers its ``journal_index`` (1-based) in the API, and that
number leads a verifier to the leaf that committed to the record: ``entries/{journal_index - 1}`` is that
record's leaf, and its inclusion proof verifies against the signed checkpoint."""

import base64
import hashlib
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from journal import merkle, notes
from journal.services import publish_checkpoint
from reports.tasks import generate_report
from snapshots.models import Snapshot
from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, report_artifact  # noqa: F401
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

BASE = "/api/v2/journal/acme"


@pytest.fixture
def agent(api, org, token_for):
    return api(token=token_for(org, Role.SNAPSHOTTER))


@pytest.fixture
def admin(api, org, token_for):
    return api(token=token_for(org, Role.ADMIN))


def committed_leaf(client, org, journal_index: int) -> dict:
    """The leaf at ``journal_index`` as a verifier reads it: publish a checkpoint, fetch the entry, check
    its inclusion proof against the signed root, and return the parsed leaf."""
    publish_checkpoint(org.pk)
    key = notes.parse_verifier(client.get(f"{BASE}/key").content.decode().splitlines()[0])
    checkpoint = notes.parse_checkpoint(notes.verify_note(client.get(f"{BASE}/checkpoint").content.decode(), key))
    index = journal_index - 1  # Merkle indices are 0-based
    entry = client.get(f"{BASE}/entries/{index}")
    assert entry.status_code == 200
    proof = client.get(f"{BASE}/proof/inclusion", {"index": index}).json()["hashes"]
    leaf = hashlib.sha256(b"\x00" + entry.content).digest()
    assert merkle.root_from_inclusion(index, checkpoint.size, leaf, [base64.b64decode(h) for h in proof]) \
        == checkpoint.root
    payload = json.loads(entry.content)
    assert payload["index"] == journal_index
    return payload


def snapshot_reported(agent, n: int):
    sent = agent.put("/api/v2/environments/acme/prod/report/server", data=json.dumps(server_report(fp(n))),
                     content_type="application/json")
    assert sent.status_code == 201, sent.content
    ingest_report(sent.json()["id"])


@pytest.fixture
def prod(agent):
    assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201


def test_snapshot_answers_carry_their_leaf(owner_api, admin, org, agent, prod):
    for n in (1, 2, 3):
        snapshot_reported(agent, n)
    detail = owner_api.get("/api/v2/snapshots/acme/prod/2").json()
    snapshot = Snapshot.objects.get(environment__name="prod", index=2)
    assert detail["journal_index"] == snapshot.leaf.index
    leaf = committed_leaf(admin, org, detail["journal_index"])
    assert leaf["kind"] == "snapshot" and leaf["data"]["hash"] == detail["hash"] == snapshot.hash
    listed = owner_api.get("/api/v2/snapshots/acme/prod").json()
    expected = {s.index: s.leaf.index for s in Snapshot.objects.filter(environment__name="prod").select_related("leaf")}
    assert {row["index"]: row["journal_index"] for row in listed} == expected
    latest = owner_api.get("/api/v2/snapshots/acme/prod/-1").json()
    assert latest["journal_index"] == expected[3] > expected[2] > expected[1]


def test_snapshot_list_reads_the_journal_index_without_a_query_per_row(owner_api, agent, prod):
    snapshot_reported(agent, 1)
    snapshot_reported(agent, 2)
    with CaptureQueriesContext(connection) as two:
        assert len(owner_api.get("/api/v2/snapshots/acme/prod").json()) == 2
    for n in range(3, 8):
        snapshot_reported(agent, n)
    with CaptureQueriesContext(connection) as seven:
        assert len(owner_api.get("/api/v2/snapshots/acme/prod").json()) == 7
    assert len(seven) == len(two)


def test_artifact_attestation_and_evidence_file_answers_carry_their_leaves(admin, org):
    make_flow(admin)
    begin_trail(admin, commit="a" * 40)
    artifact = report_artifact(admin, fp(9))
    assert artifact.status_code in (200, 201), artifact.content
    artifact_leaf = committed_leaf(admin, org, artifact.json()["journal_index"])
    assert artifact_leaf["kind"] == "artifact" and artifact_leaf["data"]["fingerprint"] == fp(9)

    created = attest(admin, "acme", "backend", "build-1", "generic",
                     {"attestation_name": "unit-tests", "artifact_fingerprint": fp(9)},
                     b"all 120 tests passed\n", "results.txt")
    assert created.status_code == 201, created.content
    body = created.json()
    leaf = committed_leaf(admin, org, body["journal_index"])
    assert leaf["kind"] == "attestation" and leaf["data"]["id"] == body["id"]
    assert body["journal"]["index"] == body["journal_index"]

    detail = admin.get(f"/api/v2/attestations/acme/id/{body['id']}")
    listed = admin.get("/api/v2/attestations/acme/backend/trail/build-1").json()
    artifact_view = admin.get(f"/api/v2/artifacts/acme/backend/fingerprint/{fp(9)}").json()
    for answer in (detail.json(), listed[0], artifact_view["attestations"][0]):
        assert answer["journal_index"] == body["journal_index"]
    assert artifact_view["journal_index"] == artifact.json()["journal_index"]

    evidence = detail.json()["evidence"][0]
    sha = hashlib.sha256(b"all 120 tests passed\n").hexdigest()
    assert evidence["sha256"] == sha
    file_leaf = committed_leaf(admin, org, evidence["journal_index"])
    assert file_leaf["kind"] == "evidence_file" and file_leaf["data"]["sha256"] == sha
    assert admin.get(f"/api/v2/evidence/acme/{sha}").json()["journal_index"] == evidence["journal_index"]
    assert listed[0]["evidence"][0]["journal_index"] == evidence["journal_index"]


def test_report_answer_carries_its_own_leaf_and_keeps_covers_index(admin, org):
    requested = admin.post("/api/v2/orgs/acme/reports", {"kind": "org", "from": "2000-01-01", "to": "2100-01-01"},
                           format="json")
    assert requested.status_code == 202, requested.content
    assert requested.json()["journal_index"] is None  # no output, no leaf yet
    generate_report.run(requested.json()["id"], {})
    body = admin.get(f"/api/v2/orgs/acme/reports/{requested.json()['id']}").json()
    assert body["journal_index"] == body["journal"]["report_leaf_index"] > body["journal"]["covers_index"]
    leaf = committed_leaf(admin, org, body["journal_index"])
    assert leaf["kind"] == "report" and leaf["data"]["pdf_sha256"] == body["pdf_sha256"]
    listed = admin.get("/api/v2/orgs/acme/reports").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["journal_index"] for r in rows if r["id"] == body["id"]] == [body["journal_index"]]
