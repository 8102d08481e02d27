"""Erasure of a person (docs/operations.md, "Erasure of a person"; journal/personal.py, audit/erasure.py).

A person who used csm the usual ways — signed in, held a personal token, reported an environment and an
artifact with it, invited someone, was given a new role, failed a sign-in, printed in a PDF report — is
erased: afterwards no row of any table holds their email, the pages and the API show ``[erased]``, the
report that printed them is withdrawn, their account keeps only its number, and every org's journal still
verifies with the same leaves, tree and checkpoints. Before that, no journal leaf held the email in clear."""

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, models, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.models import Action
from alerts.services import create_action
from audit.choices import AuditAction
from audit.context import AuditContext
from audit.erasure import erase_person
from audit.models import AuditEvent
from evidence.models import Artifact
from journal.models import JournalCheckpoint, JournalLeaf, PersonKey
from journal.personal import ERASED, PREFIX
from journal.services import publish_checkpoint
from journal.verify import verify_journal
from snapshots.models import Report, Snapshot
from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tenants.models import Invitation, Membership
from tests.conftest import PASSWORD, tamper
from tests.evidence.conftest import begin_trail, make_flow, report_artifact
from tests.reports.conftest import generate  # noqa: F401 - the in-process report fixture
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

BOB = "bob@example.com"
CAROL = "carol@example.com"
ORG_URL = "/api/v2/orgs/acme"


