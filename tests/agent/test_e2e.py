"""End to end: the installed ``csm-agent`` program against a running csm (live server + real Celery worker).

The agent runs as a subprocess with a snapshotter token, exactly as it would on a server or in a CronJob;
the snapshot must appear with the right artifacts, and a change must make snapshot 2 and show in the
env-diff. A Kubernetes snapshot (replayed PodLists) checks csm accepts the agent's K8S payload as is.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from csm_agent import fingerprint as fp

from .test_k8s import ROUTES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

AGENT = str(Path(sys.executable).parent / "csm-agent")


def agent(live_server, token, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CSM_", "KUBE", "DOCKER_"))}
    env.update(CSM_HOST=live_server.url, CSM_ORG="acme", CSM_API_TOKEN=token)
    return subprocess.run([AGENT, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def wait_for_snapshot(api, env, index):
    """Poll the API until the worker has ingested snapshot ``index`` of ``env`` (the worker is async)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = api.get(f"/api/v2/snapshots/acme/{env}/-1")
        if response.status_code == 200 and response.json()["index"] == index:
            return response.json()
        time.sleep(0.2)
    raise AssertionError(f"snapshot {index} of {env} never appeared (last answer: {response.status_code})")


def test_agent_reports_snapshots_and_changes_show_in_the_diff(live_server, celery_worker, org, owner_api,
                                                               token_for, tmp_path):
    token = token_for(org, "snapshotter")
    release = tmp_path / "opt" / "billing"
    (release / "lib").mkdir(parents=True)
    (release / "lib" / "billing.py").write_text("RATE = 1\n")
    (release / "app.log").write_text("noise\n")
    config = tmp_path / "opt" / "nginx.conf"
    config.write_text("worker_processes 2;\n")
    paths = tmp_path / "paths.yaml"
    paths.write_text(f"version: 1\nartifacts:\n  billing:\n    path: {release}\n    exclude: ['*.log']\n"
                     f"  nginx-config:\n    path: {config}\n")

    done = agent(live_server, token, "snapshot", "paths", "web-01", "--paths-file", paths, "--auto-environment")
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    first = wait_for_snapshot(owner_api, "web-01", 1)
    assert first["type"] == "server"
    v1 = fp.fingerprint(str(release), ["*.log"])
    assert {(a["name"], a["fingerprint"]) for a in first["artifacts"]} == {
        ("billing", v1), ("nginx-config", fp.fingerprint(str(config)))}

    # The same state again: a heartbeat, no new snapshot.
    assert agent(live_server, token, "snapshot", "paths", "web-01", "--paths-file", paths).returncode == 0
    # A deploy: one file changes.
    (release / "lib" / "billing.py").write_text("RATE = 2\n")
    done = agent(live_server, token, "snapshot", "paths", "web-01", "--paths-file", paths)
    assert done.returncode == 0, done.stderr
    second = wait_for_snapshot(owner_api, "web-01", 2)
    v2 = fp.fingerprint(str(release), ["*.log"])
    assert ("billing", v2) in {(a["name"], a["fingerprint"]) for a in second["artifacts"]}

    diff = owner_api.get("/api/v2/env-diff/acme", {"snappish1": "web-01#1", "snappish2": "web-01#2"}).json()
    assert [(c["name"], c["fingerprint1"], c["fingerprint2"]) for c in diff["changed"]["artifacts"]] == [
        ("billing", v1, v2)]
    assert diff["snappish1"]["artifacts"] == [] and diff["snappish2"]["artifacts"] == []


def test_agent_errors_come_from_the_real_server(live_server, celery_worker, org, token_for, tmp_path):
    reader = token_for(org, "reader")
    f = tmp_path / "f"
    f.write_text("x")
    done = agent(live_server, reader, "snapshot", "path", "web-02", "--path", f, "--name", "f", "--auto-environment")
    assert done.returncode == 3
    assert "HTTP 403" in done.stderr  # a reader may not report: the server's own message is shown
    done = agent(live_server, "not-a-token", "snapshot", "path", "web-02", "--path", f, "--name", "f")
    assert done.returncode == 3 and "HTTP 401" in done.stderr


def test_k8s_snapshot_is_accepted_as_sent(live_server, celery_worker, org, owner_api, token_for, replay_server,
                                          kubeconfig):
    token = token_for(org, "snapshotter")
    cluster = replay_server(dict(ROUTES))
    done = agent(live_server, token, "snapshot", "k8s", "prod-k8s", "--kubeconfig", kubeconfig(cluster.url),
                 "--auto-environment")
    assert done.returncode == 0, done.stderr
    snapshot = wait_for_snapshot(owner_api, "prod-k8s", 1)
    assert snapshot["type"] == "K8S"
    names = {(a["name"], a["fingerprint"]) for a in snapshot["artifacts"]}
    assert ("ghcr.io/acme/web:1.4.2", "a" * 64) in names
    assert ("docker.io/envoyproxy/envoy:v1.29.1", "e" * 64) in names
    assert ("ghcr.io/acme/cart:2.0.0", "c" * 64) in names
    assert not any("worker" in n for n, _ in names)  # the pod without an image id was skipped


def test_agent_without_auto_environment_names_the_missing_environment_and_the_fix(live_server, org, token_for,
                                                                                  tmp_path):
    """The first run's usual mistake: reporting to an environment nobody created. csm's answer and the
    agent's output say which environment and how to fix it, once (no duplicated hint)."""
    token = token_for(org, "snapshotter")
    target = tmp_path / "app.bin"
    target.write_bytes(b"binary")
    done = agent(live_server, token, "snapshot", "path", "web-09", "--path", target, "--name", "app")
    assert done.returncode == 3
    assert "Environment 'web-09' does not exist in org 'acme'" in done.stderr
    assert "PUT /api/v2/environments/acme" in done.stderr
    assert done.stderr.count("--auto-environment") == 1
    assert token not in done.stderr
