"""kosli CLI conformance: ``kosli create / get / list / archive attestation-type`` and ``kosli attest custom``
judged by a type's jq rules.

Requests are built the way ``internal/requests`` builds them (``tests/kosli/cli.py``): ``create
attestation-type`` is multipart (``newAttestationTypeForm``: a ``data_json`` field holding Go's JSON of
``CreateAttestationTypePayload`` ``{"name", "description"(omitempty), "evaluator"(omitempty): {"content_type":
"jq", "rules"}, "summary"(omitempty)}`` and, with ``--schema``, a file ``type_schema``); ``archive`` is a PUT
whose body is ``json.Marshal(nil)`` = ``null``; the reads are GETs without a body. Answers are read the way the
printers read them (``printAttestationTypeAsTable``, ``printVersionedAttestationTypeAsTable``,
``printAttestationTypesListAsTable``): an unchecked ``.([]interface{})`` or ``.(float64)`` panics the CLI."""

import json

import pytest

from audit.models import AuditEvent
from evidence.models import Attestation, CustomAttestationType, CustomAttestationTypeVersion
from tenants.choices import Role
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

PERSON_SCHEMA = {"type": "object", "additionalProperties": True,
                 "properties": {"age": {"type": "integer"}, "name": {"type": "string"}}}
TYPES = "/api/v2/custom-attestation-types/acme"


def create_form(name, rules=(), schema=None, description=None, summary=None):
    """``createAttestationTypeOptions.run``: the payload with its omitempty fields left out, and the schema
    file as ``CreateFormFile("type_schema", basename)``."""
    payload = {"name": name}
    if description:
        payload["description"] = description
    if rules:
        payload["evaluator"] = {"content_type": "jq", "rules": list(rules)}
    if summary:
        payload["summary"] = summary
    form = [("field", "data_json", payload)]
    if schema is not None:
        form.append(("file", "type_schema", ("testdata/person-schema.json", json.dumps(schema).encode())))
    return form


def create(token, name, rules=(), schema=None, **kwargs):
    return cli(token, "POST", TYPES, form=create_form(name, rules, schema, **kwargs))


def attest_custom(token, type_name, data, name="person-check"):
    """``attestCustomOptions.run``: ``POST /api/v2/attestations/{org}/{flow}/trail/{trail}/custom``, multipart
    ``data_json`` = ``CustomAttestationPayload`` (common fields, then ``type_name``, ``attestation_data``)."""
    payload = {"attestation_name": name, "type_name": type_name, "attestation_data": data}
    return cli(token, "POST", "/api/v2/attestations/acme/backend/trail/build-1/custom",
               form=[("field", "data_json", payload)])


@pytest.fixture
def admin(org, token_for):
    return token_for(org, Role.ADMIN)


