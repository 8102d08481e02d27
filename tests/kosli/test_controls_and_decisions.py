"""kosli CLI conformance: ``create / get / list / update / archive / unarchive control`` and ``attest decision``.

Each request is what the CLI builds (``internal/requests/requests.go`` newHTTPRequest, through
``tests/kosli/cli.py``): JSON bodies are Go's ``json.Marshal`` of the command's payload (``ControlPayload``
``{identifier, name, description,omitempty}``; ``update control`` a map of only the flags given; ``attest
decision`` a multipart ``data_json`` of ``DecisionAttestationPayload``). Answers are read the way the CLI
reads them (``printControlAsTable``, ``printControlsListAsTable`` into ``listControlsResponse``), and error
messages where ``Client.Do`` prints them (the top-level ``message``)."""

import pytest

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from evidence.models import Attestation, Control, Flow
from evidence.tags import change_tags
from tenants.choices import Role
from tests.evidence.conftest import begin_trail, evidence_root, make_flow  # noqa: F401
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("test")


@pytest.fixture
def admin(org, token_for):
    return token_for(org, Role.ADMIN)


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


def create(token, identifier, name, description=None, org="acme"):
    """``createControlOptions.run``: ``ControlPayload`` in struct order, ``description`` omitempty."""
    payload = {"identifier": identifier, "name": name}
    if description:
        payload["description"] = description
    return cli(token, "POST", f"/api/v2/controls/{org}", payload)


def events(org, action):
    return list(AuditEvent.objects.filter(org=org, action=action).order_by("seq"))


def read_like_print_control_as_table(control: dict) -> dict:
    """``printControlAsTable`` (cmd/kosli/getControl.go): ``identifier`` and ``name`` printed with %s;
    ``version`` with %.0f (a number); ``archived`` with %t (a bool); ``created_at`` through
    formattedTimestamp (a number, an int64 or a numeric string); ``tags`` and ``links`` asserted
    ``map[string]interface{}``; ``policies_referencing`` asserted ``[]interface{}``."""
    assert isinstance(control["identifier"], str) and isinstance(control["name"], str)
    assert control["description"] is None or isinstance(control["description"], str)
    assert isinstance(control["version"], int | float) and not isinstance(control["version"], bool)
    assert isinstance(control["archived"], bool)
    assert isinstance(control["created_by"], str)
    assert isinstance(control["created_at"], int | float)
    assert isinstance(control["tags"], dict) and isinstance(control["links"], dict)
    assert isinstance(control["policies_referencing"], list)
    return control


def test_create_control(org, admin):
    """``cmd/kosli/createControl.go`` ``createControlOptions.run``: ``POST /api/v2/controls/{org}`` with
    ``{"identifier", "name", "description"}``; success is 200/201, nothing of the answer is read. A taken
    identifier is a 409 (``DisableConflictRetry``: printed at once) worded as kosli's server words it
    (createControl_test.go: "A control with identifier 'my-control' already exists in organization");
    a bad identifier a 400 naming the field. The write is audited."""
    answer = create(admin, "my-control", "My Control", "checks something")
    assert answer.status_code == 201, answer.content
    control = Control.objects.get(org=org, identifier="my-control")
    assert (control.name, control.description, control.version, control.archived) == (
        "My Control", "checks something", 1, False)
    [event] = events(org, AuditAction.CONTROL_CREATED)
    assert event.after["identifier"] == "my-control" and event.target_label

    again = create(admin, "my-control", "My Control")
    assert again.status_code == 409
    assert cli_error(again).startswith("A control with identifier 'my-control' already exists in organization")

    bad = create(admin, "bad identifier", "My Control")
    assert bad.status_code == 400 and "identifier" in bad.json()["error"]["fields"]
    assert "letter or digit" in cli_error(bad)
    for identifier in ("-leading-dash", "x" * 121):
        assert create(admin, identifier, "x").status_code == 400
    assert create(admin, "no-name", "").status_code == 400
    assert Control.objects.filter(org=org).count() == 1


