"""Secure defaults (the outside walkthrough): an environment with no policy ran an artifact nobody built
(``docker.io/evil/miner:1``) and one whose JUnit attestation failed (``ghcr.io/acme/web:1.5``); both
used to show a green "compliant". Now compliance without a policy is unknown (``compliant: null``),
never compliant; authorization (provenance in the org or an allowlist entry) is its own fact, shown
red and alerted on whether or not a policy is attached, unless an org admin relaxed it (audited)."""

import hashlib
import io
import json

import pytest
from django.urls import reverse

from alerts import services as alert_services
from alerts.models import Delivery
from audit.context import AuditContext
from audit.models import AuditEvent
from evidence import services as evidence
from evidence.archives import Member
from policies import services as policies
from policies.models import SnapshotCompliance
from policies.selectors import non_compliant_periods
from policies.standing import compliance_state, environment_standings, state_badge, state_label
from snapshots.models import Environment
from snapshots.services.environments import set_environment_authorization
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.policies.helpers import CTX, POLICY_HEAD, fp, make_env
from tests.reports.conftest import pdf_text

pytestmark = pytest.mark.django_db

MINER, WEB = "docker.io/evil/miner:1", "ghcr.io/acme/web:1.5"
MINER_FP, WEB_FP = fp(0xBAD), fp(0x15)
TRAIL_POLICY = POLICY_HEAD + "artifacts:\n  trail-compliance:\n    required: true\n"
FAILING_JUNIT = (b'<?xml version="1.0"?><testsuite name="web" tests="2" failures="1" errors="0" skipped="0">'
                 b'<testcase classname="web" name="test_ok"/><testcase classname="web" name="test_login">'
                 b'<failure message="boom">AssertionError</failure></testcase></testsuite>')


@pytest.fixture(autouse=True)
def evidence_store(settings, tmp_path):
    settings.CSM_EVIDENCE_ROOT = tmp_path / "evidence"
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "ev")}}}


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def ingest(env, artifacts: dict, capture):
    body = {"artifacts": [{"digests": {name: fingerprint}, "creationTimestamp": 1_700_000_000}
                          for name, fingerprint in artifacts.items()]}
    with capture(execute=False):
        report, _ = accept_report(CTX, env, env.type, json.dumps(body).encode())
        snapshot = ingest_report(report.pk).snapshot
    env.refresh_from_db()
    return snapshot


def build_web_with_failing_junit(org, capture):
    """web:1.5 was built by flow ``web`` (provenance) and its JUnit attestation failed."""
    with capture(execute=False):
        flow, _ = evidence.upsert_flow(CTX, org, {"name": "web", "description": "the web service"})
        evidence.report_artifact(CTX, org, flow, {"fingerprint": WEB_FP, "filename": WEB, "trail_name": "build-15"})
        member = Member("report.xml", io.BytesIO(FAILING_JUNIT), hashlib.sha256(FAILING_JUNIT).hexdigest(),
                        len(FAILING_JUNIT))
        evidence.create_attestation(CTX, org, flow, "build-15", "junit",
                                    {"attestation_name": "unit-tests", "artifact_fingerprint": WEB_FP},
                                    members=[member])


@pytest.fixture
def walkthrough(org, capture):
    """prod-k8s, no policy, running the miner (no provenance) and web:1.5 (failed JUnit)."""
    with capture(execute=False):
        env = make_env(org, "prod-k8s")
        for name in ("staging", "dev", "sandbox"):
            make_env(org, name)
    build_web_with_failing_junit(org, capture)
    ingest(env, {MINER: MINER_FP, WEB: WEB_FP}, capture)
    return env


def by_name(answer: dict) -> dict:
    return {a["name"]: a for a in answer["artifacts"]}


def test_the_one_function_has_three_states_and_unknown_is_never_green():
    assert [compliance_state(v) for v in (True, False, None)] == ["compliant", "non-compliant", "unknown"]
    assert compliance_state(False, "unknown") == "unknown"  # a rule that could not be evaluated
    assert state_badge("unknown") == "warn" and state_badge("compliant") == "ok"
    assert state_label("unknown") == "Unknown — no policy"


