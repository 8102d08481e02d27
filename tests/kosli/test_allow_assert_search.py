"""kosli CLI conformance: ``kosli allow artifact``, ``kosli assert artifact`` and ``kosli search``.

Each test sends what the CLI builds (``internal/requests/requests.go``, ``newHTTPRequest``): the JSON body
is Go's ``json.Marshal`` of the command's payload struct (compact, fields in struct order, none omitted
unless tagged ``omitempty``), GET requests carry no body, and every request has ``Content-Type:
application/json; charset=utf-8``, ``User-Agent: Kosli/<version>`` and ``Authorization: Bearer <token>``.
The answer is then read the way the CLI reads it: every field it takes out of the JSON must be there with
the type its Go code asserts (an unchecked ``.(string)`` / ``.(bool)`` / ``.([]interface{})`` panics)."""

import pytest

from evidence.models import Artifact, Attestation, Flow, Trail
from policies import services
from policies.models import AllowlistEntry
from tenants.choices import Role
from tests.kosli.cli import cli
from tests.policies.helpers import CTX, PROVENANCE_POLICY, fp, ingest, make_env, report_flow_artifact

pytestmark = pytest.mark.django_db

def test_allow_artifact(org, token_for):
    """``cmd/kosli/allowArtifact.go`` ``allowArtifactOptions.run``: ``PUT /api/v2/allowlists/{org}/{env}``
    with ``AllowlistPayload`` ``{"artifact_fingerprint", "artifact_name", "description"}``. The CLI reads
    no field of the answer; anything but 200/201 is a failure. The entry must land with kosli's names
    mapped to csm's (fingerprint, artifact name, reason) and be what the allowlist then lists."""
    env = make_env(org)
    token = token_for(org, Role.ADMIN)
    answer = cli(token, "PUT", "/api/v2/allowlists/acme/prod", {
        "artifact_fingerprint": fp(7), "artifact_name": "datadog/agent:7", "description": "vendor agent"})
    assert answer.status_code in (200, 201), answer.content
    entry = AllowlistEntry.objects.get(environment=env)
    assert (entry.fingerprint, entry.artifact_name, entry.reason) == (fp(7), "datadog/agent:7", "vendor agent")
    assert services.active_allowlist(env).keys() == {fp(7)}
    listed = cli(token, "GET", "/api/v2/allowlists/acme/prod").json()
    assert [(e["fingerprint"], e["artifact_name"], e["reason"]) for e in listed] == [
        (fp(7), "datadog/agent:7", "vendor agent")]
    # a bad fingerprint under kosli's name is refused the way csm refuses any bad input
    bad = cli(token, "PUT", "/api/v2/allowlists/acme/prod", {
        "artifact_fingerprint": "NOT-HEX", "artifact_name": "x", "description": "y"})
    assert bad.status_code == 400 and "artifact_fingerprint" in bad.json()["error"]["fields"]
    assert AllowlistEntry.objects.count() == 1


def flow_with_template(org, flow_name: str, fingerprint: str, required: list[tuple[str, str]]):
    """A flow whose template asks every artifact for ``required`` (name, type) attestations, and a report
    of ``fingerprint`` on its trail ``t1``."""
    artifact = report_flow_artifact(org, flow_name, fingerprint)
    Flow.objects.filter(pk=artifact.flow_id).update(template={"trail": [], "artifacts": [
        {"name": "*", "attestations": [{"name": name, "type": kind} for name, kind in required]}]})
    artifact.refresh_from_db()
    return artifact


def attest(artifact, name: str, kind: str, compliant: bool):
    return Attestation.objects.create(org=artifact.org, flow=artifact.flow, trail=artifact.trail, artifact=artifact,
                                      artifact_fingerprint=artifact.fingerprint, name=name, type=kind,
                                      is_compliant=compliant)


def read_like_print_assert_as_table(answer: dict) -> list[tuple]:
    """What ``printAssertAsTable`` (cmd/kosli/assertArtifact.go) takes out of the answer, with the same
    unchecked type assertions (a missing field or wrong type fails here as it panics there)."""
    assert isinstance(answer["scope"], str) and isinstance(answer["compliant"], bool)
    if answer["scope"] == "environment":
        assert isinstance(answer["environment"], str)
    if answer["scope"] in ("environment", "policy"):
        for evaluation in answer["policy_evaluations"]:
            assert {"policy_name", "status"} <= evaluation.keys()
            if evaluation["status"] != "COMPLIANT":
                for rule in evaluation["rule_evaluations"]:
                    assert isinstance(rule["ignored"], bool)
                    if not rule["ignored"] and not rule.get("satisfied"):
                        assert isinstance(rule["rule"]["definition"], dict)
                        assert all(isinstance(r["type"], str) for r in rule["resolutions"])
    rows = []
    assert isinstance(answer["flows"], list)
    for flow in answer["flows"]:
        assert isinstance(flow["flow"], str) and isinstance(flow["trail"], str)
        for att in flow["compliance_status"]["attestations_statuses"]:
            rows.append((flow["flow"], att["attestation_name"], att["attestation_type"], att["status"],
                         att["is_compliant"], att["unexpected"]))
        assert isinstance(answer["html_url"], str) and answer["html_url"].startswith("http")
    return rows