def test_create_control_needs_controls_manage(org, member, token_for):
    """Controls are org governance: owners and admins write them (``controls.manage``); a member or CI
    token gets 403, a reader too."""
    assert create(member, "c1", "C1").status_code == 403
    assert create(token_for(org, Role.READER), "c1", "C1").status_code == 403
    assert not Control.objects.exists()


def test_get_control(org, admin, token_for):
    """``cmd/kosli/getControl.go`` ``getControlOptions.run``: ``GET /api/v2/controls/{org}/{identifier}``,
    printed by ``printControlAsTable`` (every field it reads, with its Go type); ``--output json`` prints
    the answer, whose ``identifier`` and ``name`` getControl_test.go checks. Unknown: "Control
    'no-such-control' does not exist in org ..." (404). A reader may read."""
    assert create(admin, "get-control", "Gettable control").status_code == 201
    change_tags(CTX, org, "control", "get-control", {"framework": "finos-sdlc"})
    reader = token_for(org, Role.READER)
    answer = cli(reader, "GET", "/api/v2/controls/acme/get-control")
    assert answer.status_code == 200
    control = read_like_print_control_as_table(answer.json())
    assert (control["identifier"], control["name"], control["version"], control["archived"]) == (
        "get-control", "Gettable control", 1, False)
    assert control["tags"] == {"framework": "finos-sdlc"} and control["links"] == {}
    assert control["decisions"] == {"total": 0, "compliant": 0, "non_compliant": 0}

    missing = cli(reader, "GET", "/api/v2/controls/acme/no-such-control")
    assert missing.status_code == 404
    assert cli_error(missing) == "Control 'no-such-control' does not exist in org 'acme'"


def test_another_orgs_control_is_not_found(org, other_org, admin, token_for):
    """A control of another org is a 404 on every path, read or write; nothing of it changes."""
    Control.objects.create(org=other_org, identifier="theirs", name="Theirs")
    theirs = "/api/v2/controls/acme/theirs"
    assert cli(admin, "GET", theirs).status_code == 404
    assert cli(admin, "PUT", theirs, {"name": "mine"}).status_code == 404
    assert cli(admin, "POST", f"{theirs}/archive").status_code == 404
    # and their org's paths are not ours to call
    assert cli(admin, "GET", "/api/v2/controls/globex/theirs").status_code == 404
    assert cli(admin, "GET", "/api/v2/controls/globex").status_code == 404
    assert Control.objects.get(identifier="theirs").name == "Theirs"
    assert cli(admin, "GET", "/api/v2/controls/acme").json()["controls"] == []


def list_controls(token, **params):
    """``listControlsOptions.run``: ``page`` and ``per_page`` always, ``search``, repeated ``tag``,
    ``archived=true`` and ``sort_direction`` when given (url.Values.Encode)."""
    query = [("page", params.pop("page", 1)), ("per_page", params.pop("per_page", 15))]
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            query.append((key, item))
    return cli(token, "GET", "/api/v2/controls/acme", query=query)


def read_like_list_table(answer) -> list[str]:
    """``printControlsListAsTable`` unmarshals into ``listControlsResponse`` {controls: [map], page: int,
    total_pages: int, total_count: int} and prints each control's identifier, name, description and
    created_at (formattedTimestamp)."""
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert all(isinstance(body[key], int) for key in ("page", "per_page", "total_pages", "total_count"))
    for control in body["controls"]:
        assert isinstance(control["identifier"], str) and isinstance(control["name"], str)
        assert isinstance(control["created_at"], int | float)
    return [control["identifier"] for control in body["controls"]]


