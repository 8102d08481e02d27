"""kosli ``archive flow``, ``rename flow``, ``rename environment`` and ``join environment`` against csm, each
request built as ``internal/requests/requests.go`` builds it (``tests/kosli/cli.py``): PUT, a JSON body
(``json.Marshal`` of the payload struct; ``archive flow`` has no payload, so the body is ``null``), the
CLI's User-Agent and bearer token. The CLI reads nothing of a successful answer but its status (200/201);
on failure it prints the top-level ``message``."""

import hashlib
import json

import pytest

from alerts.services import create_action
from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from evidence.models import Artifact, Flow, FlowName
from journal.verify import verify_journal
from snapshots.models import Environment, EnvironmentName
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, report_artifact  # noqa: F401
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

FP = hashlib.sha256(b"backend:1.0").hexdigest()
FP2 = hashlib.sha256(b"backend:2.0").hexdigest()


@pytest.fixture
def admin(org, token_for):
    return token_for(org, Role.ADMIN)


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def reporter(api, member):
    return api(token=member)


def events(org, action):
    return list(AuditEvent.objects.filter(org=org, action=action).order_by("seq"))


def journal_ok(org):
    problem = verify_journal(org)
    assert problem is None, str(problem)


# --- archive flow ------------------------------------------------------------------------------------


def test_archive_flow_hides_it_keeps_it_readable_and_refuses_new_records(org, admin, member, reporter):
    """cmd/kosli/archiveFlow.go newArchiveFlowCmd RunE: PUT /api/v2/flows/{org}/{flow}/archive with no
    payload (``json.Marshal(nil)`` is ``null``); success is 200 (the CLI then logs "flow X was archived").
    kosli: "The flow will no longer be visible in list of flows, data is still stored"."""
    make_flow(reporter)
    begin_trail(reporter)
    assert report_artifact(reporter, FP).status_code == 201

    answer = cli(admin, "PUT", "/api/v2/flows/acme/backend/archive", None)
    assert answer.status_code == 200, answer.content
    assert answer.json()["archived"] is True
    assert Flow.objects.get(org=org, name="backend").archived
    [event] = events(org, AuditAction.FLOW_ARCHIVED)
    assert event.before == {"name": "backend", "archived": False} and event.after["archived"] is True
    # idempotent: archiving again answers 200 and records nothing more
    assert cli(admin, "PUT", "/api/v2/flows/acme/backend/archive", None).status_code == 200
    assert len(events(org, AuditAction.FLOW_ARCHIVED)) == 1

    # hidden from the default list, listed on request, readable by name with its history
    assert [f["name"] for f in cli(member, "GET", "/api/v2/flows/acme").json()] == []
    assert [f["name"] for f in cli(member, "GET", "/api/v2/flows/acme", query={"archived": "true"}).json()] == [
        "backend"]
    assert cli(member, "GET", "/api/v2/flows/acme/backend").json()["archived"] is True
    assert cli(member, "GET", f"/api/v2/artifacts/acme/backend/fingerprint/{FP}").status_code == 200
    assert Artifact.objects.filter(org=org, fingerprint=FP).count() == 1

    # new trails, artifacts, attestations and flow updates are refused with a 400 (not a 409, which the
    # CLI retries as a lock conflict) saying why
    refused = [
        cli(member, "PUT", "/api/v2/trails/acme/backend", {"name": "build-2"}),
        cli(member, "POST", "/api/v2/artifacts/acme/backend", {"fingerprint": FP2, "filename": "b:2"}),
        cli(member, "PUT", "/api/v2/flows/acme", {"name": "backend", "description": "x"}),
        attest(reporter, "acme", "backend", "build-1", "generic",
               {"attestation_name": "scan", "is_compliant": True}),
    ]
    for answer in refused:
        assert answer.status_code == 400, answer.content
        assert "Flow 'backend' is archived" in answer.json()["message"]
    assert not Artifact.objects.filter(org=org, fingerprint=FP2).exists()

    # csm's own unarchive brings it back
    assert cli(admin, "PUT", "/api/v2/flows/acme/backend/unarchive", None).status_code == 200
    assert len(events(org, AuditAction.FLOW_UNARCHIVED)) == 1
    assert cli(member, "PUT", "/api/v2/trails/acme/backend", {"name": "build-2"}).status_code == 201


