"""kosli CLI conformance: every ``kosli snapshot <type>`` command, reporting what runs in an environment.

Each command PUTs ``/api/v2/environments/{org}/{env}/report/{TYPE}`` with Go's ``json.Marshal`` of its
request struct (``internal/kube``, ``internal/aws``, ``internal/server``, ``internal/azure``,
``internal/cloudrun``), through ``kosliClient.Do`` (``internal/requests/requests.go``). The CLI reads
nothing of the answer: 200 or 201 is success, anything else is printed as an error. So each test sends
the exact body the CLI builds (struct field order, ``omitempty`` fields left out when empty), checks the
status, and then that the report became the snapshot a user expects (ingested in this process)."""

import pytest

from audit.models import AuditEvent
from snapshots.models import Report, SnapshotEntry
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tests.kosli.cli import cli, cli_error
from tests.snapshots.conftest import fp

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(org, token_for):
    """The role an agent (a ``kosli snapshot`` cron job) runs with."""
    return token_for(org, Role.SNAPSHOTTER)


@pytest.fixture
def report(agent, org, django_capture_on_commit_callbacks):
    """report(env_type, kosli_type, body) -> running (name, fingerprint) pairs after the CLI's PUT was
    answered and the report ingested (the Celery hand-off runs here, in this process)."""

    def send(env_type: str, kosli_type: str, body: dict, env: str = "prod"):
        from audit.context import AuditContext
        create_or_update_environment(AuditContext.system("test"), org, env, env_type)
        with django_capture_on_commit_callbacks(execute=False):
            answer = cli(agent, "PUT", f"/api/v2/environments/acme/{env}/report/{kosli_type}", body)
        assert answer.status_code in (200, 201), answer.content
        ingest_report(answer.json()["id"])
        return sorted(SnapshotEntry.objects.filter(org=org, environment__name=env, to_index__isnull=True)
                      .values_list("name", "fingerprint"))

    return send


def test_snapshot_k8s(report, org):
    """``cmd/kosli/snapshotK8S.go`` ``reportEnvironment``: PUT .../report/K8S with ``kube.K8sEnvRequest``
    ``{"artifacts": [PodData]}``; ``PodData`` is ``podName, namespace, digests, creationTimestamp, owners``
    (``owners`` is ``[]metav1.OwnerReference``: apiVersion, kind, name, uid, controller and
    blockOwnerDeletion, the last two ``omitempty`` pointers). Digests map the container's ``Image`` to the
    last 64 characters of its ``ImageID``. An empty cluster sends ``{"artifacts": []}`` (GetPodsData starts
    from ``[]*PodData{}``) and is a valid, empty snapshot."""
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8", "uid": "4b1c-9e2a",
             "controller": True, "blockOwnerDeletion": True}
    pods = [{"podName": f"web-7d9f8-{i}", "namespace": "shop", "digests": {"registry.example.com/web:1.4": fp(1)},
             "creationTimestamp": 1_764_000_000 + i, "owners": [owner]} for i in range(2)]
    pods.append({"podName": "job-x", "namespace": "batch", "digests": {"busybox:1.36": fp(2)},
                 "creationTimestamp": 1_764_000_100, "owners": None})  # a bare pod: nil slice, JSON null
    assert report("K8S", "K8S", {"artifacts": pods}) == [("busybox:1.36", fp(2)),
                                                          ("registry.example.com/web:1.4", fp(1))]
    assert report("K8S", "K8S", {"artifacts": []}, env="empty") == []
    assert AuditEvent.objects.filter(org=org, action="report.received").count() == 2