def test_list_controls(org, admin, token_for):
    """``cmd/kosli/listControls.go`` ``listControlsOptions.run`` and listControls_test.go: paging echoed
    (``page``, ``per_page``), a page past the data is an empty ``controls`` list (200), ``--search``
    matches identifier or name, ``--tag key:value`` / ``--tag key`` (repeated: any of them), archived controls only with
    ``--archived``, ``--sort-direction asc|desc``. Bad paging or direction: 400 naming the parameter."""
    for identifier, name in (("list-control-1", "First control"), ("list-control-2", "Second control"),
                             ("tagged-control", "Tagged control"), ("archived-control", "Archived control")):
        assert create(admin, identifier, name).status_code == 201
    change_tags(CTX, org, "control", "tagged-control", {"slice2b": "tagtest"})
    assert cli(admin, "POST", "/api/v2/controls/acme/archived-control/archive").status_code == 200
    reader = token_for(org, Role.READER)

    assert read_like_list_table(list_controls(reader)) == ["list-control-1", "list-control-2", "tagged-control"]
    one = list_controls(reader, per_page=1)
    assert read_like_list_table(one) == ["list-control-1"]
    assert {k: one.json()[k] for k in ("page", "per_page", "total_pages", "total_count")} == {
        "page": 1, "per_page": 1, "total_pages": 3, "total_count": 3}
    assert read_like_list_table(list_controls(reader, page=2, per_page=1)) == ["list-control-2"]
    assert read_like_list_table(list_controls(reader, page=999)) == []
    assert read_like_list_table(list_controls(reader, search="LIST-CONTROL-1")) == ["list-control-1"]
    assert read_like_list_table(list_controls(reader, search="second")) == ["list-control-2"]
    assert read_like_list_table(list_controls(reader, tag="slice2b:tagtest")) == ["tagged-control"]
    assert read_like_list_table(list_controls(reader, tag="slice2b")) == ["tagged-control"]
    assert read_like_list_table(list_controls(reader, tag=["slice2b:tagtest", "other"])) == ["tagged-control"]
    assert read_like_list_table(list_controls(reader, tag="slice2b:other")) == []
    assert read_like_list_table(list_controls(reader, search="archived-control")) == []
    assert read_like_list_table(list_controls(reader, archived="true")) == ["archived-control"]
    assert read_like_list_table(list_controls(reader, search="list-control", sort_direction="asc")) == [
        "list-control-1", "list-control-2"]
    assert read_like_list_table(list_controls(reader, search="list-control", sort_direction="desc")) == [
        "list-control-2", "list-control-1"]

    for params, field in (({"page": 0}, "page"), ({"per_page": 0}, "per_page"), ({"page": "x"}, "page"),
                          ({"sort_direction": "up"}, "sort_direction"), ({"archived": "maybe"}, "archived")):
        bad = list_controls(reader, **params)
        assert bad.status_code == 400 and field in bad.json()["error"]["fields"], (params, bad.content)


def test_list_controls_when_there_are_none(org, member):
    """listControls_test.go: "No controls were found." — an empty ``controls`` array, not a 404."""
    answer = list_controls(member)
    assert read_like_list_table(answer) == [] and answer.json()["total_count"] == 0


def test_update_control(org, admin, member):
    """``cmd/kosli/updateControl.go`` ``updateControlOptions.run``: ``PUT /api/v2/controls/{org}/{id}`` with
    a map of only the flags given (``name``, ``description``, ``links``): omitted fields stay,
    ``links`` replace all, ``version`` goes up per change. Unknown control: kosli's "does not exist"
    404. A member may not (403). Each change is audited with before and after."""
    assert create(admin, "update-me", "Update me", "the first words").status_code == 201
    path = "/api/v2/controls/acme/update-me"
    assert cli(admin, "PUT", path, {"name": "Updated name"}).status_code == 200
    control = Control.objects.get(identifier="update-me")
    assert (control.name, control.description, control.version) == ("Updated name", "the first words", 2)
    answer = cli(admin, "PUT", path, {"links": {"runbook": "https://example.com/runbook"}})
    assert answer.status_code == 200 and answer.json()["links"] == {"runbook": "https://example.com/runbook"}
    assert cli(admin, "PUT", path, {"name": "Another name", "description": "and a description"}).status_code == 200
    assert cli(admin, "PUT", path, {"links": {"spec": "https://example.com/spec"}}).status_code == 200
    control.refresh_from_db()
    assert (control.name, control.description, control.links, control.version) == (
        "Another name", "and a description", {"spec": "https://example.com/spec"}, 5)
    updates = events(org, AuditAction.CONTROL_UPDATED)
    assert len(updates) == 4
    assert updates[0].before["name"] == "Update me" and updates[0].after["name"] == "Updated name"

    missing = cli(admin, "PUT", "/api/v2/controls/acme/no-such-control", {"name": "New name"})
    assert missing.status_code == 404
    assert cli_error(missing).startswith("Control 'no-such-control' does not exist in org")
    bad = cli(admin, "PUT", path, {"links": {"runbook": "javascript:alert(1)"}})
    assert bad.status_code == 400 and "links.runbook" in bad.json()["error"]["fields"]
    assert cli(admin, "PUT", path, {"name": ""}).status_code == 400
    assert cli(admin, "PUT", path, {"identifier": "renamed"}).status_code == 400
    assert cli(member, "PUT", path, {"name": "by a member"}).status_code == 403
    control.refresh_from_db()
    assert control.name == "Another name" and control.version == 5


