"""An Idempotency-Key taken by another request between accept_report's first look and its INSERT (two
agents retrying at once): on PostgreSQL the INSERT ... ON CONFLICT DO NOTHING inserts nothing, and the
request answers like a replay (same body) or a 422 (another body), with no savepoint."""

import json

import pytest

from snapshots.models import Report
from snapshots.services import reports
from snapshots.services.reports import IdempotencyConflict, accept_report
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def missed_first_look(monkeypatch):
    """accept_report's first _replay sees nothing (the other request had not committed yet)."""
    real = reports._replay
    calls = []

    def replay(*args):
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(reports, "_replay", replay)
    return calls


def test_the_same_body_replays(make_env, ctx, missed_first_look):
    env = make_env()
    body = json.dumps(server_report(fp(1))).encode()
    first, created = accept_report(ctx, env, env.type, body, "key-1")
    missed_first_look.clear()
    again, replayed = accept_report(ctx, env, env.type, body, "key-1")
    assert created and not replayed and again.pk == first.pk
    assert len(missed_first_look) == 2  # the first look missed it; the INSERT found it taken
    assert Report.objects.filter(environment=env).count() == 1


def test_another_body_is_a_conflict(make_env, ctx, missed_first_look):
    env = make_env()
    accept_report(ctx, env, env.type, json.dumps(server_report(fp(1))).encode(), "key-1")
    missed_first_look.clear()
    with pytest.raises(IdempotencyConflict):
        accept_report(ctx, env, env.type, json.dumps(server_report(fp(2))).encode(), "key-1")
    assert Report.objects.filter(environment=env).count() == 1
