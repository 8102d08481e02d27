"""kosli CLI conformance: reading snapshots — ``kosli get snapshot``, ``kosli list snapshots``, ``kosli assert
snapshot`` and ``kosli diff snapshots``.

GETs as ``kosliClient.Do`` sends them (no body, ``Kosli/`` User-Agent, bearer token), queries encoded as
``url.Values.Encode``. Where the CLI decodes into a typed struct, the whole answer is checked the way Go's
``json.Unmarshal`` would take it (``tests/kosli/gotypes.py``: one wrongly typed value fails the command);
where it decodes into ``map[string]interface{}``, each field it type-asserts is checked for that type."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from audit.context import AuditContext
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.kosli.cli import cli, cli_error
from tests.kosli.gotypes import MapOf, go_field, go_unmarshal
from tests.snapshots.conftest import fp

pytestmark = pytest.mark.django_db

# getSnapshot.go: Snapshot / Artifact / PodContent / Owner / Annotation (fields without tags match by name).
OWNER = {"ApiVersion": str, "Kind": str, "Name": str, "Uid": str, "Controller": bool, "BlockOwnerDeletion": bool}
ARTIFACT = {"Name": str, "flow_name": str, "Compliant": bool, "Deployments": [int], "Fingerprint": str,
            "git_commit": str, "commit_url": str, "CreationTimestamp": [int],
            "Pods": MapOf({"Namespace": str, "CreationTimestamp": int, "Owners": [OWNER]}),
            "Annotation": {"type": str, "Was": int, "Now": int}}
SNAPSHOT = {"Index": int, "Timestamp": float, "type": str, "user_id": str, "user_name": str,
            "Artifacts": [ARTIFACT], "Compliant": bool}
# diffSnapshots.go: DiffSnapshotsResponse / DiffItem / DiffArtifact.
DIFF_ARTIFACT = {"fingerprint": str, "flow": str, "name": str, "commit_url": str, "most_recent_timestamp": int,
                 "instance_count": int, "s1_instance_count": int, "s2_instance_count": int, "pods": [str]}
DIFF_ITEM = {"snapshot_id": str, "artifacts": [DIFF_ARTIFACT]}
DIFF = {"snappish1": DIFF_ITEM, "snappish2": DIFF_ITEM, "changed": DIFF_ITEM, "not-changed": DIFF_ITEM}

OWNERS = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8", "uid": "4b1c", "controller": True,
           "blockOwnerDeletion": True}]


def pod(name: str, image: str, fingerprint: str, created: int = 1_764_000_000) -> dict:
    return {"podName": name, "namespace": "shop", "digests": {image: fingerprint}, "creationTimestamp": created,
            "owners": OWNERS}


@pytest.fixture
def cluster(org, django_capture_on_commit_callbacks):
    """K8S environment ``prod``: #1 web:1 in two pods and db; #2 web upgraded to web:2 (one pod), db scaled to
    two pods; #3 db only."""
    ctx = AuditContext.system("test")
    env, _ = create_or_update_environment(ctx, org, "prod", "K8S")
    reports = [
        [pod("web-a", "web", fp(1)), pod("web-b", "web", fp(1)), pod("db-a", "db", fp(9))],
        [pod("web-c", "web", fp(2), 1_764_000_500), pod("db-a", "db", fp(9)), pod("db-b", "db", fp(9))],
        [pod("db-a", "db", fp(9)), pod("db-b", "db", fp(9))],
    ]
    for pods in reports:
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, env, "K8S", json.dumps({"artifacts": pods}).encode(), "")
        ingest_report(report.pk)
    return env


@pytest.fixture
def reader(org, token_for):
    return token_for(org, Role.READER)


def printed_rows(snapshot: dict) -> list[tuple]:
    """``printSnapshotAsTable``: the rows the CLI prints — artifacts with ``annotation.now != 0``, reading
    ``creationTimestamp[0]`` (an empty list would panic), ``git_commit[:7]`` when set, ``flow_name``,
    ``compliant`` and the replica count ``len(creationTimestamp)``."""
    rows = []
    for artifact in go_field(snapshot, "artifacts"):
        if not go_field(go_field(artifact, "annotation"), "now"):
            continue
        stamps = go_field(artifact, "creationTimestamp")
        assert stamps and isinstance(stamps[0], int)
        commit = go_field(artifact, "git_commit") or ""
        assert commit == "" or len(commit) >= 7
        rows.append((go_field(artifact, "name"), go_field(artifact, "fingerprint"), len(stamps),
                     bool(go_field(artifact, "compliant"))))  # null: Go's zero value, false
    return sorted(rows)


