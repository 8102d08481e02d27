"""Helpers shared by the policies and alerts tests: environments, reports, direct ingest, evidence."""

import json

from audit.context import AuditContext
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report

CTX = AuditContext.system("test")

POLICY_HEAD = "_schema: https://kosli.com/schemas/policy/environment/v1\n"
PROVENANCE_POLICY = POLICY_HEAD + "artifacts:\n  provenance:\n    required: true\n"


def fp(n: int) -> str:
    return f"{n:064x}"


def server_report(artifacts: dict) -> dict:
    """``{name: fingerprint}`` → a server-type report body."""
    return {"artifacts": [{"digests": {name: fingerprint}, "creationTimestamp": 1_700_000_000}
                          for name, fingerprint in artifacts.items()]}


def make_env(org, name="prod", **extra):
    env, _ = create_or_update_environment(CTX, org, name, "server", **extra)
    return env


def ingest(env, artifacts: dict, capture=None):
    """Accept and ingest a report in this process (hooks run); returns the new snapshot or None."""
    raw = json.dumps(server_report(artifacts)).encode()
    if capture is not None:
        with capture(execute=False):
            report, _ = accept_report(CTX, env, env.type, raw)
    else:
        report, _ = accept_report(CTX, env, env.type, raw)
    outcome = ingest_report(report.pk)
    env.refresh_from_db()
    return outcome.snapshot


def report_flow_artifact(org, flow_name: str, fingerprint: str, name="web", tags=None, trail="t1"):
    """Evidence: ``fingerprint`` was built by ``flow_name`` (gives it provenance)."""
    from evidence.models import Artifact, Flow, Trail

    flow, _ = Flow.objects.get_or_create(org=org, name=flow_name, defaults={"tags": tags or {}})
    trail_row, _ = Trail.objects.get_or_create(org=org, flow=flow, name=trail)
    return Artifact.objects.create(org=org, flow=flow, trail=trail_row, fingerprint=fingerprint, filename=name,
                                   template_name=name)
