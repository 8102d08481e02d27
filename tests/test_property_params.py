"""Property-based tests (hypothesis) over the query and path parameters of every read endpoint that takes
them: whatever a reader sends, the answer is never a 500, and a 4xx is the API's JSON error body — a 400
names the parameter at fault in ``fields``. The web diff and audit pages answer HTML below 500.

Inputs mix what broke before (Unicode digits such as '²', numbers beyond a bigint, relative times past
year 1, ISO times that leave the calendar once shifted to UTC) with arbitrary text. Examples are few and
derandomized, so the suite stays fast and CI deterministic."""

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit.context import AuditContext
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

DIGITS = st.sampled_from(["0", "1", "2", "7", "\u00b2", "\u0663", "\uff11", "9" * 19, "9" * 25, "-1", "+3", " 4 "])
NUMBER = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str), DIGITS,
                   st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4))
OFFSET = st.sampled_from(["", "Z", "+14:00", "-14:00", "+00:00", "+23:59"])
ISO_TIME = st.builds(lambda year, rest, offset: f"{year:04d}{rest}{offset}",
                     st.sampled_from([1, 2, 1970, 2026, 9999]),
                     st.sampled_from(["-01-01T00:00:00", "-12-31T23:59:59", "-06-15", "-02-30T00:00:00"]), OFFSET)
RELATIVE = st.builds(lambda n, unit: f"{n}.{unit}.ago", NUMBER,
                     st.sampled_from(["minute", "hours", "days", "weeks", "months", "years"]))
TEXT = st.text(max_size=30)
SNAPPISH = st.one_of(
    st.sampled_from(["", "-1", "latest", "NOW", "#0", "#1", "~1", "@{}", "@{", "#", "~"]),
    st.builds(lambda prefix, n: prefix + n, st.sampled_from(["", "#", "~", "-"]), NUMBER),
    st.builds(lambda t: "@{" + t + "}", st.one_of(ISO_TIME, RELATIVE, TEXT)),
    TEXT,
)
INTERVAL_END = st.one_of(st.sampled_from(["", "NOW", "now"]), NUMBER,
                         st.builds(lambda n: "~" + n, NUMBER), st.builds(lambda n: "#" + n, NUMBER), TEXT)
INTERVAL = st.one_of(st.builds(lambda a, b: f"{a}..{b}", INTERVAL_END, INTERVAL_END), TEXT)
TIME_PARAM = st.one_of(ISO_TIME, TEXT, NUMBER)
# The review's inputs, always tried (explicit examples) besides the generated ones.
YEAR_ONE_EAST = "0001-01-01T00:00:00+14:00"


def params(**strategies):
    """A dict of some of the given query parameters (each present or not)."""
    return st.fixed_dictionaries({}, optional=strategies)


@pytest.fixture
def env(org, django_capture_on_commit_callbacks):
    ctx = AuditContext.system("test")
    prod, _ = create_or_update_environment(ctx, org, "prod", "server")
    for body in (server_report(fp(1)), server_report(fp(1), fp(2))):
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, prod, prod.type, json.dumps(body).encode(), "")
        ingest_report(report.pk)
    return prod


@pytest.fixture
def reader(api, org, token_for):
    return api(token=token_for(org, Role.READER))


@pytest.fixture
def admin(api, org, token_for):
    return api(token=token_for(org, Role.ADMIN))


def check(response, names):
    """The property: below 500; a 4xx is the JSON error body, and a 400 names one of ``names``."""
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
        error = response.json()["error"]
        assert {"code", "message", "fields"} <= set(error)
        if response.status_code == 400:  # a member's own path counts: included_environments.0, template.trail
            assert any(field.split(".")[0].split("[")[0] in names for field in error["fields"]), (names, error)


@SETTINGS
@given(snappish=SNAPPISH)
@example(snappish="@{99999999999.days.ago}")
@example(snappish="~\u00b2")
@example(snappish="@{" + YEAR_ONE_EAST + "}")
def test_snapshot_detail_id(reader, env, snappish):
    path = quote(snappish, safe="") or "-1"
    check(reader.get(f"/api/v2/snapshots/acme/prod/{path}"), ["id"])


@SETTINGS
@given(query=params(interval=INTERVAL, page=NUMBER, per_page=NUMBER, reverse=TEXT))
@example(query={"interval": "~\u00b2..NOW"})
def test_snapshot_list_interval_and_paging(reader, env, query):
    check(reader.get("/api/v2/snapshots/acme/prod", query), list(query))


@SETTINGS
@given(query=params(**{"from": TIME_PARAM, "to": TIME_PARAM}, snapshot_from=NUMBER, snapshot_to=NUMBER,
                    kind=TEXT, fingerprint=TEXT, page=NUMBER, per_page=NUMBER))
@example(query={"from": YEAR_ONE_EAST})
@example(query={"page": "9" * 26})
def test_environment_events_filters(reader, env, query):
    check(reader.get("/api/v2/environments/acme/prod/events", query), list(query))


