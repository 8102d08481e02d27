"""Witnesses against a running csm (live server, real tokens): ``csm-verify monitor`` and ``csm-agent`` keep
the last checkpoint per org and check each new one with the server's consistency proof.

The attack they exist for: a database administrator disables the append-only triggers, deletes the newest
leaves, nodes, checkpoints and the tree, appends different leaves and lets csm sign a fresh checkpoint.
Every hash inside the database is then self-consistent; only a client that kept an older checkpoint can
tell — and must, loudly, without accepting the new one.
"""

import json

import pytest
from csm_agent.cli import main as agent_main
from csm_agent.verify import main as verify_main
from django.db import connection

from journal import notes, signing
from journal.choices import LeafKind
from journal.models import JournalCheckpoint, JournalCosignature, JournalHead, JournalLeaf, JournalNode, JournalTree
from journal.services import append_leaf, publish_checkpoint

pytestmark = pytest.mark.django_db(transaction=True)


def grow(org, count, tag="honest"):
    for i in range(count):
        append_leaf(org, LeafKind.AUDIT_EVENT, {"n": i, "tag": tag})
    return publish_checkpoint(org.pk)


def rewrite_history(org, keep, append):
    """What a database superuser can do: drop every leaf after #``keep`` with the tree, its nodes and every
    checkpoint, append other leaves (a freshly recomputed chain) and have csm sign the result."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            for model in (JournalCosignature, JournalCheckpoint, JournalNode, JournalTree):
                cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE org_id = %s", [org.pk])  # noqa: S608
            leaves, head = JournalLeaf._meta.db_table, JournalHead._meta.db_table
            cursor.execute(f'DELETE FROM {leaves} WHERE org_id = %s AND "index" > %s', [org.pk, keep])  # noqa: S608
            cursor.execute(f'UPDATE {head} SET last_index = %s, last_hash = (SELECT leaf_hash FROM {leaves} '  # noqa: S608
                           f'WHERE org_id = %s AND "index" = %s) WHERE org_id = %s', [keep, org.pk, keep, org.pk])
        finally:
            cursor.execute("SET session_replication_role = origin")
    for i in range(append):
        append_leaf(org, LeafKind.AUDIT_EVENT, {"n": i, "tag": "forged"})
    return publish_checkpoint(org.pk)


@pytest.fixture
def key():
    return str(signing.current_signer().verifier)


@pytest.fixture
def monitor(live_server, org, token_for, key, tmp_path, capsys, monkeypatch):
    """monitor(*extra) -> (exit code, stdout, stderr) of ``csm-verify monitor`` for ``org``, with a reader token."""
    monkeypatch.setenv("WITNESS_TOKEN", token_for(org, "reader"))
    state = tmp_path / "state"

    def invoke(*extra, key=key):
        code = verify_main(["monitor", "--state", str(state), "--server", live_server.url, "--org", org.slug,
                            "--key", key, "--token-env", "WITNESS_TOKEN", *map(str, extra)])
        out, err = capsys.readouterr()
        return code, out, err

    invoke.state = state
    return invoke


def state_files(state):
    return sorted(p.name for p in state.iterdir()) if state.exists() else []


def test_monitor_keeps_the_first_checkpoint_and_follows_a_growing_journal(monitor, org):
    first = grow(org, 5)
    code, out, err = monitor()
    assert code == 0, err
    assert f"first checkpoint kept: size {first.size}" in out
    [name] = state_files(monitor.state)
    kept = json.loads((monitor.state / name).read_text())
    assert kept["size"] == first.size and kept["org"] == org.slug and kept["checkpoint"] == first.note

    second = grow(org, 7)
    code, out, err = monitor()
    assert code == 0, err
    assert f"size {first.size} -> {second.size} is consistent" in out
    assert json.loads((monitor.state / name).read_text())["size"] == second.size

    code, out, _ = monitor()
    assert code == 0 and f"unchanged at size {second.size}" in out


def test_monitor_fails_loudly_on_a_rewritten_history_and_keeps_its_state(monitor, org):
    kept = grow(org, 8)
    assert monitor()[0] == 0
    [name] = state_files(monitor.state)
    before = (monitor.state / name).read_bytes()

    forged = rewrite_history(org, keep=kept.size - 3, append=6)  # bigger than before, every hash recomputed
    assert forged.size == kept.size + 3
    code, out, err = monitor()
    assert code == 1
    assert "JOURNAL INCONSISTENT" in err and repr(org.slug) in err and "history was rewritten" in err
    assert out == ""
    assert (monitor.state / name).read_bytes() == before  # NOT advanced
    evidence = [n for n in state_files(monitor.state) if ".inconsistent-" in n]
    assert len(evidence) == 1
    saved = json.loads((monitor.state / evidence[0]).read_text())
    assert saved["held_checkpoint"] == kept.note and saved["rejected_checkpoint"] == forged.note

    assert monitor()[0] == 1  # and again on the next run: the forged log is never accepted


def test_monitor_rejects_a_same_size_fork_and_a_shrunk_tree(monitor, org):
    kept = grow(org, 6)
    assert monitor()[0] == 0
    rewrite_history(org, keep=kept.size - 2, append=2)  # same size, other leaves
    code, _, err = monitor()
    assert code == 1 and "two different roots for the same tree size" in err

    rewrite_history(org, keep=kept.size - 4, append=0)
    code, _, err = monitor()
    assert code == 1 and f"shrank from {kept.size}" in err


def test_monitor_accepts_only_the_pinned_key(monitor, org):
    grow(org, 3)
    stranger = str(notes.generate_signer("stranger").verifier)
    code, _, err = monitor(key=stranger)
    assert code == 1 and "REJECTED" in err and "no signature by a pinned key" in err
    assert state_files(monitor.state) == []


def test_monitor_with_a_bad_token_or_server_is_an_input_error(monitor, org, live_server, monkeypatch):
    grow(org, 2)
    monkeypatch.setenv("WITNESS_TOKEN", "csm_not_a_real_token")
    code, _, err = monitor()
    assert code == 2 and "HTTP 401" in err and "not checked" in err
    assert state_files(monitor.state) == []


def test_monitor_cosigns_consistent_checkpoints_and_a_refused_post_is_a_warning(monitor, org, tmp_path):
    grow(org, 4)
    key_file = tmp_path / "witness.key"
    assert verify_main(["witness-key", "--name", "auditor.example/w", "--out", str(key_file)]) == 0
    code, out, err = monitor("--cosign-key", key_file)
    assert code == 0, err
    # Whether this csm accepts the witness (CSM_JOURNAL_WITNESS_KEYS) or not, the check itself passed;
    # a refused cosignature is reported, never turned into a verification failure.
    assert "cosigned size" in out or "warning: the cosignature was not accepted" in err


# --- every agent a witness ---------------------------------------------------------------------------------

@pytest.fixture
def agent(live_server, org, token_for, tmp_path, capsys):
    """agent(*extra) -> (exit code, stdout, stderr) of ``csm-agent snapshot path`` with a snapshotter token."""
    token = token_for(org, "snapshotter")
    release = tmp_path / "release.txt"
    release.write_text("v1\n")

    def invoke(*extra):
        code = agent_main(["--host", live_server.url, "--org", org.slug, "--api-token", token, *map(str, extra),
                           "snapshot", "path", "web-01", "--path", str(release), "--name", "billing",
                           "--auto-environment"])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_the_agent_trusts_the_key_on_first_use_then_catches_a_rewrite(agent, org, agent_env):
    kept = grow(org, 5)
    code, _, err = agent()
    assert code == 0, err
    assert "trusting journal key on first use" in err and str(signing.current_signer().verifier) in err
    assert f"first checkpoint kept (size {kept.size})" in err
    state_dir = agent_env / ".config" / "csm" / "journal"
    [name] = state_files(state_dir)

    grown = grow(org, 3)
    code, _, err = agent()
    assert code == 0, err
    assert f"size {kept.size} -> {grown.size}, consistent" in err and "first use" not in err

    rewrite_history(org, keep=2, append=20)
    before = (state_dir / name).read_bytes()
    code, _, err = agent()
    assert code == 4
    assert "JOURNAL INCONSISTENT" in err and "failed the witness check" in err
    assert (state_dir / name).read_bytes() == before

    code, _, err = agent("--no-journal-check")  # an operator can switch the witness off
    assert code == 0 and "JOURNAL" not in err


def test_the_agent_with_a_pinned_key_refuses_another(agent, org, tmp_path):
    grow(org, 2)
    stranger = str(notes.generate_signer("stranger").verifier)
    code, _, err = agent("--journal-key", stranger, "--journal-state", tmp_path / "witness")
    assert code == 4 and "no signature by a pinned key" in err
    assert state_files(tmp_path / "witness") == []
    code, _, err = agent("--journal-key", str(signing.current_signer().verifier),
                         "--journal-state", tmp_path / "witness")
    assert code == 0 and "first use" not in err and "first checkpoint kept" in err
    assert agent("--journal-key", "garbage")[0] == 1  # a bad pinned key is a configuration error


def test_an_agent_that_cannot_keep_state_warns_and_still_reports(agent, org, tmp_path):
    """A read-only file system (a CronJob without a volume) must not turn a good report into a crash."""
    grow(org, 2)
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    code, _, err = agent("--journal-state", blocked / "journal")
    assert code == 0, err
    assert "journal was not checked" in err and "file-not-dir/journal" in err


def test_inclusion_and_consistency_proofs_fetched_from_the_server(live_server, org, token_for, key, tmp_path,
                                                                  capsys, monkeypatch):
    monkeypatch.setenv("CSM_API_TOKEN", token_for(org, "reader"))
    old = grow(org, 4)
    new = grow(org, 9)
    old_path, new_path = tmp_path / "old.txt", tmp_path / "new.txt"
    old_path.write_text(old.note)
    new_path.write_text(new.note)
    server = ["--server", live_server.url, "--org", org.slug, "--key", key]
    inclusion = ["inclusion", "--checkpoint", str(new_path)]
    leaf = JournalLeaf.objects.get(org=org, index=3)
    entry = tmp_path / "entry.bin"
    entry.write_bytes(leaf.payload.encode())

    assert verify_main([*inclusion, "--index", "2", "--entry", str(entry), *server]) == 0
    assert verify_main(["consistency", "--old", str(old_path), "--new", str(new_path), *server]) == 0
    assert "extends size" in capsys.readouterr().out
    # The same leaf claimed at another position: the server's proof for that position does not fit it.
    assert verify_main([*inclusion, "--index", "5", "--entry", str(entry), *server]) == 1
    assert "not in the tree" in capsys.readouterr().err

    assert rewrite_history(org, keep=2, append=30).size > new.size  # proofs of another history, same sizes
    assert verify_main(["consistency", "--old", str(old_path), "--new", str(new_path), *server]) == 1
    assert "history was rewritten" in capsys.readouterr().err
