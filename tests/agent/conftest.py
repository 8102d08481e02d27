"""Fixtures for csm-agent tests: an isolated environment, a scriptable fake csm, and real local servers
that replay Kubernetes and Docker Engine API JSON.

None of these tests touch the database; the agent is a standalone program and is tested as one.
"""

import gzip
import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from csm_agent import client as agent_client
from csm_agent.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def agent_env(monkeypatch, tmp_path):
    """No real config file, token, kubeconfig or Docker socket leaks into a test; backoff is instant."""
    for name in list(os.environ):
        if name.startswith(("CSM_", "KUBE", "DOCKER_", "AWS_")):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setattr(agent_client, "BACKOFF_BASE", 0.01)
    return home


@pytest.fixture
def run(capsys):
    """run(*argv) -> (exit code, stdout, stderr), running the CLI in-process."""

    def invoke(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def load(name):
    return json.loads((DATA / name).read_text())


class Recorded:
    """One request the fake csm received, with its body decompressed and parsed."""

    def __init__(self, method, path, headers, raw):
        self.method, self.path, self.headers, self.raw = method, path, headers, raw
        body = gzip.decompress(raw) if headers.get("Content-Encoding") == "gzip" else raw
        self.json = json.loads(body) if body else None


class FakeCsm:
    """A local HTTP server standing in for csm. ``script`` is a list of (status, json, headers) answers
    consumed in order (the last one repeats); ``environments`` answers GET /environments/{org}/{env}."""

    def __init__(self):
        self.requests = []
        self.journal_requests = []
        self.script = [(201, {"id": 1, "status": "pending"}, {})]
        self.environments = {}
        self.strict = False  # when True, reports to an environment not in ``environments`` get a 404
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path.startswith("/api/v2/journal/"):  # a csm without the journal API (witness: a warning)
                    fake.journal_requests.append(self.path)
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fake.requests.append(Recorded(self.command, self.path, dict(self.headers), raw))
                parts = self.path.strip("/").split("/")
                if fake.strict and "report" in parts and parts[4] not in fake.environments:
                    status, body, headers = 404, {"error": {"code": "not_found", "message": "Not found.",
                                                            "fields": {}}}, {}
                elif self.command == "PUT" and len(parts) == 4 and parts[2] == "environments":
                    fake.environments[fake.requests[-1].json["name"]] = fake.requests[-1].json
                    status, body, headers = 201, fake.requests[-1].json, {}
                else:
                    status, body, headers = fake.script[0] if len(fake.script) == 1 else fake.script.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def reports(self):
        return [r for r in self.requests if "/report/" in r.path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_csm():
    server = FakeCsm()
    yield server
    server.close()


@pytest.fixture
def csm_args(fake_csm):
    """Global flags pointing the agent at the fake csm."""
    return ["--host", fake_csm.url, "--org", "acme", "--api-token", "tok_secret_value_123"]


class ReplayServer:
    """Serves canned JSON by request path (query string ignored unless the key includes it)."""

    def __init__(self, routes, unix_path=None):
        self.routes, self.requests = routes, []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def address_string(self):
                return "local"

            def do_GET(self):
                replay.requests.append((self.path, dict(self.headers)))
                path = self.path.split("?", 1)[0]
                route = replay.routes.get(self.path, replay.routes.get(path))
                status, body = route if isinstance(route, tuple) else (200, route)
                if route is None:
                    status, body = 404, {"kind": "Status", "message": f"{path} not found", "code": 404}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        if unix_path:
            class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
                daemon_threads = True

            self.server = UnixServer(unix_path, Handler)
            self.url = f"unix://{unix_path}"
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replay_server():
    servers = []

    def start(routes, unix_path=None):
        server = ReplayServer(routes, unix_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def kubeconfig(tmp_path):
    """kubeconfig(server_url, token=...) -> path of a kubeconfig file for that API server."""

    def write(server, token="kube-token-abc"):
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "local", "cluster": {"server": server}}],
            "contexts": [{"name": "test", "context": {"cluster": "local", "user": "agent"}}],
            "users": [{"name": "agent", "user": {"token": token}}],
        }))
        return path

    return write
