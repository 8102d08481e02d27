"""Reads routed to a real streaming replica (csm/dbrouter.py): GETs read it, writes and read-your-own-writes
stay on the primary, and a replica that is down leaves reads on the primary.

A paused replay (``pg_wal_replay_pause()`` on the replica) makes the replica visibly behind the primary, so
"served by the replica" and "served by the primary" show in the answers themselves, not only in query logs.
"""

import json

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext

from audit.context import AuditContext
from csm import dbrouter
from snapshots.models import Report
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tests.conftest import wait_for
from tests.snapshots.conftest import fp, server_report

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]


def environment_names(client) -> list[str]:
    response = client.get("/api/v2/environments/acme")
    assert response.status_code == 200, response.content
    return [environment["name"] for environment in response.json()]


def put_report(client, *fingerprints):
    body = json.dumps(server_report(*fingerprints)).encode()
    response = client.put("/api/v2/environments/acme/prod/report/server", data=body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def reader_client(api, org, token_for, replica):
    """A reader token that has been used once: a token's first use records it (last use, its network: writes,
    so that request and the sticky window after it read the primary). The sticky window then passes (its
    marker goes) and the replica catches up."""
    token = token_for(org, Role.READER)
    return warmed_up(api(token=token), token, replica)


def warmed_up(client, token, replica):
    replica.wait_for_replay()
    assert client.get("/api/v2/environments/acme").status_code in (200, 403)  # authenticated, whatever its role
    cache.delete(dbrouter.sticky_key(f"Bearer {token}"))
    replica.wait_for_replay()
    return client


def test_a_get_of_a_list_reads_the_replica(replica_routing, org, api, token_for):
    ctx = AuditContext.system("test")
    create_or_update_environment(ctx, org, "prod", "server")
    reader = reader_client(api, org, token_for, replica_routing)

    with CaptureQueriesContext(connections["replica"]) as on_replica, \
            CaptureQueriesContext(connections["default"]) as on_primary:
        assert environment_names(reader) == ["prod"]
    assert any("snapshots_environment" in query["sql"] for query in on_replica.captured_queries)
    assert not any("snapshots_environment" in query["sql"] for query in on_primary.captured_queries)
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True

    # The answer comes from the replica: while its replay is paused it does not know a new environment yet.
    replica_routing.pause_replay()
    try:
        create_or_update_environment(ctx, org, "staging", "server")
        assert environment_names(reader) == ["prod"]
    finally:
        replica_routing.resume_replay()
    replica_routing.wait_for_replay()
    assert environment_names(reader) == ["prod", "staging"]


def test_put_a_report_then_get_it_reads_the_primary(replica_routing, org, api, token_for):
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    other_token = token_for(org, Role.SNAPSHOTTER)
    other_agent = api(token=other_token)
    assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    warmed_up(other_agent, other_token, replica_routing)

    replica_routing.pause_replay()
    try:
        report_id = put_report(agent, fp(1))
        with CaptureQueriesContext(connections["replica"]) as on_replica:
            status = agent.get(f"/api/v2/environments/acme/prod/reports/{report_id}")
        assert status.status_code == 200 and status.json()["status"] == "pending"
        assert on_replica.captured_queries == []
        # A client that wrote nothing reads the replica, which has not replayed the report yet.
        assert other_agent.get(f"/api/v2/environments/acme/prod/reports/{report_id}").status_code == 404
    finally:
        replica_routing.resume_replay()
    replica_routing.wait_for_replay()
    assert other_agent.get(f"/api/v2/environments/acme/prod/reports/{report_id}").status_code == 200


def test_writes_and_workers_never_touch_the_replica(replica_routing, org, api, token_for):
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    replica_routing.wait_for_replay()
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        # Unsafe requests: their reads (the token, the environment) are on the primary too.
        assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"},
                         format="json").status_code == 201
        report_id = put_report(agent, fp(1), fp(2))
        # What a Celery worker runs, outside any request: reads and writes on the primary.
        ingest_report(report_id)
        assert Report.objects.get(pk=report_id).outcome.snapshot.index == 1
    assert on_replica.captured_queries == []


def test_reads_inside_a_transaction_read_the_primary(replica_routing, org, api, token_for):
    from django.db import transaction

    create_or_update_environment(AuditContext.system("test"), org, "prod", "server")
    reader = reader_client(api, org, token_for, replica_routing)
    with transaction.atomic(), CaptureQueriesContext(connections["replica"]) as on_replica:
        assert environment_names(reader) == ["prod"]
    assert on_replica.captured_queries == []


def test_a_stopped_replica_leaves_reads_on_the_primary(replica_routing, org, api, token_for):
    create_or_update_environment(AuditContext.system("test"), org, "prod", "server")
    reader = reader_client(api, org, token_for, replica_routing)
    replica_routing.stop()
    try:
        with CaptureQueriesContext(connections["default"]) as on_primary:
            assert environment_names(reader) == ["prod"]
            assert environment_names(reader) == ["prod"]  # the replica is skipped now, not tried each time
        assert any("snapshots_environment" in query["sql"] for query in on_primary.captured_queries)
    finally:
        replica_routing.start()


def test_a_web_page_reads_the_replica(replica_routing, org, owner, client):
    create_or_update_environment(AuditContext.system("test"), org, "prod", "server")
    client.force_login(owner)
    replica_routing.wait_for_replay()
    page = "/o/acme/environments/"
    assert client.get(page).status_code == 200  # the session's first request records it: a write
    cache.delete(dbrouter.sticky_key(client.cookies[settings.SESSION_COOKIE_NAME].value))
    replica_routing.wait_for_replay()

    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = client.get(page)
    assert response.status_code == 200 and b"prod" in response.content
    assert any("snapshots_environment" in query["sql"] for query in on_replica.captured_queries)
    assert any("django_session" in query["sql"] for query in on_replica.captured_queries)


def test_a_lagging_replica_is_skipped(replica_routing, org, api, token_for, settings):
    settings.CSM_REPLICA_MAX_LAG_SECONDS = 1
    create_or_update_environment(AuditContext.system("test"), org, "prod", "server")
    reader = reader_client(api, org, token_for, replica_routing)
    replica_routing.pause_replay()
    try:
        create_or_update_environment(AuditContext.system("test"), org, "staging", "server")
        # The replica receives the new WAL but does not replay it: wait until it is more than 1 s behind.
        wait_for(lambda: dbrouter._lag_seconds("replica") > 1, "the paused replica to fall 1 s behind")
        dbrouter.reset_replica_health()  # measure again now, not at the last check
        with CaptureQueriesContext(connections["default"]) as on_primary:
            assert environment_names(reader) == ["prod", "staging"]  # the primary's answer
        assert any("snapshots_environment" in query["sql"] for query in on_primary.captured_queries)
    finally:
        replica_routing.resume_replay()
