"""Scoped tokens: a token limited to environments, flows, read-only or client networks gets a 403 naming the
limit (never a 401), the refusal is audited as ``token.scope_denied`` (repeats summarized), lists show only
what is in scope, and rotation keeps the scope. Unscoped tokens are untouched (tests/kosli covers them)."""

import json
import re
from datetime import timedelta

import pytest
import requests
from django.test import override_settings
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from audit.context import AuditContext
from audit.models import AuditEvent
from audit.services import summarize_denied_access
from csm.api.base import OrgScopedMixin
from csm.errors import ServiceError
from tenants.choices import Role
from tenants.models import ApiToken
from tenants.services import create_api_token, create_service_account, rotate_api_token
from tests.evidence.conftest import begin_trail, make_flow
from tests.kosli.cli import cli, cli_error
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("test")


def scoped_token(org, role=Role.SNAPSHOTTER, name="agent", **scope) -> str:
    account = create_service_account(CTX, org, name, role)
    return create_api_token(CTX, org, "scoped", service_account=account, **scope)[1]


def report(client, env, org="acme", **extra):
    return client.put(f"/api/v2/environments/{org}/{env}/report/server", data=json.dumps(server_report(fp(1))),
                      content_type="application/json", **extra)


def put_env(client, name, org="acme"):
    return client.put(f"/api/v2/environments/{org}", {"name": name, "type": "server"}, format="json")


def assert_scope_refusal(response, field: str, *words: str):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"]["code"] == "token_scope"
    assert body["error"]["fields"] == {field: [body["error"]["message"]]}
    for word in words:
        assert word in body["error"]["message"], body["error"]["message"]


# --- creation -----------------------------------------------------------------------------------------

def test_scope_is_validated_and_stored(org):
    account = create_service_account(CTX, org, "agent", Role.SNAPSHOTTER)
    token, _ = create_api_token(CTX, org, "t", service_account=account,
                                scope_environments=[" prod-eu ", "prod-eu", "not-yet-created"],
                                scope_flows=["backend"], read_only=True,
                                allowed_networks=["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"])
    token.refresh_from_db()
    # names that no environment has yet are fine (an agent creates its environment with --auto-environment)
    assert token.scope_environments == ["prod-eu", "not-yet-created"]
    assert token.scope_flows == ["backend"] and token.read_only
    assert token.allowed_networks == ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]
    created = org.audit_events.get(action="token.created", target_id=str(token.pk))
    assert created.after["scope_environments"] == ["prod-eu", "not-yet-created"]
    assert created.after["allowed_networks"][0] == "203.0.113.0/24"


@pytest.mark.parametrize(("scope", "field", "words"), [
    ({"allowed_networks": ["10.0.0.5/24"]}, "allowed_networks", ["host bits", "10.0.0.0/24", "10.0.0.5/32"]),
    ({"allowed_networks": ["10.0.0/8x"]}, "allowed_networks", ["not a network", "CIDR"]),
    ({"scope_environments": ["prod/eu"]}, "scope_environments", ["not a valid environment name"]),
    ({"scope_flows": ["-backend"]}, "scope_flows", ["not a valid flow name"]),
])
def test_bad_scope_names_the_field(org, scope, field, words):
    account = create_service_account(CTX, org, "agent", Role.SNAPSHOTTER)
    with pytest.raises(ServiceError) as refused:
        create_api_token(CTX, org, "t", service_account=account, **scope)
    assert refused.value.field == field
    for word in words:
        assert word in refused.value.message
    assert not ApiToken.objects.filter(service_account=account).exists()


