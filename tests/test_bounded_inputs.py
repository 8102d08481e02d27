"""Issue 11: every number, date and JSON body a user sends goes through one bounded path (csm/lib/bounded.py),
so a hostile or malformed value is a 400/413 naming the parameter or the limit, never a 500 and never
minutes of CPU. One test per request the security review listed (each was a 500, a hang or an HTML
answer before)."""

import io
import json

import pytest
from django.test import override_settings

from audit.context import AuditContext
from snapshots.models import Environment
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, tar_gz  # noqa: F401 (fixture)
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

FAR_EAST_YEAR_ONE = "0001-01-01T00:00:00+14:00"  # before 0001-01-01 once shifted to UTC


@pytest.fixture
def reader(api, org, token_for):
    return api(token=token_for(org, Role.READER))


@pytest.fixture
def member(api, org, token_for):
    return api(token=token_for(org, Role.MEMBER))


@pytest.fixture
def admin(api, org, token_for):
    return api(token=token_for(org, Role.ADMIN))


@pytest.fixture
def prod(org, django_capture_on_commit_callbacks):
    """A server environment with two snapshots."""
    ctx = AuditContext.system("test")
    env, _ = create_or_update_environment(ctx, org, "prod", "server")
    for body in (server_report(fp(1)), server_report(fp(1), fp(2))):
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, env, env.type, json.dumps(body).encode(), "")
        ingest_report(report.pk)
    return env