def test_unpoliced_environment_is_unknown_and_the_miner_unauthorized_in_the_api(walkthrough, owner_api):
    snapshot = owner_api.get("/api/v2/snapshots/acme/prod-k8s/-1").json()
    assert snapshot["compliant"] is None and snapshot["compliance_status"] == "unknown"
    artifacts = by_name(snapshot)
    assert artifacts[MINER]["authorized"] is False and artifacts[MINER]["authorization"] == "none"
    assert artifacts[MINER]["compliant"] is None and artifacts[MINER]["compliance_status"] == "unknown"
    assert artifacts[WEB]["authorized"] is True and artifacts[WEB]["authorization"] == "provenance"
    assert artifacts[WEB]["compliant"] is None and artifacts[WEB]["compliance_status"] == "unknown"

    listed = owner_api.get("/api/v2/snapshots/acme/prod-k8s").json()
    assert listed[0]["compliant"] is None and listed[0]["compliance_status"] == "unknown"

    environment = owner_api.get("/api/v2/environments/acme/prod-k8s").json()
    assert environment["compliant"] is None and environment["compliance_status"] == "unknown"
    assert environment["policed"] is False and environment["require_authorization"] is True
    assert environment["unauthorized_count"] == 1
    every = {e["name"]: e for e in owner_api.get("/api/v2/environments/acme").json()}
    assert all(e["compliant"] is None for e in every.values())

    stored = SnapshotCompliance.objects.get(environment=walkthrough)
    assert stored.compliant is None and stored.unauthorized_count == 1 and stored.unknown_count == 2
    assert stored.compliant_count == 0


def test_assert_endpoint_is_unknown_without_a_policy(walkthrough, owner_api):
    answer = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{WEB_FP}?environment_name=prod-k8s").json()
    assert answer["compliant"] is None and answer["status"] == "unknown"
    assert answer["authorized"] is True
    miner = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{MINER_FP}?environment_name=prod-k8s").json()
    assert miner["compliant"] is None and miner["status"] == "unknown" and miner["authorized"] is False


def test_with_a_policy_the_failed_junit_is_non_compliant_everywhere(walkthrough, org, owner_api, capture):
    with capture(execute=True):
        policies.save_policy(CTX, org, "trail-ok", TRAIL_POLICY)
        policies.attach_policies(CTX, org, walkthrough, ["trail-ok"])
    policies.reevaluate(walkthrough.pk, "test", CTX)
    snapshot = owner_api.get("/api/v2/snapshots/acme/prod-k8s/-1").json()
    assert snapshot["compliant"] is False and snapshot["compliance_status"] == "non-compliant"
    assert by_name(snapshot)[WEB]["compliant"] is False
    assert by_name(snapshot)[MINER]["authorized"] is False
    answer = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{WEB_FP}?environment_name=prod-k8s").json()
    assert answer["compliant"] is False and answer["status"] == "non-compliant"
    environment = owner_api.get("/api/v2/environments/acme/prod-k8s").json()
    assert environment["compliant"] is False and environment["policed"] is True


def test_web_pages_show_unauthorized_and_unknown_never_compliant(walkthrough, client, owner):
    client.force_login(owner)
    for url in (reverse("environment-detail", args=["acme", "prod-k8s"]),
                reverse("snapshot-detail", args=["acme", "prod-k8s", walkthrough.last_snapshot_index])):
        html = client.get(url).content.decode()
        assert "Unauthorized" in html
        assert "Unknown — no policy" in html
        assert 'data-state="compliant"' not in html and ">Compliant<" not in html
        assert reverse("policy-environment", args=["acme", "prod-k8s"]) in html  # the way to attach one
    html = client.get(reverse("policy-environment", args=["acme", "prod-k8s"])).content.decode()
    assert 'data-state="unknown"' in html and 'data-state="compliant"' not in html