def test_snapshot_ecs(report):
    """``cmd/kosli/snapshotECS.go`` ``run``: PUT .../report/ECS with ``aws.EcsEnvRequest``; ``EcsTaskData``
    is ``taskArn, cluster_name (omitempty), service_name (omitempty), digests, creationTimestamp``. A
    container whose digest the agent could not resolve is sent as ``""``: kept, fingerprint unknown."""
    arn = "arn:aws:ecs:eu-west-1:123456789012:task/shop/0c1d"
    tasks = [{"taskArn": arn, "cluster_name": "shop", "service_name": "web",
              "digests": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4": fp(3)},
              "creationTimestamp": 1_764_000_000},
             {"taskArn": arn + "e", "digests": {"public.ecr.aws/nginx:1.27": ""}, "creationTimestamp": 1_764_000_001}]
    assert report("ECS", "ECS", {"artifacts": tasks}) == [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4", fp(3)), ("public.ecr.aws/nginx:1.27", "")]


def test_snapshot_lambda(report):
    """``cmd/kosli/snapshotLambda.go`` ``run``: PUT .../report/lambda with ``aws.LambdaEnvRequest``
    ``{"artifacts": [{"digests": {function: sha256}, "creationTimestamp"}]}``."""
    body = {"artifacts": [{"digests": {"checkout-handler": fp(4)}, "creationTimestamp": 1_764_000_000},
                          {"digests": {"image-resizer": fp(5)}, "creationTimestamp": 1_764_000_002}]}
    assert report("lambda", "lambda", body) == [("checkout-handler", fp(4)), ("image-resizer", fp(5))]


def test_snapshot_s3(report):
    """``cmd/kosli/snapshotS3.go`` ``run``: PUT .../report/S3 with ``aws.S3EnvRequest``: one entry whose
    digests map the bucket to the fingerprint of its content."""
    body = {"artifacts": [{"digests": {"static-site-bucket": fp(6)}, "creationTimestamp": 1_764_000_000}]}
    assert report("S3", "S3", body) == [("static-site-bucket", fp(6))]


def test_snapshot_docker(report):
    """``cmd/kosli/snapshotDocker.go`` ``run``: PUT .../report/docker with ``server.ServerEnvRequest``
    (``CreateDockerArtifactsData``: one ``ServerData`` per running container, image tag → digest)."""
    body = {"artifacts": [{"digests": {"postgres:16": fp(7)}, "creationTimestamp": 1_764_000_000},
                          {"digests": {"redis:7": fp(8)}, "creationTimestamp": 1_764_000_000}]}
    assert report("docker", "docker", body) == [("postgres:16", fp(7)), ("redis:7", fp(8))]


def test_snapshot_server(report):
    """``cmd/kosli/snapshotServer.go`` ``run``: PUT .../report/server with ``server.ServerEnvRequest``
    (``CreateServerArtifactsData``: a path's basename → its fingerprint)."""
    body = {"artifacts": [{"digests": {"app.jar": fp(9)}, "creationTimestamp": 1_764_000_000}]}
    assert report("server", "server", body) == [("app.jar", fp(9))]


def test_snapshot_path(report):
    """``cmd/kosli/snapshotPath.go`` ``run`` → ``reportArtifacts``: the named path's artifact, PUT to
    .../report/server (type ``server``) with ``ServerEnvRequest``."""
    body = {"artifacts": [{"digests": {"frontend": fp(10)}, "creationTimestamp": 1_764_000_000}]}
    assert report("server", "server", body) == [("frontend", fp(10))]


def test_snapshot_paths(report):
    """``cmd/kosli/snapshotPaths.go`` ``run`` → ``reportArtifacts`` (snapshotPath.go): every artifact of the
    paths file in one PUT to .../report/server."""
    body = {"artifacts": [{"digests": {"frontend": fp(11)}, "creationTimestamp": 1_764_000_000},
                          {"digests": {"backend": fp(12)}, "creationTimestamp": 1_764_000_000}]}
    assert report("server", "server", body) == [("backend", fp(12)), ("frontend", fp(11))]


def test_snapshot_azure_apps(report):
    """``cmd/kosli/snapshotAzureApps.go`` ``run``: PUT .../report/azure-apps with ``azure.AzureAppsRequest``;
    ``AppData`` is ``app_name, app_kind, digests_source, digests, creationTimestamp``."""
    body = {"artifacts": [{"app_name": "shop-web", "app_kind": "app,linux,container", "digests_source": "acr",
                           "digests": {"shopacr.azurecr.io/web:1.4": fp(13)}, "creationTimestamp": 1_764_000_000}]}
    assert report("azure-apps", "azure-apps", body) == [("shopacr.azurecr.io/web:1.4", fp(13))]


def test_snapshot_cloud_run(report):
    """``cmd/kosli/snapshotCloudRun.go`` ``run``: PUT .../report/cloud-run with ``cloudrun.EnvRequest``
    ``{"type": "cloud-run", "artifacts": [...]}`` (internal/cloudrun/payload.go ``ToEnvRequest``): a service
    revision carries ``kind: service, serviceName, revisionName``; a job ``kind: job, jobName`` (the other
    names ``omitempty``)."""
    body = {"type": "cloud-run", "artifacts": [
        {"digests": {"europe-docker.pkg.dev/p/r/web:1.4": fp(14)}, "creationTimestamp": 1_764_000_000,
         "kind": "service", "serviceName": "web", "revisionName": "web-00042-abc"},
        {"digests": {"europe-docker.pkg.dev/p/r/nightly:2": fp(15)}, "creationTimestamp": 1_764_000_000,
         "kind": "job", "jobName": "nightly"}]}
    assert report("cloud-run", "cloud-run", body) == [("europe-docker.pkg.dev/p/r/nightly:2", fp(15)),
                                                      ("europe-docker.pkg.dev/p/r/web:1.4", fp(14))]


def test_snapshot_refusals_read_well_in_a_terminal(org, agent, api, token_for, other_org):
    """What ``Client.Do`` prints when the server refuses: the top-level ``message``. A report into a missing
    environment says how to create it; a bad field is a 400 naming it; a reader may not report (403);
    another org's environment is a 404; nothing is stored for any of them."""
    from audit.context import AuditContext
    missing = cli(agent, "PUT", "/api/v2/environments/acme/nowhere/report/K8S", {"artifacts": []})
    assert missing.status_code == 404 and "--auto-environment" in cli_error(missing)

    create_or_update_environment(AuditContext.system("test"), org, "prod", "K8S")
    bad = cli(agent, "PUT", "/api/v2/environments/acme/prod/report/K8S", {"artifacts": [
        {"podName": "p", "namespace": "n", "digests": {"web:1": "sha256:abc"}, "creationTimestamp": 1}]})
    assert bad.status_code == 400 and "artifacts[0].digests.web:1" in bad.json()["error"]["fields"]
    assert "artifacts[0].digests.web:1" in cli_error(bad)

    reader = cli(token_for(org, Role.READER), "PUT", "/api/v2/environments/acme/prod/report/K8S",
                 {"artifacts": []})
    assert reader.status_code == 403 and cli_error(reader)

    create_or_update_environment(AuditContext.system("test"), other_org, "prod", "K8S")
    foreign = cli(agent, "PUT", "/api/v2/environments/globex/prod/report/K8S", {"artifacts": []})
    assert foreign.status_code == 404
    assert Report.objects.count() == 0
