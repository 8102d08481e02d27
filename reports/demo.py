"""The demo org's sample history: two weeks of a small company's production, built through the real
services so that every page has something true to show and ``verify_audit`` passes on it.

``build_demo_history(org, owner, now=None)`` fills an (empty) org with:

- three environments: ``prod-k8s`` (Kubernetes), ``staging-ecs`` (Amazon ECS) and ``build-server``
  (server paths), reporting over the 14 days before ``now`` (reports accepted with a backdated
  ``received_at``, so each snapshot sits at its moment; a daily unchanged report is a heartbeat);
- two flows, ``web`` and ``api``, with a trail per commit: the artifact, a pull-request attestation with
  an approver, JUnit results and a CycloneDX SBOM, each release deployed to staging and a day later to
  prod;
- a control, ``RCTL-043`` (peer review of every change), with a compliant decision on it in every trail;
- a failing build (``api`` 2.9.0: one failing test) whose artifact still went to staging, not to prod;
- an unauthorized image, ``docker.io/evil/miner:1`` (no provenance), running in prod for four hours
  four days ago;
- a policy (provenance, trail compliance, JUnit and SBOM required) attached to prod, an email alert
  action for prod (to an example.com address: nothing leaves the machine with the default console
  backend), and one generated org compliance summary (PDF) through the reports service.

It lives on the top floor because it uses every app. Every write goes through the owning app's
service (the audit trail and the journal are written as for real traffic); ingest and the report are
run in this process, whether or not a Celery broker is configured, so the history is complete when the
function returns (a worker that later receives the enqueued messages finds them done). Evidence,
policies and audit events are dated when the builder runs; only the environments' reports are
backdated. Idempotent: an org that already has the demo environments is left alone.
"""

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from alerts.choices import ActionType, Trigger
from alerts.models import Action
from alerts.services import create_action
from audit.choices import ActorType
from audit.context import AuditContext
from evidence.archives import Member
from evidence.controls import create_control
from evidence.services import begin_trail, create_attestation, create_custom_type, report_artifact, upsert_flow
from evidence.tags import change_tags
from policies.services import attach_policies, save_policy
from reports.choices import ReportKind
from reports.models import AuditReport
from reports.services import request_report
from reports.tasks import generate_report
from snapshots.models import Environment
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tenants.models import ServiceAccount
from tenants.services import create_service_account

DEMO_SLUG = "demo"
DEMO_NAME = "Demo (sample data)"
DAYS = 14
PROD, STAGING, BUILD = "prod-k8s", "staging-ecs", "build-server"
REGISTRY = "registry.example.com/acme"
MINER = "docker.io/evil/miner:1"
POLICY_NAME = "prod-requirements"
COVERAGE_TYPE = "unit-test-coverage"
POLICY = """_schema: https://kosli.com/schemas/policy/environment/v1
artifacts:
  provenance:
    required: true        # built by one of our flows
  trail-compliance:
    required: true        # ... and compliant in its trail
  attestations:
    - name: unit-tests
      type: junit
    - name: sbom
      type: "*"
"""
FLOW_TEMPLATE = """version: 1
trail:
  artifacts:
    - name: {app}
      attestations:
        - name: pull-request
          type: pull_request
        - name: unit-tests
          type: junit
        - name: sbom
          type: sbom
"""
PEOPLE = ["alice", "bob", "chen", "dana"]


CONTROL = "RCTL-043"  # the demo's control, decided on by every build's trail


def fingerprint(label: str) -> str:
    """A stable, fake SHA-256 for a demo artifact."""
    return hashlib.sha256(f"csm-demo:{label}".encode()).hexdigest()


def _member(name: str, data: bytes) -> Member:
    return Member(name, io.BytesIO(data), hashlib.sha256(data).hexdigest(), len(data))


