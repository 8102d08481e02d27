"""csm-verify offline, against what the server really publishes: checkpoints signed with the server's key
(journal.services.publish_checkpoint), proofs and proof bundles from journal.selectors, report JSON and PDF
exports, audit packages. The auditor holds only the verifier key; anything altered must fail, naming what.
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from csm_agent import tlog
from csm_agent.verify import main

from journal import notes, selectors, signing
from journal.choices import LeafKind
from journal.services import append_leaf, publish_checkpoint

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(capsys):
    def invoke(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def grow(org, count, tag="v1"):
    for i in range(count):
        append_leaf(org, LeafKind.AUDIT_EVENT, {"n": i, "tag": tag})
    return publish_checkpoint(org.pk)


@pytest.fixture
def key():
    return str(signing.current_signer().verifier)


@pytest.fixture
def journal(org, tmp_path):
    """The org's journal with some leaves and a fresh checkpoint, its note written to a file."""
    checkpoint = grow(org, 12)
    path = tmp_path / "checkpoint.txt"
    path.write_text(selectors.served_note(checkpoint))
    return checkpoint, path


def other_key():
    return str(notes.generate_signer("someone-else").verifier)


def test_a_signed_checkpoint_verifies_only_against_its_pinned_key(run, journal, key, tmp_path, monkeypatch):
    checkpoint, path = journal
    code, out, _ = run("checkpoint", path, "--key", key)
    assert code == 0 and f"size {checkpoint.size}" in out and checkpoint.key_name in out

    code, _, err = run("checkpoint", path, "--key", other_key())
    assert code == 1 and "no signature by a pinned key" in err

    note = path.read_text()
    forged = tmp_path / "forged.txt"
    forged.write_text(note.replace(f"\n{checkpoint.size}\n", f"\n{checkpoint.size + 1}\n", 1))
    code, _, err = run("checkpoint", forged, "--key", key)
    assert code == 1 and "does not verify" in err

    code, _, err = run("checkpoint", path, "--key", key, "--origin", "evil.example/api/v2/journal/x")
    assert code == 1 and "not 'evil.example" in err

    keys = tmp_path / "keys.txt"  # a key history file: the older key first is fine
    keys.write_text(f"# csm keys\n{other_key()}\n{key}\n")
    assert run("checkpoint", path, "--key-file", keys)[0] == 0

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(note.encode())))
    assert run("checkpoint", "-", "--key", key)[0] == 0


def test_bad_input_is_a_usage_error_not_a_verdict(run, journal, key, tmp_path):
    _, path = journal
    assert run("checkpoint", path, "--key", "not-a-key")[0] == 2
    assert run("checkpoint", path)[0] == 2  # no pinned key: refuse to "verify" anything
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\n")
    code, _, err = run("checkpoint", garbage, "--key", key)
    assert code == 2 and "blank line" in err
    assert run("checkpoint", tmp_path / "missing.txt", "--key", key)[0] == 2
    assert run("frobnicate")[0] == 2


def test_the_module_runs_as_a_program(journal, key):
    _, path = journal
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'agent'}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-m", "csm_agent.verify", "checkpoint", str(path), "--key", key],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK checkpoint")


