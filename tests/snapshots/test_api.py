"""The snapshot API: environments, reports (validation, limits, gzip, idempotency), reads, diff, search."""

import gzip
import json
from urllib.parse import quote

import pytest
from django.test import override_settings

from snapshots.models import Environment, Report
from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tests.snapshots.conftest import fp, k8s_pod, server_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(api, org, token_for):
    return api(token=token_for(org, Role.SNAPSHOTTER))


@pytest.fixture
def reader(api, org, token_for):
    return api(token=token_for(org, Role.READER))


def put_env(client, name="prod", env_type="server", org="acme", **extra):
    return client.put(f"/api/v2/environments/{org}", {"name": name, "type": env_type, **extra}, format="json")


def report(client, body, env="prod", env_type="server", org="acme", raw=None, **headers):
    data = raw if raw is not None else json.dumps(body).encode()
    return client.put(f"/api/v2/environments/{org}/{env}/report/{env_type}", data=data,
                      content_type="application/json", **headers)


def report_and_ingest(client, body, env="prod", env_type="server"):
    response = report(client, body, env, env_type)
    assert response.status_code == 201, response.json()
    return ingest_report(response.json()["id"])


# --- environments ----------------------------------------------------------------------------------

def test_put_environment_creates_then_updates_idempotently(agent, owner_api):
    created = put_env(agent, description="the cluster")
    assert created.status_code == 201
    assert created.json()["type"] == "server" and created.json()["description"] == "the cluster"
    again = put_env(agent, description="the cluster")
    assert again.status_code == 200
    listed = owner_api.get("/api/v2/environments/acme").json()
    assert [e["name"] for e in listed] == ["prod"]
    detail = owner_api.get("/api/v2/environments/acme/prod").json()
    assert detail["artifact_count"] == 0 and detail["stale"] is False and detail["last_report_at"] is None


def test_environment_input_errors_name_the_field(agent):
    bad_type = put_env(agent, env_type="mainframe")
    assert bad_type.status_code == 400 and "type" in bad_type.json()["error"]["fields"]
    bad_name = put_env(agent, name="no spaces allowed")
    assert bad_name.status_code == 400 and "name" in bad_name.json()["error"]["fields"]


def test_logical_environment_groups_members(agent, owner_api):
    put_env(agent, "a")
    put_env(agent, "b")
    response = put_env(agent, "all", "logical", included_environments=["a", "b"])
    assert response.status_code == 201 and response.json()["included_environments"] == ["a", "b"]
    missing = put_env(agent, "all2", "logical", included_environments=["nope"])
    assert missing.status_code == 400 and "included_environments" in missing.json()["error"]["fields"]
    report_and_ingest(agent, server_report(fp(1)), env="a")
    report_and_ingest(agent, server_report(fp(2)), env="b")
    union = owner_api.get("/api/v2/snapshots/acme/all/-1").json()
    assert {(a["environment"], a["fingerprint"]) for a in union["artifacts"]} == {("a", fp(1)), ("b", fp(2))}
    refused = report(agent, server_report(fp(1)), env="all", env_type="logical")
    assert refused.status_code == 400 and "logical" in refused.json()["error"]["message"]


def test_archive_unarchive_and_delete_need_manage(agent, owner_api):
    put_env(agent)
    assert agent.put("/api/v2/environments/acme/prod/archive").status_code == 403
    assert owner_api.put("/api/v2/environments/acme/prod/archive").json()["archived"] is True
    assert owner_api.get("/api/v2/environments/acme").json() == []
    assert report(agent, server_report(fp(1))).status_code == 409
    assert owner_api.put("/api/v2/environments/acme/prod/unarchive").json()["archived"] is False
    deleted = owner_api.delete("/api/v2/environments/acme/prod")
    assert deleted.status_code == 200 and deleted.json()["archived"] is True
    assert Environment.objects.filter(name="prod").exists()


def test_other_org_is_404(agent, api, other_org, token_for):
    put_env(agent)
    stranger = api(token=token_for(other_org, Role.ADMIN))
    assert stranger.get("/api/v2/environments/acme/prod").status_code == 404
    assert stranger.get("/api/v2/snapshots/acme/prod/-1").status_code == 404
    assert report(stranger, server_report(fp(1))).status_code == 404
    assert stranger.get("/api/v2/environments/globex/prod").status_code == 404


def test_reader_may_read_but_not_report(agent, reader):
    put_env(agent)
    assert reader.get("/api/v2/environments/acme/prod").status_code == 200
    denied = report(reader, server_report(fp(1)))
    assert denied.status_code == 403 and "environments.report" in denied.json()["error"]["message"]