def _junit_xml(app: str, version: str, failing: str | None) -> bytes:
    names = ["renders_home", "signs_in", "rejects_bad_password", "paginates_lists", "serves_health",
             "caches_static", "validates_input", "handles_timeouts", "writes_audit_log", "rotates_keys"]
    cases = []
    for index, name in enumerate(names):
        case = f'    <testcase classname="{app}.tests" name="test_{name}" time="0.{index + 11:02d}"'
        if name == failing:
            cases.append(case + f'>\n      <failure message="AssertionError: expected 200, got 500">'
                         f"{app} {version}: test_{name} failed</failure>\n    </testcase>")
        else:
            cases.append(case + "/>")
    failures = 1 if failing else 0
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  <testsuite name="{app}.tests" '
            f'tests="{len(names)}" failures="{failures}" errors="0" skipped="0" time="1.9">\n'
            + "\n".join(cases) + "\n  </testsuite>\n</testsuites>\n").encode()


def _cyclonedx(app: str, version: str) -> bytes:
    components = {
        "web": [("react", "18.3.1", "npm"), ("react-dom", "18.3.1", "npm"), ("axios", "1.7.7", "npm"),
                ("nginx", "1.27.2", "generic")],
        "api": [("django", "5.2.1", "pypi"), ("djangorestframework", "3.16.0", "pypi"),
                ("psycopg", "3.2.9", "pypi"), ("gunicorn", "23.0.0", "pypi")],
    }[app]
    document = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": {"component": {"type": "container", "name": f"{REGISTRY}/{app}", "version": version}},
        "components": [{"type": "library", "name": name, "version": ver, "purl": f"pkg:{kind}/{name}@{ver}"}
                       for name, ver, kind in components],
    }
    return json.dumps(document, indent=2).encode()


@dataclass
class Running:
    """What one environment runs: artifact name → (fingerprint, instances, started at)."""

    env: Environment
    ctx: AuditContext
    artifacts: dict = field(default_factory=dict)