def test_witness_keys_and_cosignatures_interoperate_with_the_server(run, journal, key, tmp_path):
    checkpoint, path = journal
    key_file = tmp_path / "witness.key"
    code, out, _ = run("witness-key", "--name", "witness.example/w1", "--out", key_file)
    assert code == 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    verifier = notes.parse_verifier(out.strip())  # the server parses what the operator is given
    assert verifier.alg == notes.ALG_COSIGNATURE
    assert run("witness-key", "--name", "again", "--out", key_file)[0] == 2  # never overwritten

    witness = tlog.parse_witness_key(key_file.read_text())
    body = checkpoint.note.split("\n\n")[0] + "\n"
    line = witness.cosign(body, timestamp=1_700_000_000)
    _, [sig] = notes.split_note(body + "\n" + line)
    assert notes.verify_cosignature(body, sig, verifier) == 1_700_000_000

    second = notes.generate_signer("w2")  # a cosignature made by the server's code, checked by ours
    server_sig = notes.cosign(body, "w2", second.private, 1_700_000_001)
    w2 = str(notes.cosignature_verifier("w2", second.verifier.public))
    cosigned = tmp_path / "cosigned.txt"
    cosigned.write_text(path.read_text() + line + server_sig.line)
    code, out, _ = run("checkpoint", cosigned, "--key", key, "--witness-key", out.strip(), "--witness-key", w2)
    assert code == 0 and "cosigned by 2 of 2" in out

    only_one = tmp_path / "one.txt"
    only_one.write_text(path.read_text() + line)
    code, _, err = run("checkpoint", only_one, "--key", key, "--witness-key", str(witness.public),
                       "--witness-key", w2)
    assert code == 1 and "missing: w2" in err
    assert run("checkpoint", only_one, "--key", key, "--witness-key", str(witness.public), "--witness-key", w2,
               "--quorum", "1")[0] == 0
    tampered = tmp_path / "tampered.txt"
    tampered.write_text(path.read_text() + witness.cosign(body.replace(f"\n{checkpoint.size}\n", "\n99\n")))
    code, _, err = run("checkpoint", tampered, "--key", key, "--witness-key", str(witness.public))
    assert code == 1 and "does not verify" in err


def test_inclusion_of_an_entry_from_files(run, org, journal, key, tmp_path):
    checkpoint, path = journal
    index = 4
    entry = tmp_path / "entry.bin"
    entry.write_bytes(selectors.entry(org, index))
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps({"index": index, "size": checkpoint.size,
                                 "hashes": [selectors.b64(h) for h in selectors.inclusion(org, index,
                                                                                          checkpoint.size)]}))
    code, out, _ = run("inclusion", "--checkpoint", path, "--key", key, "--index", index, "--entry", entry,
                       "--proof", proof)
    assert code == 0 and "journal #5" in out
    leaf = base64.b64encode(hashlib.sha256(b"\x00" + entry.read_bytes()).digest()).decode()
    assert run("inclusion", "--checkpoint", path, "--key", key, "--index", index, "--leaf-hash", leaf,
               "--proof", proof)[0] == 0

    entry.write_bytes(entry.read_bytes().replace(b'"n":', b'"n": '))  # one byte more: another leaf
    code, _, err = run("inclusion", "--checkpoint", path, "--key", key, "--index", index, "--entry", entry,
                       "--proof", proof)
    assert code == 1 and "not in the tree" in err
    code, _, err = run("inclusion", "--checkpoint", path, "--key", key, "--index", 3, "--leaf-hash", leaf,
                       "--proof", proof)
    assert code == 2 and "not the inclusion proof of leaf 3" in err


def test_consistency_between_two_checkpoints_from_files(run, org, journal, key, tmp_path):
    old, old_path = journal
    new = grow(org, 9, tag="later")
    new_path = tmp_path / "new.txt"
    new_path.write_text(selectors.served_note(new))
    proof = tmp_path / "consistency.json"
    proof.write_text(json.dumps({"from": old.size, "to": new.size,
                                 "hashes": [selectors.b64(h) for h in selectors.consistency(org, old.size, new.size)]}))
    code, out, _ = run("consistency", "--old", old_path, "--new", new_path, "--proof", proof, "--key", key)
    assert code == 0 and f"extends size {old.size}" in out
    # Swapped: the "old" one is larger: the tree would have shrunk.
    assert run("consistency", "--old", new_path, "--new", old_path, "--proof", proof, "--key", key)[0] == 2
    assert run("consistency", "--old", old_path, "--new", old_path, "--key", key)[0] == 0  # equal: no proof needed
    # A fork: the real key signing another root at the same size (what a compromised server could do).
    fork = tmp_path / "fork.txt"
    fork.write_text(signing.current_signer().sign(notes.Checkpoint(
        notes.parse_checkpoint(old.note.split("\n\n")[0] + "\n").origin, old.size, bytes(32)).body()))
    code, _, err = run("consistency", "--old", old_path, "--new", fork, "--key", key)
    assert code == 1 and "two different roots" in err

    data = json.loads(proof.read_text())
    data["hashes"][0] = selectors.b64(bytes(32))
    proof.write_text(json.dumps(data))
    assert run("consistency", "--old", old_path, "--new", new_path, "--proof", proof, "--key", key)[0] == 1