def test_api_creates_a_scoped_token_and_lists_its_scope(owner_api, org):
    account = owner_api.post("/api/v2/orgs/acme/service-accounts", {"name": "agent", "role": "snapshotter"},
                             format="json").json()
    url = f"/api/v2/orgs/acme/service-accounts/{account['id']}/tokens"
    created = owner_api.post(url, {"name": "eu", "scope_environments": ["prod-eu"], "read_only": False,
                                   "allowed_networks": ["127.0.0.0/8"]}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["scope_environments"] == ["prod-eu"]
    listed = owner_api.get(url).json()["results"][0]
    assert listed["allowed_networks"] == ["127.0.0.0/8"] and listed["scope_flows"] == []
    assert listed["last_used_ip"] is None
    refused = owner_api.post(url, {"name": "bad", "allowed_networks": ["10.1.2.3/8"]}, format="json")
    assert refused.status_code == 400
    assert "host bits" in refused.json()["error"]["fields"]["allowed_networks"][0]


def test_personal_token_can_be_scoped(api, org, owner):
    client = api(user=owner)
    created = client.post("/api/v2/orgs/acme/tokens", {"name": "laptop", "read_only": True}, format="json")
    assert created.status_code == 201 and created.json()["read_only"] is True
    personal = api(token=created.json()["token"])
    assert personal.get("/api/v2/environments/acme").status_code == 200
    assert_scope_refusal(put_env(personal, "prod"), "method", "read-only")


def test_rotation_keeps_the_scope(org):
    account = create_service_account(CTX, org, "agent", Role.SNAPSHOTTER)
    token, _ = create_api_token(CTX, org, "t", service_account=account, scope_environments=["prod-eu"],
                                scope_flows=["backend"], read_only=True, allowed_networks=["10.0.0.0/8"])
    new, _ = rotate_api_token(CTX, token, 0)
    new.refresh_from_db()
    assert (new.scope_environments, new.scope_flows, new.read_only, new.allowed_networks) == (
        ["prod-eu"], ["backend"], True, ["10.0.0.0/8"])


# --- environments -------------------------------------------------------------------------------------

def test_environment_scope_allows_its_environment_and_refuses_others(api, org, owner_api):
    agent = api(token=scoped_token(org, scope_environments=["prod-eu"]))
    assert put_env(agent, "prod-eu").status_code == 201
    assert report(agent, "prod-eu").status_code == 201
    refused = report(agent, "staging")
    assert_scope_refusal(refused, "environment", "limited to the environments prod-eu", "staging")
    assert refused.json()["message"] == refused.json()["error"]["message"]  # where the kosli CLI looks
    assert_scope_refusal(put_env(agent, "staging"), "environment", "staging")
    event = org.audit_events.get(action="token.scope_denied")
    assert event.actor_type == "service_account" and event.target_label.endswith("/staging/report/server")
    assert event.after["limit"] == "environments" and event.after["environments"] == ["staging"]
    assert "prod-eu" in event.after["message"]


def test_environment_list_shows_only_the_scope(api, org, owner_api):
    for name in ("prod-eu", "staging", "prod-us"):
        assert put_env(owner_api, name).status_code == 201
    reader = api(token=scoped_token(org, Role.READER, scope_environments=["prod-eu", "prod-us"]))
    assert sorted(e["name"] for e in reader.get("/api/v2/environments/acme").json()) == ["prod-eu", "prod-us"]
    paged = reader.get("/api/v2/environments/acme?page=1&per_page=10").json()
    assert paged["total_count"] == 2
    assert reader.get("/api/v2/environments/acme/prod-us").status_code == 200
    assert_scope_refusal(reader.get("/api/v2/environments/acme/staging"), "environment")
    assert_scope_refusal(reader.get("/api/v2/snapshots/acme/staging"), "environment")
    # the diff names two environments in its query
    assert_scope_refusal(reader.get("/api/v2/env-diff/acme?snappish1=prod-eu&snappish2=staging%231"),
                         "environment", "staging")
    # an unscoped token sees everything
    unscoped = api(token=scoped_token(org, Role.READER, name="all"))
    assert len(unscoped.get("/api/v2/environments/acme").json()) == 3


def test_body_names_count_too(api, org, owner_api):
    admin = api(token=scoped_token(org, Role.ADMIN, scope_environments=["prod-eu"]))
    assert put_env(admin, "prod-eu").status_code == 201
    renamed = admin.put("/api/v2/environments/acme/prod-eu/rename", {"new_name": "staging"}, format="json")
    assert_scope_refusal(renamed, "environment", "staging")
    logical = admin.put("/api/v2/environments/acme", {"name": "prod-eu", "type": "logical",
                                                      "included_environments": ["staging"]}, format="json")
    assert_scope_refusal(logical, "environment", "staging")
    tagged = admin.patch("/api/v2/tags/acme/environment/staging", {"set_tags": {"a": "b"}}, format="json")
    assert_scope_refusal(tagged, "environment", "staging")
    pdf = admin.post("/api/v2/orgs/acme/reports", {"kind": "environment", "environment": "staging"}, format="json")
    assert_scope_refusal(pdf, "environment", "staging")


# --- flows --------------------------------------------------------------------------------------------

def test_flow_scope_limits_a_ci_token_to_its_flow(api, org, owner_api):
    make_flow(owner_api, name="frontend")
    ci = api(token=scoped_token(org, Role.MEMBER, name="ci", scope_flows=["backend"]))
    make_flow(ci, name="backend")
    begin_trail(ci, flow="backend")
    assert_scope_refusal(ci.put("/api/v2/flows/acme", {"name": "frontend"}, format="json"), "flow",
                         "limited to the flows backend", "frontend")
    trail = ci.put("/api/v2/trails/acme/frontend", {"data_json": json.dumps({"name": "b-1"})}, format="multipart")
    assert_scope_refusal(trail, "flow", "frontend")
    assert [f["name"] for f in ci.get("/api/v2/flows/acme").json()] == ["backend"]
    assert {t["flow_name"] for t in ci.get("/api/v2/trails/acme").json()["data"]} == {"backend"}
    assert_scope_refusal(ci.get("/api/v2/trails/acme?flow=frontend"), "flow")
    assert_scope_refusal(ci.get("/api/v2/artifacts/acme?flow_name=frontend"), "flow")
    # a flow scope does not limit environments
    assert put_env(ci, "prod").status_code == 201
    assert org.audit_events.filter(action="token.scope_denied").count() >= 1


# --- read-only and networks ---------------------------------------------------------------------------

def test_read_only_token_reads_but_never_writes(api, org, owner_api):
    put_env(owner_api, "prod")
    reader = api(token=scoped_token(org, Role.ADMIN, read_only=True))
    assert reader.get("/api/v2/environments/acme/prod").status_code == 200
    assert_scope_refusal(report(reader, "prod"), "method", "read-only", "PUT")
    assert_scope_refusal(reader.post("/api/v2/orgs/acme/service-accounts", {"name": "x", "role": "reader"},
                                     format="json"), "method", "POST")


def test_network_outside_the_allowed_ranges_is_403_not_401(api, org):
    secret = scoped_token(org, Role.READER, allowed_networks=["203.0.113.0/24"])
    client = api(token=secret)
    assert client.get("/api/v2/environments/acme", REMOTE_ADDR="203.0.113.9").status_code == 200
    refused = client.get("/api/v2/environments/acme", REMOTE_ADDR="198.51.100.1")
    assert_scope_refusal(refused, "network", "203.0.113.0/24", "198.51.100.1")
    assert "WWW-Authenticate" not in refused.headers
    # a view that is not org-scoped checks the network too
    assert_scope_refusal(client.get("/api/v2/orgs", REMOTE_ADDR="198.51.100.1"), "network")
    token = ApiToken.objects.get(allowed_networks=["203.0.113.0/24"])
    assert token.last_used_ip == "203.0.113.9"  # a refused use is not a use
    event = org.audit_events.get(action="token.scope_denied")
    assert event.ip == "198.51.100.1" and event.after["limit"] == "networks"


def test_repeated_denials_are_summarized(api, org):
    client = api(token=scoped_token(org, scope_environments=["prod-eu"]))
    for _ in range(5):
        assert report(client, "staging").status_code == 403
    denied = AuditEvent.objects.filter(org=org, action="token.scope_denied")
    assert denied.count() == 1
    later = timezone.now() + timedelta(hours=1)
    assert summarize_denied_access(now=later) == 1
    summary = AuditEvent.objects.get(org=org, action="access.denied_repeated")
    assert summary.after["action"] == "token.scope_denied" and summary.after["more"] == 4


@pytest.mark.django_db(transaction=True)
def test_networks_over_real_http(live_server, org):
    """A real HTTP client: the address the server sees is 127.0.0.1; behind a proxy, X-Forwarded-For."""
    inside = scoped_token(org, Role.READER, name="inside", allowed_networks=["127.0.0.0/8"])
    outside = scoped_token(org, Role.READER, name="outside", allowed_networks=["10.0.0.0/8"])
    url = f"{live_server.url}/api/v2/environments/acme"
    assert requests.get(url, headers={"Authorization": f"Bearer {inside}"}, timeout=30).status_code == 200
    refused = requests.get(url, headers={"Authorization": f"Bearer {outside}"}, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["fields"]["network"]
    with override_settings(CSM_TRUST_X_FORWARDED_FOR=True):
        proxied = requests.get(url, headers={"Authorization": f"Bearer {outside}", "X-Forwarded-For": "10.9.8.7"},
                               timeout=30)
    assert proxied.status_code == 200
    assert ApiToken.objects.get(name="scoped", service_account__name="outside").last_used_ip == "10.9.8.7"


# --- every API view is covered --------------------------------------------------------------------------

# URL kwargs that never name an environment or a flow (ids, digests, trail names, pages of the journal...).
NOT_A_SCOPE_NAME = {"org", "member_id", "invitation_id", "account_id", "token_id", "key_id", "event_id",
                    "report_type", "report_id", "snappish", "prefix", "trail", "fingerprint", "kind", "pk",
                    "sha256", "sha", "entry_id", "action_id", "delivery_id", "vulnerability", "index", "tile"}
# ``name`` and ``identifier`` name different things per view: listed here by URL name, after a look.
OTHER_NAMES = {
    "kosli-service-account-detail": {"name"}, "kosli-api-key-list": {"name"}, "kosli-api-key-detail": {"name"},
    "kosli-api-key-rotate": {"name"},  # a service account
    "api-repo": {"name"},  # a repository
    "api-artifact-attestation": {"name"},  # an attestation
    "api-custom-attestation-type": {"name"}, "api-custom-attestation-type-archive": {"name"},
    "api-policy-detail": {"name"},  # a policy
    "api-control": {"identifier"}, "api-control-archive": {"identifier"},
    "api-control-unarchive": {"identifier"},  # a control
}


def _api_patterns(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif prefix.startswith("api/v2/"):
            yield pattern


def test_every_org_scoped_api_view_classifies_its_url_kwargs():
    """A new API view taking a kwarg that could name an environment or a flow must map it
    (``scope_environment_kwargs`` / ``scope_flow_kwargs`` / ``scope_mapped_kwargs``) or be listed above."""
    unclassified, seen = [], 0
    for pattern in _api_patterns(get_resolver().url_patterns):
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        if view is None or not issubclass(view, OrgScopedMixin):
            continue
        seen += 1
        covered = {view.org_url_kwarg, *view.scope_environment_kwargs, *view.scope_flow_kwargs,
                   *view.scope_mapped_kwargs}
        for kwarg in set(pattern.pattern.regex.groupindex) - covered - NOT_A_SCOPE_NAME:
            if kwarg not in OTHER_NAMES.get(pattern.name, ()):
                unclassified.append(f"{pattern.name} ({view.__name__}): {kwarg}")
    assert seen > 90
    assert not unclassified, "URL kwargs not classified for token scopes:\n" + "\n".join(unclassified)


# --- web forms ----------------------------------------------------------------------------------------

def test_web_form_creates_a_scoped_service_account_token(client, org, owner, api):
    client.force_login(owner)
    account = create_service_account(CTX, org, "agent", Role.READER)
    url = reverse("service-account-token-create", args=["acme", account.pk])
    refused = client.post(url, {"name": "eu", "allowed_networks": "10.0.0.5/24"})
    assert refused.status_code == 400
    assert "has host bits set" in refused.content.decode() and "10.0.0.0/24" in refused.content.decode()
    assert not ApiToken.objects.filter(service_account=account).exists()

    created = client.post(url, {"name": "eu", "scope_environments": "prod-eu, prod-eu2",
                                "allowed_networks": "203.0.113.0/24 127.0.0.1", "read_only": "on"})
    assert created.status_code == 302
    token = ApiToken.objects.get(service_account=account)
    assert token.scope_environments == ["prod-eu", "prod-eu2"] and token.read_only
    assert token.allowed_networks == ["203.0.113.0/24", "127.0.0.1/32"]
    page = client.get(reverse("service-account-detail", args=["acme", account.pk])).content.decode()
    secret = re.search(r"csm_[0-9A-Za-z]{40}", page).group(0)  # shown once
    assert api(token=secret).get("/api/v2/environments/acme", REMOTE_ADDR="127.0.0.1").status_code == 200
    page = client.get(reverse("service-account-detail", args=["acme", account.pk])).content.decode()
    assert "environments prod-eu, prod-eu2" in page and "read-only" in page
    assert "from 203.0.113.0/24, 127.0.0.1/32" in page
    assert "<code>127.0.0.1</code>" in page  # last IP


def test_web_form_creates_a_scoped_personal_token(client, org, owner):
    client.force_login(owner)
    response = client.post(reverse("personal-tokens", args=["acme"]), {"name": "ci", "scope_flows": "backend"})
    assert response.status_code == 302
    assert ApiToken.objects.get(user=owner).scope_flows == ["backend"]
    refused = client.post(reverse("personal-tokens", args=["acme"]), {"name": "ci", "scope_flows": "a/b"})
    assert "not a valid flow name" in refused.content.decode()


def test_kosli_cli_reports_with_a_scoped_token_and_prints_the_refusal(org):
    """``kosli snapshot server --auto-environment`` as the CLI sends it: the scoped agent creates and reports
    its own environment; reporting elsewhere prints the scope sentence (the top-level ``message``)."""
    agent = scoped_token(org, scope_environments=["prod-eu"])
    created = cli(agent, "PUT", "/api/v2/environments/acme", {"name": "prod-eu", "type": "server",
                                                             "description": "", "include_scaling": False})
    assert created.status_code in (200, 201), created.content
    body = {"artifacts": [{"digests": {"app": fp(1)}, "creationTimestamp": 1_700_000_000}]}
    assert cli(agent, "PUT", "/api/v2/environments/acme/prod-eu/report/server", body).status_code == 201
    refused = cli(agent, "PUT", "/api/v2/environments/acme/staging/report/server", body)
    assert refused.status_code == 403
    assert cli_error(refused) == "This token is limited to the environments prod-eu; it may not touch staging."