@SETTINGS
@given(one=SNAPPISH, two=SNAPPISH, unchanged=TEXT)
@example(one="#\u00b2", two="@{99999999999.days.ago}", unchanged="")
def test_env_diff_snappishes(reader, env, one, two, unchanged):
    query = {"snappish1": "prod" + one, "snappish2": "prod" + two, "include_unchanged": unchanged}
    check(reader.get("/api/v2/env-diff/acme", query), ["snappish1", "snappish2"])


@SETTINGS
@given(prefix=st.one_of(TEXT.filter(lambda t: t.strip("/.")), st.text("0123456789abcdef", min_size=1, max_size=70)))
def test_search_prefix(reader, env, prefix):
    check(reader.get(f"/api/v2/search/acme/sha/{quote(prefix, safe='')}"), ["prefix"])


@SETTINGS
@given(query=params(**{"from": TIME_PARAM, "to": TIME_PARAM}, actor=TEXT, actor_type=TEXT, action=TEXT,
                    target_type=TEXT, target_id=TEXT, page=NUMBER, per_page=NUMBER))
@example(query={"from": YEAR_ONE_EAST})
@example(query={"to": YEAR_ONE_EAST, "page": "\u00b2"})
def test_audit_event_filters_and_paging(admin, query):
    check(admin.get("/api/v2/orgs/acme/audit-events", query), list(query))


@SETTINGS
@given(number=st.integers(min_value=0, max_value=10**30))
def test_integer_path_ids(admin, number):
    for path in (f"/api/v2/orgs/acme/audit-events/{number}", f"/api/v2/attestations/acme/id/{number}",
                 f"/api/v2/environments/acme/prod/reports/{number}", f"/api/v2/orgs/acme/actions/{number}"):
        check(admin.get(path), ["id"])


@SETTINGS
@given(limit=NUMBER)
def test_evidence_list_limit(reader, limit):
    for path in ("/api/v2/flows/acme", "/api/v2/orgs/acme/attestation-types"):
        check(reader.get(path, {"limit": limit}), ["limit"])


@SETTINGS
@given(at1=SNAPPISH, at2=SNAPPISH)
@example(at1="\u00b2", at2="@{" + YEAR_ONE_EAST + "}")
def test_web_diff_page(client, owner, env, at1, at2):
    client.force_login(owner)
    response = client.get("/o/acme/diff/", {"env1": "prod", "at1": at1, "env2": "prod", "at2": at2})
    assert response.status_code < 500 and response["Content-Type"].startswith("text/html")


@SETTINGS
@given(query=params(**{"from": TIME_PARAM, "to": TIME_PARAM}, page=NUMBER, actor=TEXT, action=TEXT))
@example(query={"from": YEAR_ONE_EAST})
def test_web_audit_page(client, owner, org, query):
    client.force_login(owner)
    response = client.get("/o/acme/audit/", query)
    assert response.status_code < 500 and response["Content-Type"].startswith("text/html")


# --- JSON bodies of the write endpoints: any value in any member is never a 500 ------------------------

JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                        st.sampled_from(["", "a" * 300, "0" * 64, "\u00b2", "2026-01-01T00:00:00+14:00"]))
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=8)
WRITES = [
    ("put", "/api/v2/environments/acme", {"name": "env-x", "type": "server"},
     ["name", "type", "description", "include_scaling", "included_environments", "tags",
      "expected_report_interval_seconds"]),
    ("put", "/api/v2/flows/acme", {"name": "flow-x"}, ["name", "description", "visibility", "tags", "template",
                                                       "sarif_threshold"]),
    ("put", "/api/v2/trails/acme/backend", {"name": "trail-x"}, ["name", "description", "user_data",
                                                                  "git_commit_info", "external_urls"]),
    ("post", "/api/v2/artifacts/acme/backend", {"fingerprint": "a" * 64, "filename": "app", "trail_name": "build-1"},
     ["fingerprint", "filename", "git_commit", "git_commit_info", "build_url", "commit_url", "repo_info",
      "external_urls", "annotations", "trail", "trail_name"]),
    ("post", "/api/v2/attestations/acme/backend/trail/build-1/generic", {"attestation_name": "a"},
     ["attestation_name", "is_compliant", "artifact_fingerprint", "target_artifacts", "user_data", "description",
      "external_urls", "git_commit_info", "annotations"]),
]


@SETTINGS
@given(which=st.integers(min_value=0, max_value=len(WRITES) - 1), data=st.data())
def test_json_write_bodies_with_any_member_values(admin, which, data):
    from tests.evidence.conftest import begin_trail, make_flow

    if not admin.get("/api/v2/flows/acme/backend").status_code == 200:
        make_flow(admin)
        begin_trail(admin)
    method, path, base, members = WRITES[which]
    body = dict(base)
    for name in data.draw(st.lists(st.sampled_from(members), max_size=3, unique=True)):
        body[name] = data.draw(JSON_VALUE)
    check(getattr(admin, method)(path, body, format="json"), ["body", "data_json", *members])