# --- reports ---------------------------------------------------------------------------------------------

def report_export(org, cite=(2, 5, 7)):
    """A report JSON export as the reports app shapes it: the cited records and the proof bundle."""
    from journal.models import JournalLeaf

    leaves = {leaf.index: leaf for leaf in JournalLeaf.objects.filter(org=org, index__in=cite)}
    cited = [["audit_event", i, leaves[i].leaf_hash, f"event {i}"] for i in cite]
    return {"title": "Quarterly audit", "integrity": {"cited": cited, "proofs": selectors.proof_bundle(org, cite)}}


def test_a_report_export_proves_every_cited_record(run, org, journal, key, tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report_export(org)))
    code, out, _ = run("report", path, "--key", key)
    assert code == 0 and "all 3 cited records" in out

    # The bundle's own keys are informational: an auditor pinning another key gets a failure.
    assert run("report", path, "--key", other_key())[0] == 1
    assert run("report", path)[0] == 2


def test_a_report_whose_citation_or_proof_was_altered_names_the_record(run, org, journal, key, tmp_path):
    data = report_export(org)
    data["integrity"]["cited"][1][2] = "ab" * 32
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    code, _, err = run("report", path, "--key", key)
    assert code == 1 and "audit_event event 5 (journal #5)" in err and "1 of 3" in err

    data = report_export(org)
    data["integrity"]["cited"].append(["snapshot", 9, "cd" * 32, "prod#3"])
    path.write_text(json.dumps(data))
    code, _, err = run("report", path, "--key", key)
    assert code == 1 and "snapshot prod#3 (journal #9): no inclusion proof" in err

    data = report_export(org)
    data["integrity"]["proofs"]["proofs"][2]["hashes"][0] = selectors.b64(bytes(32))
    path.write_text(json.dumps(data))
    code, _, err = run("report", path, "--key", key)
    assert code == 1 and "journal #7" in err

    data = report_export(org)
    data["integrity"]["proofs"]["root_hash"] = selectors.b64(bytes(32))
    path.write_text(json.dumps(data))
    assert run("report", path, "--key", key)[0] == 1


def test_a_report_pdf_is_verified_from_its_attached_json(run, org, journal, key, tmp_path):
    from weasyprint import HTML, Attachment

    export = json.dumps(report_export(org), sort_keys=True, separators=(",", ":"))
    html = HTML(string="<h1>Quarterly audit</h1><p>Integrity: see the attached report.json.</p>")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(html.write_pdf(attachments=[Attachment(string=export, name="report.json")]))
    code, out, _ = run("report", pdf, "--key", key)
    assert code == 0 and "all 3 cited records" in out

    plain = tmp_path / "plain.pdf"  # streams stored without FlateDecode are found too
    plain.write_bytes(html.write_pdf(attachments=[Attachment(string=export, name="report.json")],
                                     uncompressed_pdf=True))
    assert run("report", plain, "--key", key)[0] == 0

    bare = tmp_path / "bare.pdf"
    bare.write_bytes(html.write_pdf())
    code, _, err = run("report", bare, "--key", key)
    assert code == 2 and "no attached report JSON" in err


# --- audit packages ----------------------------------------------------------------------------------------

