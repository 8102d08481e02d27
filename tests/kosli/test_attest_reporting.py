"""kosli CLI conformance: ``kosli attest generic|junit|snyk|custom|override`` and ``kosli attest pullrequest
github|gitlab|bitbucket|azure`` (``attest artifact`` is in ``test_flows_trails_reporting.py``).

Every attest command POSTs /api/v2/attestations/{org}/{flow}/trail/{trail}/{type}. The payload is Go's JSON
of a struct embedding ``*CommonAttestationPayload`` (attestation.go: ``artifact_fingerprint``,
``git_commit_info``, ``repo_info`` omitempty, ``attestation_name`` always, then ``target_artifacts``,
``external_urls``, ``origin_url``, ``user_data``, ``description``, ``annotations`` omitempty) followed by
the type's own fields. All but ``override`` send it multipart (``newAttestationForm``: the ``data_json``
field, then ``attachment_file`` when there are attachments — a tar.gz the CLI builds when there are several
or a directory); ``override`` sends it as the JSON body. The CLI reads nothing of the answer: 200/201 is
success; otherwise it prints the top-level ``message`` (``wrapAttestationError`` rewrites one text)."""

import hashlib

import pytest

from audit.models import AuditEvent
from evidence.models import Attestation
from tenants.choices import Role
from tests.evidence.conftest import evidence_root, tar_gz  # noqa: F401 - evidence stored per test
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

FP = hashlib.sha256(b"backend:1.4").hexdigest()
COMMIT = "0fc1ba9876f91b215679f3649b8668085d820ab5"
COMMIT_INFO = {"sha1": COMMIT, "message": "Add login", "author": "Dev <dev@example.com>",
               "timestamp": 1_764_000_000, "branch": "main"}
REPO_INFO = {"url": "https://github.com/acme/backend", "name": "acme/backend", "id": "123", "provider": "github"}
JUNIT_XML = (b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="backend" errors="0" '
             b'failures="0" skipped="1" tests="3" time="0.5" timestamp="2026-11-24T14:00:00">'
             b'<testcase classname="t" name="a" time="0.1"/><testcase classname="t" name="b" time="0.2"/>'
             b'<testcase classname="t" name="c" time="0.2"><skipped message="later"/></testcase>'
             b'</testsuite></testsuites>')


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def trail(member):
    """Flow ``backend`` (no template) with trail ``build-42`` and artifact ``FP`` reported on it."""
    flow = cli(member, "PUT", "/api/v2/flows/acme/template_file",
               form=[("field", "data_json", {"name": "backend", "description": "the backend"}),
                     ("file", "template_file", ("template.yml", b"version: 1"))])
    assert flow.status_code in (200, 201), flow.content
    begun = cli(member, "PUT", "/api/v2/trails/acme/backend",
                form=[("field", "data_json", {"name": "build-42", "git_commit_info": COMMIT_INFO})])
    assert begun.status_code in (200, 201), begun.content
    reported = cli(member, "POST", "/api/v2/artifacts/acme/backend", {
        "fingerprint": FP, "filename": "backend:1.4", "git_commit": COMMIT, "git_commit_info": COMMIT_INFO,
        "build_url": "", "commit_url": "", "repo_url": "", "template_reference_name": "backend",
        "trail_name": "build-42"})
    assert reported.status_code in (200, 201), reported.content
    return "build-42"


def common(name: str, fingerprint: str = FP, **extra) -> dict:
    """``CommonAttestationPayload`` as the CLI fills it for ``--fingerprint``, ``--commit``, ``--name`` in a
    GitHub Actions run (``repo_info`` from the environment), fields in struct order."""
    payload = {"artifact_fingerprint": fingerprint, "git_commit_info": COMMIT_INFO, "repo_info": REPO_INFO,
               "attestation_name": name}
    return payload | extra


def attest(token, kind: str, payload: dict, attachment: tuple[str, bytes] | None = None):
    form = [("field", "data_json", payload)]
    if attachment is not None:
        form.append(("file", "attachment_file", attachment))
    return cli(token, "POST", f"/api/v2/attestations/acme/backend/trail/build-42/{kind}", form=form)


def stored(org, name: str) -> Attestation:
    return Attestation.objects.filter(org=org, trail__name="build-42", name=name).latest("pk")