def _unauthorized_deliveries():
    return [json.loads(d.body) for d in Delivery.objects.filter(event_type="ON_UNAUTHORIZED_ARTIFACT")]


@pytest.mark.parametrize("with_policy", [False, True])
def test_unauthorized_alert_fires_with_and_without_a_policy(org, capture, with_policy):
    with capture(execute=False):
        env = make_env(org, "prod-k8s")
        alert_services.create_action(CTX, org, "security", "webhook", url="http://127.0.0.1:9/",
                                     triggers=["ON_UNAUTHORIZED_ARTIFACT", "ON_COMPLIANT_ENV",
                                               "ON_NON_COMPLIANT_ENV"])
        if with_policy:
            policies.save_policy(CTX, org, "trail-ok", TRAIL_POLICY)
            policies.attach_policies(CTX, org, env, ["trail-ok"])
    build_web_with_failing_junit(org, capture)
    ingest(env, {WEB: WEB_FP}, capture)
    assert _unauthorized_deliveries() == []
    ingest(env, {WEB: WEB_FP, MINER: MINER_FP}, capture)
    delivered = _unauthorized_deliveries()
    assert [d["artifact"]["name"] for d in delivered] == [MINER]
    assert delivered[0]["description"].startswith(f"Unauthorized artifact {MINER} started in prod-k8s")
    environment_alerts = list(Delivery.objects.filter(event_type__in=["ON_COMPLIANT_ENV", "ON_NON_COMPLIANT_ENV"])
                              .values_list("event_type", flat=True))
    # Unknown (no policy) raises no environment-compliance alert; with the policy web:1.5 fails it.
    assert environment_alerts == (["ON_NON_COMPLIANT_ENV"] if with_policy else [])


def test_relaxed_environment_says_so_and_raises_no_unauthorized_alert(org, owner, capture, owner_api):
    with capture(execute=False):
        env = make_env(org, "sandbox")
        alert_services.create_action(CTX, org, "security", "webhook", url="http://127.0.0.1:9/",
                                     triggers=["ON_UNAUTHORIZED_ARTIFACT"])
        set_environment_authorization(AuditContext.for_user(owner), env, False, "developers' playground")
    event = AuditEvent.objects.get(org=org, action="environment.authorization_relaxed")
    assert event.after == {"require_authorization": False, "reason": "developers' playground"}
    assert event.actor_label == owner.email
    env.refresh_from_db()
    ingest(env, {MINER: MINER_FP}, capture)
    assert _unauthorized_deliveries() == []
    miner = by_name(owner_api.get("/api/v2/snapshots/acme/sandbox/-1").json())[MINER]
    assert miner["authorized"] is True and miner["authorization"] == "relaxed"
    assert SnapshotCompliance.objects.get(environment=env).unauthorized_count == 0
    assert owner_api.get("/api/v2/environments/acme/sandbox").json()["require_authorization"] is False


def test_relaxing_through_the_api_needs_an_admin_and_a_reason(org, capture, api, token_for, owner_api):
    with capture(execute=False):
        make_env(org, "sandbox")
    member = api(token=token_for(org, Role.MEMBER))
    refused = member.patch("/api/v2/environments/acme/sandbox", {"require_authorization": False, "reason": "x"},
                           format="json")
    assert refused.status_code == 403
    no_reason = owner_api.patch("/api/v2/environments/acme/sandbox", {"require_authorization": False},
                                format="json")
    assert no_reason.status_code == 400 and no_reason.json()["error"]["fields"]
    with capture(execute=True):
        answer = owner_api.patch("/api/v2/environments/acme/sandbox",
                                 {"require_authorization": False, "reason": "sandbox"}, format="json")
    assert answer.status_code == 200 and answer.json()["require_authorization"] is False
    assert AuditEvent.objects.filter(org=org, action="environment.authorization_relaxed").count() == 1
    # The kosli CLI's PUT (no such field) leaves it alone; a PUT with it needs a reason too.
    put = owner_api.put("/api/v2/environments/acme", {"name": "sandbox", "type": "server"}, format="json")
    assert put.status_code == 200 and put.json()["require_authorization"] is False
    put = owner_api.put("/api/v2/environments/acme", {"name": "sandbox", "type": "server",
                                                      "require_authorization": True}, format="json")
    assert put.status_code == 400
    with capture(execute=True):
        put = owner_api.put("/api/v2/environments/acme", {"name": "sandbox", "type": "server",
                                                          "require_authorization": True,
                                                          "authorization_reason": "sandbox closed"}, format="json")
    assert put.status_code == 200 and put.json()["require_authorization"] is True
    assert AuditEvent.objects.filter(org=org, action="environment.authorization_required").count() == 1


