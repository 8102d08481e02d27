"""Alert actions (webhook, Slack, email), what they listen for, and every delivery and attempt.

- ``Action``: a target of an org, scoped to environments (by name; empty = all) and triggers (the
  vulnerability triggers also by ``min_severity``). A
  webhook's signing secret is stored encrypted (it must be recoverable to sign) and shown once.
- ``Delivery``: one alert event for one action. Its ``event_id`` is the ``webhook-id`` header, the
  same on every retry, so receivers can drop duplicates. The exact body is kept, so retries and
  redeliveries send the same bytes.
- ``DeliveryAttempt``: one HTTP request / email send (append-only): status, latency, response snippet.
- ``AgentSilence``: remembers that an environment's silence was already alerted, so one silence
  raises one alert.
"""

from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager

from .choices import ActionType, DeliveryStatus, MinSeverity


class Action(models.Model):
    """An alert target of an org: where to send which events of which environments."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=ActionType.choices)
    url = models.URLField(max_length=2000, blank=True)
    email = models.EmailField(blank=True)
    environments = models.JSONField(default=list, blank=True, help_text="Environment names; empty: all")
    triggers = models.JSONField(default=list)
    min_severity = models.CharField(
        max_length=10, blank=True, choices=MinSeverity.choices,
        help_text="Vulnerability triggers only: name vulnerabilities of at least this severity (unknown always "
                  "counts); empty: every severity")
    secret_encrypted = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted actions keep their delivery log")

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], condition=models.Q(deleted_at=None),
                                               name="action_unique_org_name")]
        ordering = ["org", "name"]

    def __str__(self):
        return self.name

    @property
    def target(self) -> str:
        return self.email if self.type == ActionType.EMAIL else self.url

    def listens_to(self, trigger: str, environment_name: str) -> bool:
        return self.enabled and self.deleted_at is None and trigger in self.triggers and (
            not self.environments or environment_name in self.environments
        )


class Delivery(models.Model):
    """One alert event for one action, retried until delivered, given up, or the action is disabled."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="deliveries")
    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=40)
    environment_name = models.CharField(max_length=100, blank=True)
    snapshot_index = models.PositiveIntegerField(null=True, blank=True)
    description = models.CharField(max_length=1000, blank=True)
    body = models.TextField(help_text="The exact body sent on every attempt")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    source_at = models.DateTimeField(
        null=True, blank=True, help_text="When the change that raised the alert was reported (for latency)"
    )

    objects = OrgScopedManager()

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["action", "-created_at"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.event_type} → {self.action_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try of a delivery (append-only): what was answered and how long it took."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField()
    latency_ms = models.PositiveIntegerField(default=0)
    response_snippet = models.CharField(max_length=1000, blank=True)
    error = models.CharField(max_length=1000, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_unique")]
        ordering = ["delivery", "number"]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"


class AgentSilence(models.Model):
    """An environment whose agent fell silent: alerted once per silence (keyed by its start)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("snapshots.Environment", on_delete=models.CASCADE, related_name="+")
    silent_since = models.DateTimeField(help_text="The last report (or the creation) of the environment")
    detected_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "silent_since"], name="agent_silence_once"),
        ]
        ordering = ["-detected_at"]

    def __str__(self):
        return f"{self.environment_id} silent since {self.silent_since}"
