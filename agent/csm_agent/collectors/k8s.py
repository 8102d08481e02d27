"""Kubernetes: running (and failed) pods with their containers' image digests (type ``K8S``).

Talks to the API server with ``requests``: credentials from a kubeconfig (token, token file, client
certificate, basic auth, exec plugins; CA or insecure-skip-tls-verify) or from the in-cluster service
account. Namespaces are listed concurrently, page by page, so a cluster with 1,000 namespaces takes
seconds; with ``-n`` only those namespaces are read, so namespace-scoped read permission is enough.
"""

import base64
import json
import logging
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import requests
import urllib3
import yaml
from requests.adapters import HTTPAdapter

from csm_agent.errors import SourceError, UsageError

ENV_TYPE = "K8S"
REPORTED_PHASES = ("Running", "Failed")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
PAGE_SIZE = 500
DEFAULT_CONCURRENCY = 32
TIMEOUT = (10, 60)
_DIGEST = re.compile(r"([0-9a-f]{64})$")

log = logging.getLogger("csm_agent")


@dataclass
class ClusterAccess:
    """Where the API server is and how to authenticate to it."""

    server: str
    token: str | None = None
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    basic: tuple[str, str] | None = None
    tempfiles: list = field(default_factory=list)

    def session(self, pool_size):
        s = requests.Session()
        s.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size))
        s.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size))
        s.headers["Accept"] = "application/json"
        if self.token:
            s.headers["Authorization"] = f"Bearer {self.token}"
        elif self.basic:
            s.auth = self.basic
        s.verify = self.verify
        if self.verify is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if self.cert:
            s.cert = self.cert
        return s

    def cleanup(self):
        for path in self.tempfiles:
            try:
                os.unlink(path)
            except OSError:
                pass


def _data_file(access, b64):
    """Write base64 ``*-data`` from a kubeconfig to a private temp file (requests wants paths)."""
    fd, path = tempfile.mkstemp(prefix="csm-agent-kube-")
    access.tempfiles.append(path)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(b64))
    return path


def _resolve(base_dir, path):
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def _read_kubeconfigs(paths):
    """kubectl's rules for several files ($KUBECONFIG=a:b): the first file to name a cluster, user or
    context wins, and so does the first ``current-context``. Relative paths stay relative to the file
    that holds them. Returns (current-context, {kind: {name: (item, base dir)}})."""
    current, named = None, {"clusters": {}, "users": {}, "contexts": {}}
    for path in paths:
        try:
            with open(path) as f:
                cfg = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"cannot read kubeconfig {path}: {exc}") from exc
        if not isinstance(cfg, dict):
            raise UsageError(f"kubeconfig {path}: not a kubeconfig (expected a mapping)")
        current = current or cfg.get("current-context")
        base_dir = os.path.dirname(os.path.abspath(path))
        for kind, found in named.items():
            for item in cfg.get(kind) or []:
                if isinstance(item, dict) and item.get("name") is not None:
                    found.setdefault(item["name"], (item.get(kind[:-1]) or {}, base_dir))
    return current, named


def _named(named, name, kind, kubeconfig):
    if name in named[kind + "s"]:
        return named[kind + "s"][name]
    raise UsageError(f"kubeconfig {kubeconfig}: no {kind} named {name!r}")


def _run_exec_plugin(spec, kubeconfig):
    """Run a client-go credential plugin (aws eks get-token, gke-gcloud-auth-plugin ...)."""
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[item["name"]] = item["value"]
    env["KUBERNETES_EXEC_INFO"] = json.dumps({
        "apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1beta1"),
        "kind": "ExecCredential", "spec": {"interactive": False}})
    cmd = [spec["command"], *(spec.get("args") or [])]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=True)  # noqa: S603
        return json.loads(done.stdout).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise SourceError(f"kubeconfig {kubeconfig}: credential plugin {spec['command']} failed: {exc}") from exc


