"""Docker: running containers with their images' repo digests (type ``docker``).

Speaks the Docker Engine API directly over the unix socket (or tcp://, from ``DOCKER_HOST``), so no
docker SDK is needed.
"""

import http.client
import json
import logging
import os
import socket
from urllib.parse import quote, urlparse

from csm_agent.errors import SourceError, UsageError

ENV_TYPE = "docker"
DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 30

log = logging.getLogger("csm_agent")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix domain socket."""

    def __init__(self, socket_path, timeout=TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class DockerAPI:
    """A minimal Docker Engine API client (GET only)."""

    def __init__(self, host=None):
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        parsed = urlparse(self.host)
        if parsed.scheme == "unix":
            self.connect = lambda: UnixHTTPConnection(parsed.path)
        elif parsed.scheme in ("tcp", "http"):
            self.connect = lambda: http.client.HTTPConnection(parsed.hostname, parsed.port or 2375, timeout=TIMEOUT)
        elif parsed.scheme == "https":
            self.connect = lambda: http.client.HTTPSConnection(parsed.hostname, parsed.port or 2376, timeout=TIMEOUT)
        else:
            raise UsageError(f"unsupported DOCKER_HOST {self.host!r} (use unix://, tcp:// or https://)")

    def get(self, path):
        conn = self.connect()
        try:
            conn.request("GET", path, headers={"Host": "docker", "Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise SourceError(f"cannot reach Docker at {self.host}: {exc}") from exc
        finally:
            conn.close()
        if response.status != 200:
            try:
                message = json.loads(body).get("message")
            except ValueError:
                message = body[:300].decode(errors="replace")
            raise SourceError(f"Docker API: GET {path} -> HTTP {response.status}: {message}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SourceError(f"Docker API: GET {path} returned invalid JSON") from exc


def repo_digest(image_ref, repo_digests):
    """The digest (64 hex) matching ``image_ref`` among RepoDigests, as the kosli CLI picks it."""
    if not repo_digests:
        return None
    if len(repo_digests) == 1 or image_ref.startswith("sha256:"):
        return repo_digests[0].split("@sha256:", 1)[1]
    ref = image_ref.removeprefix("library/").split("@sha256", 1)[0]
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    for candidate in repo_digests:
        if candidate.split("@", 1)[0] in (repo, f"docker.io/{repo}", f"docker.io/library/{repo}"):
            return candidate.split("@sha256:", 1)[1]
    for candidate in repo_digests:
        if candidate.startswith(repo):
            return candidate.split("@sha256:", 1)[1]
    return repo_digests[0].split("@sha256:", 1)[1]


def collect(host=None):
    """One artifact per running container; containers whose image has no repo digest are skipped."""
    api = DockerAPI(host)
    containers = api.get("/containers/json")
    images = {}
    artifacts = []
    for c in containers:
        image_id = c.get("ImageID") or c.get("Image")
        if image_id not in images:
            images[image_id] = api.get(f"/images/{quote(image_id, safe='')}/json")
        info = images[image_id]
        name = c.get("Image") or ""
        if name.startswith("sha256:") and info.get("RepoTags"):
            name = info["RepoTags"][0]
        digest = repo_digest(name, info.get("RepoDigests") or [])
        label = (c.get("Names") or [c.get("Id", "?")[:12]])[0].lstrip("/")
        if not digest:
            log.warning("container %s (%s) has no repo digest (image never pushed or pulled); skipped", label, name)
            continue
        artifacts.append({"digests": {name: digest}, "creationTimestamp": int(c.get("Created") or 0)})
    return artifacts
