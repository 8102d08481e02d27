"""A real OpenID Connect provider for the SSO tests: panva's ``oidc-provider`` (tests/identity/oidc_provider,
installed by ``scripts/setup --dev``) run with Node on a free port, plus a helper that signs in on its pages
the way a browser would (requests, following its redirects until it sends the browser back to csm)."""

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from audit.context import AuditContext
from identity import sso

SERVER_DIR = Path(__file__).parent / "oidc_provider"
CLIENT_ID = "csm"
CLIENT_SECRET = "csm-client-secret-1"  # noqa: S105 - a test provider's client secret
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_SECRET = "other-app-secret-1"  # noqa: S105

ACCOUNTS = [
    {"login": "admin", "email": "admin@acme.test", "email_verified": True, "groups": ["csm-owners"]},
    {"login": "alice", "email": "alice@acme.test", "email_verified": True, "groups": ["csm-admins", "staff"]},
    {"login": "bob", "email": "bob@acme.test", "email_verified": True, "groups": ["staff"]},
    {"login": "eve", "email": "eve@acme.test", "email_verified": False, "groups": []},
    {"login": "carol", "email": "carol@globex.test", "email_verified": True, "groups": []},
    {"login": "owner", "email": "owner@example.com", "email_verified": True, "groups": []},
]


@dataclass
class OidcProvider:
    issuer: str
    process: subprocess.Popen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_provider(redirect_uris: list[str]) -> OidcProvider:
    """Start the provider with the csm client (and a second application, ``other-app``) registered for
    ``redirect_uris``; returns once its discovery document answers."""
    node = shutil.which("node")
    if node is None or not (SERVER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the test OpenID Connect provider is not installed: run scripts/setup --dev "
                    "(npm ci --prefix tests/identity/oidc_provider)")
    port = _free_port()
    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris},
               {"client_id": OTHER_CLIENT_ID, "client_secret": OTHER_CLIENT_SECRET, "redirect_uris": redirect_uris}]
    env = {**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENTS": json.dumps(clients),
           "OIDC_ACCOUNTS": json.dumps(ACCOUNTS)}
    process = subprocess.Popen([node, "server.js"], cwd=SERVER_DIR, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(issuer + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                return OidcProvider(issuer, process)
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the test OpenID Connect provider did not start")
        time.sleep(0.1)


def stop_provider(provider: OidcProvider) -> None:
    provider.process.terminate()
    try:
        provider.process.wait(10)
    except subprocess.TimeoutExpired:
        provider.process.kill()


TEST_BASE_URL = "http://testserver"  # Django's test client; CSM_BASE_URL in these tests


@pytest.fixture(scope="session")
def oidc_provider():
    provider = start_provider([TEST_BASE_URL + sso.CALLBACK_PATH])
    yield provider
    stop_provider(provider)


@pytest.fixture(scope="session")
def second_oidc_provider():
    """Another provider (another issuer, other signing keys) with the same client registrations."""
    provider = start_provider([TEST_BASE_URL + sso.CALLBACK_PATH])
    yield provider
    stop_provider(provider)


@pytest.fixture
def sso_settings(settings):
    settings.CSM_BASE_URL = TEST_BASE_URL
    settings.CSM_SSO_ALLOW_PRIVATE_ISSUERS = True
    return settings


def idp_url(response) -> str:
    """Where csm sends the browser to sign in at the IdP: a redirect, or (after a form) the continue page."""
    if response.status_code == 302:
        return response["Location"]
    assert response.status_code == 200, response.content[:500]
    link = re.search(r'href="([^"]+)" data-testid="sso-continue"', response.content.decode())
    assert link and response["Refresh"] == "0;url=" + unescape(link.group(1))
    return unescape(link.group(1))


def idp_sign_in(authorize_url: str, login: str, session: requests.Session | None = None) -> str:
    """Sign in as ``login`` on the provider's pages, starting at ``authorize_url``; returns the URL the provider
    finally sends the browser to (csm's callback, with code and state — or an error)."""
    session = session or requests.Session()
    idp = urlsplit(authorize_url).netloc
    url, data = authorize_url, None
    for _ in range(20):
        response = session.post(url, data=data, allow_redirects=False, timeout=10) if data is not None else \
            session.get(url, allow_redirects=False, timeout=10)
        data = None
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if urlsplit(url).netloc != idp:
                return url
            continue
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post"', response.text)
        assert response.status_code == 200 and form, f"unexpected IdP page ({response.status_code}): " \
                                                     f"{response.text[:500]}"
        url = urljoin(url, unescape(form.group(1)))
        data = {"prompt": "login", "login": login, "password": "any"}
    raise AssertionError("the IdP never sent the browser back")


def configure_sso(org, issuer: str, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                  domains=(), verified=(), default_role: str = "member"):
    """The org's SSO set up through the services (domains in ``verified`` are marked verified directly, as a
    completed test sign-in would)."""
    from django.utils import timezone

    from identity.models import SsoDomain

    ctx = AuditContext.system("test")
    provider = sso.save_provider(ctx, org, issuer=issuer, client_id=client_id, client_secret=client_secret,
                                 enabled=True, default_role=default_role, groups_claim="groups")
    for domain in [*domains, *verified]:
        sso.add_domain(ctx, org, domain)
    SsoDomain.objects.filter(org=org, domain__in=list(verified)).update(verified_at=timezone.now())
    return provider