def test_attest_generic(org, member, trail):
    """``cmd/kosli/attestGeneric.go``: ``GenericAttestationPayload`` = common + ``is_compliant`` (always
    sent); with ``--attachments`` the file goes as ``attachment_file``; ``--user-data`` as ``user_data``;
    ``--name artifact.name`` sends ``target_artifacts: [artifact]``."""
    answer = attest(member, "generic", common("code-review", user_data={"reviewer": "ana"},
                                              annotations={"ticket": "SHOP-1"}) | {"is_compliant": True},
                    attachment=("/tmp/evidence.tgz", tar_gz({"review.txt": b"LGTM"})))
    assert answer.status_code in (200, 201), answer.content
    attestation = stored(org, "code-review")
    assert (attestation.type, attestation.is_compliant, attestation.artifact.fingerprint) == ("generic", True, FP)
    assert attestation.user_data == {"reviewer": "ana"} and attestation.annotations == {"ticket": "SHOP-1"}
    failed = attest(member, "generic", {"git_commit_info": COMMIT_INFO, "attestation_name": "lint",
                                        "target_artifacts": ["backend"], "is_compliant": False})
    assert failed.status_code in (200, 201), failed.content
    assert stored(org, "lint").is_compliant is False
    assert AuditEvent.objects.filter(org=org, action="attestation.created").count() == 2


def test_attest_junit(org, member, trail):
    """``cmd/kosli/attestJunit.go``: common + ``junit_results`` (``JUnitResults{name, failures, errors,
    skipped, total, duration, timestamp omitempty}`` per suite); ``--upload-results`` (default) attaches the
    XML files, tarred."""
    results = [{"name": "backend", "failures": 0, "errors": 0, "skipped": 1, "total": 3, "duration": 0.5,
                "timestamp": 1_763_992_800}]
    answer = attest(member, "junit", common("unit-tests") | {"junit_results": results},
                    attachment=("/tmp/evidence.tgz", tar_gz({"results/report.xml": JUNIT_XML})))
    assert answer.status_code in (200, 201), answer.content
    attestation = stored(org, "unit-tests")
    assert (attestation.type, attestation.is_compliant) == ("junit", True)


def test_attest_snyk(org, member, trail):
    """``cmd/kosli/attestSnyk.go``: common + ``snyk_results`` (internal/snyk ``SnykData{schema_version, tool
    {name, version}, results [{high_count, medium_count, low_count, high/medium/low omitempty}]}``)."""
    snyk = {"schema_version": 1, "tool": {"name": "Snyk Container", "version": "1.1290.0"},
            "results": [{"high_count": 1, "medium_count": 0, "low_count": 0,
                         "high": [{"id": "SNYK-DEBIAN12-OPENSSL-1", "message": "openssl: buffer overflow",
                                   "locations": [{"uri": "Dockerfile", "lines": "1"}], "priority_score": 700}]}]}
    answer = attest(member, "snyk", common("container-scan") | {"snyk_results": snyk})
    assert answer.status_code in (200, 201), answer.content
    assert stored(org, "container-scan").type == "snyk"


@pytest.mark.parametrize(("command", "provider"), [("attestPRGithub.go", "github"), ("attestPRGitlab.go", "gitlab"),
                                                   ("attestPRBitbucket.go", "bitbucket"),
                                                   ("attestPRAzure.go", "azure")])
def test_attest_pullrequest(org, member, trail, command, provider):
    """``cmd/kosli/attestPRGithub.go`` / ``attestPRGitlab.go`` / ``attestPRBitbucket.go`` /
    ``attestPRAzure.go`` → ``pullrequest.go`` ``attestPROptions.run``: POST .../pull_request with
    ``PRAttestationPayload`` = common + ``git_provider`` (github, gitlab, bitbucket, azure) + ``pull_requests``
    (internal/types ``PREvidence``: merge_commit, url, state, approvers, author, created_at / merged_at /
    title / head_ref / base_ref omitempty, commits). No pull request found is sent as ``[]`` (and with
    --assert the CLI fails after the attestation is stored)."""
    prs = [{"merge_commit": COMMIT, "url": f"https://{provider}.example.com/acme/backend/pull/7", "state": "MERGED",
            "approvers": [{"username": "ana", "state": "APPROVED", "timestamp": 1_764_000_000}],
            "author": "dev", "created_at": 1_763_990_000, "merged_at": 1_764_000_000, "title": "Add login",
            "head_ref": "login", "base_ref": "main",
            "commits": [{"sha1": COMMIT, "message": "Add login", "author": "Dev <dev@example.com>",
                         "author_username": "dev", "timestamp": 1_763_995_000, "branch": "login"}]}]
    answer = attest(member, "pull_request", common(f"pr-{provider}") | {"git_provider": provider, "pull_requests": prs})
    assert answer.status_code in (200, 201), (command, answer.content)
    attestation = stored(org, f"pr-{provider}")
    assert (attestation.type, attestation.is_compliant) == ("pull_request", True)
    none = attest(member, "pull_request", common(f"no-pr-{provider}") | {"git_provider": provider,
                                                                         "pull_requests": []})
    assert none.status_code in (200, 201), none.content
    assert stored(org, f"no-pr-{provider}").is_compliant is False