def test_assert_artifact_against_flow_templates(org, token_for):
    """``cmd/kosli/assertArtifact.go`` ``assertArtifactOptions.run``: ``GET /api/v2/asserts/{org}/fingerprint/
    {fp}`` with no query at all (neither ``--environment`` nor ``--policy``: kosli judges the artifact
    against the templates of every flow it is found in) or with only ``?flow_name=`` (``--flow`` narrows
    to that flow). The CLI exits non-zero unless ``compliant`` is true and prints per flow the trail and
    each attestation's name, type, status, compliance and unexpected flag, then ``html_url``."""
    token = token_for(org, Role.READER)
    web = flow_with_template(org, "web-flow", fp(1), [("unit-tests", "junit"), ("scan", "snyk")])
    attest(web, "unit-tests", "junit", True)
    attest(web, "scan", "snyk", True)
    attest(web, "extra", "generic", True)
    url = f"/api/v2/asserts/acme/fingerprint/{fp(1)}"

    alone = cli(token, "GET", url)
    assert alone.status_code == 200, alone.content
    answer = alone.json()
    assert answer["compliant"] is True and answer["scope"] == "flow"
    assert sorted(read_like_print_assert_as_table(answer)) == [
        ("web-flow", "extra", "generic", "COMPLETE", True, True),
        ("web-flow", "scan", "snyk", "COMPLETE", True, False),
        ("web-flow", "unit-tests", "junit", "COMPLETE", True, False),
    ]
    assert [f["trail"] for f in answer["flows"]] == ["t1"]

    # the same fingerprint reported by a second flow that misses an attestation: non-compliant across
    # the org, still compliant when --flow narrows to the first
    release = flow_with_template(org, "release-flow", fp(1), [("approval", "generic")])
    across = cli(token, "GET", url).json()
    assert across["compliant"] is False
    assert ("release-flow", "approval", "generic", "MISSING", False, False) in read_like_print_assert_as_table(across)
    assert {f["flow"] for f in across["flows"]} == {"web-flow", "release-flow"}
    narrowed = cli(token, "GET", f"{url}?flow_name=web-flow").json()
    assert narrowed["compliant"] is True and [f["flow"] for f in narrowed["flows"]] == ["web-flow"]
    attest(release, "approval", "generic", False)
    failing = cli(token, "GET", f"{url}?flow_name=release-flow").json()
    assert failing["compliant"] is False
    assert read_like_print_assert_as_table(failing) == [
        ("release-flow", "approval", "generic", "COMPLETE", False, False)]

    # kosli answers 404 for an artifact the flow (or, without --flow, no flow) reported
    elsewhere = cli(token, "GET", f"/api/v2/asserts/acme/fingerprint/{fp(9)}?flow_name=web-flow")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["message"] == (
        f"Artifact with fingerprint '{fp(9)}' does not exist in flow 'web-flow' belonging to organization 'acme'")
    assert cli(token, "GET", f"/api/v2/asserts/acme/fingerprint/{fp(9)}").status_code == 404
    assert cli(token, "GET", f"{url}?flow_name=no-such-flow").status_code == 404


def test_assert_artifact_in_environment_lists_its_flows(org, token_for, django_capture_on_commit_callbacks):
    """``cmd/kosli/assertArtifact.go``: ``--environment prod`` (``?environment_name=prod``), optionally with
    ``--flow`` (``&flow_name=``, in the order ``params.Encode()`` sorts keys). ``printAssertAsTable`` reads
    ``environment``, the policy evaluations, and then ``flows`` whatever the scope: a missing ``flows``
    made the printer panic."""
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    web = flow_with_template(org, "web-flow", fp(1), [("unit-tests", "junit")])
    attest(web, "unit-tests", "junit", True)
    token = token_for(org, Role.READER)
    url = f"/api/v2/asserts/acme/fingerprint/{fp(1)}"
    answer = cli(token, "GET", f"{url}?environment_name=prod").json()
    assert answer["compliant"] is True and answer["scope"] == "environment" and answer["environment"] == "prod"
    assert read_like_print_assert_as_table(answer) == [("web-flow", "unit-tests", "junit", "COMPLETE", True, False)]
    # params.Encode() sorts: environment_name before flow_name
    narrowed = cli(token, "GET", f"{url}?environment_name=prod&flow_name=web-flow").json()
    assert [f["flow"] for f in narrowed["flows"]] == ["web-flow"]
    assert cli(token, "GET", f"{url}?environment_name=prod&flow_name=other").status_code == 404
    # an artifact no flow reported: judged by the environment's policies, with no flows to print
    unknown = cli(token, "GET", f"/api/v2/asserts/acme/fingerprint/{fp(2)}?environment_name=prod").json()
    assert unknown["compliant"] is False and read_like_print_assert_as_table(unknown) == []
    by_policy = cli(token, "GET", f"{url}?policy_name=needs-provenance").json()
    assert by_policy["scope"] == "policy" and len(read_like_print_assert_as_table(by_policy)) == 1