def package(org, tmp_path, *, content=b"pytest report\n", manifest_changes=None):
    from journal.models import JournalLeaf

    leaves = {leaf.index: leaf.leaf_hash for leaf in JournalLeaf.objects.filter(org=org, index__in=[3, 6, 8])}
    evidence = b"pytest report\n"
    file_entry = {"path": "evidence/1-tests/junit.xml", "sha256": hashlib.sha256(evidence).hexdigest(),
                  "size": len(evidence), "journal": {"index": 8, "leaf_hash": leaves[8]}}
    manifest = {
        "format": "csm-audit-package/1", "org": org.slug,
        "artifacts": [{"fingerprint": "a" * 64, "journal": {"index": 3, "leaf_hash": leaves[3]}}],
        "attestations": [{"name": "tests", "journal": {"index": 6, "leaf_hash": leaves[6]}, "files": [file_entry]}],
        "files": [file_entry], "journal_proofs": selectors.proof_bundle(org, [3, 6, 8]),
    }
    if manifest_changes:
        manifest_changes(manifest)
    path = tmp_path / "audit-package.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("evidence/1-tests/junit.xml", content), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_an_audit_package_proves_every_record_and_file(run, org, journal, key, tmp_path):
    code, out, _ = run("package", package(org, tmp_path), "--key", key)
    assert code == 0 and "all 3 cited records" in out

    code, _, err = run("package", package(org, tmp_path, content=b"doctored\n"), "--key", key)
    assert code == 1 and "file evidence/1-tests/junit.xml" in err

    def uncovered(manifest):
        manifest["artifacts"].append({"fingerprint": "b" * 64, "journal": {"index": 11, "leaf_hash": "0" * 64}})

    code, _, err = run("package", package(org, tmp_path, manifest_changes=uncovered), "--key", key)
    assert code == 1 and "artifacts " + "b" * 64 + " (journal #11): no inclusion proof" in err

    not_a_package = tmp_path / "x.tar.gz"
    not_a_package.write_bytes(b"nope")
    assert run("package", not_a_package, "--key", key)[0] == 2


def test_verifier_keys_from_the_server_parse_whatever_their_base64_holds():
    """Base64 keys often contain '+', the field separator: names and ids never do, so only the first two
    '+' split. Forty keys make one without a '+' in its key astronomically unlikely."""
    for i in range(40):
        signer = notes.generate_signer(f"csm.example/key-{i}")
        assert str(tlog.parse_public_key(str(signer.verifier))) == str(signer.verifier)
    keys = [str(notes.generate_signer(f"k{i}").verifier) for i in range(40)]
    assert any("+" in k.split("+", 2)[2] for k in keys)


def test_monitor_posts_a_valid_cosignature_of_the_checkpoint_it_checked(run, org, journal, key, tmp_path,
                                                                        monkeypatch):
    """What csm receives from a cosigning witness: the cosignature line, as text/plain, with the token;
    checked here with the server's own cosignature code. (A csm that refuses it: see test_verify_monitor.)"""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    checkpoint, path = journal
    posted = []

    class Csm(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = path.read_bytes() if self.path == f"/api/v2/journal/{org.slug}/checkpoint" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            posted.append((self.path, dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Csm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key_file = tmp_path / "w.key"
        run("witness-key", "--name", "w1", "--out", key_file)
        monkeypatch.setenv("WITNESS_TOKEN", "tok_witness")
        code, out, err = run("monitor", "--state", tmp_path / "state", "--server", f"http://127.0.0.1:{server.server_port}",
                             "--org", org.slug, "--key", key, "--token-env", "WITNESS_TOKEN", "--cosign-key", key_file)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, err
    assert f"cosigned size {checkpoint.size} as witness w1" in out
    [(where, headers, body)] = posted
    assert where == f"/api/v2/journal/{org.slug}/cosignature"
    assert headers["Content-Type"].startswith("text/plain") and headers["Authorization"] == "Bearer tok_witness"
    witness = tlog.parse_witness_key(key_file.read_text())
    note_body = checkpoint.note.split("\n\n")[0] + "\n"
    _, [sig] = notes.split_note(note_body + "\n" + body.decode())
    verifier = notes.cosignature_verifier("w1", witness.public.public)
    assert notes.verify_cosignature(note_body, sig, verifier) > 0
