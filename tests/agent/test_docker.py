"""snapshot docker against a local server on a unix socket replaying Docker Engine API JSON."""

import tempfile

import pytest
from csm_agent.collectors.docker import repo_digest

from .conftest import load

H = lambda c: c * 64  # noqa: E731


@pytest.fixture
def docker_socket(replay_server):
    routes = {"/containers/json": load("docker-containers.json")}
    for image_id, info in load("docker-images.json").items():
        routes[f"/images/sha256%3A{image_id}/json"] = info
    with tempfile.TemporaryDirectory(prefix="dock") as d:  # short path: unix socket paths are limited
        server = replay_server(routes, unix_path=f"{d}/docker.sock")
        yield server


def test_running_containers_with_repo_digests(run, fake_csm, csm_args, docker_socket, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", docker_socket.url)
    code, _, err = run("snapshot", "docker", "build-host", *csm_args)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.path == "/api/v2/environments/acme/build-host/report/docker"
    assert req.json["artifacts"] == [
        {"digests": {"ghcr.io/acme/web:1.4.2": H("a")}, "creationTimestamp": 1732000000},
        # several repo digests: the one for the repository the container was started from
        {"digests": {"redis:7": H("7")}, "creationTimestamp": 1732000100},
        # started by image id: named after the image's tag
        {"digests": {"ghcr.io/acme/api:5.0": H("5")}, "creationTimestamp": 1732000300},
    ]
    # A locally built image was never pushed: no repo digest, skipped with a warning.
    assert "local-build (myapp:dev) has no repo digest" in err
    # Each image is inspected once.
    assert sorted(p for p, _ in docker_socket.requests)[0] == "/containers/json"
    assert len(docker_socket.requests) == 5


def test_docker_host_flag_and_unreachable_socket(run, fake_csm, csm_args, tmp_path):
    code, _, err = run("snapshot", "docker", "e", "--docker-host", f"unix://{tmp_path}/none.sock", *csm_args)
    assert code == 2 and "cannot reach Docker" in err
    assert fake_csm.requests == []


def test_bad_docker_host_is_a_usage_error(run, fake_csm, csm_args):
    code, _, err = run("snapshot", "docker", "e", "--docker-host", "ssh://box", *csm_args)
    assert code == 1 and "unsupported DOCKER_HOST" in err


def test_docker_api_error_reports_nothing(run, fake_csm, csm_args, replay_server):
    with tempfile.TemporaryDirectory(prefix="dock") as d:
        server = replay_server({"/containers/json": (500, {"message": "daemon is shutting down"})},
                               unix_path=f"{d}/docker.sock")
        code, _, err = run("snapshot", "docker", "e", "--docker-host", server.url, *csm_args)
    assert code == 2 and "daemon is shutting down" in err
    assert fake_csm.requests == []


def test_repo_digest_selection():
    digests = ["myregistry.io/cache/redis@sha256:" + H("0"), "redis@sha256:" + H("7")]
    assert repo_digest("redis:7", digests) == H("7")
    assert repo_digest("myregistry.io/cache/redis:7", digests) == H("0")
    assert repo_digest("sha256:" + H("d"), digests) == H("0")
    assert repo_digest("library/redis:7", digests) == H("7")
    assert repo_digest("x", []) is None
