from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.choices import ActorType, AuditAction
from csm.scoping import OrgScopedManager
from journal.models import JournalLeaf
from journal.personal import ERASED, committed


class AuditEvent(models.Model):
    """Who did what, when, from where. Append-only (database triggers) and chained in the org journal.

    ``seq`` numbers an org's audit events gap-free; ``leaf`` is the journal leaf holding the event's
    canonical form, so altering, removing or reordering an event is detected by ``verify_audit``.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="audit_events")
    seq = models.BigIntegerField()
    action = models.CharField(max_length=50, choices=AuditAction.choices)
    actor_type = models.CharField(max_length=20, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    actor_service_account = models.ForeignKey(
        "tenants.ServiceAccount", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    actor_token = models.ForeignKey(
        "tenants.ApiToken", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_label = models.CharField(max_length=255)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Which values above are a person's: JSON Pointer into canonical_data() -> journal.PersonKey id. The
    # leaf commits to them as keyed hashes (journal/personal.py). None on events recorded before.
    personal = models.JSONField(null=True, blank=True)
    # How many erasures of a person rewrote this row (the trigger allows personal columns to change only so).
    erasures = models.PositiveSmallIntegerField(default=0)
    leaf = models.OneToOneField(JournalLeaf, on_delete=models.PROTECT, related_name="audit_event")

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "seq"], name="audit_event_unique_org_seq")]
        indexes = [models.Index(fields=["org", "action", "created_at"]), models.Index(fields=["org", "created_at"])]
        ordering = ["-seq"]

    def __str__(self):
        return f"{self.org}#{self.seq} {self.action} by {self.actor_label}"

    # The columns an erasure of a person may rewrite (audit/migrations: the trigger's list).
    PERSONAL_COLUMNS = ("actor_label", "target_label", "before", "after", "ip", "user_agent")

    def canonical_data(self) -> dict:
        """The fields of the event, in clear (the leaf commits to ``journal.personal.committed`` of it)."""
        return {
            "seq": self.seq,
            "action": self.action,
            "actor": {
                "type": self.actor_type,
                "user_id": self.actor_user_id,
                "service_account_id": self.actor_service_account_id,
                "token_id": self.actor_token_id,
                "label": self.actor_label,
            },
            "target": {"type": self.target_type, "id": self.target_id, "label": self.target_label},
            "before": self.before,
            "after": self.after,
            "request_id": self.request_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "time": self.created_at,
        }

    def leaf_data(self, leaf_data: dict | None = None) -> dict:
        """What the journal leaf commits to: the canonical data, its personal values as keyed hashes."""
        return committed(self.canonical_data(), self.personal, leaf_data=leaf_data)

    def apply_canonical(self, data: dict) -> None:
        """Set the personal columns from canonical data (an erasure's rewritten copy)."""
        self.actor_label = data["actor"]["label"]
        self.target_label = data["target"]["label"]
        self.before, self.after = data["before"], data["after"]
        self.ip = data["ip"] if data["ip"] != ERASED else None
        self.user_agent = data["user_agent"]
