"""snapshot k8s against a local API server replaying real PodList JSON."""

import base64
import json
import os

import pytest
from csm_agent.collectors import k8s

from .conftest import load

ROUTES = {
    "/api/v1/namespaces": load("namespaces.json"),
    "/api/v1/namespaces/shop/pods": load("pods-shop.json"),
    "/api/v1/namespaces/payments/pods": load("pods-payments.json"),
    "/api/v1/namespaces/kube-system/pods": load("pods-kube-system.json"),
}
H = lambda c: c * 64  # noqa: E731

WEB = {"podName": "web-7d9f8c6b5-abcde", "namespace": "shop",
       "digests": {"docker.io/envoyproxy/envoy:v1.29.1": H("e"), "ghcr.io/acme/web:1.4.2": H("a")},
       "creationTimestamp": 1795168800,  # 2026-11-20T10:00:00Z
       "owners": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c6b5", "uid": "uid-web-7d9f8c6b5",
                   "controller": True, "blockOwnerDeletion": True}]}


def pods_by_name(request):
    return {a["podName"]: a for a in request.json["artifacts"]}


@pytest.fixture
def cluster(replay_server, kubeconfig):
    server = replay_server(dict(ROUTES))
    return server, kubeconfig(server.url)


def test_all_namespaces(run, fake_csm, csm_args, cluster):
    server, config = cluster
    code, _, err = run("snapshot", "k8s", "prod-k8s", "--kubeconfig", config, *csm_args)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.path == "/api/v2/environments/acme/prod-k8s/report/K8S"
    pods = pods_by_name(req)
    # Running and Failed pods; Pending and Succeeded pods are not running software.
    assert set(pods) == {"web-7d9f8c6b5-abcde", "cart-5c4b3a2-fghij", "api-6f5e4d3c2-klmno",
                         "migrate-28391-x7k2p", "coredns-5d78c9869d-qwert"}
    assert pods["web-7d9f8c6b5-abcde"] == WEB  # a multi-container pod is one entry with both images
    # Digest-pinned pod whose runtime shows only "sha256:...": named repo:tag from the spec.
    assert pods["cart-5c4b3a2-fghij"]["digests"] == {"ghcr.io/acme/cart:2.0.0": H("c")}
    assert pods["api-6f5e4d3c2-klmno"]["digests"] == {"registry.local:5000/pay/api:3.1": H("b")}
    assert pods["migrate-28391-x7k2p"]["owners"][0]["kind"] == "Job"
    # The pod without an image id is skipped with a warning, not the whole snapshot.
    assert "payments/worker-0: container init-sidecar has no image id yet; pod skipped" in err
    assert all(h.get("Authorization") == "Bearer kube-token-abc" for _, h in server.requests)


def test_namespace_scoped_listing_never_lists_cluster_wide(run, fake_csm, csm_args, cluster):
    server, config = cluster
    code, _, err = run("snapshot", "k8s", "prod-k8s", "--kubeconfig", config, "-n", "shop", "-n", "payments",
                       *csm_args)
    assert code == 0, err
    assert set(pods_by_name(fake_csm.reports[0])) == {"web-7d9f8c6b5-abcde", "cart-5c4b3a2-fghij",
                                                       "api-6f5e4d3c2-klmno", "migrate-28391-x7k2p"}
    paths = {p.split("?")[0] for p, _ in server.requests}
    assert paths == {"/api/v1/namespaces/shop/pods", "/api/v1/namespaces/payments/pods"}


@pytest.mark.parametrize(("flags", "namespaces"), [
    (["--namespaces-regex", "^(shop|pay)"], {"shop", "payments"}),
    (["-x", "kube-system"], {"shop", "payments"}),
    (["--exclude-namespaces-regex", "^kube-"], {"shop", "payments"}),
    (["--namespaces-regex", "s", "--exclude-namespaces-regex", "shop"], {"payments", "kube-system"}),
])
def test_namespace_filters(run, fake_csm, csm_args, cluster, flags, namespaces):
    _, config = cluster
    assert run("snapshot", "k8s", "e", "--kubeconfig", config, *flags, *csm_args)[0] == 0
    assert {a["namespace"] for a in fake_csm.reports[0].json["artifacts"]} == namespaces


def test_forbidden_namespace_reports_nothing(run, fake_csm, csm_args, replay_server, kubeconfig):
    routes = dict(ROUTES)
    routes["/api/v1/namespaces/payments/pods"] = (403, {
        "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": 'pods is forbidden: User "system:serviceaccount:csm:agent" cannot list resource "pods" in '
                   'API group "" in the namespace "payments"'})
    server = replay_server(routes)
    code, _, err = run("snapshot", "k8s", "e", "--kubeconfig", kubeconfig(server.url), *csm_args)
    assert code == 2
    assert "HTTP 403" in err and 'cannot list resource "pods"' in err
    assert fake_csm.requests == []  # never a partial environment


def test_unreachable_api_server_exit_2(run, fake_csm, csm_args, kubeconfig):
    code, _, err = run("snapshot", "k8s", "e", "--kubeconfig", kubeconfig("http://127.0.0.1:9"), *csm_args)
    assert code == 2 and "cannot reach the Kubernetes API" in err
    assert fake_csm.requests == []


def test_pages_are_followed(run, fake_csm, csm_args, replay_server, kubeconfig):
    shop = load("pods-shop.json")
    page1 = dict(shop, items=shop["items"][:1], metadata={"continue": "tok-2", "remainingItemCount": 2})
    page2 = dict(shop, items=shop["items"][1:], metadata={})
    server = replay_server({"/api/v1/namespaces/shop/pods?limit=500": page1,
                            "/api/v1/namespaces/shop/pods?limit=500&continue=tok-2": page2})
    assert run("snapshot", "k8s", "e", "--kubeconfig", kubeconfig(server.url), "-n", "shop", *csm_args)[0] == 0
    assert set(pods_by_name(fake_csm.reports[0])) == {"web-7d9f8c6b5-abcde", "cart-5c4b3a2-fghij"}
    assert len(server.requests) == 2


