from django.db import models


class ActionType(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (Standard Webhooks, signed)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email"


class Trigger(models.TextChoices):
    """What an action listens for (kosli names)."""

    ON_STARTED_ARTIFACT = "ON_STARTED_ARTIFACT", "Artifact started"
    ON_EXITED_ARTIFACT = "ON_EXITED_ARTIFACT", "Artifact exited"
    ON_SCALED_ARTIFACT = "ON_SCALED_ARTIFACT", "Artifact scaled"
    ON_ALLOWED_ARTIFACT = "ON_ALLOWED_ARTIFACT", "Allowlisted artifact started"
    ON_COMPLIANT_ENV = "ON_COMPLIANT_ENV", "Environment became compliant"
    ON_NON_COMPLIANT_ENV = "ON_NON_COMPLIANT_ENV", "Environment became non-compliant"
    ON_UNAUTHORIZED_ARTIFACT = "ON_UNAUTHORIZED_ARTIFACT", "Unauthorized artifact started"
    ON_AGENT_SILENT = "ON_AGENT_SILENT", "Agent silent (no report within the expected interval)"
    ON_VULNERABLE_ARTIFACT_STARTED = "ON_VULNERABLE_ARTIFACT_STARTED", "Artifact with a known vulnerability started"
    ON_NEW_VULNERABILITY_AFFECTS_RUNNING = ("ON_NEW_VULNERABILITY_AFFECTS_RUNNING",
                                            "New vulnerability affects a running artifact")
    ON_UNUSUAL_ACTIVITY = "ON_UNUSUAL_ACTIVITY", "Unusual activity (new network, new reporter, failed sign-ins, " \
        "change outside a change window)"
    ON_TEST = "ON_TEST", "Test send"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"
    SKIPPED = "skipped", "Skipped (action disabled)"


class MinSeverity(models.TextChoices):
    """An action's threshold for the vulnerability triggers (empty: every severity). An advisory of
    ``unknown`` severity is always at or above it: csm cannot tell it is low."""

    CRITICAL = "critical", "Critical"
    HIGH = "high", "High or worse"
    MEDIUM = "medium", "Medium or worse"
    LOW = "low", "Low or worse"