SEARCH_ARTIFACT_STRINGS = ("fingerprint", "name", "flow", "git_commit", "commit_url", "build_url", "html_url",
                           "compliance_state")


def decode_search_response(answer: dict) -> dict:
    """``json.Unmarshal`` into ``SearchResponse`` (cmd/kosli/search.go): every field ``printSearchAsTableWrapper``
    prints, with the Go type it is decoded into (a string where Go expects one, lists of strings, history
    events whose ``timestamp`` ``formattedTimestamp`` can parse: a number)."""
    resolved = answer["resolved_to"]
    assert isinstance(resolved["type"], str) and isinstance(resolved["full_match"], str)
    for group in ("fingerprints", "commits"):
        assert isinstance(resolved[group]["count"], int) and isinstance(resolved[group]["type"], str)
        assert all(isinstance(m, str) for m in resolved[group]["matches"])
    for artifact in answer["artifacts"]:
        assert all(isinstance(artifact[key], str) for key in SEARCH_ARTIFACT_STRINGS)
        assert isinstance(artifact["has_provenance"], bool)
        assert all(isinstance(env, str) for env in artifact["running_in"] + artifact["exited_from"])
        assert all(isinstance(event["event"], str) and isinstance(event["timestamp"], (int, float))
                   for event in artifact["history"])
    return answer


def test_search(org, token_for):
    """``cmd/kosli/search.go`` ``searchOptions.run``: ``GET /api/v2/search/{org}/sha/{value}`` (a commit or a
    fingerprint, 5 characters or more), no body. The table printer reads ``resolved_to.type`` /
    ``full_match`` / the fingerprint and commit counts and, per artifact, name, fingerprint, provenance,
    flow, commit, URLs, compliance state, where it runs and ran, and its history."""
    staging, prod = make_env(org, "staging"), make_env(org, "prod")
    web = "abcde1" + "0" * 58
    ingest(staging, {"web:1": web})
    ingest(prod, {"web:1": web})
    ingest(staging, {})  # exits staging
    commit = "1234567" + "89" * 16 + "0"
    flow = Flow.objects.create(org=org, name="web-flow")
    Artifact.objects.create(org=org, flow=flow, trail=Trail.objects.create(org=org, flow=flow, name="t1"),
                            fingerprint=web, filename="web", template_name="web", git_commit=commit,
                            commit_url="https://git/c", build_url="https://ci/1")
    token = token_for(org, Role.READER)

    by_fingerprint = cli(token, "GET", "/api/v2/search/acme/sha/abcde1")
    assert by_fingerprint.status_code == 200, by_fingerprint.content
    answer = decode_search_response(by_fingerprint.json())
    assert answer["resolved_to"]["type"] == "fingerprint" and answer["resolved_to"]["full_match"] == web
    assert answer["resolved_to"]["fingerprints"]["count"] == 1 and answer["resolved_to"]["commits"]["count"] == 0
    [found] = answer["artifacts"]
    assert (found["fingerprint"], found["name"], found["flow"]) == (web, "web:1", "web-flow")
    assert found["git_commit"] == commit
    assert found["has_provenance"] is True and found["compliance_state"] == "COMPLIANT"
    assert (found["commit_url"], found["build_url"]) == ("https://git/c", "https://ci/1")
    assert found["running_in"] == ["prod"] and found["exited_from"] == ["staging"]
    assert [e["event"] for e in found["history"]][-1] == "Exited from staging#2"
    assert sorted(e["event"] for e in found["history"]) == [
        "Exited from staging#2", "Started running in prod#1", "Started running in staging#1"]
    assert answer["fingerprint"] == web and answer["running_now"] == ["prod"]  # csm's own fields stay

    by_commit = decode_search_response(cli(token, "GET", "/api/v2/search/acme/sha/1234567").json())
    assert by_commit["resolved_to"]["type"] == "commit" and by_commit["resolved_to"]["full_match"] == commit
    assert by_commit["resolved_to"]["commits"]["matches"] == [commit]
    assert [(a["fingerprint"], a["name"], a["has_provenance"]) for a in by_commit["artifacts"]] == [(web, "web", True)]
    # built but never seen running: found by its fingerprint too, with provenance and nowhere running
    built = "fedcb" + "1" * 59
    Artifact.objects.create(org=org, flow=flow, trail=Trail.objects.get(flow=flow, name="t1"), fingerprint=built,
                            filename="worker", template_name="worker", git_commit=commit)
    only_built = decode_search_response(cli(token, "GET", "/api/v2/search/acme/sha/fedcb").json())
    assert only_built["resolved_to"]["type"] == "fingerprint" and only_built["resolved_to"]["full_match"] == built
    [worker] = only_built["artifacts"]
    assert (worker["name"], worker["flow"], worker["has_provenance"], worker["running_in"], worker["history"]) == (
        "worker", "web-flow", True, [], [])
    both = decode_search_response(cli(token, "GET", "/api/v2/search/acme/sha/1234567").json())
    assert both["resolved_to"]["type"] == "commit" and {a["fingerprint"] for a in both["artifacts"]} == {web, built}
    assert cli(token, "GET", "/api/v2/search/acme/sha/fffff").status_code == 404
