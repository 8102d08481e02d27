"""snapshot ecs / lambda / s3 against moto's AWS."""

import base64
import hashlib
import io
import json
import zipfile

import boto3
import pytest
from csm_agent import fingerprint as fp
from csm_agent.collectors.aws import _task_digests, lambda_fingerprint
from moto import mock_aws
from moto.ec2 import utils as ec2_utils
from moto.moto_api import state_manager

from .test_fingerprint import make_tree

REGION = "eu-west-1"
H = lambda c: c * 64  # noqa: E731


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        # Keep moto's tasks RUNNING (by default it advances their status on every describe).
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**6})
        yield
        state_manager.unset_transition("ecs::task")


# --- ECS ---------------------------------------------------------------------------------------------------

def _ecs_cluster(ecs, name, service, count, image):
    ecs.create_cluster(clusterName=name)
    instance = boto3.resource("ec2", region_name=REGION).create_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1)[0]
    ecs.register_container_instance(
        cluster=name, instanceIdentityDocument=json.dumps(ec2_utils.generate_instance_identity_document(instance)))
    ecs.register_task_definition(family=service, containerDefinitions=[{"name": "app", "image": image, "memory": 128}])
    ecs.create_service(cluster=name, serviceName=service, taskDefinition=service, desiredCount=count)
    return ecs.run_task(cluster=name, taskDefinition=service, count=count, group=f"service:{service}")["tasks"]


def test_ecs_tasks(run, fake_csm, csm_args, aws):
    ecs = boto3.client("ecs", region_name=REGION)
    web = _ecs_cluster(ecs, "prod", "web", 2, "ghcr.io/acme/web@sha256:" + H("a"))
    _ecs_cluster(ecs, "batch", "etl", 1, "ghcr.io/acme/etl:3")
    code, _, err = run("snapshot", "ecs", "prod-ecs", *csm_args)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.path == "/api/v2/environments/acme/prod-ecs/report/ECS"
    tasks = {a["taskArn"]: a for a in req.json["artifacts"]}
    assert len(tasks) == 3
    first = tasks[web[0]["taskArn"]]
    assert first["cluster_name"] == "prod" and first["service_name"] == "web"
    assert first["digests"] == {"ghcr.io/acme/web@sha256:" + H("a"): H("a")}
    assert isinstance(first["creationTimestamp"], int)
    etl = next(a for a in tasks.values() if a["cluster_name"] == "batch")
    assert etl["digests"] == {"ghcr.io/acme/etl:3": ""}  # digest unknown: kept, marked unknown by csm

    fake_csm.requests.clear()
    assert run("snapshot", "ecs", "prod-ecs", "--clusters", "prod", "--services", "web", *csm_args)[0] == 0
    assert {a["taskArn"] for a in fake_csm.reports[0].json["artifacts"]} == {t["taskArn"] for t in web}


def test_ecs_unknown_cluster_reports_nothing(run, fake_csm, csm_args, aws):
    code, _, err = run("snapshot", "ecs", "e", "--clusters", "nope", *csm_args)
    assert code == 2 and "AWS ECS" in err
    assert fake_csm.requests == []


def test_ecs_container_digests_like_kosli():
    task = {"containers": [
        {"name": "app", "image": "ghcr.io/acme/app:1", "imageDigest": "sha256:" + H("1")},
        {"name": "pinned", "image": "ghcr.io/acme/side@sha256:" + H("2")},
        {"name": "guardduty-agent"},
        {"name": "unknown", "image": "busybox:1"},
    ]}
    assert _task_digests(task) == {"ghcr.io/acme/app:1": H("1"), "ghcr.io/acme/side@sha256:" + H("2"): H("2"),
                                   "guardduty-agent": "", "busybox:1": ""}


# --- Lambda ------------------------------------------------------------------------------------------------

def _zip(source):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", source)
    return buf.getvalue()


def test_lambda_functions(run, fake_csm, csm_args, aws):
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws_lambda = boto3.client("lambda", region_name=REGION)
    packages = {name: _zip(f"def handler(e, c): return {name!r}") for name in ("checkout", "refunds")}
    for name, package in packages.items():
        aws_lambda.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                                   Code={"ZipFile": package})
    image = aws_lambda.create_function(FunctionName="renderer", Role=role, PackageType="Image",
                                       Code={"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/r:1"})
    code, _, err = run("snapshot", "lambda", "serverless", *csm_args)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.path == "/api/v2/environments/acme/serverless/report/lambda"
    digests = {k: v for a in req.json["artifacts"] for k, v in a["digests"].items()}
    # Zip packages: CodeSha256 is the base64 SHA-256 of the zip; we report it as hex.
    assert digests["checkout"] == hashlib.sha256(packages["checkout"]).hexdigest()
    assert digests["refunds"] == hashlib.sha256(packages["refunds"]).hexdigest()
    # Image packages: CodeSha256 already is the image digest in hex.
    assert digests["renderer"] == image["CodeSha256"]
    assert all(isinstance(a["creationTimestamp"], int) and a["creationTimestamp"] > 0 for a in req.json["artifacts"])

    fake_csm.requests.clear()
    assert run("snapshot", "lambda", "serverless", "--function-names", "refunds", *csm_args)[0] == 0
    assert [list(a["digests"]) for a in fake_csm.reports[0].json["artifacts"]] == [["refunds"]]