def test_archive_and_unarchive_control(org, admin, member):
    """``cmd/kosli/archiveControl.go`` / ``unarchiveControl.go``: ``POST .../{identifier}/archive`` and
    ``/unarchive`` with no body; 200. An archived control stays readable (``get control`` shows
    ``archived: true``); unknown: kosli's "does not exist" 404; a member: 403. Both audited."""
    assert create(admin, "archive-me", "Archive me").status_code == 201
    assert cli(member, "POST", "/api/v2/controls/acme/archive-me/archive").status_code == 403
    assert cli(admin, "POST", "/api/v2/controls/acme/archive-me/archive").status_code == 200
    shown = cli(member, "GET", "/api/v2/controls/acme/archive-me").json()
    assert read_like_print_control_as_table(shown)["archived"] is True
    assert cli(admin, "POST", "/api/v2/controls/acme/archive-me/archive").status_code == 200  # already: unchanged
    assert len(events(org, AuditAction.CONTROL_ARCHIVED)) == 1
    missing = cli(admin, "POST", "/api/v2/controls/acme/no-such-control/archive")
    assert missing.status_code == 404 and cli_error(missing).startswith("Control 'no-such-control' does not exist")

    assert cli(admin, "POST", "/api/v2/controls/acme/archive-me/unarchive").status_code == 200
    assert Control.objects.get(identifier="archive-me").archived is False
    assert len(events(org, AuditAction.CONTROL_UNARCHIVED)) == 1


def test_tag_control(org, admin, member):
    """``cmd/kosli/tag.go`` ``tagOptions.run``: ``PATCH /api/v2/tags/{org}/control/{identifier}`` with
    ``TagResourcePayload`` ``{"set_tags": {...}, "remove_tags": [...]}`` (the CLI reads no field; 200 is
    success). The one tag service (``evidence.tags``) sets then removes, audited as ``tags.changed``; an
    unknown control is a 404 the CLI prints; a bad key is a 400 naming it; changing a control's tags needs
    ``controls.manage`` (a member, who may record decisions, may not)."""
    assert create(admin, "tag-me", "Tag me").status_code == 201
    ok = cli(admin, "PATCH", "/api/v2/tags/acme/control/tag-me", {"set_tags": {"a": "1", "b": "2"}, "remove_tags": []})
    assert ok.status_code == 200, ok.content
    assert cli(admin, "PATCH", "/api/v2/tags/acme/control/tag-me",
               {"set_tags": {"c": "3"}, "remove_tags": ["a", "absent"]}).status_code == 200
    control = Control.objects.get(identifier="tag-me")
    assert control.tags == {"b": "2", "c": "3"} and control.version == 1
    assert [e.after["tags"] for e in events(org, AuditAction.TAGS_CHANGED)] == [
        {"a": "1", "b": "2"}, {"b": "2", "c": "3"}]
    missing = cli(admin, "PATCH", "/api/v2/tags/acme/control/nope", {"set_tags": {"a": "1"}, "remove_tags": []})
    assert missing.status_code == 404 and cli_error(missing).startswith("Control 'nope' does not exist")
    bad = cli(admin, "PATCH", "/api/v2/tags/acme/control/tag-me", {"set_tags": {"bad key": "1"}, "remove_tags": []})
    assert bad.status_code == 400 and "bad key" in cli_error(bad)
    refused = cli(member, "PATCH", "/api/v2/tags/acme/control/tag-me", {"set_tags": {"x": "1"}, "remove_tags": []})
    assert refused.status_code == 403
    assert Control.objects.get(identifier="tag-me").tags == {"b": "2", "c": "3"}