def test_get_snapshot(reader, cluster):
    """``cmd/kosli/getSnapshot.go`` ``environmentGetOptions.run``: ``handleSnapshotExpressions`` turns
    ``prod`` into id ``-1`` and ``prod#2`` / ``prod~1`` / ``prod@{...}`` into ``url.PathEscape`` of the
    fragment (``#`` goes as ``%23``, braces as ``%7B`` ``%7D``), GET /api/v2/snapshots/{org}/{env}/{id}.
    The answer is unmarshalled into ``Snapshot``; ``type`` must be set, or the CLI says "No running
    artifacts were reported"."""
    latest = cli(reader, "GET", "/api/v2/snapshots/acme/prod/-1")
    assert latest.status_code == 200
    go_unmarshal(latest.json(), SNAPSHOT)
    assert go_field(latest.json(), "index") == 3 and latest.json()["type"] == "K8S"
    assert printed_rows(latest.json()) == [("db", fp(9), 2, False)]

    second = cli(reader, "GET", "/api/v2/snapshots/acme/prod/%232")
    go_unmarshal(second.json(), SNAPSHOT)
    assert second.json()["index"] == 2
    assert printed_rows(second.json()) == [("db", fp(9), 2, False), ("web", fp(2), 1, False)]
    web = next(a for a in second.json()["artifacts"] if a["name"] == "web" and a["annotation"]["now"])
    assert set(go_field(web, "pods")) == {"web-c"}
    assert go_field(go_field(web, "pods")["web-c"], "namespace") == "shop"

    assert cli(reader, "GET", "/api/v2/snapshots/acme/prod/~2").json()["index"] == 1
    soon = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    at = cli(reader, "GET", f"/api/v2/snapshots/acme/prod/@%7B{soon}%7D")
    assert at.status_code == 200 and at.json()["index"] == 3
    first = cli(reader, "GET", "/api/v2/snapshots/acme/prod/%231")
    assert printed_rows(first.json()) == [("db", fp(9), 1, False), ("web", fp(1), 2, False)]

    missing = cli(reader, "GET", "/api/v2/snapshots/acme/prod/%237")
    assert missing.status_code == 404 and "7" in cli_error(missing)


def test_list_snapshots(reader, cluster):
    """``cmd/kosli/listSnapshots.go`` ``getSnapshotsList``: page, per_page, interval (even when empty) and
    reverse always sent; ``printSnapshotsListAsTable`` asserts ``to`` and ``duration`` as float64,
    ``compliant`` as bool and ``index`` as float64 and hands ``from`` to ``formattedTimestamp`` (a number)."""
    def listed(**extra):
        query = {"page": "1", "per_page": "15", "interval": "", "reverse": "false"} | extra
        answer = cli(reader, "GET", "/api/v2/snapshots/acme/prod", query=query)
        assert answer.status_code == 200, answer.content
        for row in answer.json():
            assert isinstance(row["from"], (int, float)) and isinstance(row["to"], (int, float))
            assert isinstance(row["duration"], (int, float)) and isinstance(row["compliant"], bool)
            assert isinstance(row["index"], int)
        return answer.json()

    rows = listed()
    assert [row["index"] for row in rows] == [3, 2, 1]
    assert rows[0]["to"] == 0  # "now": the latest snapshot is still in force
    assert rows[1]["to"] == rows[0]["from"]
    assert [row["index"] for row in listed(reverse="true")] == [1, 2, 3]
    assert [row["index"] for row in listed(interval="1..2")] == [2, 1]
    assert [row["index"] for row in listed(per_page="2", page="2")] == [1]
    assert listed(page="3") == []  # the CLI then says "No environment snapshots were found at page number 3."
    bad = cli(reader, "GET", "/api/v2/snapshots/acme/prod",
              query={"page": "1", "per_page": "15", "interval": "3~5", "reverse": "false"})
    assert bad.status_code == 400 and "interval" in bad.json()["error"]["fields"]


def test_assert_snapshot(org, reader, cluster):
    """``cmd/kosli/assertSnapshot.go`` ``run``: ``handleExpressions`` makes an integer id — ``prod`` is -1,
    ``prod#2`` is 2, ``prod~1`` is -2 (``-1 * 1 - 1``) — GET /api/v2/snapshots/{org}/{env}/{id}; the CLI
    asserts ``compliant`` as a bool and exits non-zero on false. No policy applies here: compliance is
    unknown, which the CLI must read as false (never as compliant)."""
    for snapshot_id, index in (("-1", 3), ("2", 2), ("-2", 2), ("-3", 1)):
        answer = cli(reader, "GET", f"/api/v2/snapshots/acme/prod/{snapshot_id}")
        assert answer.status_code == 200, (snapshot_id, answer.content)
        assert answer.json()["index"] == index and answer.json()["compliant"] is False
    past = cli(reader, "GET", "/api/v2/snapshots/acme/prod/-4")
    assert past.status_code == 404 and cli_error(past)