def test_lambda_missing_function_reports_nothing(run, fake_csm, csm_args, aws):
    code, _, err = run("snapshot", "lambda", "e", "--function-names", "ghost", *csm_args)
    assert code == 2 and "AWS Lambda" in err
    assert fake_csm.requests == []


def test_lambda_fingerprint_decoding():
    digest = hashlib.sha256(b"package").digest()
    assert lambda_fingerprint({"CodeSha256": base64.b64encode(digest).decode(), "PackageType": "Zip"}) == digest.hex()
    assert lambda_fingerprint({"CodeSha256": H("e"), "PackageType": "Image"}) == H("e")


# --- S3 ----------------------------------------------------------------------------------------------------

SITE = {"index.html": b"<h1>shop</h1>", "css/site.css": b"body{}", "js/app.js": b"app()",
        "js/vendor/lib.js": b"lib()", "logs/2026-11-28.log": b"GET /"}


def _bucket(objects, name="site-bucket"):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    for key, body in objects.items():
        s3.put_object(Bucket=name, Key=key, Body=body)
    s3.put_object(Bucket=name, Key="empty-folder/", Body=b"")  # a folder marker: ignored
    return s3


@pytest.mark.parametrize("digest_format", fp.FORMATS)
def test_s3_bucket_fingerprint_equals_the_same_tree_on_disk(run, fake_csm, csm_args, aws, tmp_path, digest_format):
    _bucket(SITE)
    code, _, err = run("snapshot", "s3", "static", "--bucket", "site-bucket", "--exclude", "logs/",
                       "--digest-format", digest_format, *csm_args)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.path == "/api/v2/environments/acme/static/report/S3"
    (artifact,) = req.json["artifacts"]
    on_disk = make_tree(tmp_path / "copy", {k: v for k, v in SITE.items() if not k.startswith("logs/")})
    assert artifact["digests"] == {"site-bucket": fp.fingerprint(str(on_disk), fmt=digest_format)}
    assert artifact["creationTimestamp"] > 0


def test_s3_include_prefix_and_single_object(run, fake_csm, csm_args, aws):
    _bucket(SITE)
    assert run("snapshot", "s3", "static", "--bucket", "site-bucket", "--include", "css/", *csm_args)[0] == 0
    # One object: reported under its own name with its own SHA-256 (as the kosli CLI does).
    assert fake_csm.reports[0].json["artifacts"][0]["digests"] == {"site.css": hashlib.sha256(b"body{}").hexdigest()}


def test_s3_kosli_ignore_in_bucket(run, fake_csm, csm_args, aws, tmp_path):
    objects = dict(SITE, **{".kosli_ignore": b"logs\njs/vendor\n"})
    _bucket(objects)
    assert run("snapshot", "s3", "static", "--bucket", "site-bucket", *csm_args)[0] == 0
    on_disk = make_tree(tmp_path / "copy", objects)
    assert fake_csm.reports[0].json["artifacts"][0]["digests"]["site-bucket"] == fp.fingerprint(str(on_disk))


def test_s3_dot_dot_keys_are_rejected(run, fake_csm, csm_args, aws):
    _bucket(dict(SITE, **{"assets/../../etc/passwd": b"root:x:0:0"}))
    code, _, err = run("snapshot", "s3", "static", "--bucket", "site-bucket", *csm_args)
    assert code == 2
    assert "'assets/../../etc/passwd' is not a safe relative path" in err
    assert fake_csm.requests == []


def test_s3_missing_bucket_and_empty_selection(run, fake_csm, csm_args, aws):
    code, _, err = run("snapshot", "s3", "static", "--bucket", "nope", *csm_args)
    assert code == 2 and "NoSuchBucket" in err
    _bucket(SITE)
    code, _, err = run("snapshot", "s3", "static", "--bucket", "site-bucket", "--include", "zzz/", *csm_args)
    assert code == 2 and "no matching objects" in err
    assert fake_csm.requests == []
