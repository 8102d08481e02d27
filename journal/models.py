from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from journal.choices import LeafKind


class JournalHead(models.Model):
    """The tip of an org's journal: last leaf index and hash.

    Appending locks this row (SELECT ... FOR UPDATE), which makes numbering gap-free and the chain
    linear under concurrency; apps that number their own rows per org (the audit trail's ``seq``) do it
    under the same lock. It is the only mutable journal table; verify_audit checks it against the leaves.
    """

    org = models.OneToOneField("tenants.Org", on_delete=models.CASCADE, related_name="journal_head")
    last_index = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "audit_journalhead"  # created by the audit app before the journal had its own

    def __str__(self):
        return f"{self.org} journal at {self.last_index}"


class JournalLeaf(models.Model):
    """One append-only leaf of an org's journal.

    ``payload`` is the canonical JSON that was hashed: ``{"index", "prev", "kind", "org", "time",
    "data"}``; ``leaf_hash = SHA-256(0x00 || payload)``. Because ``prev`` is inside the payload the
    leaves form a hash chain; a later Merkle tree uses the same leaf hashes.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="journal_leaves")
    index = models.BigIntegerField()
    kind = models.CharField(max_length=30, choices=LeafKind.choices)
    object_id = models.CharField(max_length=64, blank=True)
    payload = models.TextField()
    leaf_hash = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        db_table = "audit_journalleaf"  # created by the audit app before the journal had its own
        constraints = [models.UniqueConstraint(fields=["org", "index"], name="journal_leaf_unique_org_index")]
        ordering = ["org", "index"]

    def __str__(self):
        return f"{self.org}#{self.index} {self.kind}"