def test_assert_snapshot_compliant(org, cluster, token_for, django_capture_on_commit_callbacks):
    """assertSnapshot.go: with a policy every running artifact passes, ``compliant`` is true (COMPLIANT)."""
    from policies import services as policies
    from tests.policies.helpers import CTX, PROVENANCE_POLICY, report_flow_artifact

    report_flow_artifact(org, "db", fp(9), name="db")
    with django_capture_on_commit_callbacks(execute=True):
        policies.save_policy(CTX, org, "provenance", PROVENANCE_POLICY)
        policies.attach_policies(CTX, org, cluster, ["provenance"])
    policies.reevaluate(cluster.pk, "test", CTX)
    answer = cli(token_for(org, Role.READER), "GET", "/api/v2/snapshots/acme/prod/-1")
    assert answer.status_code == 200 and answer.json()["compliant"] is True, answer.json()


def test_diff_snapshots(reader, cluster):
    """``cmd/kosli/diffSnapshots.go`` ``run``: GET /api/v2/env-diff/{org}?snappish1=...&snappish2=... (the
    CLI sends nothing else: ``--show-unchanged`` only filters what it prints, so ``not-changed`` must always
    be there). The answer is unmarshalled into ``DiffSnapshotsResponse``: an upgrade is the old artifact
    only in 1 and the new one only in 2; ``changed`` is what the CLI prints as "scaling" (same fingerprint,
    other instance count: ``s1_instance_count`` → ``s2_instance_count``); ``most_recent_timestamp`` is an
    integer (``formattedTimestamp``)."""
    answer = cli(reader, "GET", "/api/v2/env-diff/acme", query={"snappish1": "prod#1", "snappish2": "prod#2"})
    assert answer.status_code == 200, answer.content
    diff = answer.json()
    go_unmarshal(diff, DIFF)

    def names(part):
        return [(a["name"], a["fingerprint"]) for a in diff[part]["artifacts"]]

    assert diff["snappish1"]["snapshot_id"] == "prod#1" and diff["snappish2"]["snapshot_id"] == "prod#2"
    assert names("snappish1") == [("web", fp(1))]
    assert names("snappish2") == [("web", fp(2))]
    assert diff["snappish2"]["artifacts"][0]["pods"] == ["web-c"]
    # csm's "Started" is when the journal first saw it running (an integer, as formattedTimestamp wants)
    assert diff["snappish2"]["artifacts"][0]["most_recent_timestamp"] >= 1_764_000_500
    assert names("changed") == [("db", fp(9))]
    scaled = diff["changed"]["artifacts"][0]
    assert (scaled["s1_instance_count"], scaled["s2_instance_count"]) == (1, 2)
    assert names("not-changed") == []

    same = cli(reader, "GET", "/api/v2/env-diff/acme", query={"snappish1": "prod~0", "snappish2": "prod"}).json()
    go_unmarshal(same, DIFF)
    assert [a["name"] for a in same["not-changed"]["artifacts"]] == ["db"]
    assert same["snappish1"]["artifacts"] == same["snappish2"]["artifacts"] == same["changed"]["artifacts"] == []

    bad = cli(reader, "GET", "/api/v2/env-diff/acme", query={"snappish1": "nowhere", "snappish2": "prod"})
    assert bad.status_code in (400, 404) and "nowhere" in cli_error(bad)


def test_snapshot_reads_other_org_and_snapshotter(org, other_org, token_for, cluster):
    """Another org's environment is a 404; a snapshotter (an agent) reads no snapshots (403)."""
    ctx = AuditContext.system("test")
    create_or_update_environment(ctx, other_org, "prod", "K8S")
    reader = token_for(org, Role.READER)
    assert cli(reader, "GET", "/api/v2/snapshots/globex/prod/-1").status_code == 404
    assert cli(reader, "GET", "/api/v2/env-diff/globex",
               query={"snappish1": "prod#1", "snappish2": "prod"}).status_code == 404
    agent = token_for(org, Role.SNAPSHOTTER)
    for path in ("/api/v2/snapshots/acme/prod/-1", "/api/v2/snapshots/acme/prod"):
        assert cli(agent, "GET", path).status_code == 403
