"""The change-window rule of YAML environment policies (``changes.within_change_windows``): its validation,
and decisions on real snapshots whose change happened inside or outside the environment's change windows
(the time is the report's acceptance time), for YAML and Rego policies."""

from datetime import UTC, datetime

import pytest

from policies import services
from policies.models import PolicyInput, SnapshotCompliance
from policies.parsing import PolicyError, parse_policy
from tests.identity.unusual_support import ingest_at
from tests.policies.helpers import CTX, POLICY_HEAD, fp, make_env

pytestmark = pytest.mark.django_db

WINDOWS = POLICY_HEAD + "changes:\n  within_change_windows: true\n"
OFFICE_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
NEXT_MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SATURDAY_03 = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def policed_env(org, capture, text=WINDOWS, name="windows", policy_format="yaml"):
    env = make_env(org, change_windows=OFFICE_HOURS)
    services.save_policy(CTX, org, name, text, policy_format=policy_format)
    with capture(execute=False):
        services.attach_policies(CTX, org, env, [name])
    return env


def window_rule(decision) -> dict:
    return next(r for p in decision["policy_decisions"] for r in p["rule_evaluations"]
                if r["rule"]["type"] == "change-window")


def test_the_rule_is_parsed_and_validated():
    assert parse_policy(WINDOWS)["changes"] == {"within_change_windows": True, "exceptions": []}
    assert "changes" not in parse_policy(POLICY_HEAD + "changes:\n  within_change_windows: false\n")
    with pytest.raises(PolicyError) as error:
        parse_policy(POLICY_HEAD + "changes:\n  within_change_windows: sometimes\n")
    assert str(error.value) == "line 3: changes.within_change_windows: must be true or false"
    with pytest.raises(PolicyError) as error:
        parse_policy(POLICY_HEAD + "changes:\n  outside: true\n")
    assert "changes.outside: unknown key" in str(error.value)


def test_a_change_outside_the_windows_is_non_compliant_while_it_runs(org, capture):
    env = policed_env(org, capture)
    inside = ingest_at(env, {"web": fp(1)}, MONDAY_10)
    assert SnapshotCompliance.objects.get(snapshot=inside).compliant is True
    outside = ingest_at(env, {"web": fp(1), "hotfix": fp(2)}, SATURDAY_03)
    compliance = SnapshotCompliance.objects.get(snapshot=outside)
    assert compliance.compliant is False
    decisions = compliance.artifacts_by_fingerprint()
    assert decisions[fp(1)]["status"] == "compliant"  # started on Monday, inside the windows
    hotfix = decisions[fp(2)]
    assert hotfix["status"] == "non-compliant"
    assert hotfix["reasons_for_incompliance"] == [
        f"windows: artifact changed in snapshot #{outside.index} at {SATURDAY_03.isoformat()}, outside the "
        "environment's change windows"]
    assert window_rule(hotfix)["resolutions"] == [{"type": "outside_change_window", "snapshot": outside.index}]
    # A later change inside the windows does not launder the hotfix: it still runs since Saturday.
    later = ingest_at(env, {"web": fp(1), "hotfix": fp(2), "api": fp(3)}, NEXT_MONDAY_10)
    assert SnapshotCompliance.objects.get(snapshot=later).compliant is False
    # Redeployed inside the windows (a new fingerprint), the environment is compliant again.
    fixed = ingest_at(env, {"web": fp(1), "hotfix": fp(4), "api": fp(3)}, datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    assert SnapshotCompliance.objects.get(snapshot=fixed).compliant is True


def test_inside_the_windows_everything_is_compliant(org, capture):
    env = policed_env(org, capture)
    snapshot = ingest_at(env, {"web": fp(1), "api": fp(2)}, MONDAY_10)
    decisions = SnapshotCompliance.objects.get(snapshot=snapshot).artifacts_by_fingerprint()
    assert {d["status"] for d in decisions.values()} == {"compliant"}
    assert window_rule(decisions[fp(1)])["satisfied"] is True


def test_exceptions_waive_the_rule(org, capture):
    text = POLICY_HEAD + ("changes:\n  within_change_windows: true\n  exceptions:\n"
                          "    - if: ${{ matches(artifact.name, \"^hotfix\") }}\n")
    env = policed_env(org, capture, text)
    ingest_at(env, {"web": fp(1)}, MONDAY_10)
    snapshot = ingest_at(env, {"web": fp(1), "hotfix": fp(2)}, SATURDAY_03)
    assert SnapshotCompliance.objects.get(snapshot=snapshot).compliant is True


REGO = """package policy

default allow := false

allow if not input.change.outside_change_window

violations contains sprintf("changed in #%d outside the change windows", [input.change.snapshot]) if {
    input.change.outside_change_window
}
"""


def test_a_rego_policy_sees_when_the_artifact_changed(org, capture):
    env = policed_env(org, capture, REGO, "windows-rego", policy_format="rego")
    ingest_at(env, {"web": fp(1)}, MONDAY_10)
    snapshot = ingest_at(env, {"web": fp(1), "hotfix": fp(2)}, SATURDAY_03)
    decisions = SnapshotCompliance.objects.get(snapshot=snapshot).artifacts_by_fingerprint()
    assert decisions[fp(1)]["status"] == "compliant"
    hotfix = decisions[fp(2)]
    assert hotfix["reasons_for_incompliance"] == [
        f"windows-rego: changed in #{snapshot.index} outside the change windows"]
    document = PolicyInput.objects.get(org=org, sha256=hotfix["policy_decisions"][0]["input_sha256"]).document
    assert document["change"] == {"snapshot": snapshot.index, "at": SATURDAY_03.isoformat(),
                                  "outside_change_window": True}
