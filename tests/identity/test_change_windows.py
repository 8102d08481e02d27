"""Change windows of an environment: set through the environment API (csm's own fields, which kosli's CLI
never sends) and the environment page's form, validated with the field at fault named, audited, and read
by the one function that says whether a moment is inside them."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from audit.models import AuditEvent
from snapshots.change_windows import windows_from_text, within_change_windows
from snapshots.models import Environment
from tenants.choices import Role
from tests.identity.unusual_support import fp, ingest_at

OFFICE_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]


def test_windows_past_midnight_and_to_the_end_of_the_day():
    late_friday = [{"days": ["fri"], "start": "22:00", "end": "02:00"}]
    assert within_change_windows(late_friday, "UTC", datetime(2026, 12, 4, 23, 0, tzinfo=UTC))   # Fri 23:00
    assert within_change_windows(late_friday, "UTC", datetime(2026, 12, 5, 1, 59, tzinfo=UTC))   # Sat 01:59
    assert not within_change_windows(late_friday, "UTC", datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    assert not within_change_windows(late_friday, "UTC", datetime(2026, 12, 4, 1, 0, tzinfo=UTC))  # Fri 01:00
    whole_sunday = [{"days": ["sun"], "start": "00:00", "end": "24:00"}]
    assert within_change_windows(whole_sunday, "UTC", datetime(2026, 12, 6, 23, 59, tzinfo=UTC))
    assert within_change_windows([], "UTC", datetime(2026, 12, 6, 3, 0, tzinfo=UTC))  # no windows: all inside


def test_the_page_notation_reads_day_ranges():
    assert windows_from_text("mon-fri 09:00-17:00\n\nfri-mon 22:00-02:00") == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
        {"days": ["mon", "fri", "sat", "sun"], "start": "22:00", "end": "02:00"}]


@pytest.mark.django_db
def test_the_api_sets_shows_and_keeps_the_windows(org, owner_api, token_for, api):
    response = owner_api.put("/api/v2/environments/acme", {"name": "prod", "type": "server",
                                                           "change_windows": OFFICE_HOURS,
                                                           "change_window_tz": "Europe/Berlin"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["change_windows"] == OFFICE_HOURS and response.json()["change_window_tz"] == "Europe/Berlin"
    # kosli's CLI re-sends the environment without csm's fields: the schedule stays.
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    again = agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json")
    assert again.status_code == 200, again.content
    assert Environment.objects.get(org=org, name="prod").change_windows == OFFICE_HOURS
    # A snapshotter may not change the schedule (it is a setting, environments.edit).
    refused = agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server", "change_windows": []},
                        format="json")
    assert refused.status_code == 403
    event = AuditEvent.objects.for_org(org).filter(action="environment.created").get()
    assert event.after["change_windows"] == OFFICE_HOURS


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"change_windows": [{"days": ["mon", "someday"], "start": "09:00", "end": "17:00"}]}, "change_windows[0].days[1]"),
    ({"change_windows": [{"days": ["mon"], "start": "9am", "end": "17:00"}]}, "change_windows[0].start"),
    ({"change_windows": [{"days": ["mon"], "start": "09:00", "end": "09:00"}]}, "change_windows[0].end"),
    ({"change_windows": [{"days": ["mon"], "start": "09:00", "end": "17:00", "tz": "UTC"}]}, "change_windows[0].tz"),
    ({"change_window_tz": "Mars/Olympus_Mons"}, "change_window_tz"),
])
def test_bad_windows_are_a_400_naming_the_field(org, owner_api, body, field):
    response = owner_api.put("/api/v2/environments/acme", {"name": "prod", "type": "server", **body}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Environment.objects.filter(org=org, name="prod").exists()


@pytest.mark.django_db
def test_the_environment_page_edits_the_windows(org, owner, member_of):
    from tests.policies.helpers import make_env

    web = Client()
    web.force_login(owner)
    env = make_env(org, "prod")
    page = web.get("/o/acme/environments/prod/").content.decode()
    assert "No change windows" in page and "Save change windows" in page
    saved = web.post("/o/acme/environments/prod/change-windows/",
                            {"windows": "mon-fri 09:00-17:00\nsat 10:00-12:00", "tz": "Europe/Berlin"})
    assert saved.status_code == 302
    env.refresh_from_db()
    assert env.change_windows == [OFFICE_HOURS[0], {"days": ["sat"], "start": "10:00", "end": "12:00"}]
    assert env.change_window_tz == "Europe/Berlin"
    page = web.get("/o/acme/environments/prod/").content.decode()
    assert "mon-fri 09:00-17:00; sat 10:00-12:00 (Europe/Berlin)" in page
    bad = web.post("/o/acme/environments/prod/change-windows/", {"windows": "weekdays 9-5", "tz": "UTC"})
    assert bad.status_code == 400 and "Line 1: write a window as days and hours" in bad.content.decode()
    bad_zone = web.post("/o/acme/environments/prod/change-windows/", {"windows": "", "tz": "Nowhere/Land"})
    assert bad_zone.status_code == 400 and "Unknown time zone" in bad_zone.content.decode()
    # A reader sees the schedule but cannot change it.
    reader = Client()
    reader.force_login(member_of(org, Role.READER))
    assert "Save change windows" not in reader.get("/o/acme/environments/prod/").content.decode()
    assert reader.post("/o/acme/environments/prod/change-windows/", {"windows": "", "tz": "UTC"}).status_code == 403
    env.refresh_from_db()
    assert env.change_windows and AuditEvent.objects.for_org(org).filter(
        action="environment.updated", target_id=str(env.pk)).count() == 1


@pytest.mark.django_db
def test_the_snapshot_shows_it_was_outside_in_the_api_and_the_pages(org, owner, owner_api):
    from tests.policies.helpers import make_env

    env = make_env(org, "prod", change_windows=OFFICE_HOURS)
    ingest_at(env, {"web": fp(1)}, datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    ingest_at(env, {"web": fp(2)}, datetime(2026, 12, 5, 3, 0, tzinfo=UTC))
    assert owner_api.get("/api/v2/snapshots/acme/prod/1").json()["outside_change_window"] is False
    assert owner_api.get("/api/v2/snapshots/acme/prod/2").json()["outside_change_window"] is True
    web = Client()
    web.force_login(owner)
    assert web.get("/o/acme/environments/prod/").content.decode().count('data-testid="outside-change-window"') == 1
    assert 'data-testid="outside-change-window"' in web.get("/o/acme/environments/prod/snapshots/2/").content.decode()
    assert 'data-testid="outside-change-window"' not in web.get(
        "/o/acme/environments/prod/snapshots/1/").content.decode()
