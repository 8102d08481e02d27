"""snapshots/filters.py: the environments list (``archived``) and an environment's events (``from`` / ``to``,
``snapshot_from`` / ``snapshot_to``, ``kind``, ``fingerprint``) through django-filter FilterSets, on real
PostgreSQL rows; a bad value is the API's 400 naming the parameter, with the bounded parsers' words."""

import pytest

from snapshots.filters import EnvironmentFilterSet, EventFilterSet
from snapshots.models import Environment, SnapshotEvent
from snapshots.services.environments import set_environment_archived
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

EVENTS = "/api/v2/environments/acme/prod/events"


@pytest.fixture
def prod(make_env, ingest):
    env = make_env("prod")
    for fingerprints in ([fp(1)], [fp(1), fp(2)], [fp(2)]):
        ingest(env, server_report(*fingerprints, names=[f"app-{f[-1]}" for f in fingerprints]))
    return env


def events(org, **params):
    filterset = EventFilterSet(params, queryset=SnapshotEvent.objects.for_org(org).order_by("snapshot_index", "id"))
    return filterset


def test_event_filterset_filters_by_snapshot_range_kind_and_fingerprint(org, prod):
    rows = events(org, snapshot_from="2", snapshot_to="3").qs_or_400()
    assert [(e.snapshot_index, e.kind) for e in rows] == [(2, "started"), (3, "exited")]
    assert [e.fingerprint for e in events(org, kind="exited").qs_or_400()] == [fp(1)]
    assert [e.snapshot_index for e in events(org, fingerprint=fp(2)).qs_or_400()] == [2]
    assert events(org, to="2000-01-01T00:00:00Z").qs_or_400().count() == 0
    assert events(org, **{"from": "2000-01-01T00:00:00+14:00"}).qs_or_400().count() == 3


@pytest.mark.parametrize("name,value,words", [
    ("from", "tuesday", "from must be an ISO 8601 time"),
    ("to", "0001-01-01T00:00:00+14:00", "to is out of range once converted to UTC"),
    ("snapshot_from", "\u00b2", "snapshot_from must be a whole number in ASCII digits"),
    ("snapshot_to", "9" * 23, "snapshot_to must be a whole number in ASCII digits"),
    ("kind", "restarted", "kind must be one of started, exited, scaled."),
])
def test_bad_event_filter_is_a_400_naming_the_parameter_in_the_bounded_words(owner_api, prod, name, value, words):
    response = owner_api.get(EVENTS, {name: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"].startswith(words) and list(error["fields"]) == [name]


def test_a_nul_in_the_fingerprint_filter_is_a_400_not_a_database_error(owner_api, prod):
    response = owner_api.get(EVENTS, {"fingerprint": "ab\x00cd"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["fingerprint"]


def test_events_keep_kosli_paging_with_filters(owner_api, prod):
    response = owner_api.get(EVENTS, {"kind": "started", "per_page": "1", "page": "2"})
    assert response.status_code == 200 and response["X-Total-Count"] == "2" and response["X-Page"] == "2"
    assert [e["snapshot_index"] for e in response.json()] == [2]


def test_environment_filterset_hides_archived_unless_asked(org, make_env, ctx):
    make_env("live")
    set_environment_archived(ctx, make_env("old"), True)
    queryset = Environment.objects.for_org(org).order_by("name")
    for value, names in ((None, ["live"]), ("TRUE", ["live", "old"]), ("yes", ["live", "old"]), ("1", ["live", "old"]),
                         ("0", ["live"]), ("maybe", ["live"])):
        params = {} if value is None else {"archived": value}
        assert [e.name for e in EnvironmentFilterSet(params, queryset=queryset).qs_or_400()] == names


def test_environment_list_archived_parameter_over_the_api(owner_api, make_env, ctx):
    make_env("live")
    set_environment_archived(ctx, make_env("old"), True)
    assert [e["name"] for e in owner_api.get("/api/v2/environments/acme").json()] == ["live"]
    assert [e["name"] for e in owner_api.get("/api/v2/environments/acme", {"archived": "true"}).json()] == [
        "live", "old"]