# --- reports ----------------------------------------------------------------------------------------

def test_report_is_stored_durably_before_the_answer(agent):
    put_env(agent)
    response = report(agent, server_report(fp(1)))
    assert response.status_code == 201
    stored = Report.objects.get(pk=response.json()["id"])
    assert bytes(stored.payload) == json.dumps(server_report(fp(1))).encode()
    assert response.json()["status"] == "pending" and response.json()["sha256"] == stored.payload_sha256
    status = agent.get(f"/api/v2/environments/acme/prod/reports/{stored.pk}").json()
    assert status["status"] == "pending"
    ingest_report(stored.pk)
    status = agent.get(f"/api/v2/environments/acme/prod/reports/{stored.pk}").json()
    assert status["status"] == "snapshot" and status["snapshot_index"] == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"artifacts": [{"digests": {"app": "ABC"}}]}, "artifacts[0].digests.app"),
    ({"artifacts": [{"digests": {"app": fp(1) + "\n"}}]}, "artifacts[0].digests.app"),
    ({"artifacts": [{"digests": {"app": fp(1)}}, {"digests": "nope"}]}, "artifacts[1].digests"),
    ({"artifacts": [{"digests": {"app": fp(1)}, "creationTimestamp": "yesterday"}]},
     "artifacts[0].creationTimestamp"),
    ({"artifacts": "all of them"}, "artifacts"),
    ({"nothing": []}, "artifacts"),
    ([1, 2], "body"),
])
def test_bad_reports_name_entry_index_and_field(agent, body, field):
    put_env(agent)
    response = report(agent, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]


def test_bad_json_wrong_type_and_unknown_type(agent):
    put_env(agent)
    bad = report(agent, None, raw=b'{"artifacts": [')
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]["message"]
    wrong = report(agent, server_report(fp(1)), env_type="K8S")
    assert wrong.status_code == 400 and wrong.json()["error"]["fields"] == {"type": [wrong.json()["error"]["message"]]}
    unknown = report(agent, server_report(fp(1)), env_type="mainframe")
    assert unknown.status_code == 400 and "type" in unknown.json()["error"]["fields"]
    assert Report.objects.count() == 0


VALID_ENTRY = b'{"digests": {"app": "' + fp(1).encode() + b'"}}'


@pytest.mark.parametrize(("raw", "field", "words"), [
    (b'{"artifacts": [' + VALID_ENTRY + b']} trailing', "body", "Extra data"),
    (b'{"artifacts": [' + VALID_ENTRY + b',]}', "body", "Expecting value"),
    (b'{"artifacts": [' + VALID_ENTRY + b' ' + VALID_ENTRY + b']}', "body", "Expecting ',' delimiter"),
    (b'{"artifacts": [{"digests": {"app": "' + fp(1).encode() + b'"}, "creationTimestamp": NaN}]}', "body",
     "NaN is not valid JSON"),
    (b'{"artifacts": [' + VALID_ENTRY + b'], "artifacts": []}', "artifacts", "twice"),
    (b'{"artifacts": [{"digests": {"app": "\xff"}}]}', "body", "not valid UTF-8"),
    (b'{"artifacts": [{"digests": {}, "owners": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}", "body",
     "nested too deeply"),
    (b'{artifacts: []}', "body", "property name"),
    (b'\xef\xbb\xbf{"artifacts": [' + VALID_ENTRY + b']}', "body", "BOM"),  # UTF-8 without a byte-order mark
    (b"", "body", "Expecting value"),
])
def test_malformed_bodies_are_400_and_nothing_is_stored(agent, raw, field, words):
    put_env(agent)
    response = report(agent, None, raw=raw)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert field in error["fields"] and words in error["message"], error
    assert Report.objects.count() == 0


def test_cloud_run_top_level_type_must_be_a_string(agent):
    put_env(agent, "run", "cloud-run")
    entry = {"digests": {"svc": fp(1)}, "creationTimestamp": 1_700_000_000, "kind": "Service", "serviceName": "svc"}
    good = report(agent, {"type": "cloud-run", "artifacts": [entry]}, env="run", env_type="cloud-run")
    assert good.status_code == 201, good.json()
    bad = report(agent, {"artifacts": [entry], "type": 7}, env="run", env_type="cloud-run")
    assert bad.status_code == 400 and "type" in bad.json()["error"]["fields"]