def test_relaxing_on_the_environment_page_asks_for_the_name_and_is_for_admins(org, client, owner, member_of,
                                                                              capture):
    with capture(execute=False):
        make_env(org, "sandbox")
    url = reverse("environment-authorization", args=["acme", "sandbox"])
    member = member_of(org, Role.MEMBER)
    client.force_login(member)
    assert "Relax authorization" not in client.get(reverse("environment-detail", args=["acme", "sandbox"])).content \
        .decode()
    assert client.post(url, {"require_authorization": "false", "reason": "x", "confirm": "sandbox"}).status_code == 403
    client.force_login(owner)
    page = client.get(reverse("environment-detail", args=["acme", "sandbox"])).content.decode()
    assert "Relax authorization" in page
    wrong = client.post(url, {"require_authorization": "false", "reason": "playground", "confirm": "prod"})
    assert wrong.status_code == 400 and "Type sandbox to confirm" in wrong.content.decode()
    assert Environment.objects.get(name="sandbox").require_authorization is True
    with capture(execute=False):
        done = client.post(url, {"require_authorization": "false", "reason": "playground", "confirm": "sandbox"})
    assert done.status_code == 302
    assert Environment.objects.get(name="sandbox").require_authorization is False
    event = AuditEvent.objects.get(org=org, action="environment.authorization_relaxed")
    assert event.after["reason"] == "playground"
    assert "Not required" in client.get(reverse("environment-detail", args=["acme", "sandbox"])).content.decode() \
        or "Relaxed" in client.get(reverse("environment-detail", args=["acme", "sandbox"])).content.decode()


def test_unknown_is_its_own_state_in_changed_and_periods(org, capture):
    with capture(execute=False):
        env = make_env(org, "prod-k8s")
    build_web_with_failing_junit(org, capture)
    ingest(env, {WEB: WEB_FP}, capture)  # unknown
    with capture(execute=True):
        policies.save_policy(CTX, org, "trail-ok", TRAIL_POLICY)
        policies.attach_policies(CTX, org, env, ["trail-ok"])
    ingest(env, {WEB: WEB_FP, "other:1": fp(7)}, capture)  # non-compliant
    with capture(execute=True):
        policies.detach_policies(CTX, org, env, ["trail-ok"])
    ingest(env, {WEB: WEB_FP}, capture)  # unknown again
    rows = list(SnapshotCompliance.objects.filter(environment=env).order_by("snapshot_index")
                .values_list("compliant", "changed"))
    states = [compliant for compliant, _ in rows]
    assert states[0] is None and False in states and states[-1] is None
    assert all(changed for compliant, changed in rows if compliant is not None) or rows
    assert rows[-1][1] is True  # non-compliant → unknown is a change
    periods = non_compliant_periods(env)
    assert len(periods) == 1 and periods[0]["end"] is not None  # unknown ended it, without being "compliant"


