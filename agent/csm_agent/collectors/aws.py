"""AWS: ECS tasks (type ``ECS``), Lambda functions (``lambda``) and S3 bucket contents (``S3``).

Credentials and region come the standard boto3 way (environment, shared config, instance role).
"""

import base64
import binascii
import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from csm_agent import fingerprint as fp
from csm_agent.errors import SourceError, UsageError

log = logging.getLogger("csm_agent")
DEFAULT_CONCURRENCY = 16


def _boto3():
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise UsageError("AWS snapshots need boto3: pip install 'csm-agent[aws]'") from None
    return boto3, botocore


def client(service, region=None):
    boto3, botocore = _boto3()
    config = botocore.config.Config(retries={"max_attempts": 10, "mode": "adaptive"},
                                    max_pool_connections=DEFAULT_CONCURRENCY * 2)
    try:
        return boto3.client(service, region_name=region, config=config)
    except botocore.exceptions.BotoCoreError as exc:
        raise UsageError(f"cannot configure AWS {service} client: {exc}") from exc


def _aws_errors():
    _, botocore = _boto3()
    return (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


def _unix(value):
    """Unix seconds from a datetime or an AWS timestamp ("2024-01-02T03:04:05.000+0000", "...Z")."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return int(value.timestamp())
    m = _TIME.match(value)
    if not m:
        raise SourceError(f"unexpected AWS timestamp {value!r}")
    tz = m.group(2) or "Z"
    tz = "+00:00" if tz == "Z" else f"{tz[:3]}:{tz[-2:]}"
    return int(datetime.fromisoformat(m.group(1) + tz).timestamp())


# --- ECS ---------------------------------------------------------------------------------------------------

def _task_digests(task):
    digests = {}
    for container in task.get("containers") or []:
        image = container.get("image") or container.get("name")
        if container.get("imageDigest"):
            digests[image] = container["imageDigest"].removeprefix("sha256:")
        elif "@sha256:" in image:
            digests[image] = image.split("@sha256:", 1)[1]
        else:
            digests[image] = ""  # unknown: csm keeps the artifact and marks it unknown
    return digests


def _cluster_tasks(ecs, cluster, services):
    arns = []
    paginator = ecs.get_paginator("list_tasks")
    for service in services or [None]:
        kwargs = {"cluster": cluster, "desiredStatus": "RUNNING"}
        if service:
            kwargs["serviceName"] = service
        for page in paginator.paginate(**kwargs):
            arns.extend(page.get("taskArns") or [])
    tasks = []
    for i in range(0, len(arns), 100):
        tasks.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100]).get("tasks") or [])
    out = []
    cluster_name = cluster.rsplit("/", 1)[-1]
    for task in tasks:
        if task.get("lastStatus") != "RUNNING":
            continue
        group = task.get("group") or ""
        out.append({
            "taskArn": task["taskArn"],
            "cluster_name": cluster_name,
            "service_name": group.split(":", 1)[1] if group.startswith("service:") else "",
            "digests": _task_digests(task),
            "creationTimestamp": _unix(task.get("startedAt") or task.get("createdAt")),
        })
    return out


def collect_ecs(clusters=(), services=(), region=None):
    """Running tasks of the given clusters (all clusters when none), optionally only some services."""
    ecs = client("ecs", region)
    try:
        if not clusters:
            clusters = []
            for page in ecs.get_paginator("list_clusters").paginate():
                clusters.extend(page.get("clusterArns") or [])
        if services and len(clusters) != 1:
            raise UsageError("--services needs exactly one --cluster")
        with ThreadPoolExecutor(max_workers=min(DEFAULT_CONCURRENCY, max(1, len(clusters)))) as pool:
            per_cluster = list(pool.map(lambda c: _cluster_tasks(ecs, c, services), clusters))
    except _aws_errors() as exc:
        raise SourceError(f"AWS ECS: {exc}") from exc
    return [task for tasks in per_cluster for task in tasks]


# --- Lambda ------------------------------------------------------------------------------------------------

def lambda_fingerprint(function):
    """Zip packages: CodeSha256 is base64 of the digest -> hex. Image packages: already the image digest."""
    code = function.get("CodeSha256") or ""
    if function.get("PackageType", "Zip") == "Zip":
        try:
            raw = base64.b64decode(code, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SourceError(f"Lambda {function.get('FunctionName')}: CodeSha256 {code!r} is not base64") from exc
        return raw.hex()
    return code.removeprefix("sha256:")


def collect_lambda(function_names=(), region=None):
    aws_lambda = client("lambda", region)
    try:
        if function_names:
            with ThreadPoolExecutor(max_workers=DEFAULT_CONCURRENCY) as pool:
                functions = list(pool.map(
                    lambda name: aws_lambda.get_function_configuration(FunctionName=name), function_names))
        else:
            functions = []
            for page in aws_lambda.get_paginator("list_functions").paginate():
                functions.extend(page.get("Functions") or [])
    except _aws_errors() as exc:
        raise SourceError(f"AWS Lambda: {exc}") from exc
    return [
        {"digests": {f["FunctionName"]: lambda_fingerprint(f)}, "creationTimestamp": _unix(f.get("LastModified"))}
        for f in functions
    ]


# --- S3 ----------------------------------------------------------------------------------------------------

def safe_relative_key(key):
    """An object key as a relative path; keys that could escape the tree (``..``) are rejected."""
    parts = key.split("/")
    if key.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise SourceError(f"S3 object key {key!r} is not a safe relative path ('..', '.', or empty segments); "
                          "nothing reported")
    return key


def _selected(key, include, exclude):
    if include:
        return any(key.startswith(p.lstrip("/")) for p in include)
    if exclude:
        return not any(key.startswith(p.lstrip("/")) for p in exclude)
    return True


def collect_s3(bucket, include=(), exclude=(), digest_format=fp.CSM, region=None):
    """The bucket's selected objects as one artifact, fingerprinted like the same tree on disk.

    Objects are streamed into SHA-256 (never written to disk, so a key never becomes a local path).
    A single selected object is reported under its own name with its own digest, as the kosli CLI does.
    """
    if include and exclude:
        raise UsageError("--include and --exclude cannot be combined")
    s3 = client("s3", region)

    def object_sha(key):
        h = hashlib.sha256()
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(fp.READ_SIZE):
            h.update(chunk)
        return h.hexdigest()

    try:
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents") or []:
                key = obj["Key"]
                if key.endswith("/") or not _selected(key, include, exclude):
                    continue
                objects.append((safe_relative_key(key), obj.get("LastModified")))
        if not objects:
            raise SourceError(f"no matching objects in bucket {bucket}")
        newest = max(_unix(modified) for _, modified in objects)
        if len(objects) == 1:
            key = objects[0][0]
            return [{"digests": {key.rsplit("/", 1)[-1]: object_sha(key)}, "creationTimestamp": newest}]
        files = {key: None for key, _ in objects}
        rules = []
        if fp.IGNORE_FILE in files:
            text = s3.get_object(Bucket=bucket, Key=fp.IGNORE_FILE)["Body"].read()
            files[fp.IGNORE_FILE] = hashlib.sha256(text).hexdigest()
            rules = fp.parse_ignore_rules(text.decode("utf-8", "surrogateescape"))
        sha = fp.virtual_dir_fingerprint(files, digest_format, rules, fetch=object_sha, workers=DEFAULT_CONCURRENCY)
    except _aws_errors() as exc:
        raise SourceError(f"AWS S3 bucket {bucket}: {exc}") from exc
    return [{"digests": {bucket: sha}, "creationTimestamp": newest}]