def test_layout_of_the_json_does_not_matter(agent, owner_api):
    """Pretty-printed, members in another order, non-ASCII names: the same running set (unchanged)."""
    put_env(agent, "k8s", "K8S")
    pods = [k8s_pod({"nginx": fp(1), "envoy": fp(2)}, name="web-ä-1"), k8s_pod({"nginx": fp(1)}, name="web-ä-0")]
    report_and_ingest(agent, {"artifacts": pods}, env="k8s", env_type="K8S")
    pretty = json.dumps({"type": "K8S", "artifacts": list(reversed(pods))}, indent=4, ensure_ascii=False).encode()
    response = report(agent, None, env="k8s", env_type="K8S", raw=b"\n  " + pretty + b"\n")
    assert response.status_code == 201, response.json()
    assert ingest_report(response.json()["id"]).status == "unchanged"
    nginx = [a for a in owner_api.get("/api/v2/snapshots/acme/k8s/-1").json()["artifacts"] if a["name"] == "nginx"][0]
    assert [i["podName"] for i in nginx["instances"]] == ["web-ä-0", "web-ä-1"]
    assert nginx["instance_count"] == 2


def test_k8s_missing_pod_name_and_ecs_unknown_digest(agent, owner_api):
    put_env(agent, "k8s", "K8S")
    pod = k8s_pod({"nginx": fp(1)})
    del pod["podName"]
    response = report(agent, {"artifacts": [pod]}, env="k8s", env_type="K8S")
    assert response.status_code == 400 and "artifacts[0].podName" in response.json()["error"]["fields"]
    put_env(agent, "ecs", "ECS")
    task = {"taskArn": "arn:aws:ecs:eu-west-1:1:task/abc", "cluster_name": "c", "service_name": "s",
            "digests": {"app": "", "sidecar": fp(2)}, "creationTimestamp": 1_700_000_000}
    report_and_ingest(agent, {"artifacts": [task]}, env="ecs", env_type="ECS")
    artifacts = owner_api.get("/api/v2/snapshots/acme/ecs/-1").json()["artifacts"]
    unknown = [a for a in artifacts if a["name"] == "app"][0]
    assert unknown["fingerprint"] == "" and unknown["unknown_fingerprint"] is True
    assert unknown["instances"][0]["taskArn"].endswith("/abc")


