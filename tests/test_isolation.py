"""Tenant isolation and the permission matrix, proven over EVERY org-scoped URL of the project.

The URL tree is walked at collection time (``get_resolver()``, recursively through every include), so
an endpoint added anywhere later is covered without anyone listing it here. For every pattern with an
``org`` URL kwarg — API and web — other kwargs get dummy values, and for every HTTP method the view
supports:

- an outsider (a user of another org; a token of another org; nobody) gets 404 (API) or the sign-in
  redirect (web, no session), and the body holds nothing of the org;
- each role as a signed-in member, and each non-owner role as a service-account token, gets 403
  exactly when the permission matrix says the role lacks the view's declared permission — anything
  else (200, 400, 404, 405...) otherwise.

A view with an ``org`` kwarg but no declared permission fails the test: nothing is skipped silently.
"""

import re
import uuid
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize
from rest_framework.test import APIClient
from rest_framework.views import APIView

from audit.context import AuditContext
from tenants.choices import Role
from tenants.models import Membership
from tenants.permissions import MATRIX, ROLE_ORDER, has_permission
from tenants.services import create_api_token, create_org, create_service_account

SLUG, NAME = "victim-q7", "Victim Corp Qx"
DUMMY_CANDIDATES = ["zz-dummy", "999999", str(uuid.UUID(int=0x4000_8000 << 64)), "0" * 64, "dummy"]
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class OrgRoute:
    route: str  # the joined pattern text, for test ids and messages
    template: str  # URL with "{org}" for the org slug and dummies filled in
    callback: object

    @property
    def drf_class(self):
        cls = getattr(self.callback, "cls", None)
        return cls if isinstance(cls, type) and issubclass(cls, APIView) else None

    def methods(self) -> list[str]:
        cls = self.drf_class
        actions = getattr(self.callback, "actions", None)
        if actions:
            return [m for m in HTTP_METHODS if m in actions]
        view_class = cls or getattr(self.callback, "view_class", None)
        if view_class is not None:  # as_view(http_method_names=[...]) narrows one URL's methods
            allowed = (getattr(self.callback, "initkwargs", None) or getattr(self.callback, "view_initkwargs", {})
                       ).get("http_method_names", view_class.http_method_names)
            return [m for m in HTTP_METHODS if hasattr(view_class, m) and m in allowed]
        return ["get", "post"]  # a function view: GET and POST (405 is a fine answer for the unsupported one)

    def permission(self, method: str) -> str:
        """The permission the view declares for ``method``; fails the test when it declares none."""
        cls = self.drf_class
        if cls is not None:
            declared = self.callback.initkwargs.get("permission", getattr(cls, "permission", None))
            if isinstance(declared, dict):
                action = (getattr(self.callback, "actions", None) or {}).get(method)
                for key in (action, method.upper(), "default"):
                    if key and key in declared:
                        declared = declared[key]
                        break
                else:
                    pytest.fail(f"{self.route}: {cls.__name__}.permission has no entry for {method.upper()}")
        else:
            declared = getattr(self.callback, "csm_permission", None) or getattr(
                getattr(self.callback, "view_class", None), "csm_permission", None)
            if isinstance(declared, dict):  # @org_view({"GET": ..., "POST": ...})
                declared = declared.get(method.upper(), declared.get("default"))
        if not isinstance(declared, str) or declared not in MATRIX:
            pytest.fail(f"{self.route} ({method.upper()}) declares no permission of the matrix: {declared!r}. "
                        "Use csm.api.base.OrgScoped* (permission = ...) or @org_view('...').")
        return declared


def _dummy_for(regex: str) -> str:
    for candidate in DUMMY_CANDIDATES:
        if re.fullmatch(regex, candidate):
            return candidate
    return f"<no dummy value matches {regex}>"  # only an error if the route has an org (checked below)


def _fill(pattern) -> tuple[str, bool]:
    """(this pattern's text with '{org}' and dummy values filled in, whether it captures ``org``)."""
    if isinstance(pattern, RoutePattern):
        route = str(pattern)
        has_org = False

        def replace(match):
            nonlocal has_org
            name = match.group("name")
            if name == "org":
                has_org = True
                return "{org}"
            converter = pattern.converters[name]
            if isinstance(converter, IntConverter):
                return "999999"
            if isinstance(converter, UUIDConverter):
                return DUMMY_CANDIDATES[2]
            return _dummy_for(converter.regex)

        text = re.sub(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>", replace, route)
        return text.lstrip("^"), has_org
    if isinstance(pattern, RegexPattern):
        regex = pattern._regex
        template, params = normalize(regex)[0]
        groups = dict(re.compile(regex).groupindex)
        values = {}
        for name in params:
            if name == "org":
                values[name] = "{org}"
            else:
                group_regex = re.search(r"\(\?P<" + re.escape(name) + r">(.*?)\)", regex)
                values[name] = _dummy_for(group_regex.group(1)) if group_regex else "zz-dummy"
        return template % values, "org" in groups
    return str(pattern), False


def org_routes() -> list[OrgRoute]:
    found = []

    def walk(patterns, prefix, prefix_has_org, route_prefix):
        for entry in patterns:
            text, has_org = _fill(entry.pattern)
            has_org = has_org or prefix_has_org
            route = route_prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + text, has_org, route)
            elif isinstance(entry, URLPattern) and has_org:
                found.append(OrgRoute(route, "/" + prefix + text, entry.callback))

    walk(get_resolver().url_patterns, "", False, "")
    return found