class _Story:
    def __init__(self, org, owner, start: datetime):
        self.org = org
        self.start = start
        self.owner_ctx = AuditContext.for_user(owner)
        self.build_number = 1200
        self.commit_counter = 0
        self.envs: dict[str, Running] = {}
        self.flows = {}

    def at(self, day: int, hour: int, minute: int = 0) -> datetime:
        return self.start + timedelta(days=day, hours=hour, minutes=minute)

    # --- actors --------------------------------------------------------------------------------------

    def service_account(self, name: str, role: str, description: str) -> AuditContext:
        account = ServiceAccount.objects.filter(org=self.org, name=name).first()
        if account is None:
            account = create_service_account(self.owner_ctx, self.org, name, role, description)
        return AuditContext(actor_type=ActorType.SERVICE_ACCOUNT, actor_label=name, service_account_id=account.pk)

    # --- environments --------------------------------------------------------------------------------

    def environment(self, name: str, env_type: str, description: str, agent: AuditContext) -> None:
        env, _ = create_or_update_environment(self.owner_ctx, self.org, name, env_type, description=description)
        self.envs[name] = Running(env, agent)

    def deploy(self, env_name: str, name: str, fp: str, instances: int, when: datetime) -> None:
        self.envs[env_name].artifacts[name] = (fp, instances, when)
        self.report(env_name, when)

    def remove(self, env_name: str, name: str, when: datetime) -> None:
        self.envs[env_name].artifacts.pop(name, None)
        self.report(env_name, when)

    def body(self, running: Running) -> dict:
        env = running.env
        entries = []
        if env.type == "server":
            digests = {name: fp for name, (fp, _, _) in sorted(running.artifacts.items())}
            since = min((when for _, _, when in running.artifacts.values()), default=self.start)
            return {"artifacts": [{"digests": digests, "creationTimestamp": int(since.timestamp())}]}
        for name, (fp, instances, since) in sorted(running.artifacts.items()):
            app = name.rsplit("/", 1)[-1].split(":")[0]
            replica_set = f"{app}-{fp[:10]}"
            for index in range(instances):
                pod = hashlib.sha256(f"{replica_set}/{index}".encode()).hexdigest()
                if env.type == "K8S":
                    entries.append({
                        "podName": f"{replica_set}-{pod[:5]}",
                        "namespace": "default" if name == MINER else "shop",
                        "digests": {name: fp}, "creationTimestamp": int(since.timestamp()),
                        "owners": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set}],
                    })
                else:  # ECS
                    entries.append({
                        "taskArn": f"arn:aws:ecs:eu-west-1:123456789012:task/staging/{pod[:32]}",
                        "cluster_name": "staging", "service_name": app,
                        "digests": {name: fp}, "creationTimestamp": int(since.timestamp()),
                    })
        return {"artifacts": entries}

    def report(self, env_name: str, when: datetime) -> None:
        """What the environment's agent would send at ``when``: accepted (backdated) and ingested here.
        Called in time order per environment (within a day: heartbeats 06-08h, deploys from 10h)."""
        running = self.envs[env_name]
        raw = json.dumps(self.body(running), separators=(",", ":")).encode()
        report, _ = accept_report(running.ctx, running.env, running.env.type, raw, received_at=when)
        ingest_report(report.pk)  # synchronously: a broker's worker may not be up (it will find it done)

    # --- evidence --------------------------------------------------------------------------------------

    def flow(self, app: str, description: str) -> None:
        ctx = self.ci
        flow, _ = upsert_flow(ctx, self.org, {"name": app, "description": description,
                                              "tags": {"team": "shop", "risk-level": "high"}},
                              template_yaml=FLOW_TEMPLATE.format(app=app))
        self.flows[app] = flow

    def build(self, app: str, version: str, message: str, failing_test: str | None = None) -> tuple[str, str]:
        """A CI run of ``app`` at a new commit: trail, artifact, pull request, Jira issue, Sonar gate, JUnit, SBOM.
        Returns (artifact name, fingerprint)."""
        ctx, flow = self.ci, self.flows[app]
        self.commit_counter += 1
        self.build_number += 7
        commit = hashlib.sha1(f"csm-demo:{app}:{version}".encode()).hexdigest()  # noqa: S324 - a fake git sha  # nosec B324
        author = PEOPLE[self.commit_counter % len(PEOPLE)]
        approver = PEOPLE[(self.commit_counter + 1) % len(PEOPLE)]
        name = f"{REGISTRY}/{app}:{version}"
        fp = fingerprint(name)
        repo = f"https://git.example.com/acme/{app}"
        commit_info = {"sha1": commit, "message": message, "author": f"{author} <{author}@example.com>",
                       "branch": "main", "timestamp": int(self.start.timestamp()), "url": f"{repo}/commit/{commit}"}
        build_url = f"https://ci.example.com/acme/{app}/builds/{self.build_number}"
        begin_trail(ctx, self.org, flow, {"name": commit, "description": f"{app} {version}: {message}",
                                          "git_commit_info": commit_info, "origin_url": build_url})
        report_artifact(ctx, self.org, flow, {
            "fingerprint": fp, "filename": name, "git_commit": commit, "git_commit_info": commit_info,
            "build_url": build_url, "commit_url": f"{repo}/commit/{commit}", "repo_url": repo,
            "template_reference_name": app, "trail_name": commit,
        })
        pr_number = 400 + self.commit_counter
        create_attestation(ctx, self.org, flow, commit, "pull_request", {
            "attestation_name": "pull-request", "artifact_fingerprint": fp, "git_commit_info": commit_info,
            "git_provider": "github",
            "pull_requests": [{"url": f"{repo}/pull/{pr_number}", "merge_commit": commit, "state": "MERGED",
                               "author": author, "approvers": [{"username": approver, "state": "APPROVED"}]}],
        })
        ticket = f"SHOP-{100 + self.commit_counter}"  # kosli attest jira / attest sonar: about the trail
        create_attestation(ctx, self.org, flow, commit, "jira", {
            "git_commit_info": commit_info, "attestation_name": "jira-ticket",
            "jira_results": [{"issue_id": ticket, "issue_url": f"https://acme.atlassian.net/browse/{ticket}",
                              "issue_exists": True, "issue_fields": {"summary": message,
                                                                     "status": {"name": "Done"},
                                                                     "issuetype": {"name": "Story"}}}],
        })
        create_attestation(ctx, self.org, flow, commit, "sonar", {
            "git_commit_info": commit_info, "attestation_name": "sonar",
            "sonar_results": {"serverUrl": "https://sonarcloud.io", "taskId": f"AZdemo{self.build_number:06d}",
                              "status": "SUCCESS", "analysedAt": self.start.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                              "revision": commit, "branch": {"name": "main", "type": "LONG"},
                              "project": {"key": f"acme_{app}", "name": app,
                                          "url": f"https://sonarcloud.io/dashboard?id=acme_{app}"},
                              "qualityGate": {"status": "OK", "conditions": [
                                  {"metric": "new_coverage", "errorThreshold": "80", "operator": "LT",
                                   "value": "87.5", "status": "OK"},
                                  {"metric": "new_violations", "errorThreshold": "0", "operator": "GT",
                                   "value": "0", "status": "OK"}]}},
        })
        create_attestation(ctx, self.org, flow, commit, "system", {  # kosli attest decision
            "attestation_name": "peer-review", "type_name": "decision", "control": CONTROL,
            "attestation_data": {"is_compliant": True}, "git_commit_info": commit_info,
            "description": f"pull request {pr_number} approved by {approver}, not its author {author}",
        })
        create_attestation(ctx, self.org, flow, commit, "junit",
                           {"attestation_name": "unit-tests", "artifact_fingerprint": fp, "origin_url": build_url},
                           members=[_member("junit.xml", _junit_xml(app, version, failing_test))])
        create_attestation(ctx, self.org, flow, commit, "sbom",
                           {"attestation_name": "sbom", "artifact_fingerprint": fp, "origin_url": build_url},
                           members=[_member("bom.cdx.json", _cyclonedx(app, version))])
        create_attestation(ctx, self.org, flow, commit, "custom", {
            "attestation_name": "coverage", "artifact_fingerprint": fp, "origin_url": build_url,
            "type_name": COVERAGE_TYPE,
            "attestation_data": {"percent_covered": 78.5 if failing_test else 86.2, "tool": "coverage.py"}})
        return name, fp

    # --- the story -------------------------------------------------------------------------------------

    def tell(self, now: datetime) -> None:
        k8s = self.service_account("prod-k8s-agent", Role.SNAPSHOTTER, "csm-agent CronJob in the prod cluster")
        ecs = self.service_account("staging-ecs-agent", Role.SNAPSHOTTER, "csm-agent task in the staging cluster")
        host = self.service_account("build-server-agent", Role.SNAPSHOTTER, "csm-agent systemd timer on ci-01")
        self.ci = self.service_account("ci", Role.MEMBER, "the CI pipeline: flows, trails, artifacts, attestations")
        self.environment(PROD, "K8S", "Production Kubernetes cluster (shop namespace)", k8s)
        self.environment(STAGING, "ECS", "Staging on Amazon ECS", ecs)
        self.environment(BUILD, "server", "The CI build server's tools", host)
        save_policy(self.owner_ctx, self.org, POLICY_NAME, POLICY,
                    description="What may run in production: built by us, tested, with an SBOM.")
        attach_policies(self.owner_ctx, self.org, self.envs[PROD].env, [POLICY_NAME])
        create_control(self.owner_ctx, self.org, {
            "identifier": CONTROL, "name": "Peer review of every change",
            "description": "Every change to production code is approved by someone other than its author.",
            "links": {"policy": "https://example.com/policies/change-management"}})
        change_tags(self.owner_ctx, self.org, "control", CONTROL, {"framework": "finos-sdlc"})
        self.flow("web", "The shop's web front end")
        self.flow("api", "The shop's backend API")
        coverage = {"name": COVERAGE_TYPE, "description": "Line coverage of the unit tests (coverage.py JSON totals)",
                    "schema": {"type": "object", "required": ["percent_covered"],
                               "properties": {"percent_covered": {"type": "number"}, "tool": {"type": "string"}}},
                    "jq_rules": [".percent_covered >= 70"],
                    "summary": [{"name": "Coverage", "expression": ".percent_covered"}]}
        create_custom_type(self.owner_ctx, self.org, coverage)
        create_custom_type(self.owner_ctx, self.org, {**coverage, "jq_rules": [".percent_covered >= 80",
                                                                                '.tool == "coverage.py"']})

        # Day 0: the build server's tools, the first releases everywhere.
        self.envs[BUILD].artifacts.update({
            "/usr/local/bin/kosli": (fingerprint("kosli 2.11.0"), 1, self.at(0, 7)),
            "/opt/ci/bin/runner": (fingerprint("runner 3.4.1"), 1, self.at(0, 7)),
            "/usr/bin/docker": (fingerprint("docker 27.3.1"), 1, self.at(0, 7)),
        })
        self.report(BUILD, self.at(0, 7))
        web, web_fp = self.build("web", "1.4.0", "Checkout: show delivery estimates")
        api, api_fp = self.build("api", "2.7.0", "Orders: idempotent payment callbacks")
        self.deploy(STAGING, web, web_fp, 2, self.at(0, 9))
        self.deploy(STAGING, api, api_fp, 2, self.at(0, 9, 20))
        self.deploy(PROD, web, web_fp, 3, self.at(0, 15))
        self.deploy(PROD, api, api_fp, 2, self.at(0, 15, 10))

        releases = {
            3: ("web", "1.5.0", "Search: typo-tolerant product search", None),
            6: ("api", "2.8.0", "Orders: export to the accounting system", None),
            9: ("web", "1.6.0", "Cart: keep items across devices", None),
            12: ("api", "2.9.0", "Payments: retry declined cards once", "handles_timeouts"),
        }
        current = {"web": web, "api": api}
        pending_prod = {}
        for day in range(DAYS + 1):
            # The agents report every day; an unchanged report is a heartbeat (no new snapshot).
            for env_name, hour in ((BUILD, 6), (STAGING, 7), (PROD, 8)):
                if day and self.at(day, hour) < now:
                    self.report(env_name, self.at(day, hour))
            if day in pending_prod:  # promoted to prod the day after staging
                app, name, fp = pending_prod.pop(day)
                self.envs[PROD].artifacts.pop(current[app], None)
                self.deploy(PROD, name, fp, 3 if app == "web" else 2, self.at(day, 10))
                current[app] = name
            if day in releases:
                app, version, message, failing = releases[day]
                name, fp = self.build(app, version, message, failing_test=failing)
                old = next(key for key in self.envs[STAGING].artifacts if key.startswith(f"{REGISTRY}/{app}:"))
                self.envs[STAGING].artifacts.pop(old)
                self.deploy(STAGING, name, fp, 2, self.at(day, 11))
                if failing is None:  # a red build is not promoted (but it did reach staging)
                    pending_prod[day + 1] = (app, name, fp)
            if day == 5:  # the build server's runner was upgraded
                self.envs[BUILD].artifacts["/opt/ci/bin/runner"] = (fingerprint("runner 3.5.0"), 1, self.at(5, 13))
                self.report(BUILD, self.at(5, 13))
            if day == 10:  # someone started a crypto miner in prod; it was found and removed four hours later
                self.deploy(PROD, MINER, fingerprint(MINER), 1, self.at(10, 13, 17))
                self.remove(PROD, MINER, self.at(10, 17, 25))
        # The latest reports, a few minutes ago: the agents are alive.
        for env_name, minutes in ((BUILD, 9), (STAGING, 6), (PROD, 3)):
            self.report(env_name, now - timedelta(minutes=minutes))

        if not Action.objects.for_org(self.org).filter(deleted_at=None).exists():
            create_action(self.owner_ctx, self.org, "prod security (email)", ActionType.EMAIL,
                          email="security@example.com", environments=[PROD],
                          triggers=[Trigger.ON_UNAUTHORIZED_ARTIFACT, Trigger.ON_NON_COMPLIANT_ENV])
        if not AuditReport.objects.filter(org=self.org).exists():
            report = request_report(self.owner_ctx, self.org, ReportKind.ORG,
                                    {"from": self.start.date().isoformat(), "to": now.isoformat()}, role=Role.OWNER)
            # Here and now, whether or not a worker is up (one that gets the queued message finds it done).
            generate_report.run(str(report.pk), self.owner_ctx.to_dict())


def build_demo_history(org, owner, now=None) -> bool:
    """Fill ``org`` with the demo's two weeks of history (see the module docstring). ``owner`` is the
    user the policy, the alert action and the report are attributed to. Returns False (and changes
    nothing) when the org already has the demo environments."""
    if Environment.objects.for_org(org).filter(name__in=[PROD, STAGING, BUILD]).exists():
        return False
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    start = (now - timedelta(days=DAYS)).replace(hour=0, minute=0)
    _Story(org, owner, start).tell(now)
    return True
