from django.conf import settings
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


class JournalNode(models.Model):
    """A stored hash of a *full* subtree of an org's Merkle tree (append-only).

    ``(level, index)`` names the subtree of ``2**level`` leaves starting at Merkle leaf
    ``index * 2**level`` (0-based: journal leaf #1 is Merkle leaf 0); level 0 is the leaves' own
    ``leaf_hash`` and is not repeated here. A full subtree never changes once the tree covers it, so
    roots, proofs and tiles are read from these rows in O(log n) (journal/merkle.py). Written only by the
    integrator (journal.services.publish_checkpoint), after the leaves, in batches.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "level", "index"], name="journal_node_unique")]

    def __str__(self):
        return f"{self.org_id} node {self.level}/{self.index}"


class JournalTree(models.Model):
    """How far an org's Merkle tree is integrated: its size, root and origin line.

    Mutable like the head, and the integrator's lock (SELECT ... FOR UPDATE) so appends never wait for
    it. ``origin`` is fixed at the first checkpoint (``<host>/api/v2/journal/<org>``) and never changes,
    whatever the org or the server is renamed to: verifiers pin it. Checked by verify_audit against the
    nodes and the checkpoints."""

    org = models.OneToOneField("tenants.Org", on_delete=models.CASCADE, related_name="journal_tree")
    origin = models.CharField(max_length=300, blank=True)
    size = models.BigIntegerField(default=0)
    root_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.origin or self.org_id} tree of {self.size}"


class JournalCheckpoint(models.Model):
    """A signed checkpoint of an org's journal (append-only): a C2SP ``tlog-checkpoint`` note
    (origin, tree size, base64 root) signed as a C2SP ``signed-note`` with Ed25519.

    ``note`` is the exact text served; ``cosignatures`` are witness cosignature lines added later
    (``JournalCosignature``), ``timestamp_token`` an RFC 3161 token over the note when a TSA is
    configured (settable once). Key rotation signs the current size again with the new key, so one size may
    have several checkpoints."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    note = models.TextField()
    key_name = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)
    # RFC 3161 TimeStampResp (DER) from CSM_JOURNAL_TSA_URL over the note's SHA-256, when configured.
    timestamp_token = models.BinaryField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        indexes = [models.Index(fields=["org", "size"], name="journal_checkpoint_size")]
        ordering = ["org", "id"]

    def __str__(self):
        return f"{self.org_id} checkpoint {self.size} ({self.key_name})"


class JournalCosignature(models.Model):
    """A witness's C2SP ``tlog-cosignature`` of a checkpoint (append-only): ``line`` is the signature
    line served after the checkpoint's own, verified against a configured witness key before it is
    stored."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    checkpoint = models.ForeignKey(JournalCheckpoint, on_delete=models.PROTECT, related_name="cosignatures")
    witness = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)
    timestamp = models.BigIntegerField()
    line = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["checkpoint", "witness", "key_id"],
                                               name="journal_cosignature_once")]

    def __str__(self):
        return f"{self.witness} cosigned {self.checkpoint_id}"


class JournalKey(models.Model):
    """A public key csm has signed checkpoints with: the published key history (not tenant data; every
    org's checkpoints are signed by the server's key). Never holds a private key: that lives in the file
    named by ``CSM_JOURNAL_KEY_FILE``."""

    name = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)
    verifier = models.CharField(max_length=300, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.verifier


class PersonKey(models.Model):
    """A person's key in one org. Personal values (a name, an email, an IP address) that a journal leaf
    records are committed to as HMAC-SHA256 under it (journal/personal.py), never in clear; erasing the
    person destroys the key and the email it was found by, so the commitments can no longer be linked to
    anyone while the leaves, their hashes and every checkpoint stay as they were.

    A person is a user of csm (``user``) or an email address no user has (``email``: an invitation not
    accepted, a sign-in attempt). Mutable: it holds no history, only the key."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                             db_constraint=False, related_name="+")
    email = models.CharField(max_length=254, blank=True, help_text="Lower case; only for a person who is no user")
    key = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    erased_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], condition=models.Q(user__isnull=False),
                                    name="person_key_unique_user"),
            models.UniqueConstraint(fields=["org", "email"],
                                    condition=models.Q(user__isnull=True) & ~models.Q(email=""),
                                    name="person_key_unique_email"),
        ]

    def __str__(self):
        return f"person #{self.pk} of {self.org_id}{' (erased)' if self.erased_at else ''}"


class PersonalRef(models.Model):
    """A leaf that commits to a person's values: the index an erasure walks (one row per person and leaf)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(PersonKey, on_delete=models.PROTECT, related_name="refs")
    # No database constraint: an index, not a record; verify_audit, not this table, notices a leaf removed.
    leaf = models.ForeignKey(JournalLeaf, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["person", "leaf"], name="personal_ref_unique")]

    def __str__(self):
        return f"{self.person_id} in leaf {self.leaf_id}"