@pytest.fixture
def reporter(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def flow(org, admin):
    answer = cli(admin, "PUT", "/api/v2/flows/acme", {"name": "backend", "description": "", "visibility": "private",
                                                      "template": []})
    assert answer.status_code in (200, 201), answer.content
    return "backend"


def read_like_print_version(version: dict) -> list:
    """``printVersionedAttestationTypeAsTable``: ``timestamp`` through formattedTimestamp (float64, int64,
    numeric string or nil), ``version.(float64)``, ``created_by``, ``type_schema`` re-marshalled, ``evaluator``
    as a map with ``content_type`` and ``rules`` as ``[]interface{}``, ``summary`` as ``[]interface{}`` of maps."""
    assert isinstance(version["timestamp"], float)
    assert isinstance(version["version"], int)
    assert isinstance(version["created_by"], str)
    rules = []
    if isinstance(version.get("evaluator"), dict):
        assert version["evaluator"]["content_type"] == "jq"
        assert isinstance(version["evaluator"]["rules"], list)
        rules = version["evaluator"]["rules"]
    summary = version.get("summary")
    assert summary is None or isinstance(summary, list)
    return [version["version"], version.get("type_schema"), rules, summary]


def test_create_attestation_type_with_schema_and_jq_rules(org, admin):
    """``cmd/kosli/createAttestationType.go`` ``createAttestationTypeOptions.run``: ``POST
    /api/v2/custom-attestation-types/{org}`` multipart. Success must be 200/201 (the CLI reads nothing else of
    the answer); the type lands with its schema, jq rules and summary as version 1, audited."""
    answer = create(admin, "person", [".age > 21", '.name | startswith("B")'], PERSON_SCHEMA,
                    description="Attest that a person meets the age requirements",
                    summary=[{"name": "Age", "expression": ".age"}])
    assert answer.status_code == 201, answer.content
    custom = CustomAttestationType.objects.get(org=org, name="person")
    assert custom.jq_rules == [".age > 21", '.name | startswith("B")']
    assert custom.schema == PERSON_SCHEMA
    assert custom.description == "Attest that a person meets the age requirements"
    version = CustomAttestationTypeVersion.objects.get(custom_type=custom)
    assert (version.version, version.jq_rules, version.summary) == (
        1, custom.jq_rules, [{"name": "Age", "expression": ".age"}])
    event = AuditEvent.objects.get(org=org, action="custom_type.created")
    assert event.after["jq_rules"] == custom.jq_rules and event.after["version"] == 1
    # the bare name, no flags: a type with no schema and no rules
    assert create(admin, "wibble").status_code == 201
    assert CustomAttestationType.objects.get(org=org, name="wibble").jq_rules == []


def test_creating_an_existing_type_again_adds_a_version(org, admin):
    """``createAttestationType.go`` is "Create or update": the same name again makes version 2 (audited as
    ``custom_type.versioned``); sending the very same definition again adds nothing."""
    assert create(admin, "person", [".age > 21"], PERSON_SCHEMA).status_code == 201
    assert create(admin, "person", [".age > 21"], PERSON_SCHEMA).status_code == 201
    assert CustomAttestationTypeVersion.objects.filter(custom_type__name="person").count() == 1
    assert create(admin, "person", [".age > 18", ".age < 65"], PERSON_SCHEMA).status_code == 201
    custom = CustomAttestationType.objects.get(org=org, name="person")
    assert list(custom.versions.values_list("version", "jq_rules")) == [
        (1, [".age > 21"]), (2, [".age > 18", ".age < 65"])]
    assert custom.jq_rules == [".age > 18", ".age < 65"]
    assert AuditEvent.objects.filter(org=org, action="custom_type.versioned").count() == 1


def test_create_refuses_a_bad_jq_rule_naming_it_with_jqs_message(org, admin):
    """A rule jq cannot compile is a 400 naming the rule (``evaluator.rules`` → ``jq_rules[i]``) and jq's own
    message, which the CLI prints (``Client.Do`` prints the top-level ``message``). Nothing is stored."""
    answer = create(admin, "person", [".age > 21", ".age | ("])
    assert answer.status_code == 400
    message = cli_error(answer)
    assert message.startswith("jq rule 2 (.age | ():") and "syntax error" in message
    assert "jq_rules[1]" in answer.json()["error"]["fields"]
    bad_summary = create(admin, "person", summary=[{"name": "Age", "expression": ".age |"}])
    assert bad_summary.status_code == 400
    assert cli_error(bad_summary).startswith("summary expression 1 (.age |): syntax error")
    modules = create(admin, "person", ['import "x" as x; .age > 1'])
    assert modules.status_code == 400 and "modules" in cli_error(modules)
    bad_name = create(admin, "per@son")
    assert bad_name.status_code == 400 and "name" in bad_name.json()["error"]["fields"]
    assert not CustomAttestationType.objects.exists()


def test_get_attestation_type_and_one_version(org, admin):
    """``cmd/kosli/getAttestationType.go`` ``getAttestationTypeOptions.run`` / ``printAttestationTypeAsTable``:
    ``GET /api/v2/custom-attestation-types/{org}/{name}``; reads ``name``, ``description``, ``org``,
    ``archived`` (%t), ``created_by``, ``created_at`` and ``last_modified_at`` (formattedTimestamp), and
    ``versions`` as ``[]interface{}`` (unchecked). ``name@vN`` sends ``?version=N`` and gets that version only
    (kosli's answer then has no created_by/created_at/last_modified_at); a missing version is an error the
    CLI prints; a version that is not a number returns the whole type."""
    create(admin, "person", [".age > 21"], PERSON_SCHEMA, description="adults")
    create(admin, "person", [".age > 18"], PERSON_SCHEMA, summary=[{"name": "Age", "expression": ".age"}])
    token = admin
    body = cli(token, "GET", f"{TYPES}/person").json()
    assert (body["name"], body["description"], body["org"], body["archived"]) == ("person", "adults", "acme", False)
    assert isinstance(body["created_by"], str)
    assert isinstance(body["created_at"], float) and isinstance(body["last_modified_at"], float)
    assert [read_like_print_version(v) for v in body["versions"]] == [
        [1, PERSON_SCHEMA, [".age > 21"], None],
        [2, PERSON_SCHEMA, [".age > 18"], [{"name": "Age", "expression": ".age"}]]]
    one = cli(token, "GET", f"{TYPES}/person", query={"version": "1"})
    assert one.status_code == 200
    one = one.json()
    assert [read_like_print_version(v) for v in one["versions"]] == [[1, PERSON_SCHEMA, [".age > 21"], None]]
    assert "created_at" not in one and one["archived"] is False
    missing = cli(token, "GET", f"{TYPES}/person", query={"version": "10"})
    assert missing.status_code == 404
    assert cli_error(missing) == "version 10 does not exist for custom attestation type 'person'"
    whole = cli(token, "GET", f"{TYPES}/person", query={"version": "x"}).json()
    assert len(whole["versions"]) == 2
    absent = cli(token, "GET", f"{TYPES}/foo")
    assert absent.status_code == 404
    assert cli_error(absent) == "Custom attestation type 'foo' does not exist for org 'acme'"


def test_list_attestation_types(org, admin, token_for):
    """``cmd/kosli/listAttestationTypes.go`` ``printAttestationTypesListAsTable``: ``GET
    /api/v2/custom-attestation-types/{org}`` → a JSON array; per type ``name``, ``description`` (nil printed
    as "") and ``len(versions.([]interface{}))`` as the latest version. An org with none answers ``[]``."""
    reader = token_for(org, Role.READER)
    assert cli(reader, "GET", TYPES).json() == []
    create(admin, "person", [".age > 21"])
    create(admin, "person", [".age > 18"])
    create(admin, "coverage", [".coverage >= 80"], description="line coverage")
    rows = [(t["name"], t["description"] or "", len(t["versions"])) for t in cli(reader, "GET", TYPES).json()]
    assert rows == [("coverage", "line coverage", 1), ("person", "", 2)]


def test_archive_attestation_type(org, admin, reporter, flow):
    """``cmd/kosli/archiveAttestationType.go``: ``PUT /api/v2/custom-attestation-types/{org}/{name}/archive``
    with body ``null``. Afterwards ``get`` shows ``archived: true``, new custom attestations of the type are
    refused ("New custom attestations using this type cannot be made"), the attestations it judged keep
    their judgement; the archive is audited. A missing type is kosli's error message."""
    create(admin, "person", [".age > 21"], PERSON_SCHEMA)
    judged = attest_custom(reporter, "person", {"age": 30})
    assert judged.status_code == 201, judged.content
    answer = cli(admin, "PUT", f"{TYPES}/person/archive", None)
    assert answer.status_code == 200, answer.content
    assert cli(admin, "GET", f"{TYPES}/person").json()["archived"] is True
    assert AuditEvent.objects.filter(org=org, action="custom_type.archived").count() == 1
    again = cli(admin, "PUT", f"{TYPES}/person/archive", None)
    assert again.status_code == 200
    assert AuditEvent.objects.filter(org=org, action="custom_type.archived").count() == 1
    refused = attest_custom(reporter, "person", {"age": 30})
    assert refused.status_code == 400
    assert cli_error(refused) == "Custom attestation type 'person' is archived: new attestations cannot use it"
    assert Attestation.objects.get(pk=judged.json()["id"]).is_compliant is True
    new_version = create(admin, "person", [".age > 30"])
    assert new_version.status_code == 409 and "archived" in cli_error(new_version)
    missing = cli(admin, "PUT", f"{TYPES}/non-existing/archive", None)
    assert missing.status_code == 404
    assert cli_error(missing) == "Custom attestation type 'non-existing' does not exist for org 'acme'"


def test_attest_custom_is_judged_by_the_types_jq_rules(org, admin, reporter, flow):
    """``cmd/kosli/attestCustom.go`` ``attestCustomOptions.run``: the data is judged by every jq rule of the
    type's latest version; all must yield ``true``. A false rule, a non-boolean, no value or a jq error make
    the attestation non-compliant with the reason recorded; the version that judged it is recorded; the
    summary entries' values are kept with it."""
    create(admin, "person", [".age > 21", '.name | startswith("B")'], PERSON_SCHEMA,
           summary=[{"name": "Age", "expression": ".age"}, {"name": "Score", "expression": ".score"}])
    ok = attest_custom(reporter, "person", {"age": 30, "name": "Bob", "score": 0.5})
    assert ok.status_code == 201, ok.content
    attestation = Attestation.objects.get(pk=ok.json()["id"])
    assert attestation.is_compliant is True
    assert attestation.custom_type_version.version == 1
    assert [r["passed"] for r in attestation.results["jq_rules"]] == [True, True]
    assert attestation.results["summary"] == [{"name": "Age", "expression": ".age", "value": 30},
                                              {"name": "Score", "expression": ".score", "value": "0.5"}]
    young = Attestation.objects.get(pk=attest_custom(reporter, "person", {"age": 20, "name": "Bob"}).json()["id"])
    assert young.is_compliant is False
    assert young.problems == ["jq rule 1 (.age > 21) is false"]
    create(admin, "person", [".age", "empty", '.name | error("no \\(.)")'], PERSON_SCHEMA)
    odd = Attestation.objects.get(pk=attest_custom(reporter, "person", {"age": 30, "name": "Al"}).json()["id"])
    assert odd.is_compliant is False
    assert odd.custom_type_version.version == 2
    assert odd.problems == ["jq rule 1 (.age) yields 30, not a boolean", "jq rule 2 (empty) yields no value",
                            'jq rule 3 (.name | error("no \\(.)")) jq error: no Al']
    # kosli's name@vN picks a version
    pinned = attest_custom(reporter, "person@v1", {"age": 30, "name": "Bob"})
    assert pinned.status_code == 201 and pinned.json()["is_compliant"] is True
    assert Attestation.objects.get(pk=pinned.json()["id"]).custom_type_version.version == 1


def test_attest_custom_runaway_rule_is_stopped_and_not_compliant(org, admin, reporter, flow):
    """A jq rule that never ends (``def f: f; f``) is stopped by the evaluator's limits; the attestation is
    stored non-compliant with the reason, not left hanging or made compliant."""
    create(admin, "looping", ["true", "def f: f; f"])
    answer = attest_custom(reporter, "looping", {})
    assert answer.status_code == 201, answer.content
    assert answer.json()["is_compliant"] is False
    assert answer.json()["problems"][0].startswith("jq rule 2 (def f: f; f) stopped:")


def test_attestation_types_are_per_org_and_need_permissions(org, other_org, admin, reporter, token_for):
    """Another org's type is a 404 on every path; a member may read types but not define or archive them
    (403: defining a type changes how compliance is judged, ``evidence.override``)."""
    create(admin, "person", [".age > 21"])
    globex = token_for(other_org, Role.ADMIN)
    assert cli(globex, "GET", f"{TYPES}/person").status_code == 404
    assert cli(globex, "PUT", f"{TYPES}/person/archive", None).status_code == 404
    assert cli(globex, "GET", "/api/v2/custom-attestation-types/globex").json() == []
    assert cli(reporter, "GET", f"{TYPES}/person").status_code == 200
    assert create(reporter, "other", [".a"]).status_code == 403
    assert cli(reporter, "PUT", f"{TYPES}/person/archive", None).status_code == 403
    assert not CustomAttestationType.objects.filter(archived=True).exists()


def test_create_refuses_a_bad_schema_file_and_evaluator(org, admin):
    """``newAttestationTypeForm``: the ``type_schema`` file must be a JSON Schema within csm's schema limits
    (64 KiB: 413; not JSON or not a valid schema: 400 naming ``type_schema`` / ``schema``); an ``evaluator``
    whose ``content_type`` is not ``jq`` is a 400. Nothing is stored."""
    big = {"type": "object", "description": "x" * (70 * 1024)}
    too_big = create(admin, "person", schema=big)
    assert too_big.status_code == 413 and "type_schema" in too_big.json()["error"]["fields"]
    form = [("field", "data_json", {"name": "person"}), ("file", "type_schema", ("s.json", b"{not json"))]
    not_json = cli(admin, "POST", TYPES, form=form)
    assert not_json.status_code == 400 and "type_schema" in not_json.json()["error"]["fields"]
    bad_schema = create(admin, "person", schema={"type": "no-such-type"})
    assert bad_schema.status_code == 400 and "schema" in bad_schema.json()["error"]["fields"]
    form = [("field", "data_json", {"name": "person", "evaluator": {"content_type": "rego", "rules": ["x"]}})]
    rego = cli(admin, "POST", TYPES, form=form)
    assert rego.status_code == 400 and "'rego' is not supported" in cli_error(rego)
    assert not CustomAttestationType.objects.exists()