def test_environment_standings_for_dashboards(walkthrough, org, django_assert_max_num_queries):
    environments = list(Environment.objects.for_org(org).order_by("name"))
    with django_assert_max_num_queries(2):
        standings = environment_standings(org, environments)
    prod = standings[walkthrough.pk]
    assert prod == {"state": "unknown", "compliant": None, "unauthorized": 1, "non_compliant": 0, "unknown": 2,
                    "running": 2, "snapshot_index": walkthrough.last_snapshot_index, "policed": False,
                    "require_authorization": True}
    assert all(s["state"] == "unknown" for s in standings.values())


def test_org_summary_counts_unknown_apart(walkthrough, org, owner, capture):
    import datetime

    from django.utils import timezone

    from reports.models import AuditReport
    from reports.services import request_report
    from reports.tasks import generate_report

    with capture(execute=False):
        staging = Environment.objects.get(org=org, name="staging")
        policies.save_policy(CTX, org, "trail-ok", TRAIL_POLICY)
        policies.attach_policies(CTX, org, staging, ["trail-ok"])
    ingest(staging, {"api:1": fp(9)}, capture)  # evaluated against a policy: non-compliant (no provenance)
    today = timezone.now().date()
    ctx = AuditContext.for_user(owner)
    report = request_report(ctx, org, "org", {"from": (today - datetime.timedelta(days=7)).isoformat(),
                                              "to": (today + datetime.timedelta(days=1)).isoformat()},
                            role=Role.OWNER)
    generate_report.run(str(report.pk), ctx.to_dict())
    report = AuditReport.objects.select_related("output").get(pk=report.pk)
    assert report.status == "done", report.error
    figures = dict(json.loads(bytes(report.output.data_json))["summary"]["figures"])
    assert figures["Compliant snapshots"] == "0% of 1 with a policy"
    assert figures["Snapshots by compliance"] == "Compliant 0% · Non-compliant 50% · Unknown (no policy) 50%"
    assert figures["Environments with a policy"] == "1 of 4"
    text = pdf_text(report)
    assert "Unknown (no policy) 50%" in text and "unknown (no policy)" in text


def test_environment_report_says_unknown_not_compliant(walkthrough, org, owner):
    import datetime

    from django.utils import timezone

    from reports.models import AuditReport
    from reports.services import request_report
    from reports.tasks import generate_report

    today = timezone.now().date()
    ctx = AuditContext.for_user(owner)
    report = request_report(ctx, org, "environment", {
        "environment": "prod-k8s", "from": (today - datetime.timedelta(days=7)).isoformat(),
        "to": (today + datetime.timedelta(days=1)).isoformat()}, role=Role.OWNER)
    generate_report.run(str(report.pk), ctx.to_dict())
    report = AuditReport.objects.select_related("output").get(pk=report.pk)
    assert report.status == "done", report.error
    figures = dict(json.loads(bytes(report.output.data_json))["summary"]["figures"])
    assert figures["Compliant snapshots"] == "n/a (no policy)"
    assert figures["Snapshots by compliance"] == "Compliant 0% · Non-compliant 0% · Unknown (no policy) 100%"
    sections = {s["id"]: s for s in json.loads(bytes(report.output.data_json))["sections"]}
    assert [row[-2] for row in sections["snapshots"]["rows"]] == ["unknown"]


def test_the_kosli_cli_reads_unknown_as_not_compliant(walkthrough, owner):
    """The CLI type-asserts ``compliant`` to a boolean (``kosli list snapshots``, ``assert snapshot``,
    ``assert artifact``): it gets false — never true — where other clients get null."""
    from rest_framework.test import APIClient

    cli = APIClient(HTTP_USER_AGENT="Kosli/2.11.0")
    cli.force_login(owner)
    assert cli.get("/api/v2/snapshots/acme/prod-k8s/-1").json()["compliant"] is False
    assert cli.get("/api/v2/snapshots/acme/prod-k8s").json()[0]["compliant"] is False
    answer = cli.get(f"/api/v2/asserts/acme/fingerprint/{WEB_FP}?environment_name=prod-k8s").json()
    assert answer["compliant"] is False and answer["status"] == "unknown"