# --- attest decision ---------------------------------------------------------------------------------


def decision_payload(name, control, compliant, **common):
    """``DecisionAttestationPayload``: the embedded ``CommonAttestationPayload`` first (its omitempty fields
    only when set, ``attestation_name`` always), then ``type_name``, ``control``, ``attestation_data``."""
    payload = {key: common[key] for key in ("artifact_fingerprint", "git_commit_info") if key in common}
    payload["attestation_name"] = name
    payload.update({key: common[key] for key in ("description", "annotations") if key in common})
    payload.update({"type_name": "decision", "control": control, "attestation_data": {"is_compliant": compliant}})
    return payload


def attest_decision(token, payload, flow="backend", trail="build-1", attachment=None):
    """``attestDecisionOptions.run``: ``POST /api/v2/attestations/{org}/{flow}/trail/{trail}/system``,
    multipart ``data_json`` (+ ``attachment_file`` with ``--attachments``)."""
    form = [("field", "data_json", payload)]
    if attachment is not None:
        form.append(("file", "attachment_file", attachment))
    return cli(token, "POST", f"/api/v2/attestations/acme/{flow}/trail/{trail}/system", form=form)


@pytest.fixture
def trail(org, admin, api, member):
    assert create(admin, "RCTL-043", "Peer review").status_code == 201
    reporter = api(token=member)
    make_flow(reporter, template={"trail": [{"name": "review", "type": "decision"}], "artifacts": []})
    begin_trail(reporter)
    return reporter


def test_attest_decision(org, trail, member, admin):
    """``cmd/kosli/attestDecision.go``: a CI token (member role, ``evidence.report``) records decisions; 201.
    The attestation is of type ``decision``, names its control, is compliant iff ``is_compliant``; the
    trail answer lists it in ``compliance_status.attestations_statuses`` (``attestation_type``
    ``decision``, ``is_compliant``) — a non-compliant one makes the trail NON-COMPLIANT, a newer compliant
    one turns it COMPLIANT. ``--attachments`` uploads the evidence file; ``--description`` and
    ``--annotate`` land. Audited with the control."""
    answer = attest_decision(member, decision_payload("review", "RCTL-043", False))
    assert answer.status_code == 201, answer.content
    decision = Attestation.objects.get(name="review")
    assert (decision.type, decision.control.identifier, decision.is_compliant) == ("decision", "RCTL-043", False)
    assert answer.json()["type"] == "decision"
    trail_answer = cli(member, "GET", "/api/v2/trails/acme/backend/build-1").json()
    [status] = trail_answer["compliance_status"]["attestations_statuses"]
    assert (status["attestation_name"], status["attestation_type"], status["is_compliant"], status["status"]) == (
        "review", "decision", False, "COMPLETE")
    assert trail_answer["compliance_state"] == "NON-COMPLIANT"
    assert "decision: control RCTL-043 (Peer review) is not met" in decision.problems

    again = attest_decision(member, decision_payload("review", "RCTL-043", True, description="evaluation passed",
                                                     annotations={"key": "value"}),
                            attachment=("eval-report.json", b'{"passed": true}'))
    assert again.status_code == 201, again.content
    latest = Attestation.objects.filter(name="review").order_by("-id").first()
    assert latest.is_compliant and latest.description == "evaluation passed"
    assert latest.annotations == {"key": "value"}
    assert [link.name for link in latest.evidence_links.all()] == ["eval-report.json"]
    assert cli(member, "GET", "/api/v2/trails/acme/backend/build-1").json()["compliance_state"] == "COMPLIANT"
    created = events(org, AuditAction.ATTESTATION_CREATED)
    assert [e.after.get("control") for e in created] == ["RCTL-043", "RCTL-043"]


