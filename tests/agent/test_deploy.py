"""The deployment files are valid and invoke the agent with arguments it accepts."""

import shlex
from pathlib import Path

import pytest
import yaml
from csm_agent.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("variant", ["cluster-scoped", "namespace-scoped"])
def test_cronjob_runs_every_minute_with_valid_agent_arguments(variant):
    (job,) = docs(DEPLOY / "k8s" / variant / "cronjob.yaml")
    assert job["kind"] == "CronJob" and job["spec"]["schedule"] == "* * * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "csm-agent"
    (container,) = pod["containers"]
    args = [a.replace("$(CSM_ENVIRONMENT)", "prod-k8s") for a in container["args"]]
    parsed = build_parser().parse_args(args)
    assert (parsed.command, parsed.kind, parsed.env) == ("snapshot", "k8s", "prod-k8s")
    if variant == "namespace-scoped":
        assert parsed.namespaces == ["shop", "payments"]


def test_rbac_is_read_only_and_scoped():
    cluster = docs(DEPLOY / "k8s" / "cluster-scoped" / "rbac.yaml")
    assert [d["kind"] for d in cluster] == ["ClusterRole", "ClusterRoleBinding"]
    assert cluster[0]["rules"] == [{"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list"]}]
    scoped = docs(DEPLOY / "k8s" / "namespace-scoped" / "rbac.yaml")
    assert {d["kind"] for d in scoped} == {"Role", "RoleBinding"}
    assert {d["metadata"]["namespace"] for d in scoped} == {"shop", "payments"}
    for role in (d for d in scoped if d["kind"] == "Role"):
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    for binding in (d for d in cluster + scoped if d["kind"].endswith("Binding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "csm-agent", "namespace": "csm"}]
    (sa,) = docs(DEPLOY / "k8s" / "serviceaccount.yaml")
    assert sa["metadata"] == {"name": "csm-agent", "namespace": "csm"}


@pytest.mark.parametrize("unit", ["csm-agent.service", "csm-agent-watch.service"])
def test_systemd_units_invoke_valid_commands(unit):
    lines = (DEPLOY / "systemd" / unit).read_text().splitlines()
    (exec_start,) = [line.split("=", 1)[1] for line in lines if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start.replace("%H", "web-01"))
    assert argv[0] == "/usr/local/bin/csm-agent"
    parsed = build_parser().parse_args(argv[1:])
    assert (parsed.kind, parsed.env, parsed.paths_file) == ("paths", "web-01", "/etc/csm/paths.yaml")


def test_timer_fires_every_minute():
    timer = (DEPLOY / "systemd" / "csm-agent.timer").read_text()
    assert "OnUnitActiveSec=60s" in timer


def test_example_paths_file_and_config_are_valid(tmp_path):
    from csm_agent import config
    from csm_agent.collectors.paths import load_paths_file

    specs = load_paths_file(str(DEPLOY / "systemd" / "paths.yaml.example"))
    assert [name for name, _, _ in specs] == ["billing-service", "nginx-config"]
    settings = config.read_config_file(str(DEPLOY / "systemd" / "agent.toml.example"), required=True)
    assert settings["org"] == "acme"


def test_ci_snippets_call_fingerprint():
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        text = (DEPLOY / "ci" / name).read_text()
        yaml.safe_load(text)
        assert "csm-agent fingerprint" in text