@pytest.fixture
def bob(org, other_org, member_of):
    user = member_of(org, Role.ADMIN, email=BOB)
    Membership.objects.create(org=other_org, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def history(org, other_org, bob, owner, api, client, token_for, generate):  # noqa: F811
    """Bob's traces in acme and globex, made through the API and the web as a person makes them."""
    # a failed sign-in, then a real one (session, sign-in event with address and user agent)
    client.post(reverse("login"), {"username": BOB, "password": "wrong"}, HTTP_USER_AGENT="BobBrowser/1.0",
                REMOTE_ADDR="203.0.113.7")
    assert client.post(reverse("login"), {"username": BOB, "password": PASSWORD}, HTTP_USER_AGENT="BobBrowser/1.0",
                       REMOTE_ADDR="203.0.113.7").status_code == 302
    as_bob = api(user=bob)
    token = as_bob.post(f"{ORG_URL}/tokens", {"name": "laptop"}, format="json").json()["token"]
    with_token = api(token=token)
    assert with_token.put("/api/v2/environments/acme", {"name": "prod", "type": "server"},
                          format="json").status_code in (200, 201)
    response = with_token.put("/api/v2/environments/acme/prod/report/server", data=json.dumps(
        server_report(fp(1))).encode(), content_type="application/json")
    assert response.status_code == 201, response.content
    ingest_report(response.json()["id"])
    make_flow(with_token)
    begin_trail(with_token)
    assert report_artifact(with_token, fp(1)).status_code in (200, 201)
    assert as_bob.post(f"{ORG_URL}/invitations", {"email": CAROL, "role": "reader"}, format="json").status_code == 201
    create_action(AuditContext.for_user(owner), org, "page bob", "email", email=BOB, triggers=["ON_STARTED_ARTIFACT"])
    owner_api = api(user=owner)
    member = next(m for m in owner_api.get(f"{ORG_URL}/members").json()["results"] if m["user"]["id"] == bob.pk)
    assert owner_api.patch(f"{ORG_URL}/members/{member['id']}", {"role": "member"}, format="json").status_code == 200
    today = timezone.now().date()
    report = generate(org, "audit", user=owner, **{"from": str(today - timedelta(days=1)),
                                                     "to": str(today + timedelta(days=1))})
    assert BOB.encode() in bytes(report.output.data_json)
    for each in (org, other_org):
        publish_checkpoint(each.pk)
    return {"report": report, "token": token}


def rows_naming(text: str) -> list[str]:
    """Every (model, field) of every table whose value contains ``text``, case-insensitive."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.BinaryField):
                hits = [pk for pk, value in model._default_manager.values_list("pk", field.attname)
                        if value is not None and text.encode() in bytes(value).lower()]
            elif isinstance(field, (models.CharField, models.TextField, models.JSONField)):
                lookup = f"{field.attname}__icontains"
                if isinstance(field, models.JSONField):
                    hits = [pk for pk, value in model._default_manager.values_list("pk", field.attname)
                            if text in json.dumps(value).lower()]
                else:
                    hits = list(model._default_manager.filter(**{lookup: text}).values_list("pk", flat=True))
            else:
                continue
            if hits:
                found.append(f"{model._meta.label}.{field.name} ({len(hits)} rows)")
    return found


def journal_state(org):
    leaves = list(JournalLeaf.objects.filter(org=org).order_by("index").values_list("index", "leaf_hash", "payload"))
    checkpoints = list(JournalCheckpoint.objects.filter(org=org).order_by("pk").values_list("size", "root_hash"))
    return leaves, checkpoints


def test_no_leaf_holds_a_person_in_clear_and_rows_commit_to_keyed_hashes(history, org, other_org, bob):
    leaves = JournalLeaf.objects.filter(org__in=[org, other_org])
    assert leaves.count() > 20
    for leaf in leaves:
        assert BOB not in leaf.payload.lower() and "203.0.113.7" not in leaf.payload, (leaf.index, leaf.payload)
    sign_in = AuditEvent.objects.filter(org=org, actor_user_id=bob.pk, ip="203.0.113.7").first()
    assert sign_in is not None and sign_in.actor_label == BOB
    data = json.loads(sign_in.leaf.payload)["data"]
    assert data["actor"]["label"].startswith(PREFIX) and data["ip"].startswith(PREFIX)
    assert set(data["personal"]) >= {"/actor/label", "/ip", "/user_agent"}
    invited = AuditEvent.objects.get(org=org, action=AuditAction.INVITATION_CREATED)
    assert json.loads(invited.leaf.payload)["data"]["after"]["email"].startswith(PREFIX)
    artifact = Artifact.objects.get(org=org)
    assert artifact.reported_by.startswith(BOB)
    assert json.loads(artifact.leaf.payload)["data"]["reported_by"].startswith(PREFIX)
    for each in (org, other_org):
        assert verify_journal(each) is None


def test_erasing_a_person_removes_them_everywhere_and_every_journal_still_verifies(
        history, org, other_org, bob, owner, api, client):
    before = {each.slug: journal_state(each) for each in (org, other_org)}
    assert rows_naming(BOB)
    call_command("erase_person", BOB, "--yes", "--reason", "GDPR request 42")

    assert rows_naming(BOB) == []
    assert rows_naming("203.0.113.7") == [] and rows_naming("bobbrowser") == []
    for each in (org, other_org):
        assert verify_journal(each) is None
        leaves, checkpoints = journal_state(each)
        old_leaves, old_checkpoints = before[each.slug]
        assert leaves[:len(old_leaves)] == old_leaves  # the same leaves, hashes and payloads
        assert checkpoints[:len(old_checkpoints)] == old_checkpoints
    call_command("verify_audit")

    bob.refresh_from_db()
    assert (bob.email, bob.username, bob.is_active, bob.has_usable_password()) == ("", f"erased-{bob.pk}", False, False)
    assert not Membership.objects.filter(user=bob).exists()
    assert PersonKey.objects.filter(user=bob).count() == 2
    assert all(key is None for key in PersonKey.objects.filter(user=bob).values_list("key", flat=True))
    sign_in = AuditEvent.objects.filter(org=org, actor_user_id=bob.pk, action=AuditAction.USER_SIGNED_IN).get()
    assert (sign_in.actor_label, sign_in.ip, sign_in.user_agent) == (ERASED, None, ERASED)
    assert sign_in.erasures == 1
    assert Snapshot.objects.get(org=org).reporter_label == ERASED
    assert Report.objects.get(org=org).reporter_label == ERASED
    assert Artifact.objects.get(org=org).reported_by == ERASED
    action = Action.objects.get(org=org, name="page bob")
    assert (action.email, action.enabled) == ("", False) and "recipient was erased" in action.disabled_reason
    # each org records the erasure, naming only the person's number there, and who ran it
    for each in (org, other_org):
        event = AuditEvent.objects.filter(org=each, action=AuditAction.PERSON_ERASED).get()
        assert event.actor_label == "manage.py erase_person: GDPR request 42"
        assert event.target_label == f"person #{event.after['persons'][0]}"

    # the pages and the API show the trail with the person erased
    client.force_login(owner)
    log = client.get(reverse("audit-log", args=["acme"])).content.decode()
    assert BOB not in log and ERASED in log
    assert BOB not in client.get(reverse("member-list", args=["acme"])).content.decode()
    events = api(user=owner).get(f"{ORG_URL}/audit-events", {"page_size": 200}).content.decode()
    assert BOB not in events and ERASED in events
    # the report that printed bob is withdrawn: 410 with its kept hashes, a message on the web
    report = history["report"]
    gone = api(user=owner).get(f"{ORG_URL}/reports/{report.pk}/pdf")
    assert gone.status_code == 410 and report.output.pdf_sha256 in gone.json()["error"]["message"]
    listed = api(user=owner).get(f"{ORG_URL}/reports/{report.pk}").json()
    assert listed["withdrawn_at"] and "pdf" not in listed["links"] and listed["pdf_sha256"] == report.output.pdf_sha256
    page = client.get(reverse("report-pdf", args=["acme", report.pk]), follow=True)
    assert b"was erased" in page.content and b'data-testid="report-withdrawn"' in page.content
    # bob's token no longer works; nobody can sign in as bob
    assert api(token=history["token"]).get("/api/v2/environments/acme").status_code == 401
    refused = Client().post(reverse("login"), {"username": BOB, "password": PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in refused.wsgi_request.session


def test_a_dry_run_says_what_would_change_and_changes_nothing(history, org, bob, capsys):
    naming = rows_naming(BOB)
    call_command("erase_person", BOB, "--dry-run")
    out = capsys.readouterr().out
    assert out.startswith(f"would erase {BOB}: 1 user account(s), known to 2 org(s) (acme, globex)")
    assert "audit_event rows:" in out and "reports withdrawn: 1" in out
    assert rows_naming(BOB) == naming
    assert PersonKey.objects.filter(user=bob, key__isnull=False).count() == 2


def test_erasing_twice_changes_nothing_more(history, org, bob):
    erase_person(BOB)
    counts = erase_person(BOB).counts
    assert sum(counts.values()) == 0
    assert verify_journal(org) is None


def test_a_person_without_an_account_is_erased_by_address(history, org):
    assert Invitation.objects.filter(email=CAROL).exists()
    result = erase_person(CAROL)
    assert result.users == [] and result.orgs == ["acme"]
    assert rows_naming(CAROL) == []
    assert not Invitation.objects.filter(email=CAROL).exists()
    assert verify_journal(org) is None


def test_the_last_owner_is_not_erased_and_nothing_changes(history, org, owner):
    naming = rows_naming("owner@example.com")
    with pytest.raises(CommandError, match="last owner of acme"):
        call_command("erase_person", "owner@example.com", "--yes")
    assert rows_naming("owner@example.com") == naming


def test_a_bad_address_is_refused(db):
    with pytest.raises(CommandError, match="email address"):
        call_command("erase_person", "not-an-address", "--yes")


def test_tampering_with_a_personal_value_is_still_detected(history, org, owner):
    event = AuditEvent.objects.filter(org=org, actor_user_id=owner.pk).order_by("seq").first()
    # the trigger refuses a change of a personal column that is not counted as an erasure
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET actor_label = 'mallory@example.com' WHERE id = %s",
                           [event.pk])
    # and a change dressed as an erasure, while the person's key exists, fails verification
    tamper("UPDATE audit_auditevent SET actor_label = 'mallory@example.com', erasures = erasures + 1 "
           "WHERE id = %s", [event.pk])
    problem = verify_journal(org)
    assert problem is not None and f"audit event seq {event.seq}" in problem.message
    # so does an erasure marker where nobody was erased
    tamper("UPDATE audit_auditevent SET actor_label = %s, erasures = erasures + 1 WHERE id = %s",
           [ERASED, event.pk])
    assert verify_journal(org) is not None


def test_other_columns_stay_append_only(history, org, bob):
    erase_person(BOB)
    event = AuditEvent.objects.filter(org=org, action=AuditAction.PERSON_ERASED).get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET action = 'org.updated', erasures = erasures + 1 "
                           "WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE snapshots_snapshot SET artifact_count = 7, erasures = erasures + 1")


def test_what_is_personal_in_an_event(org, owner, make_user):
    from audit.services import record_event

    dave = make_user("dave@example.com")
    ctx = AuditContext.for_user(owner, ip="198.51.100.4", user_agent="curl/8")
    event = record_event(ctx, org, AuditAction.ORG_UPDATED, ("user", dave.pk, "dave@example.com"), after={
        "package": "pkg:pypi/requests@2.31.0", "image": "nginx@sha256:" + "a" * 64, "a/b~c": "erin@example.com",
        "displayName": "Dave D.", "emails": ["dave.d@example.com"], "name": "backend"})
    people = {person.pk: person for person in PersonKey.objects.filter(org=org)}
    owners = {ptr: (people[pk].user_id, people[pk].email) for ptr, pk in event.personal.items()}
    assert owners == {
        "/actor/label": (owner.pk, ""), "/ip": (owner.pk, ""), "/user_agent": (owner.pk, ""),
        "/target/label": (dave.pk, ""), "/after/a~1b~0c": (None, "erin@example.com"),
        "/after/displayName": (dave.pk, ""), "/after/emails/0": (None, "dave.d@example.com"),
    }
    data = json.loads(event.leaf.payload)["data"]
    assert data["after"]["package"] == "pkg:pypi/requests@2.31.0" and data["after"]["name"] == "backend"
    assert data["after"]["a/b~c"].startswith(PREFIX) and data["after"]["displayName"].startswith(PREFIX)
    assert verify_journal(org) is None


def test_the_admin_lists_persons_without_their_keys(history, org, client, make_user):
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))
    person = PersonKey.objects.filter(org=org, user__email=BOB).get()
    page = client.get(f"/admin/journal/personkey/{person.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert bytes(person.key).hex() not in content and "memory at" not in content and "Key:" not in content


def test_a_write_that_raced_the_erasure_records_the_person_erased(history, org, bob):
    from audit.services import record_event

    ctx = AuditContext.for_user(bob, ip="203.0.113.9", user_agent="BobBrowser/1.0")  # authenticated before
    erase_person(BOB)
    event = record_event(ctx, org, AuditAction.ORG_UPDATED, ("user", bob.pk, "bob@example.com"),
                         after={"note": "by bob@example.com"})
    assert (event.actor_label, event.ip, event.user_agent, event.target_label) == (ERASED, None, ERASED, ERASED)
    assert BOB not in event.leaf.payload and "203.0.113.9" not in event.leaf.payload
    assert verify_journal(org) is None
    # the address written again after the erasure is new data about a new person: erasable again
    again = PersonKey.objects.get(pk=event.personal["/after/note"])
    assert (again.user_id, again.email, again.erased_at) == (None, BOB, None)
    erase_person(BOB)
    assert rows_naming(BOB) == [] and verify_journal(org) is None
