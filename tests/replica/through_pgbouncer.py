"""The path test_pgbouncer.py runs in a process of its own whose every connection goes through PgBouncer
(``DATABASE_URL`` points at it, ``CSM_DB_POOLER=pgbouncer``): an org and a token, reports accepted over the API
and ingested by a Celery worker process (also connected through PgBouncer), snapshots read and diffed, an
attestation, and ``verify_audit``. Prints one JSON line of what it saw; any failure exits non-zero.

With the argument ``server-side-cursors`` it shows instead what an ``.iterator()`` does through PgBouncer
when another client takes the server connection its cursor lives on."""

import io
import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csm.test_settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import DatabaseError, connections  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from audit.context import AuditContext  # noqa: E402
from tenants.choices import Role  # noqa: E402
from tenants.services import create_api_token, create_org, create_service_account  # noqa: E402

REPORTS = 12  # more than psycopg's prepare threshold (5): the same statements run again and again
WAIT_SECONDS = 300  # a bound on waiting for the worker, not a timing assertion


def check(response, *expected):
    if response.status_code not in expected:
        raise SystemExit(f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']}: "
                         f"{response.status_code} {response.content[:500]!r}")
    return response.json()


def main() -> None:
    owner = get_user_model().objects.create_user("owner@example.com", "owner@example.com", "x" * 12)
    org = create_org(AuditContext.for_user(owner), "acme", "Acme", owner)
    ctx = AuditContext.system("pgbouncer-test")
    account = create_service_account(ctx, org, "agent", Role.ADMIN)
    _, token = create_api_token(ctx, org, "agent", service_account=account)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    check(client.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json"), 201)
    report_ids = []
    for number in range(1, REPORTS + 1):
        body = {"artifacts": [{"digests": {f"app-{i}": f"{i:064x}"}, "creationTimestamp": 1_700_000_000}
                              for i in range(1, number + 1)]}
        answer = check(client.put("/api/v2/environments/acme/prod/report/server", data=json.dumps(body),
                                  content_type="application/json"), 201)
        report_ids.append(answer["id"])

    deadline = time.monotonic() + WAIT_SECONDS
    statuses = []
    while time.monotonic() < deadline:
        statuses = [check(client.get(f"/api/v2/environments/acme/prod/reports/{pk}"), 200) for pk in report_ids]
        if all(status["status"] != "pending" for status in statuses):
            break
        time.sleep(0.2)

    latest = check(client.get("/api/v2/snapshots/acme/prod/-1"), 200)
    diff = check(client.get("/api/v2/env-diff/acme", {"snappish1": "prod#1", "snappish2": f"prod#{REPORTS}"}), 200)

    check(client.put("/api/v2/flows/acme", {"name": "backend", "description": "", "visibility": "private"},
                     format="json"), 200, 201)
    trail = {"name": "build-1", "description": "", "user_data": {}}
    check(client.put("/api/v2/trails/acme/backend", {"data_json": json.dumps(trail)}, format="multipart"), 200, 201)
    attestation = check(client.post("/api/v2/attestations/acme/backend/trail/build-1/generic",
                                    {"data_json": json.dumps({"attestation_name": "review", "is_compliant": True})},
                                    format="multipart"), 200, 201)

    out = io.StringIO()
    call_command("verify_audit", org="acme", stdout=out)
    print(json.dumps({
        "database_port": settings.DATABASES["default"]["PORT"],
        "statuses": [status["status"] for status in statuses],
        "snapshot_indexes": [status.get("snapshot_index") for status in statuses],
        "latest_artifacts": len(latest["artifacts"]),
        "diff": [len(diff["snappish1"]["artifacts"]), len(diff["snappish2"]["artifacts"])],
        "attestation": sorted(attestation) if isinstance(attestation, dict) else attestation,
        "verify_audit": out.getvalue().strip(),
    }))


def server_side_cursors() -> None:
    """A ``.iterator()`` outside a transaction while another client holds the server connection it was
    declared on: its next FETCH runs on another server connection. Prints the error, or "ok"."""
    import psycopg
    from django.contrib.contenttypes.models import ContentType

    params = connections["default"].get_connection_params()
    rows = ContentType.objects.order_by("pk").iterator(chunk_size=1)
    next(rows)  # DECLARE (WITH HOLD, when server-side cursors are on) and the first FETCH
    with psycopg.connect(host=params["host"], port=params["port"], user=params["user"],
                         dbname=params["dbname"]) as other:
        other.execute("SELECT 1")  # a transaction left open: it keeps its server connection
        try:
            list(rows)
            outcome = "ok"
        except (DatabaseError, psycopg.Error) as exc:  # the cursor may fail at FETCH or at CLOSE
            outcome = f"{type(exc.__cause__ or exc).__name__}: {exc}"
        other.rollback()
    disabled = connections["default"].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False)
    print(json.dumps({"iterator": outcome, "server_side_cursors": not disabled}))


if __name__ == "__main__":
    server_side_cursors() if sys.argv[1:] == ["server-side-cursors"] else main()
