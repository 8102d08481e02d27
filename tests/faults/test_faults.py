"""The fault suite (issue 18): real processes, real faults — PostgreSQL restarted mid-ingest, the broker
killed and restarted empty, the worker killed mid-transaction, the evidence store full. After each,
``prove``: every accepted report is stored exactly once and became history in acceptance order, the
journal verifies, and the service is ready again without an operator (see tests/faults/conftest.py for
the private deployment these run against, and docs/operations.md, "Failure modes and recovery")."""

import hashlib
import json
import os
import signal
import subprocess

import pytest
import requests

from tests.conftest import wait_for
from tests.faults.conftest import ORG, Agent, finish, json_error, prove

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def accepted(agents) -> int:
    return sum(len(agent.accepted) for agent in agents)


def test_postgresql_restarted_mid_ingest_loses_and_duplicates_nothing(stack):
    agents = [Agent(stack, f"pg-{n}") for n in range(3)]
    threads = [agent.run(range(1, 16)) for agent in agents]
    wait_for(lambda: accepted(agents) >= 10 or not any(t.is_alive() for t in threads), what="reports to flow")
    stack.pg.restart("fast")  # a clean restart: sessions terminated, transactions in flight rolled back
    wait_for(lambda: accepted(agents) >= 25 or not any(t.is_alive() for t in threads), what="reports to flow")
    stack.pg.restart("immediate")  # a crash: no shutdown checkpoint, WAL recovery at start
    finish(threads, agents)
    assert accepted(agents) == 45
    prove(stack, agents)


def test_broker_killed_and_restarted_empty_loses_nothing(stack):
    agents = [Agent(stack, f"broker-{n}") for n in range(3)]
    threads = [agent.run(range(1, 16)) for agent in agents]
    wait_for(lambda: accepted(agents) >= 8 or not any(t.is_alive() for t in threads), what="reports to flow")
    stack.redis.send_signal(signal.SIGKILL)  # every queued message is gone with it
    stack.redis.wait(timeout=30)
    during = accepted(agents)
    # The web app keeps accepting while the broker is down: reports are stored in PostgreSQL, and the
    # failure to enqueue their ingest is only logged (as is the cache's absence: csm/cache.py).
    finish(threads, agents)
    assert accepted(agents) == 45 and during < 45
    assert stack.get("/ready").status_code == 503  # not ready (the broker), yet accepting reports
    assert stack.pending() > 0  # accepted and stored, never published
    stack.start_redis()  # back, empty: only the sweeper (beat) can publish what was accepted meanwhile
    prove(stack, agents)


def test_worker_killed_mid_transaction_ingests_each_report_once(stack):
    agents = [Agent(stack, f"worker-{n}") for n in range(2)]
    threads = [agent.run(range(1, 13)) for agent in agents]
    # 1. The OOM killer's way: the pool process running the task, SIGKILLed inside its transaction. The
    #    worker's main process sees the loss, the message is re-queued (acks_late + reject_on_worker_lost)
    #    and a new pool process ingests it.
    stack.pause_marker.unlink()  # armed: the next ingest pauses inside its transaction, rows written
    paused = int(wait_for(lambda: stack.pause_marker.exists() and stack.pause_marker.read_text(),
                          what="an ingest to pause mid-transaction"))
    assert paused in stack.worker_child_pids()
    os.kill(paused, signal.SIGKILL)
    finish(threads, agents)
    wait_for(lambda: stack.pending() == 0, limit=180, what="the reports so far to be ingested")
    # 2. The whole worker SIGKILLed mid-transaction (its main process and pool process, as a cgroup kill)
    #    while ingesting the last report anyone sends: its unacknowledged message stays with the broker
    #    (redelivered only after Redis' visibility timeout, an hour), so only the sweeper can re-send it,
    #    and the worker restarted by its supervisor (here: the test) ingests it.
    stack.pause_marker.unlink()
    agents[0].send(13)
    paused = int(wait_for(lambda: stack.pause_marker.exists() and stack.pause_marker.read_text(),
                          what="an ingest to pause mid-transaction again"))
    assert paused in stack.worker_child_pids()
    os.kill(stack.worker.pid, signal.SIGKILL)
    os.kill(paused, signal.SIGKILL)
    stack.worker.wait(timeout=30)
    assert stack.pending() == 1
    stack.start_worker()
    prove(stack, agents)


