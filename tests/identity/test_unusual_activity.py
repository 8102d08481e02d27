"""Unusual activity (identity.activity): a token used from a network it never used, an environment reported
by a new reporter, repeated failed sign-ins and a change outside an environment's change windows — each a
``security.unusual_activity`` audit event, shown and filtered on the audit log page."""

import threading
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse

from identity.activity import UnusualKind, network_of
from identity.models import EnvironmentReporter, TokenNetwork
from snapshots.models import Snapshot
from tenants.choices import Role
from tenants.models import ApiToken
from tests.conftest import PASSWORD
from tests.identity.unusual_support import flags, fp, ingest_at, server_report
from tests.policies.helpers import make_env

# A Monday and a Saturday (UTC).
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
MONDAY_11 = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
SATURDAY_03 = datetime(2026, 12, 5, 3, 12, tzinfo=UTC)
OFFICE_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]


def _list_environments(client, ip):
    return client.get("/api/v2/environments/acme", REMOTE_ADDR=ip)


# --- a token used from a new network -----------------------------------------------------------------


def test_networks_are_the_24_of_ipv4_and_the_56_of_ipv6():
    assert network_of("10.1.2.3") == network_of("10.1.2.99") == "10.1.2.0/24"
    assert network_of("2001:db8:aa:bb01::1") == network_of("2001:db8:aa:bbff::9") == "2001:db8:aa:bb00::/56"
    assert network_of("::ffff:192.168.7.1") == "192.168.7.0/24"
    assert network_of("not an address") is None and network_of(None) is None


@pytest.mark.django_db
def test_a_token_used_from_a_network_it_never_used_is_flagged_once(org, token_for, api):
    client = api(token=token_for(org, Role.READER, name="agent"))
    assert _list_environments(client, "10.1.2.3").status_code == 200    # the first network: learned
    assert _list_environments(client, "10.1.2.99").status_code == 200   # the same /24: nothing
    assert flags(org) == []
    assert _list_environments(client, "192.168.7.1").status_code == 200  # a new network
    assert _list_environments(client, "192.168.7.20").status_code == 200  # now known
    [flag] = flags(org)
    token = ApiToken.objects.get(org=org, service_account__name="agent")
    assert flag.after["kind"] == UnusualKind.NEW_NETWORK
    assert flag.after["network"] == "192.168.7.0/24" and flag.after["known_networks"] == ["10.1.2.0/24"]
    assert flag.ip == "192.168.7.1" and flag.actor_type == "service_account" and flag.actor_token_id == token.pk
    assert flag.target_type == "token" and flag.target_id == str(token.pk)
    assert "192.168.7.0/24" in flag.after["summary"]
    assert sorted(TokenNetwork.objects.filter(token=token).values_list("network", flat=True)) == [
        "10.1.2.0/24", "192.168.7.0/24"]


@pytest.mark.django_db
def test_a_known_network_costs_a_cache_lookup_not_a_query(org, token_for, api, django_assert_max_num_queries,
                                                          django_capture_on_commit_callbacks):
    client = api(token=token_for(org, Role.READER))
    with django_capture_on_commit_callbacks(execute=True):  # the pair is cached once its row committed
        _list_environments(client, "10.1.2.3")
    with django_assert_max_num_queries(50) as known:
        _list_environments(client, "10.1.2.3")
    cache.clear()  # the shared cache forgot: PostgreSQL answers (and the pair is cached again)
    with django_assert_max_num_queries(50) as forgotten:
        _list_environments(client, "10.1.2.3")
    assert not any("identity_tokennetwork" in q["sql"] for q in known.captured_queries)
    assert any("identity_tokennetwork" in q["sql"] for q in forgotten.captured_queries)
    assert flags(org) == []


@pytest.mark.django_db
def test_each_token_learns_its_own_first_network(org, token_for, api):
    first, second = api(token=token_for(org, Role.READER)), api(token=token_for(org, Role.READER))
    _list_environments(first, "10.1.2.3")
    _list_environments(second, "172.16.0.5")  # another token's first network is not unusual
    assert flags(org) == []


@pytest.mark.django_db(transaction=True)
def test_requests_at_once_from_one_new_network_flag_it_once(org, token_for):
    token = token_for(org, Role.READER)
    Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v2/environments/acme", REMOTE_ADDR="10.1.2.3")
    barrier = threading.Barrier(4)
    statuses = []

    def call():
        try:
            barrier.wait()
            response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v2/environments/acme",
                                                                          REMOTE_ADDR="192.168.7.1")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert len(flags(org, UnusualKind.NEW_NETWORK)) == 1


# --- an environment reported by a new reporter ------------------------------------------------------


def _report(client, env="prod", artifacts=None):
    return client.put(f"/api/v2/environments/acme/{env}/report/server", data=server_report(artifacts or {"web": fp(1)}),
                      content_type="application/json")


@pytest.mark.django_db
def test_an_environment_reported_by_a_new_reporter_is_flagged(org, token_for, api):
    make_env(org, "prod")
    agent_a = api(token=token_for(org, Role.SNAPSHOTTER, name="agent-a"))
    agent_b = api(token=token_for(org, Role.SNAPSHOTTER, name="agent-b"))
    assert _report(agent_a).status_code in (200, 201, 202)  # the first reporter: normal
    assert _report(agent_a).status_code in (200, 201, 202)
    assert flags(org) == []
    assert _report(agent_b).status_code in (200, 201, 202)  # never reported prod before
    [flag] = flags(org)
    assert flag.after["kind"] == UnusualKind.NEW_ENVIRONMENT_REPORTER
    assert flag.after["environment"] == "prod" and flag.after["reporter_key"].startswith("service_account:")
    assert flag.after["earlier_reporters"][0].startswith("agent-a")
    assert flag.actor_label.startswith("agent-b")
    _report(agent_b)
    _report(agent_a)
    assert len(flags(org)) == 1  # both are known reporters of prod now
    assert EnvironmentReporter.objects.for_org(org).count() == 2


