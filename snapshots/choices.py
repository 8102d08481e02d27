from django.db import models


class EnvironmentType(models.TextChoices):
    """What an environment is; the ``{TYPE}`` of a report must match it (kosli spelling)."""

    K8S = "K8S", "Kubernetes"
    ECS = "ECS", "Amazon ECS"
    LAMBDA = "lambda", "AWS Lambda"
    S3 = "S3", "Amazon S3"
    DOCKER = "docker", "Docker host"
    SERVER = "server", "Server (paths)"
    AZURE_APPS = "azure-apps", "Azure apps"
    CLOUD_RUN = "cloud-run", "Google Cloud Run"
    LOGICAL = "logical", "Logical (group of environments)"


class ReportStatus(models.TextChoices):
    """What ingesting a report did. A report without an outcome row is pending."""

    PENDING = "pending", "Pending"
    SNAPSHOT = "snapshot", "New snapshot"
    UNCHANGED = "unchanged", "Unchanged (heartbeat)"
    # Only for a report stored before ingest followed acceptance order (migration 0005) whose turn had
    # already passed: every report accepted since becomes a snapshot or a heartbeat, in order.
    SUPERSEDED = "superseded", "Superseded by a newer report"


class SnapshotReason(models.TextChoices):
    REPORT = "report", "Report"
    REEVALUATION = "reevaluation", "Re-evaluation"


class Annotation(models.TextChoices):
    """An artifact's state in a snapshot versus the previous snapshot."""

    STARTED = "started", "Started"
    UNCHANGED = "unchanged", "Unchanged"
    SCALED = "scaled", "Scaled"
    EXITED = "exited", "Exited"


class EventKind(models.TextChoices):
    STARTED = "started", "Started"
    EXITED = "exited", "Exited"
    SCALED = "scaled", "Scaled"