def _attest(stack, name: str, attachment: bytes) -> requests.Response:
    data = {"attestation_name": name}
    return requests.post(f"{stack.url}/api/v2/attestations/{ORG}/release/trail/build-1/generic",
                         headers={"Authorization": f"Bearer {stack.member_token}"},
                         data={"data_json": json.dumps(data)},
                         files={"attachment_file": (f"{name}.bin", attachment)}, timeout=60)


def _stored_files(stack) -> list[str]:
    return sorted(str(path.relative_to(stack.evidence)) for path in stack.evidence.rglob("*") if path.is_file())


def test_evidence_store_full_refuses_cleanly_and_recovers(stack):
    """The evidence store is a 2 MiB tmpfs: filled, an upload gets 507 and leaves no row and no byte behind;
    freed, the same upload is accepted. Attestations accepted are stored once each, in order."""
    member = {"Authorization": f"Bearer {stack.member_token}"}
    assert requests.put(f"{stack.url}/api/v2/flows/{ORG}", json={"name": "release", "visibility": "private"},
                        headers=member, timeout=30).status_code in (200, 201)
    trail = {"name": "build-1", "description": "", "user_data": {}}
    assert requests.put(f"{stack.url}/api/v2/trails/{ORG}/release", data={"data_json": json.dumps(trail)},
                        headers=member, timeout=30).status_code in (200, 201)
    files = {f"e{n}": os.urandom(300_000) for n in range(1, 4)}
    assert _attest(stack, "e1", files["e1"]).status_code == 201
    free = os.statvfs(stack.evidence)
    filler = stack.evidence / "filler"
    # Fill all but ~100 KiB (the readiness probe still fits; the next 300 KB file does not).
    subprocess.run(["fallocate", "-l", str(free.f_bavail * free.f_frsize - 100_000), str(filler)], check=True)
    before = _stored_files(stack)
    refused = _attest(stack, "e2", files["e2"])
    assert refused.status_code == 507, refused.text
    assert json_error(refused)["code"] == "insufficient_storage"
    assert "attachment_file" in json_error(refused)["fields"]
    assert _stored_files(stack) == before  # no half-written file, no temporary left
    sha = hashlib.sha256(files["e2"]).hexdigest()
    assert stack.sql("SELECT count(*) FROM evidence_evidencefile WHERE sha256 = %s", (sha,)) == [(0,)]
    assert stack.sql("SELECT count(*) FROM evidence_attestation WHERE name = 'e2'") == [(0,)]
    # Bytes the org already holds need no space: that attestation is accepted while the store is full.
    assert _attest(stack, "e1-again", files["e1"]).status_code == 201
    assert stack.get("/ready").status_code == 200
    rest = os.statvfs(stack.evidence)
    full = stack.evidence / "filler-2"
    subprocess.run(["fallocate", "-l", str(rest.f_bavail * rest.f_frsize), str(full)], check=True)
    not_ready = stack.get("/ready")  # not even the probe's small file fits now
    assert not_ready.status_code == 503 and "evidence storage: FAILED" in not_ready.text
    filler.unlink()  # the operator (or retention) frees space; nothing else is done
    full.unlink()
    assert stack.get("/ready").status_code == 200
    assert _attest(stack, "e2", files["e2"]).status_code == 201  # the CI step's retry
    assert _attest(stack, "e3", files["e3"]).status_code == 201
    names = stack.sql("SELECT a.name FROM evidence_attestation a JOIN evidence_flow f ON f.id = a.flow_id "
                      "WHERE f.name = 'release' ORDER BY a.id")
    assert [name for (name,) in names] == ["e1", "e1-again", "e2", "e3"]
    assert not [path for path in _stored_files(stack) if path.endswith(".partial")]
    for name, content in files.items():
        sha = hashlib.sha256(content).hexdigest()
        download = requests.get(f"{stack.url}/api/v2/evidence/{ORG}/{sha}/download", headers=member, timeout=30)
        assert download.status_code == 200 and download.content == content, name
    assert "ok" in stack.manage("verify_audit", "--org", ORG)
    assert stack.get("/ready").status_code == 200