@pytest.mark.django_db
def test_a_rotated_token_of_the_same_service_account_is_not_a_new_reporter(org, api):
    from audit.context import AuditContext
    from tenants.services import create_api_token, create_service_account

    ctx = AuditContext.system("test")
    account = create_service_account(ctx, org, "agent", Role.SNAPSHOTTER)
    _, first = create_api_token(ctx, org, "one", service_account=account)
    _, second = create_api_token(ctx, org, "two", service_account=account)
    make_env(org, "prod")
    _report(api(token=first))
    _report(api(token=second))
    assert flags(org) == []


# --- repeated failed sign-ins -----------------------------------------------------------------------


@pytest.mark.django_db
def test_repeated_failed_sign_ins_are_flagged_once_per_window_in_each_org(org, other_org, member_of, make_user):
    from tenants.models import Membership

    person = member_of(org, Role.MEMBER, "alice@example.com")
    Membership.objects.create(org=other_org, user=person, role=Role.READER)
    client = Client()
    for attempt in range(6):
        client.post(reverse("login"), {"username": "alice@example.com", "password": "wrong"},
                    REMOTE_ADDR=f"203.0.113.{attempt + 1}")
    for each in (org, other_org):
        [flag] = flags(each)
        assert flag.after["kind"] == UnusualKind.FAILED_SIGN_INS and flag.after["failures"] == 5
        assert flag.after["account"] == "alice@example.com" and flag.target_id == str(person.pk)
    # A correct password afterwards is not a failure (the account is rate limited, not flagged again).
    client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD}, REMOTE_ADDR="203.0.113.9")
    assert len(flags(org)) == 1


@pytest.mark.django_db
def test_a_few_failed_sign_ins_are_not_unusual(org, member_of):
    member_of(org, Role.MEMBER, "bob@example.com")
    for _ in range(4):
        Client().post(reverse("login"), {"username": "bob@example.com", "password": "wrong"})
    assert flags(org) == []


# --- a change outside the change windows -------------------------------------------------------------


@pytest.mark.django_db
def test_a_change_outside_the_change_windows_is_marked_and_flagged(org):
    env = make_env(org, "prod", change_windows=OFFICE_HOURS, change_window_tz="UTC")
    inside = ingest_at(env, {"web": fp(1)}, MONDAY_10)
    assert inside.outside_change_window is False and flags(org) == []
    assert ingest_at(env, {"web": fp(1)}, SATURDAY_03) is None  # no change at the weekend: nothing to flag
    assert flags(org) == []
    outside = ingest_at(env, {"web": fp(1), "miner": fp(2)}, datetime(2026, 12, 5, 3, 30, tzinfo=UTC))
    assert outside.outside_change_window is True
    [flag] = flags(org)
    assert flag.after["kind"] == UnusualKind.OUTSIDE_CHANGE_WINDOW
    assert flag.after["environment"] == "prod" and flag.after["snapshot"] == outside.index
    assert flag.after["local_time"] == "Sat 2026-12-05 03:30 UTC"
    assert flag.after["change_windows"] == "mon-fri 09:00-17:00 (UTC)"
    assert flag.target_type == "snapshot" and flag.target_label == f"prod#{outside.index}"


@pytest.mark.django_db
def test_the_windows_are_read_in_the_environments_time_zone(org):
    # 09:30 in Tokyo on a Monday is 00:30 UTC: inside Tokyo's office hours, outside UTC's.
    env = make_env(org, "tokyo", change_windows=OFFICE_HOURS, change_window_tz="Asia/Tokyo")
    snapshot = ingest_at(env, {"web": fp(1)}, datetime(2026, 11, 30, 0, 30, tzinfo=UTC))
    assert snapshot.outside_change_window is False and flags(org) == []


@pytest.mark.django_db
def test_without_change_windows_no_change_is_flagged(org):
    env = make_env(org, "anytime")
    snapshot = ingest_at(env, {"web": fp(1)}, SATURDAY_03)
    assert snapshot.outside_change_window is False and flags(org) == []


# --- the audit log ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_audit_log_marks_unusual_activity_and_filters_it(org, owner, token_for, api):
    client = api(token=token_for(org, Role.READER, name="agent"))
    _list_environments(client, "10.1.2.3")
    _list_environments(client, "192.168.7.1")
    [flag] = flags(org)
    web = Client()
    web.force_login(owner)
    page = web.get("/o/acme/audit/?unusual=true").content.decode()
    assert "⚠ unusual activity" in page and flag.after["summary"].replace("'", "&#x27;") in page
    assert page.count('<tr id="event-') == 1  # only unusual activity
    everything = web.get("/o/acme/audit/").content.decode()
    assert everything.count('<tr id="event-') > 1 and everything.count('data-testid="unusual-activity"') == 1
    one = web.get(f"/o/acme/audit/?seq={flag.seq}").content.decode()
    assert one.count("<tr id=\"event-") == 1
    owner_api = api(user=owner)
    listed = owner_api.get("/api/v2/orgs/acme/audit-events?unusual=true").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["action"] for row in rows] == ["security.unusual_activity"]


@pytest.mark.django_db
def test_flags_are_kept_apart_per_org(org, other_org, token_for, api):
    client = api(token=token_for(org, Role.READER))
    _list_environments(client, "10.1.2.3")
    _list_environments(client, "192.168.7.1")
    assert len(flags(org)) == 1 and flags(other_org) == []
    assert Snapshot.objects.count() == 0