def test_archive_flow_errors(org, other_org, admin, member, reporter, token_for):
    """archiveFlow_test.go: "archiving non-existing flow fails" with kosli's message "Flow named
    'non-existing' does not exist for organization '...'"; another org's flow is a 404 too; a member
    (evidence.report but not evidence.manage) gets a 403 and nothing changes."""
    make_flow(reporter)
    assert cli_error(cli(admin, "PUT", "/api/v2/flows/acme/non-existing/archive", None)) == (
        "Flow named 'non-existing' does not exist for organization 'acme'")
    other = token_for(other_org, Role.ADMIN)
    assert cli(other, "PUT", "/api/v2/flows/acme/backend/archive", None).status_code == 404
    assert cli(member, "PUT", "/api/v2/flows/acme/backend/archive", None).status_code == 403
    assert not Flow.objects.get(org=org, name="backend").archived


# --- rename flow -------------------------------------------------------------------------------------


def test_rename_flow_keeps_history_and_the_old_name(org, admin, member, reporter):
    """cmd/kosli/renameFlow.go: PUT /api/v2/flows/{org}/{old}/rename with ``RenameFlowPayload``
    ``{"new_name"}``. kosli: "The flow will remain accessible under its old name until that name is taken
    by another flow". Every record stays with the flow, the journal still verifies (leaves committed to
    the old name), and a pipeline still saying the old name reports into the renamed flow."""
    make_flow(reporter)
    begin_trail(reporter)
    assert report_artifact(reporter, FP).status_code == 201
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "scan", "is_compliant": True}).status_code == 201

    answer = cli(admin, "PUT", "/api/v2/flows/acme/backend/rename", {"new_name": "backend-api"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["name"] == "backend-api"
    [event] = events(org, AuditAction.FLOW_RENAMED)
    assert event.before == {"name": "backend"} and event.after["name"] == "backend-api"
    journal_ok(org)

    # the old name still resolves to the same flow, for reads and for reports
    assert cli(member, "GET", "/api/v2/flows/acme/backend").json()["name"] == "backend-api"
    assert report_artifact(reporter, FP2, trail="build-2").status_code == 201
    flow = Flow.objects.get(org=org, name="backend-api")
    assert Artifact.objects.filter(flow=flow).count() == 2
    assert not Flow.objects.filter(org=org, name="backend").exists()
    journal_ok(org)  # the new artifact's leaf says backend-api, the first one's says backend

    # `kosli create flow backend` from an old pipeline updates the renamed flow, not a new empty one
    assert cli(member, "PUT", "/api/v2/flows/acme", {"name": "backend", "description": "again"}).status_code == 200
    assert Flow.objects.filter(org=org).count() == 1

    # another flow renamed to the old name takes it: the alias is released
    make_flow(reporter, name="other")
    assert cli(admin, "PUT", "/api/v2/flows/acme/other/rename", {"new_name": "backend"}).status_code == 200
    assert cli(member, "GET", "/api/v2/flows/acme/backend").json()["description"] == "the backend service"
    alias = FlowName.objects.get(org=org, name="backend", flow=flow)
    assert alias.released_at is not None
    assert events(org, AuditAction.FLOW_RENAMED)[-1].after["released_aliases"] == [
        {"name": "backend", "was_alias_of": "backend-api"}]
    journal_ok(org)


def test_rename_flow_errors(org, other_org, admin, member, reporter, token_for):
    """renameFlow_test.go: an illegal new name and a non-existing flow fail with a message; a name another
    flow has is a 400 (not 409: retried by the CLI); another org's flow 404; a member 403."""
    make_flow(reporter)
    make_flow(reporter, name="frontend")
    answer = cli(admin, "PUT", "/api/v2/flows/acme/backend/rename", {"new_name": "new illegal name"})
    assert answer.status_code == 400 and "new_name" in answer.json()["error"]["fields"]
    assert cli_error(cli(admin, "PUT", "/api/v2/flows/acme/non-existing/rename", {"new_name": "x"})) == (
        "Flow named 'non-existing' does not exist for organization 'acme'")
    answer = cli(admin, "PUT", "/api/v2/flows/acme/backend/rename", {"new_name": "frontend"})
    assert answer.status_code == 400 and "already exists" in cli_error(answer)
    assert cli(admin, "PUT", "/api/v2/flows/acme/backend/rename", {}).status_code == 400
    assert cli(token_for(other_org, Role.ADMIN), "PUT", "/api/v2/flows/acme/backend/rename",
               {"new_name": "x"}).status_code == 404
    assert cli(member, "PUT", "/api/v2/flows/acme/backend/rename", {"new_name": "x"}).status_code == 403
    assert set(Flow.objects.filter(org=org).values_list("name", flat=True)) == {"backend", "frontend"}
    assert not events(org, AuditAction.FLOW_RENAMED)


# --- environments ------------------------------------------------------------------------------------


def _env(org, name, kind="server"):
    env, _ = create_or_update_environment(AuditContext.system("test"), org, name, kind)
    return env


def _snapshot(org, env, fingerprints, capture):
    raw = json.dumps({"artifacts": [{"digests": {f"app-{i}": f}, "creationTimestamp": 1_700_000_000}
                                    for i, f in enumerate(fingerprints)]}).encode()
    with capture(execute=False):
        report, _ = accept_report(AuditContext.system("test"), env, env.type, raw)
    ingest_report(report.pk)


def test_rename_environment_keeps_snapshots_and_agents_reporting(org, admin, token_for,
                                                                 django_capture_on_commit_callbacks):
    """cmd/kosli/renameEnvironment.go: PUT /api/v2/environments/{org}/{old}/rename with
    ``RenameEnvironmentPayload`` ``{"new_name"}``. kosli: "The environment will remain accessible under its
    old name until that name is taken by another environment": an agent still reporting under the old name
    reports into the renamed environment (never into a new, empty one), its ``--auto-environment`` check
    (GET) finds it, and the snapshot journal still verifies."""
    env = _env(org, "prod-k8s")
    _snapshot(org, env, [FP], django_capture_on_commit_callbacks)
    action, _ = create_action(AuditContext.system("test"), org, "pager", "email", email="ops@example.com",
                              environments=["prod-k8s"], triggers=["ON_STARTED_ARTIFACT"])
    answer = cli(admin, "PUT", "/api/v2/environments/acme/prod-k8s/rename", {"new_name": "production"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["name"] == "production"
    [event] = events(org, AuditAction.ENVIRONMENT_RENAMED)
    assert event.before == {"name": "prod-k8s"} and event.after["name"] == "production"
    journal_ok(org)
    # an alert action watching the environment follows the rename (audited), so it does not fall silent
    action.refresh_from_db()
    assert action.environments == ["production"]
    assert events(org, AuditAction.ACTION_UPDATED)[-1].after["environments"] == ["production"]

    snapshotter = token_for(org, Role.SNAPSHOTTER)
    check = cli(snapshotter, "GET", "/api/v2/environments/acme/prod-k8s")
    assert check.status_code == 200 and check.json()["name"] == "production"
    report = cli(snapshotter, "PUT", "/api/v2/environments/acme/prod-k8s/report/server",
                 {"artifacts": [{"digests": {"app": FP2}, "creationTimestamp": 1_700_000_000}]})
    assert report.status_code == 201, report.content
    assert Environment.objects.filter(org=org).count() == 1
    env.refresh_from_db()
    assert env.name == "production" and env.reports.count() == 2
    # the snapshotter's create-if-missing with the old name re-sends the renamed one's settings: no new env
    assert cli(snapshotter, "PUT", "/api/v2/environments/acme", {"name": "prod-k8s", "type": "server"}).status_code \
        in (200, 201)
    assert Environment.objects.filter(org=org).count() == 1
    # a snapshot after the rename commits to the new name, the one before to the old: both verify
    env.refresh_from_db()
    _snapshot(org, env, [FP, FP2, hashlib.sha256(b"3").hexdigest()], django_capture_on_commit_callbacks)
    env.refresh_from_db()
    assert env.name_at(1) == "prod-k8s" and env.name_at(env.last_snapshot_index) == "production"
    assert env.last_snapshot_index >= 2
    journal_ok(org)


def test_rename_environment_errors(org, other_org, admin, token_for):
    """renameEnvironment_test.go: an illegal name and a non-existing environment fail ("Environment named
    'non-existing' does not exist for organization '...'"); a taken name 400; another org 404; a member
    (no environments.manage) 403."""
    _env(org, "prod")
    _env(org, "staging")
    answer = cli(admin, "PUT", "/api/v2/environments/acme/prod/rename", {"new_name": "new illegal name"})
    assert answer.status_code == 400 and "new_name" in answer.json()["error"]["fields"]
    assert cli_error(cli(admin, "PUT", "/api/v2/environments/acme/non-existing/rename", {"new_name": "x"})) == (
        "Environment named 'non-existing' does not exist for organization 'acme'")
    assert "already exists" in cli_error(cli(admin, "PUT", "/api/v2/environments/acme/prod/rename",
                                             {"new_name": "staging"}))
    assert cli(token_for(other_org, Role.ADMIN), "PUT", "/api/v2/environments/acme/prod/rename",
               {"new_name": "x"}).status_code == 404
    assert cli(token_for(org, Role.MEMBER), "PUT", "/api/v2/environments/acme/prod/rename",
               {"new_name": "x"}).status_code == 403
    assert set(Environment.objects.filter(org=org).values_list("name", flat=True)) == {"prod", "staging"}
    assert not EnvironmentName.objects.filter(org=org).exists()


def test_join_environment(org, other_org, token_for):
    """cmd/kosli/joinEnvironment.go: PUT /api/v2/environments/{org}/{logical}/join with
    ``JoinEnvironmentPayload`` ``{"physical_env_name"}``; joinEnvironment_test.go joins a server environment
    to a logical one. Joining again changes nothing; the audit event records the members before/after."""
    _env(org, "mix", "logical")
    _env(org, "physical", "server")
    member = token_for(org, Role.MEMBER)
    answer = cli(member, "PUT", "/api/v2/environments/acme/mix/join", {"physical_env_name": "physical"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["included_environments"] == ["physical"]
    mix = Environment.objects.get(org=org, name="mix")
    assert [e.name for e in mix.included_environments.all()] == ["physical"]
    [event] = [e for e in events(org, AuditAction.ENVIRONMENT_UPDATED) if e.target_id == str(mix.pk)]
    assert event.before["included_environments"] == [] and event.after["included_environments"] == ["physical"]
    assert cli(member, "PUT", "/api/v2/environments/acme/mix/join", {"physical_env_name": "physical"}
               ).status_code == 200
    assert len([e for e in events(org, AuditAction.ENVIRONMENT_UPDATED) if e.target_id == str(mix.pk)]) == 1

    # refusals: not logical, a logical member, unknown names, another org, a reader
    assert "not a logical environment" in cli_error(
        cli(member, "PUT", "/api/v2/environments/acme/physical/join", {"physical_env_name": "mix"}))
    assert "logical" in cli_error(cli(member, "PUT", "/api/v2/environments/acme/mix/join",
                                      {"physical_env_name": "mix"}))
    answer = cli(member, "PUT", "/api/v2/environments/acme/mix/join", {"physical_env_name": "nope"})
    assert answer.status_code == 404 and "physical_env_name" in answer.json()["error"]["fields"]
    assert cli(member, "PUT", "/api/v2/environments/acme/mix/join", {}).status_code == 400
    assert cli_error(cli(member, "PUT", "/api/v2/environments/acme/nope/join", {"physical_env_name": "physical"})
                     ) == "Environment named 'nope' does not exist for organization 'acme'"
    assert cli(token_for(other_org, Role.ADMIN), "PUT", "/api/v2/environments/acme/mix/join",
               {"physical_env_name": "physical"}).status_code == 404
    assert cli(token_for(org, Role.READER), "PUT", "/api/v2/environments/acme/mix/join",
               {"physical_env_name": "physical"}).status_code == 403