def test_attest_custom(org, member, trail, token_for):
    """``cmd/kosli/attestCustom.go``: common + ``type_name`` + ``attestation_data`` (the JSON of
    ``--attestation-data``). Data against the type's schema decides; data that breaks the schema is a 400
    naming the field."""
    from audit.context import AuditContext
    from evidence.services import create_custom_type

    create_custom_type(AuditContext.system("test"), org, {
        "name": "coverage", "schema": {"type": "object", "properties": {"line": {"type": "number"}},
                                       "required": ["line"]}, "rule": "line >= 80"})
    good = attest(member, "custom", common("coverage") | {"type_name": "coverage", "attestation_data": {"line": 91.5}})
    assert good.status_code in (200, 201), good.content
    assert (stored(org, "coverage").type, stored(org, "coverage").is_compliant) == ("custom", True)
    bad = attest(member, "custom", common("coverage") | {"type_name": "coverage", "attestation_data": {"line": "x"}})
    assert bad.status_code == 400 and "attestation_data" in " ".join(bad.json()["error"]["fields"])
    assert cli_error(bad)


def test_attest_override(org, member, trail, token_for):
    """``cmd/kosli/attestOverride.go``: a JSON body (not multipart) = common + ``reason``,
    ``new_compliance_status``, ``original_attestation_type``. Overriding needs ``evidence.override``: a
    member gets 403, an admin turns the failed attestation's standing."""
    attest(member, "generic", common("security-review") | {"is_compliant": False})
    override = common("security-review") | {"reason": "accepted risk, SHOP-9", "new_compliance_status": True,
                                            "original_attestation_type": "generic"}
    path = "/api/v2/attestations/acme/backend/trail/build-42/override"
    refused = cli(member, "POST", path, override)
    assert refused.status_code == 403 and cli_error(refused)
    answer = cli(token_for(org, Role.ADMIN), "POST", path, override)
    assert answer.status_code in (200, 201), answer.content
    latest = stored(org, "security-review")
    assert (latest.type, latest.is_compliant, latest.reason) == ("override", True, "accepted risk, SHOP-9")
    assert AuditEvent.objects.filter(org=org, action="attestation.overridden").count() == 1


def test_attest_refusals(org, member, trail, token_for, other_org):
    """No fingerprint and no commit: a trail-level attestation is stored; one for a template artifact
    (``--name backend.lint``) cannot be bound and is refused with kosli's exact text, which the CLI's
    ``wrapAttestationError`` rewrites into advice. A reader gets 403; another org's trail is a 404."""
    trail_level = attest(member, "generic", {"attestation_name": "orphan", "is_compliant": True})
    assert trail_level.status_code in (200, 201), trail_level.content
    assert stored(org, "orphan").artifact is None
    neither = attest(member, "generic", {"attestation_name": "lint", "target_artifacts": ["backend"],
                                         "is_compliant": True})
    # the exact text wrapAttestationError replaces with its advice about --fingerprint / --commit
    assert neither.status_code == 400
    assert cli_error(neither) == "requires at least one of: artifact_fingerprint or git_commit_info."
    reader = attest(token_for(org, Role.READER), "generic", common("x") | {"is_compliant": True})
    assert reader.status_code == 403
    foreign = cli(token_for(other_org, Role.MEMBER), "POST", "/api/v2/attestations/acme/backend/trail/build-42/generic",
                  form=[("field", "data_json", common("x") | {"is_compliant": True})])
    assert foreign.status_code == 404
    assert not Attestation.objects.filter(name="x").exists()