def test_a_thousand_namespaces(run, fake_csm, csm_args, replay_server, kubeconfig):
    template = load("pods-kube-system.json")
    routes = {"/api/v1/namespaces": {"kind": "NamespaceList", "metadata": {},
                                     "items": [{"metadata": {"name": f"team-{i:04d}"}} for i in range(1000)]}}
    for i in range(1000):
        pod = json.loads(json.dumps(template["items"][0]))
        pod["metadata"].update(name=f"app-{i}", namespace=f"team-{i:04d}")
        routes[f"/api/v1/namespaces/team-{i:04d}/pods"] = {"kind": "PodList", "metadata": {}, "items": [pod]}
    server = replay_server(routes)
    code, _, err = run("snapshot", "k8s", "e", "--kubeconfig", kubeconfig(server.url), *csm_args)
    assert code == 0, err
    assert len(fake_csm.reports[0].json["artifacts"]) == 1000
    assert len(server.requests) == 1001


@pytest.mark.parametrize(("status_image", "spec_image", "expected"), [
    ("docker.io/library/nginx:1.25", "nginx:1.25", "docker.io/library/nginx:1.25"),
    ("sha256:" + H("f"), "nginx:1.25@sha256:" + H("a"), "nginx:1.25"),
    ("docker.io/library/nginx@sha256:" + H("a"), "nginx:1.25@sha256:" + H("a"), "nginx:1.25"),
    ("sha256:" + H("f"), "nginx@sha256:" + H("a"), "nginx@sha256:" + H("a")),
    ("registry:5000/team/app@sha256:" + H("a"), "registry:5000/team/app:2@sha256:" + H("a"),
     "registry:5000/team/app:2"),
    ("registry:5000/team/app@sha256:" + H("a"), "registry:5000/team/app@sha256:" + H("a"),
     "registry:5000/team/app@sha256:" + H("a")),
])
def test_image_names(status_image, spec_image, expected):
    assert k8s.image_name(status_image, spec_image) == expected


def test_in_cluster_config(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("in-cluster-token\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    access = k8s.in_cluster(str(tmp_path))
    assert access.server == "https://10.96.0.1:443"
    assert access.token == "in-cluster-token"
    assert access.verify == str(tmp_path / "ca.crt")


def test_kubeconfig_client_certificate_and_ca_data(tmp_path):
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    path = tmp_path / "config"
    path.write_text(json.dumps({
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://k8s.example:6443",
                                               "certificate-authority-data": b64("CA PEM")}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"client-certificate-data": b64("CERT PEM"),
                                         "client-key-data": b64("KEY PEM")}}],
    }))
    access = k8s.from_kubeconfig(str(path))
    try:
        assert access.server == "https://k8s.example:6443"
        assert open(access.verify).read() == "CA PEM"
        assert open(access.cert[0]).read() == "CERT PEM" and open(access.cert[1]).read() == "KEY PEM"
        assert oct(os.stat(access.cert[1]).st_mode & 0o777) == "0o600"
    finally:
        access.cleanup()
    assert not os.path.exists(access.cert[1])


def test_kubeconfig_exec_plugin(tmp_path):
    plugin = tmp_path / "get-token"
    plugin.write_text('#!/bin/sh\necho \'{"kind":"ExecCredential","status":{"token":"from-plugin-\'$CLUSTER\'"}}\'\n')
    plugin.chmod(0o755)
    path = tmp_path / "config"
    path.write_text(json.dumps({
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://eks.example", "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin),
            "env": [{"name": "CLUSTER", "value": "x"}]}}}],
    }))
    access = k8s.from_kubeconfig(str(path))
    assert access.token == "from-plugin-x" and access.verify is False


def test_missing_kubeconfig_context_is_a_usage_error(run, fake_csm, csm_args, tmp_path):
    path = tmp_path / "config"
    path.write_text(json.dumps({"current-context": "gone", "contexts": [], "clusters": [], "users": []}))
    code, _, err = run("snapshot", "k8s", "e", "--kubeconfig", path, *csm_args)
    assert code == 1 and "no context named 'gone'" in err


def test_kubeconfig_files_in_kubeconfig_are_merged_like_kubectl(tmp_path, monkeypatch):
    """$KUBECONFIG=a:missing:b — the first file to name a cluster/user/context wins, the first
    current-context wins, missing files are skipped, relative paths stay relative to their own file."""
    first, second = tmp_path / "team", tmp_path / "creds"
    first.mkdir()
    second.mkdir()
    (first / "ca.pem").write_text("CA")
    (second / "token").write_text("token-from-second-file\n")
    (first / "config").write_text(json.dumps({
        "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod.example:6443",
                                                  "certificate-authority": "ca.pem"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "deployer"}}],
    }))
    (second / "config").write_text(json.dumps({
        "current-context": "other",
        "clusters": [{"name": "prod", "cluster": {"server": "https://shadowed.example"}}],
        "users": [{"name": "deployer", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "other", "context": {"cluster": "prod"}}],
    }))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first / "config"), str(tmp_path / "gone"),
                                                      str(second / "config")]))
    access = k8s.load_access()
    assert access.server == "https://prod.example:6443"
    assert access.verify == str(first / "ca.pem")
    assert access.token == "token-from-second-file"
    (first / "config").write_text(json.dumps({
        "current-context": "prod", "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "nobody"}}]}))
    with pytest.raises(k8s.UsageError, match="no user named 'nobody'"):
        k8s.load_access()