def test_idempotency_key_replays_and_conflicts(agent):
    put_env(agent)
    first = report(agent, server_report(fp(1)), HTTP_IDEMPOTENCY_KEY="k-1")
    replay = report(agent, server_report(fp(1)), HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    conflict = report(agent, server_report(fp(2)), HTTP_IDEMPOTENCY_KEY="k-1")
    assert conflict.status_code == 422 and conflict.json()["error"]["code"] == "idempotency_key_reused"
    assert Report.objects.count() == 1


@override_settings(CSM_REPORT_MAX_BYTES=16384)
def test_body_limit_is_413_also_after_gzip(agent):
    put_env(agent)
    big = json.dumps(server_report(*[fp(i) for i in range(1, 300)])).encode()
    assert len(big) > 16384
    assert report(agent, None, raw=big).status_code == 413
    bomb = gzip.compress(b'{"artifacts": [' + b" " * 10_000_000 + b"]}")
    assert len(bomb) < 16384
    response = report(agent, None, raw=bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413 and "decompression" in response.json()["error"]["message"]
    assert Report.objects.count() == 0


def test_gzip_body_is_accepted_and_bad_gzip_is_400(agent):
    put_env(agent)
    body = json.dumps(server_report(fp(1))).encode()
    response = report(agent, None, raw=gzip.compress(body), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 201
    assert bytes(Report.objects.get().payload) == body
    bad = report(agent, None, raw=b"not gzip at all", HTTP_CONTENT_ENCODING="gzip")
    assert bad.status_code == 400 and "Content-Encoding" in bad.json()["error"]["fields"]


def test_kosli_shaped_k8s_report_with_multi_container_pods(agent, owner_api):
    """The exact shape `kosli snapshot k8s` sends: one entry per pod, several images per pod."""
    put_env(agent, "cluster", "K8S")
    pods = [
        k8s_pod({"registry.example.com/web:1.4": fp(1), "registry.example.com/envoy:1.29": fp(2)}, "web-5d8f-abcde"),
        k8s_pod({"registry.example.com/web:1.4": fp(1), "registry.example.com/envoy:1.29": fp(2)}, "web-5d8f-fghij"),
        k8s_pod({"registry.example.com/worker:2.0": fp(3), "registry.example.com/envoy:1.29": fp(2)},
                "worker-77c9-klmno", namespace="jobs"),
    ]
    outcome = report_and_ingest(agent, {"artifacts": pods}, env="cluster", env_type="K8S")
    assert outcome.status == "snapshot"
    snapshot = owner_api.get("/api/v2/snapshots/acme/cluster/-1").json()
    by_name = {a["name"]: a for a in snapshot["artifacts"]}
    assert by_name["registry.example.com/envoy:1.29"]["instance_count"] == 3
    assert set(by_name["registry.example.com/web:1.4"]["pods"]) == {"web-5d8f-abcde", "web-5d8f-fghij"}
    worker_pod = by_name["registry.example.com/worker:2.0"]["pods"]["worker-77c9-klmno"]
    assert worker_pod["namespace"] == "jobs" and worker_pod["owners"][0]["kind"] == "ReplicaSet"
    assert snapshot["index"] == 1 and snapshot["is_latest"] and snapshot["next_snapshot_timestamp"] is None
    assert by_name["registry.example.com/web:1.4"]["annotation"] == {"type": "started", "was": 0, "now": 2}
    report_and_ingest(agent, {"artifacts": pods[2:]}, env="cluster", env_type="K8S")
    diff = owner_api.get("/api/v2/env-diff/acme", {"snappish1": "cluster#1", "snappish2": "cluster"}).json()
    gone = {a["name"]: a for a in diff["snappish1"]["artifacts"]}
    assert sorted(gone["registry.example.com/web:1.4"]["pods"]) == ["web-5d8f-abcde", "web-5d8f-fghij"]
    assert [a["s1_instance_count"] for a in diff["scaled"]["artifacts"]] == [3]


# --- reading -----------------------------------------------------------------------------------------

@pytest.fixture
def three_snapshots(agent):
    put_env(agent)
    for fingerprints in ([fp(1)], [fp(1), fp(2)], [fp(2)]):
        report_and_ingest(agent, server_report(*fingerprints, names=[f"app-{f[-1]}" for f in fingerprints]))


def get_snapshot(client, snappish, env="prod"):
    return client.get(f"/api/v2/snapshots/acme/{env}/{quote(snappish, safe='')}")


def test_snapshot_addressing(owner_api, three_snapshots):
    assert get_snapshot(owner_api, "-1").json()["index"] == 3
    assert get_snapshot(owner_api, "#2").json()["index"] == 2
    assert get_snapshot(owner_api, "1").json()["index"] == 1
    assert get_snapshot(owner_api, "~1").json()["index"] == 2
    assert get_snapshot(owner_api, "~2").json()["index"] == 1
    assert get_snapshot(owner_api, "@{1.minutes.ago}").status_code == 404
    future = get_snapshot(owner_api, "@{2999-01-01T00:00:00}")
    assert future.json()["index"] == 3
    second = get_snapshot(owner_api, "#2").json()
    assert second["is_latest"] is False and second["next_snapshot_timestamp"] is not None
    assert {a["name"]: a["annotation"]["type"] for a in second["artifacts"]} == {"app-1": "unchanged",
                                                                                 "app-2": "started"}
    exited = {a["name"]: a["annotation"]["type"] for a in get_snapshot(owner_api, "-1").json()["artifacts"]}
    assert exited == {"app-1": "exited", "app-2": "unchanged"}


@pytest.mark.parametrize(("snappish", "status", "words"), [
    ("#0", 404, "numbered from 1"),
    ("#4", 404, "no #4"),
    ("~3", 404, "past the first"),
    ("@{2000-01-01T00:00:00}", 404, "before the first snapshot"),
    ("@{3.fortnights.ago}", 400, "N.<minutes"),
    ("banana", 400, "not a snapshot address"),
])
def test_addressing_edge_cases(owner_api, three_snapshots, snappish, status, words):
    response = get_snapshot(owner_api, snappish)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]


def test_no_snapshot_yet_is_404(agent, owner_api):
    put_env(agent)
    response = get_snapshot(owner_api, "-1")
    assert response.status_code == 404 and "no snapshots yet" in response.json()["error"]["message"]


def test_snapshot_list_interval_reverse_pagination(owner_api, three_snapshots):
    listed = owner_api.get("/api/v2/snapshots/acme/prod").json()
    assert [s["index"] for s in listed] == [3, 2, 1]
    assert listed[0]["to"] == 0 and listed[1]["to"] == listed[0]["from"]
    assert [s["index"] for s in owner_api.get("/api/v2/snapshots/acme/prod?reverse=true").json()] == [1, 2, 3]
    page = owner_api.get("/api/v2/snapshots/acme/prod?per_page=2&page=2")
    assert [s["index"] for s in page.json()] == [1] and page["X-Total-Count"] == "3"
    assert [s["index"] for s in owner_api.get("/api/v2/snapshots/acme/prod?interval=1..2").json()] == [2, 1]
    assert [s["index"] for s in owner_api.get("/api/v2/snapshots/acme/prod?interval=~1..NOW").json()] == [3, 2]
    bad = owner_api.get("/api/v2/snapshots/acme/prod?interval=yesterday")
    assert bad.status_code == 400 and "interval" in bad.json()["error"]["fields"]


def test_events_with_filters(owner_api, three_snapshots):
    events = owner_api.get("/api/v2/environments/acme/prod/events").json()
    assert [(e["snapshot_index"], e["kind"], e["artifact_name"]) for e in events] == [
        (1, "started", "app-1"), (2, "started", "app-2"), (3, "exited", "app-1")]
    ranged = owner_api.get("/api/v2/environments/acme/prod/events?snapshot_from=2&snapshot_to=2").json()
    assert [e["snapshot_index"] for e in ranged] == [2]
    exited = owner_api.get("/api/v2/environments/acme/prod/events?kind=exited").json()
    assert [e["sha256"] for e in exited] == [fp(1)]
    assert owner_api.get("/api/v2/environments/acme/prod/events?from=2000-01-01T00:00:00Z").json() == events
    assert owner_api.get("/api/v2/environments/acme/prod/events?to=2000-01-01T00:00:00").json() == []
    bad = owner_api.get("/api/v2/environments/acme/prod/events?from=tuesday")
    assert bad.status_code == 400 and "from" in bad.json()["error"]["fields"]


def test_env_diff_across_environments(agent, owner_api):
    put_env(agent, "staging")
    put_env(agent, "prod")
    report_and_ingest(agent, {"artifacts": [{"digests": {"web": fp(2)}}, {"digests": {"web": fp(2)}},
                                            {"digests": {"db": fp(5)}}, {"digests": {"new": fp(7)}}]}, "staging")
    report_and_ingest(agent, {"artifacts": [{"digests": {"web": fp(1)}}, {"digests": {"db": fp(5)}},
                                            {"digests": {"old": fp(9)}}]}, "prod")
    diff = owner_api.get("/api/v2/env-diff/acme", {"snappish1": "prod", "snappish2": "staging#1",
                                                    "include_unchanged": "true"}).json()
    assert diff["snappish1"]["snapshot_id"] == "prod#1"
    assert [a["name"] for a in diff["snappish1"]["artifacts"]] == ["old"]
    assert [a["name"] for a in diff["snappish2"]["artifacts"]] == ["new"]
    changed = diff["changed"]["artifacts"]
    assert [(c["name"], c["fingerprint1"], c["fingerprint2"], c["s1_instance_count"], c["s2_instance_count"])
            for c in changed] == [("web", fp(1), fp(2), 1, 2)]
    assert [a["name"] for a in diff["not_changed"]["artifacts"]] == ["db"]
    assert diff["snappish1"]["artifacts"][0]["pods"] == []  # server instances have no pod names
    missing = owner_api.get("/api/v2/env-diff/acme", {"snappish1": "prod~5", "snappish2": "staging"})
    assert missing.status_code == 404 and "snappish1" in missing.json()["error"]["message"]
    assert owner_api.get("/api/v2/env-diff/acme", {"snappish1": "prod"}).status_code == 400
    assert owner_api.get("/api/v2/env-diff/acme", {"snappish1": "nope", "snappish2": "prod"}).status_code == 404


def test_search_by_sha_prefix(agent, owner_api):
    put_env(agent, "staging")
    put_env(agent, "prod")
    a = "abcde1" + "0" * 58
    b = "abcde2" + "0" * 58
    report_and_ingest(agent, server_report(a, b), "staging")
    report_and_ingest(agent, server_report(a), "prod")
    report_and_ingest(agent, server_report(b), "staging")
    found = owner_api.get("/api/v2/search/acme/sha/abcde1").json()
    assert found["fingerprint"] == a and found["running_now"] == ["prod"]
    assert {(h["environment"], h["from_index"], h["to_index"]) for h in found["history"]} == {
        ("staging", 1, 2), ("prod", 1, None)}
    ambiguous = owner_api.get("/api/v2/search/acme/sha/abcde")
    assert ambiguous.status_code == 400 and ambiguous.json()["error"]["fields"]["candidates"] == [a, b]
    assert owner_api.get("/api/v2/search/acme/sha/abcd").status_code == 400
    assert owner_api.get("/api/v2/search/acme/sha/xyzxyz").status_code == 400
    assert owner_api.get("/api/v2/search/acme/sha/fffff").status_code == 404