def assert_error(response, status, *names):
    """A JSON error body of the API's format whose fields (or, for a limit, message) name each of ``names``."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    text = json.dumps(error)
    for name in names:
        assert name in text, (name, error)
    return error


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_object(depth: int, key="name") -> bytes:
    """``{"name": "x", "user_data": [[[...]]]}``: a valid-looking body whose one member nests ``depth`` deep."""
    return b'{"%s": "deep", "user_data": ' % key.encode() + nested(depth) + b"}"


# --- snapshot addresses (snappish), intervals, event filters ------------------------------------------------


@pytest.mark.parametrize("snappish", ["@{99999999999.days.ago}", "~\u00b2", "#\u00b2", "\u00b2",
                                      "@{" + FAR_EAST_YEAR_ONE + "}", "@{9999-12-31T23:59:59-14:00}"])
def test_snapshot_address_out_of_range_or_with_unicode_digits_is_a_400(reader, prod, snappish):
    from urllib.parse import quote

    response = reader.get(f"/api/v2/snapshots/acme/prod/{quote(snappish)}")
    assert_error(response, 400, "id")


def test_snapshot_numbers_beyond_a_bigint_are_a_400_naming_the_id(reader, prod):
    for snappish in ("#99999999999999999999999", "~99999999999999999999999", "-99999999999999999999999"):
        assert_error(reader.get(f"/api/v2/snapshots/acme/prod/{snappish.replace('#', '%23')}"), 400, "id")


@pytest.mark.parametrize("interval", ["~\u00b2..NOW", "\u00b2..NOW", "99999999999999999999999..NOW",
                                      "1..99999999999999999999999"])
def test_interval_with_unicode_digits_or_huge_numbers_is_a_400(reader, prod, interval):
    assert_error(reader.get("/api/v2/snapshots/acme/prod", {"interval": interval}), 400, "interval")


@pytest.mark.parametrize("name", ["from", "to"])
def test_event_time_filter_out_of_range_after_timezone_shift_is_a_400(reader, prod, name):
    response = reader.get("/api/v2/environments/acme/prod/events", {name: FAR_EAST_YEAR_ONE})
    assert_error(response, 400, name)


@pytest.mark.parametrize("params", [{"page": "9" * 26}, {"snapshot_from": "9" * 23}, {"snapshot_to": "\u00b2"}])
def test_event_paging_and_snapshot_filters_out_of_range_are_a_400(reader, prod, params):
    assert_error(reader.get("/api/v2/environments/acme/prod/events", params), 400, *params)


def test_snapshot_list_page_out_of_range_is_a_400(reader, prod):
    assert_error(reader.get("/api/v2/snapshots/acme/prod", {"page": "99999999999999999999999999"}), 400, "page")


@pytest.mark.parametrize("name", ["from", "to"])
def test_audit_event_time_filter_out_of_range_is_a_400(admin, name):
    assert_error(admin.get("/api/v2/orgs/acme/audit-events", {name: FAR_EAST_YEAR_ONE}), 400, name)


@pytest.mark.parametrize("page", ["99999999999999999999999999", "\u0663", "0"])
def test_audit_event_page_not_an_ascii_number_in_range_is_a_400(admin, page):
    assert_error(admin.get("/api/v2/orgs/acme/audit-events", {"page": page}), 400, "page")


def test_audit_event_page_past_the_last_is_a_404_json_saying_so(admin):
    assert_error(admin.get("/api/v2/orgs/acme/audit-events", {"page": "1000000"}), 404, "past the last page")


# --- web pages ----------------------------------------------------------------------------------------


def test_web_diff_page_with_bad_addresses_shows_the_problem(client, owner, prod):
    client.force_login(owner)
    for at in ("@{99999999999.days.ago}", "~\u00b2", "@{" + FAR_EAST_YEAR_ONE + "}"):
        response = client.get("/o/acme/diff/", {"env1": "prod", "at1": at, "env2": "prod", "at2": "-1"})
        assert response.status_code == 200
        assert ("is not a snapshot address" in response.content.decode()
                or "out of range" in response.content.decode()), at


def test_web_audit_page_with_an_out_of_range_time_shows_the_form_error(client, org, owner):
    client.force_login(owner)
    response = client.get("/o/acme/audit/", {"from": FAR_EAST_YEAR_ONE, "page": "99999999999999999999999"})
    assert response.status_code == 200
    assert "out of range once converted to utc" in response.content.decode().lower()


# --- JSON bodies -----------------------------------------------------------------------------------


@pytest.fixture
def trail(member):
    make_flow(member)
    begin_trail(member)
    return "build-1"


WRITE_ENDPOINTS = [
    ("put", "/api/v2/environments/acme"),
    ("put", "/api/v2/flows/acme"),
    ("put", "/api/v2/trails/acme/backend"),
    ("post", "/api/v2/artifacts/acme/backend"),
    ("post", "/api/v2/attestations/acme/backend/trail/build-1/generic"),
    ("post", "/api/v2/orgs/acme/attestation-types"),
]


@pytest.mark.parametrize("method,path", WRITE_ENDPOINTS)
def test_json_nested_50000_deep_is_a_400_naming_the_depth_limit(admin, trail, method, path):
    response = getattr(admin, method)(path, data=nested_object(50_000), content_type="application/json")
    error = assert_error(response, 400, "nested", "64")
    assert error["fields"] == {"body": [error["message"]]}


@pytest.mark.parametrize("method,path", WRITE_ENDPOINTS)
@pytest.mark.parametrize("body", [b"null", b"1"])
def test_a_top_level_value_that_is_not_an_object_is_a_400(admin, trail, method, path, body):
    response = getattr(admin, method)(path, data=body, content_type="application/json")
    assert_error(response, 400, "JSON object")


def test_a_body_over_the_json_size_limit_is_a_413(admin, trail):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        response = admin.put("/api/v2/flows/acme", data=json.dumps({"name": "x", "description": "d" * 2000}),
                             content_type="application/json")
    assert_error(response, 413, "1024")


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"NaN", b"Infinity"])
def test_non_finite_numbers_in_user_data_are_a_400(member, trail, number):
    body = b'{"name": "build-2", "user_data": {"n": ' + number + b"}}"
    response = member.put("/api/v2/trails/acme/backend", data=body, content_type="application/json")
    assert_error(response, 400, "body")


def test_data_json_nested_50000_deep_is_a_400(member, trail):
    response = member.post("/api/v2/attestations/acme/backend/trail/build-1/generic",
                           {"data_json": nested_object(50_000, "attestation_name").decode()}, format="multipart")
    assert_error(response, 400, "data_json", "nested")


def test_data_json_with_1e400_is_a_400(member, trail):
    response = member.put("/api/v2/trails/acme/backend", {"data_json": '{"name": "b-3", "user_data": {"n": 1e400}}'},
                          format="multipart")
    assert_error(response, 400, "data_json")


def test_an_evidence_json_file_nested_50000_deep_is_a_400(member, trail):
    sbom = b'{"bomFormat": "CycloneDX", "components": ' + nested(50_000) + b"}"
    response = attest(member, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                      tar_gz({"sbom.cdx.json": sbom}))
    assert_error(response, 400, "sbom.cdx.json", "nested more than 64 levels")


def test_a_policy_payload_nested_50000_deep_is_a_400(admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = admin.put("/api/v2/policies/acme", {
        "payload": nested_object(50_000).decode(),
        "policy_file": SimpleUploadedFile("p.yml", b"_schema: https://kosli.com/schemas/policy/environment/v1\n")},
        format="multipart")
    assert_error(response, 400, "payload", "nested")


@pytest.mark.parametrize("value", [2**63, 2**31, 10**30, 366 * 86400])
def test_expected_report_interval_beyond_a_year_is_a_400(admin, value):
    body = json.dumps({"name": "prod", "type": "server", "expected_report_interval_seconds": value})
    response = admin.put("/api/v2/environments/acme", data=body, content_type="application/json")
    assert_error(response, 400, "expected_report_interval_seconds")
    assert not Environment.objects.filter(name="prod").exists()


def test_too_many_multipart_fields_is_a_json_400(member, trail):
    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=10):
        response = member.put("/api/v2/trails/acme/backend",
                              {"data_json": '{"name": "b"}', **{f"f{i}": "x" for i in range(20)}}, format="multipart")
    assert_error(response, 400, "fields")


def test_multipart_fields_over_the_memory_limit_are_a_json_413(member, trail):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        response = member.put("/api/v2/trails/acme/backend", {"data_json": json.dumps({"name": "b", "d": "x" * 4000})},
                              format="multipart")
    assert_error(response, 413, "1024")


# --- flow templates (YAML) ------------------------------------------------------------------------------


def _yaml_file(text: str):
    upload = io.BytesIO(text.encode())
    upload.name = "template.yml"
    return upload


def test_template_string_over_the_size_limit_is_a_413(member):
    template = "version: 1\ntrail:\n  attestations:\n" + "  # padding\n" * 30_000
    response = member.put("/api/v2/flows/acme", {"name": "big", "template": template}, format="json")
    assert_error(response, 413, "template", str(256 * 1024))


@pytest.mark.parametrize("template", ["[" * 5000 + "]" * 5000, "- " * 5000 + "x",
                                      "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 300))])
def test_template_nested_too_deeply_is_a_400_naming_the_depth_limit(member, template):
    response = member.put("/api/v2/flows/acme", {"name": "deep", "template": template}, format="json")
    assert_error(response, 400, "template", "nested")


def test_template_file_nested_too_deeply_is_a_400(member):
    response = member.put("/api/v2/flows/acme/template_file", {
        "data_json": json.dumps({"name": "deep"}), "template_file": _yaml_file("[" * 5000 + "]" * 5000)},
        format="multipart")
    assert_error(response, 400, "template", "nested")


# The classic "billion laughs": 9 levels of 10 aliases each, 10**9 leaves once expanded.
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)) + "trail: *i\n"


def test_template_with_an_alias_bomb_is_a_400_naming_the_alias_limit_and_kosli_yaml_still_works(member):
    from tests.evidence.test_flows_trails import KOSLI_TEMPLATE

    response = member.put("/api/v2/flows/acme", {"name": "laughs", "template": BILLION_LAUGHS}, format="json")
    assert_error(response, 400, "template", "aliases", "50")
    response = member.put("/api/v2/flows/acme", {"name": "backend", "template": KOSLI_TEMPLATE}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["template"]["trail"] == [{"name": "jira-ticket", "type": "generic"}]


def test_a_request_refused_before_any_view_is_a_json_400_on_the_api(reader, client):
    response = reader.get("/api/v2/flows/acme", HTTP_HOST="evil.example")
    assert_error(response, 400, "Bad request")
    page = client.get("/o/acme/audit/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and not page["Content-Type"].startswith("application/json")


# --- the bounded parsers themselves (csm/lib/bounded.py) -----------------------------------------------------


def test_depth_pre_scan_counts_only_structure():
    from csm.lib.bounded import json_depth_exceeds

    assert not json_depth_exceeds(json.dumps({"a": "[" * 1000, "b": ['{"\\"[[[' * 100]}), 3)
    assert not json_depth_exceeds("[" * 64 + "]" * 64, 64)
    assert json_depth_exceeds("[" * 65 + "]" * 65, 64)
    assert json_depth_exceeds("[[]" * 100 + "]" * 100, 64)  # deep without 65 openers in a row


@pytest.mark.parametrize("text", ["\u0663", "\uff11", " ", "", "+3", "-1", "1.0", "1e3", "9" * 20])
def test_integers_are_ascii_digits_within_a_bigint(text):
    from csm.lib.bounded import InputError, parse_int

    with pytest.raises(InputError) as refused:
        parse_int(text, "per_page")
    assert refused.value.field == "per_page" and refused.value.status == 400


def test_json_loader_refuses_a_byte_order_mark_and_keeps_big_integers():
    from csm.lib.bounded import InputError, load_json

    with pytest.raises(InputError, match="BOM"):
        load_json(b'\xef\xbb\xbf{"a": 1}')
    assert load_json(b'{"n": 123456789012345678901234567890, "f": 1.5e300}') == {
        "n": 123456789012345678901234567890, "f": 1.5e300}