def from_kubeconfig(path, context=None):
    """Cluster access from a kubeconfig file, or from several merged as kubectl does (a list of paths)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    path = os.pathsep.join(map(str, paths))  # how errors name it
    current, named = _read_kubeconfigs(paths)
    context = context or current
    if not context:
        raise UsageError(f"kubeconfig {path}: no current-context (use --context)")
    ctx, _ = _named(named, context, "context", path)
    cluster, cluster_dir = _named(named, ctx.get("cluster"), "cluster", path)
    user, base_dir = _named(named, ctx.get("user"), "user", path) if ctx.get("user") else ({}, cluster_dir)
    if not cluster.get("server"):
        raise UsageError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    access = ClusterAccess(server=cluster["server"].rstrip("/"))
    if cluster.get("insecure-skip-tls-verify"):
        access.verify = False
    elif cluster.get("certificate-authority-data"):
        access.verify = _data_file(access, cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        access.verify = _resolve(cluster_dir, cluster["certificate-authority"])
    if user.get("exec"):
        status = _run_exec_plugin(user["exec"], path)
        if status.get("token"):
            access.token = status["token"]
        if status.get("clientCertificateData"):
            access.cert = (_data_file(access, base64.b64encode(status["clientCertificateData"].encode())),
                           _data_file(access, base64.b64encode(status["clientKeyData"].encode())))
    if user.get("token"):
        access.token = user["token"]
    elif user.get("tokenFile"):
        with open(_resolve(base_dir, user["tokenFile"])) as f:
            access.token = f.read().strip()
    if user.get("client-certificate-data"):
        access.cert = (_data_file(access, user["client-certificate-data"]), _data_file(access, user["client-key-data"]))
    elif user.get("client-certificate"):
        access.cert = (_resolve(base_dir, user["client-certificate"]), _resolve(base_dir, user["client-key"]))
    if user.get("username") and not access.token:
        access.basic = (user["username"], user.get("password", ""))
    if user.get("auth-provider"):
        raise UsageError(f"kubeconfig {path}: auth-provider users are not supported; use an exec plugin or a token")
    return access


def in_cluster(sa_dir=SA_DIR):
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in (host or ""):
        host = f"[{host}]"
    try:
        with open(os.path.join(sa_dir, "token")) as f:
            token = f.read().strip()
    except OSError as exc:
        raise UsageError(f"not in a cluster and no kubeconfig: cannot read service account token ({exc})") from exc
    ca = os.path.join(sa_dir, "ca.crt")
    return ClusterAccess(server=f"https://{host}:{port}", token=token, verify=ca if os.path.exists(ca) else True)


def load_access(kubeconfig=None, context=None):
    """--kubeconfig, else in-cluster service account, else $KUBECONFIG (several files merged), else
    ~/.kube/config."""
    if kubeconfig:
        return from_kubeconfig(kubeconfig, context)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(os.path.join(SA_DIR, "token")):
        return in_cluster()
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p and os.path.exists(p)]
    if listed:  # every existing file of the list, merged (missing ones are skipped, as kubectl does)
        return from_kubeconfig(listed, context)
    default = os.path.expanduser("~/.kube/config")
    if os.path.exists(default):
        return from_kubeconfig(default, context)
    raise UsageError("no Kubernetes credentials: not running in a cluster and no kubeconfig found (use --kubeconfig)")


def _api_error(response):
    try:
        return response.json().get("message") or response.text[:300]
    except ValueError:
        return response.text[:300] or response.reason


def list_all(session, server, path):
    """Every item of a list endpoint, following ``continue`` tokens; restarts if the token expires."""
    for _restart in range(3):
        items, token = [], None
        while True:
            params = {"limit": PAGE_SIZE}
            if token:
                params["continue"] = token
            try:
                r = session.get(server + path, params=params, timeout=TIMEOUT)
            except requests.RequestException as exc:
                raise SourceError(f"cannot reach the Kubernetes API at {server}: {exc}") from exc
            if r.status_code == 410 and token:
                log.debug("continue token for %s expired, listing again", path)
                break
            if r.status_code != 200:
                raise SourceError(f"Kubernetes API: GET {path} -> HTTP {r.status_code}: {_api_error(r)}")
            body = r.json()
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items
    raise SourceError(f"Kubernetes API: GET {path} kept changing while paging; try again")


def _has_tag(ref):
    return ":" in ref.rsplit("/", 1)[-1]


def image_name(status_image, spec_image):
    """The image as people name it: ``repo:tag`` whenever a tag is known, even for digest-pinned pods."""
    candidates = [c for c in (status_image, spec_image) if c and not c.startswith("sha256:")]
    for c in candidates:
        if "@" not in c:
            return c
    for c in candidates:
        ref = c.split("@", 1)[0]
        if _has_tag(ref):
            return ref
    if candidates:
        return candidates[0]
    return status_image or spec_image or "unknown"


def _timestamp(value):
    if not value:
        return 0
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def pod_artifact(pod):
    """The kosli K8S artifact for one pod, or None (with a warning when it is skipped for a reason)."""
    meta, status, spec = pod.get("metadata") or {}, pod.get("status") or {}, pod.get("spec") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    if status.get("phase") not in REPORTED_PHASES:
        return None
    spec_images = {c.get("name"): c.get("image") for c in spec.get("containers") or []}
    statuses = status.get("containerStatuses") or []
    if not statuses:
        log.warning("pod %s (%s) has no container statuses; skipped", where, status.get("phase"))
        return None
    digests = {}
    for cs in statuses:
        found = _DIGEST.search(cs.get("imageID") or "")
        if not found:
            log.warning("pod %s: container %s has no image id yet; pod skipped", where, cs.get("name"))
            return None
        digests[image_name(cs.get("image"), spec_images.get(cs.get("name")))] = found.group(1)
    return {
        "podName": meta.get("name"),
        "namespace": meta.get("namespace"),
        "digests": digests,
        "creationTimestamp": _timestamp(meta.get("creationTimestamp")),
        "owners": meta.get("ownerReferences") or [],
    }


def select_namespaces(session, server, namespaces=(), include_regex=None, exclude=(), exclude_regex=None):
    if namespaces:
        chosen = list(dict.fromkeys(namespaces))
    else:
        chosen = [ns["metadata"]["name"] for ns in list_all(session, server, "/api/v1/namespaces")]
        if include_regex:
            rx = re.compile(include_regex)
            chosen = [n for n in chosen if rx.search(n)]
    if exclude:
        chosen = [n for n in chosen if n not in set(exclude)]
    if exclude_regex:
        rx = re.compile(exclude_regex)
        chosen = [n for n in chosen if not rx.search(n)]
    return chosen


@contextmanager
def _access(kubeconfig, context):
    access = load_access(kubeconfig, context)
    try:
        yield access
    finally:
        access.cleanup()


def collect(kubeconfig=None, context=None, namespaces=(), namespaces_regex=None, exclude_namespaces=(),
            exclude_namespaces_regex=None, concurrency=DEFAULT_CONCURRENCY):
    """All reported pods of the selected namespaces, or SourceError if any namespace cannot be read."""
    if namespaces and namespaces_regex:
        raise UsageError("use either --namespace or --namespaces-regex, not both")
    if namespaces and (exclude_namespaces or exclude_namespaces_regex):
        raise UsageError("--exclude-namespace(s-regex) cannot be combined with --namespace")
    for rx in (namespaces_regex, exclude_namespaces_regex):
        if rx:
            try:
                re.compile(rx)
            except re.error as exc:
                raise UsageError(f"invalid namespace regex {rx!r}: {exc}") from exc
    with _access(kubeconfig, context) as access:
        session = access.session(concurrency)
        chosen = select_namespaces(session, access.server, namespaces, namespaces_regex, exclude_namespaces,
                                   exclude_namespaces_regex)
        log.debug("listing pods in %d namespaces", len(chosen))

        def pods_in(ns):
            return list_all(session, access.server, f"/api/v1/namespaces/{quote(ns, safe='')}/pods")

        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chosen) or 1))) as pool:
            per_namespace = list(pool.map(pods_in, chosen))  # re-raises the first failure: no partial report
    artifacts = []
    for pods in per_namespace:
        for pod in pods:
            artifact = pod_artifact(pod)
            if artifact:
                artifacts.append(artifact)
    return artifacts