ROUTES = org_routes()


def test_the_walk_finds_the_known_org_pages():
    routes = {r.route for r in ROUTES}
    for expected in ("o/<slug:org>/", "o/<slug:org>/audit/", "api/v2/orgs/<slug:org>/members",
                     "api/v2/orgs/<slug:org>/service-accounts/<int:account_id>/tokens/<int:token_id>/rotate"):
        assert expected in routes
    assert all(r.template.count("{org}") == 1 for r in ROUTES)


@pytest.fixture
def world(db, make_user):
    """The victim org with one member per role and one token per non-owner role, plus outsiders."""
    owner = make_user()
    org = create_org(AuditContext.system("test"), SLUG, NAME, owner)
    users = {Role.OWNER: owner}
    for role in ROLE_ORDER:
        if role != Role.OWNER:
            users[role] = make_user()
            Membership.objects.create(org=org, user=users[role], role=role)
    tokens = {}
    for role in ROLE_ORDER:
        if role != Role.OWNER:
            account = create_service_account(AuditContext.system("test"), org, f"sa-{role}", role)
            tokens[role] = create_api_token(AuditContext.system("test"), org, "t", service_account=account)[1]
    outsider = make_user()
    other = create_org(AuditContext.system("test"), "outsider-org", "Outsider Org", outsider)
    other_account = create_service_account(AuditContext.system("test"), other, "sa-out", Role.ADMIN)
    outsider_token = create_api_token(AuditContext.system("test"), other, "t", service_account=other_account)[1]
    return {"org": org, "users": users, "tokens": tokens, "outsider": outsider, "outsider_token": outsider_token}


def _client(user=None, token=None):
    client = APIClient()
    if user is not None:
        client.force_login(user)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _request(client, method, url, is_api):
    if is_api:
        return client.generic(method.upper(), url, data="{}", content_type="application/json")
    if method == "post":
        return client.post(url, {})
    return client.generic(method.upper(), url)


def _assert_no_org_data(response, where):
    body = response.content.decode(errors="replace")
    assert SLUG not in body and NAME not in body, f"{where}: the body reveals the org: {body[:300]}"


def _supported_methods(route, world, url, is_api) -> list[str]:
    """The methods to test. A function view's methods are unknown up front: one that answers 405 even
    to the org's owner is not supported (e.g. ``@require_GET`` outside ``@org_view``) and is left out."""
    methods = route.methods()
    if is_api or getattr(route.callback, "view_class", None) is not None:
        return methods
    owner = _client(user=world["users"][Role.OWNER])
    return [m for m in methods if _request(owner, m, url, is_api).status_code != 405]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route)
def test_outsiders_get_404_and_nothing_of_the_org(world, route):
    url = route.template.format(org=SLUG)
    assert "<no dummy value" not in url, f"{route.route}: {url}"
    assert resolve(url).func is route.callback, f"dummy URL {url} resolves elsewhere"
    is_api = route.drf_class is not None
    for method in _supported_methods(route, world, url, is_api):
        where = f"{method.upper()} {url}"
        response = _request(_client(user=world["outsider"]), method, url, is_api)
        assert response.status_code == 404, f"{where} as a user of another org: {response.status_code}"
        _assert_no_org_data(response, where)
        for client, who in ((_client(token=world["outsider_token"]), "a token of another org"),
                            (_client(), "nobody")):
            response = _request(client, method, url, is_api)
            if is_api:
                expected = 404 if who != "nobody" else 401
                assert response.status_code == expected, f"{where} as {who}: {response.status_code}"
            else:  # web pages ignore tokens: no session means the sign-in page (or a 404)
                assert response.status_code in (302, 404), f"{where} as {who}: {response.status_code}"
                if response.status_code == 302:
                    assert response["Location"].startswith("/login/"), response["Location"]
            _assert_no_org_data(response, f"{where} as {who}")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route)
def test_each_role_gets_exactly_what_the_matrix_says(world, route):
    url = route.template.format(org=SLUG)
    is_api = route.drf_class is not None
    callers = [(f"member with role {role}", role, _client(user=user)) for role, user in world["users"].items()]
    if is_api:
        callers += [(f"token with role {role}", role, _client(token=token)) for role, token in world["tokens"].items()]
    for method in _supported_methods(route, world, url, is_api):
        permission = route.permission(method)
        for who, role, client in callers:
            response = _request(client, method, url, is_api)
            where = f"{method.upper()} {url} as {who} (needs {permission})"
            if has_permission(role, permission):
                assert response.status_code != 403, f"{where}: refused although the matrix allows it"
                assert response.status_code not in (401,), f"{where}: {response.status_code}"
            else:
                assert response.status_code == 403, f"{where}: got {response.status_code}, expected 403"
                if is_api:
                    assert permission in response.json()["error"]["message"]
