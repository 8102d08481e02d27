"""Fixtures for the snapshot journal tests: environments, kosli-shaped reports, direct ingest."""

import itertools

import pytest

from audit.context import AuditContext
from snapshots.models import Report
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report

_pods = itertools.count(1)


def fp(n: int) -> str:
    """A deterministic fingerprint for artifact number n."""
    return f"{n:064x}"


def k8s_pod(images: dict, name=None, namespace="prod", created=1_700_000_000):
    return {"podName": name or f"pod-{next(_pods)}", "namespace": namespace, "digests": images,
            "creationTimestamp": created,
            "owners": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f", "uid": "u-1",
                        "controller": True, "blockOwnerDeletion": True}]}


def server_report(*fingerprints, names=None) -> dict:
    """A server-type report: one artifact per fingerprint (name 'app-<i>' unless names given)."""
    names = names or [f"app-{i}" for i in range(len(fingerprints))]
    return {"artifacts": [{"digests": {n: f}, "creationTimestamp": 1_700_000_000}
                          for n, f in zip(names, fingerprints, strict=True)]}


@pytest.fixture
def ctx():
    return AuditContext.system("test")


@pytest.fixture
def make_env(org, ctx):
    def make(name="prod", env_type="server", the_org=None, **extra):
        env, _ = create_or_update_environment(ctx, the_org or org, name, env_type, **extra)
        return env

    return make


@pytest.fixture
def ingest(ctx, django_capture_on_commit_callbacks):
    """ingest(env, body_dict) -> outcome: accept the report and ingest it in this process."""
    import json

    def run(env, body, key=""):
        raw = json.dumps(body).encode()
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, env, env.type, raw, key)
        outcome = ingest_report(report.pk)
        env.refresh_from_db()
        return outcome

    return run


@pytest.fixture
def report_count():
    return lambda env: Report.objects.filter(environment=env).count()
