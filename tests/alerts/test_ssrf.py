"""Outbound safety: webhook URLs reaching loopback, private, link-local (metadata) or otherwise
non-public addresses are refused when the action is created and again at send time."""

import socket

import pytest

from alerts import services
from alerts.choices import DeliveryStatus
from alerts.models import Delivery, DeliveryAttempt
from audit.context import AuditContext
from csm.lib import outbound
from tests.policies.helpers import fp, ingest, make_env

CTX = AuditContext.system("test")


@pytest.fixture
def no_private(settings):
    settings.CSM_WEBHOOK_ALLOW_PRIVATE = False


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
])
def test_non_public_addresses_are_refused(no_private, url):
    with pytest.raises(outbound.OutboundRefused):
        outbound.resolve(url)


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/",
                                 "http:///nohost", "gopher://127.0.0.1/"])
def test_bad_urls_are_refused(no_private, url):
    with pytest.raises(outbound.OutboundRefused):
        outbound.resolve(url)


def test_a_hostname_resolving_to_a_private_address_is_refused(no_private, monkeypatch):
    # public DNS is not reachable here: the resolver answers like an attacker's DNS would
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "hooks.attacker.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(outbound.OutboundRefused, match="10.1.2.3"):
        outbound.resolve("https://hooks.attacker.example/x")


def test_a_public_address_is_accepted_and_pinned(no_private, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))])
    target = outbound.resolve("https://hooks.example.com/path?q=1")
    assert target.address == "93.184.216.34" and target.port == 443 and target.path == "/path?q=1"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://10.0.0.1/", "http://169.254.169.254/",
                                 "http://localhost/", "http://[::1]/"])
def test_actions_with_private_urls_are_refused(no_private, org, owner_api, url):
    make_env(org)
    answer = owner_api.post("/api/v2/orgs/acme/actions", {"name": "x", "type": "webhook", "url": url,
                                                          "triggers": ["ON_STARTED_ARTIFACT"]}, format="json")
    assert answer.status_code == 400 and "url" in answer.json()["error"]["fields"]
    assert "refused" in answer.json()["error"]["message"]


@pytest.mark.django_db
def test_dns_is_checked_again_at_send_time(org, receiver, settings, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.create_action(CTX, org, "hook", "webhook", url=receiver.url, triggers=["ON_STARTED_ARTIFACT"])
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    settings.CSM_WEBHOOK_ALLOW_PRIVATE = False  # e.g. the name now resolves somewhere private
    delivery = Delivery.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        assert services.attempt_delivery(delivery.pk) == DeliveryStatus.RETRYING
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error.startswith("refused:") and attempt.status_code is None
    assert receiver.requests == []


@pytest.mark.django_db
def test_redirects_are_not_followed(org, settings, django_capture_on_commit_callbacks):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = make_env(org)
        services.create_action(CTX, org, "hook", "webhook", url=f"http://127.0.0.1:{server.server_address[1]}/h",
                               triggers=["ON_STARTED_ARTIFACT"])
        ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=False):
            services.attempt_delivery(Delivery.objects.get().pk)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/h"]  # one request; the Location was never followed
    assert DeliveryAttempt.objects.get().status_code == 302
