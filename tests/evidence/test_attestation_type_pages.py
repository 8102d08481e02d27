"""The custom attestation type pages: the list and a type's page show the jq rules and every version; an
owner or admin defines a type (schema, expression rule, jq rules, summary), adds versions and archives it
from the pages; a member only reads; another org's type is a 404."""

import json
from html import unescape

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from evidence.models import CustomAttestationType
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, make_flow

pytestmark = pytest.mark.django_db

FORM = {"name": "person", "description": "Adults only",
        "schema": json.dumps({"type": "object", "properties": {"age": {"type": "integer"}}}),
        "rule": "age >= 18", "jq_rules": ".age > 21\n\n.name | startswith(\"B\")\n", "summary": "Age=.age"}


@pytest.fixture
def web(client, owner):
    client.force_login(owner)
    return client


def page(response) -> str:
    return unescape(response.content.decode())


def test_create_a_type_with_jq_rules_then_a_version_then_archive(org, web):
    new = reverse("attestation-type-new", args=["acme"])
    assert web.get(new).status_code == 200
    response = web.post(new, FORM)
    assert response.status_code == 302
    custom = CustomAttestationType.objects.get(org=org, name="person")
    assert custom.jq_rules == [".age > 21", '.name | startswith("B")']
    assert custom.summary == [{"name": "Age", "expression": ".age"}]
    assert (custom.rule, custom.schema["properties"]) == ("age >= 18", {"age": {"type": "integer"}})
    detail = reverse("attestation-type-detail", args=["acme", "person"])
    response = web.post(detail, {**FORM, "jq_rules": ".age > 30"})
    assert response.status_code == 302
    body = page(web.get(detail))
    assert "Version 2 (latest)" in body and "Version 1" in body
    assert ".age > 30" in body and '.name | startswith("B")' in body and "--type person@v1" in body
    listing = page(web.get(reverse("attestation-type-list", args=["acme"])))
    assert "person" in listing and ".age > 30" in listing and "v2" in listing
    response = web.post(reverse("attestation-type-archive", args=["acme", "person"]))
    assert response.status_code == 302
    custom.refresh_from_db()
    assert custom.archived
    assert "new attestations cannot use this type" in page(web.get(detail))
    assert list(AuditEvent.objects.filter(org=org, action__startswith="custom_type.")
                .order_by("seq").values_list("action", flat=True)) == [
        "custom_type.created", "custom_type.versioned", "custom_type.archived"]


def test_a_bad_jq_rule_is_shown_on_the_form_and_nothing_is_saved(org, web):
    response = web.post(reverse("attestation-type-new", args=["acme"]), {**FORM, "jq_rules": ".age | ("})
    assert response.status_code == 200
    assert "jq rule 1 (.age | (): syntax error" in page(response)
    bad_summary = web.post(reverse("attestation-type-new", args=["acme"]), {**FORM, "summary": ".age == 1"})
    assert "line 1 must be NAME=EXPRESSION" in page(bad_summary)
    assert not CustomAttestationType.objects.exists()


def test_members_read_but_do_not_define_and_other_orgs_see_nothing(org, other_org, web, client, member_of,
                                                                   make_user):
    web.post(reverse("attestation-type-new", args=["acme"]), FORM)
    member = member_of(org, Role.MEMBER)
    client.force_login(member)
    assert client.get(reverse("attestation-type-detail", args=["acme", "person"])).status_code == 200
    assert "New version" not in page(client.get(reverse("attestation-type-detail", args=["acme", "person"])))
    assert client.get(reverse("attestation-type-new", args=["acme"])).status_code == 403
    assert client.post(reverse("attestation-type-detail", args=["acme", "person"]), FORM).status_code == 403
    assert client.post(reverse("attestation-type-archive", args=["acme", "person"])).status_code == 403
    stranger = member_of(other_org, Role.OWNER)
    client.force_login(stranger)
    assert client.get(reverse("attestation-type-detail", args=["acme", "person"])).status_code == 404
    assert client.get(reverse("attestation-type-detail", args=["globex", "person"])).status_code == 404
    assert not CustomAttestationType.objects.filter(archived=True).exists()


def test_an_attestations_page_shows_the_version_jq_results_and_summary(org, web, reporter):
    web.post(reverse("attestation-type-new", args=["acme"]), FORM)
    make_flow(reporter)
    begin_trail(reporter)
    answer = attest(reporter, "acme", "backend", "build-1", "custom", {
        "attestation_name": "adult", "type_name": "person", "attestation_data": {"age": 30, "name": "Al"}})
    assert answer.status_code == 201, answer.content
    body = page(web.get(reverse("attestation-detail", args=["acme", "backend", "build-1", answer.json()["id"]])))
    assert "person</a> version 1" in body
    assert "jq <code>.age > 21</code>: <span class=\"badge ok\">true</span>" in body
    assert "jq <code>.name | startswith(\"B\")</code>: <span class=\"badge bad\">is false</span>" in body
    assert "<dt>Age</dt><dd>30</dd>" in body
