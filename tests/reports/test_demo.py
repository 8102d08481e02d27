"""The demo org's history (reports/demo.py), built through the real services with a broker configured
(the test settings) and no worker: the story a visitor reads on the pages must hold."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from evidence.selectors import artifact_compliance
from journal.verify import verify_journal
from policies.models import SnapshotCompliance
from reports.choices import ReportKind, ReportStatus
from reports.demo import MINER, PROD, REGISTRY, STAGING, build_demo_history, fingerprint
from reports.models import AuditReport
from snapshots.models import Environment, Report, Snapshot, SnapshotEntry
from tests.evidence.conftest import evidence_root  # noqa: F401 (autouse fixture: evidence files in tmp)

pytestmark = pytest.mark.django_db


def _running(env, index):
    return set(SnapshotEntry.objects.filter(environment=env, from_index__lte=index)
               .exclude(to_index__lte=index).values_list("name", flat=True))


@pytest.fixture(scope="module")
def now():
    return timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def demo(org, owner, now):
    assert build_demo_history(org, owner, now=now) is True
    return org


def test_prod_ran_the_miner_for_a_few_hours_and_runs_it_no_longer(demo, now):
    prod = Environment.objects.get(org=demo, name=PROD)
    snapshots = list(Snapshot.objects.filter(environment=prod).order_by("index"))
    with_miner = [s for s in snapshots if MINER in _running(prod, s.index)]
    assert with_miner, "the miner never ran in prod"
    assert MINER not in _running(prod, prod.last_snapshot_index)
    started = with_miner[0].created_at
    gone = next(s for s in snapshots if s.index > with_miner[-1].index).created_at
    assert now - timedelta(days=14) < started < now - timedelta(days=2)
    assert timedelta(hours=1) < gone - started < timedelta(hours=12)
    # Backdated history: two weeks of snapshots, in order, and an agent that reported minutes ago.
    assert snapshots[0].created_at < now - timedelta(days=13)
    assert [s.created_at for s in snapshots] == sorted(s.created_at for s in snapshots)
    assert now - prod.last_report_at < timedelta(minutes=30)
    assert Report.objects.filter(environment=prod).count() > len(snapshots)  # heartbeats too
    # The policy attached to prod judged the miner: prod was non-compliant while it ran, compliant now.
    evaluations = {c.snapshot_index: c.compliant for c in SnapshotCompliance.objects.filter(environment=prod)}
    assert evaluations[with_miner[0].index] is False
    assert evaluations[prod.last_snapshot_index] is True


def test_the_failing_build_reached_staging_and_is_non_compliant(demo):
    staging = Environment.objects.get(org=demo, name=STAGING)
    prod = Environment.objects.get(org=demo, name=PROD)
    failing = f"{REGISTRY}/api:2.9.0"
    assert failing in _running(staging, staging.last_snapshot_index)
    assert failing not in _running(prod, prod.last_snapshot_index)
    compliance = artifact_compliance(demo, fingerprint(failing))
    assert compliance["provenance"] is True and compliance["compliant"] is False
    assert any("unit-tests" in reason for reason in compliance["reasons"])
    released = artifact_compliance(demo, fingerprint(f"{REGISTRY}/web:1.6.0"))
    assert released["compliant"] is True
    assert f"{REGISTRY}/web:1.6.0" in _running(prod, prod.last_snapshot_index)


def test_the_journal_verifies_and_the_report_is_done(demo):
    assert verify_journal(demo) is None
    report = AuditReport.objects.get(org=demo)
    assert report.kind == ReportKind.ORG and report.status == ReportStatus.DONE
    assert report.output.pdf_sha256


def test_building_twice_changes_nothing(demo, owner, now):
    snapshots = Snapshot.objects.filter(org=demo).count()
    assert build_demo_history(demo, owner, now=now) is False
    assert Snapshot.objects.filter(org=demo).count() == snapshots


def test_create_demo_empty_makes_a_labelled_org_without_history(capsys):
    call_command("create_demo", "--empty")
    out = capsys.readouterr().out
    assert "password:" in out
    from tenants.models import Org

    org = Org.objects.get(slug="demo")
    assert org.is_demo and org.name == "Demo (sample data)"
    assert not Environment.objects.filter(org=org).exists()


def test_demo_org_pages_say_it_is_sample_data(client, owner, org):
    from audit.context import AuditContext
    from tenants.services import create_org

    demo = create_org(AuditContext.for_user(owner), "demo", "Demo (sample data)", owner, is_demo=True)
    client.force_login(owner)
    for path in (f"/o/{demo.slug}/", f"/o/{demo.slug}/environments/"):
        response = client.get(path)
        assert response.status_code == 200 and 'data-testid="demo-banner"' in response.content.decode(), path
    assert 'data-testid="demo-banner"' not in client.get(f"/o/{org.slug}/").content.decode()