def test_attest_decision_refusals(org, trail, member, token_for, admin, other_org):
    """The control must exist in the org (kosli's "does not exist" 404) and be active (400 saying it is
    archived); ``attestation_data.is_compliant`` must be a bool (400 naming it); ``type_name`` must be a
    system type (400); a reader or snapshotter token may not attest (403); another org's flow is a 404.
    Nothing is recorded on refusal."""
    missing = attest_decision(member, decision_payload("review", "RCTL-999", True))
    assert missing.status_code == 404
    assert cli_error(missing) == "Control 'RCTL-999' does not exist in org 'acme'"
    Control.objects.create(org=other_org, identifier="THEIRS", name="Theirs")
    assert attest_decision(member, decision_payload("review", "THEIRS", True)).status_code == 404

    assert cli(admin, "POST", "/api/v2/controls/acme/RCTL-043/archive").status_code == 200
    archived = attest_decision(member, decision_payload("review", "RCTL-043", True))
    assert archived.status_code == 400 and "archived" in cli_error(archived)
    assert cli(admin, "POST", "/api/v2/controls/acme/RCTL-043/unarchive").status_code == 200

    payload = decision_payload("review", "RCTL-043", True)
    payload["attestation_data"] = {"is_compliant": "yes"}
    bad = attest_decision(member, payload)
    assert bad.status_code == 400 and "attestation_data.is_compliant" in bad.json()["error"]["fields"]
    payload = decision_payload("review", "RCTL-043", True)
    payload["type_name"] = "nonsense"
    bad = attest_decision(member, payload)
    assert bad.status_code == 400 and "type_name" in bad.json()["error"]["fields"]
    del payload["control"]
    payload["type_name"] = "decision"
    bad = attest_decision(member, payload)
    assert bad.status_code == 400 and "control" in bad.json()["error"]["fields"]

    for role in (Role.READER, Role.SNAPSHOTTER):
        assert attest_decision(token_for(org, role), decision_payload("review", "RCTL-043", True)).status_code == 403
    Flow.objects.create(org=other_org, name="backend")
    other = cli(member, "POST", "/api/v2/attestations/globex/backend/trail/build-1/system",
                form=[("field", "data_json", decision_payload("review", "RCTL-043", True))])
    assert other.status_code == 404
    assert not Attestation.objects.exists()


def test_decision_on_an_artifact(org, trail, member):
    """``attest decision --fingerprint``: the decision binds to the reported artifact and counts in its
    compliance (``artifacts_statuses``)."""
    fingerprint = "7509e5bda0c762d2bac7f90d758b5b2263fa01ccbc542ab5e3df163be08e6ca9"
    reported = cli(member, "POST", "/api/v2/artifacts/acme/backend",
                   {"fingerprint": fingerprint, "filename": "file1", "trail_name": "build-1",
                    "template_reference_name": "cli"})
    assert reported.status_code == 201, reported.content
    answer = attest_decision(member, decision_payload("gate", "RCTL-043", False, artifact_fingerprint=fingerprint))
    assert answer.status_code == 201, answer.content
    decision = Attestation.objects.get(name="gate")
    assert decision.artifact.fingerprint == fingerprint and decision.control.identifier == "RCTL-043"
    statuses = cli(member, "GET", "/api/v2/trails/acme/backend/build-1").json()["compliance_status"]
    [entry] = statuses["artifacts_statuses"]["cli"]["attestations_statuses"]
    assert (entry["attestation_type"], entry["is_compliant"]) == ("decision", False)
