"""Snapshot journal models.

Storage model (see docs/snapshots.md): a ``Report`` is the durable outbox row of what an agent sent;
ingesting it either moves the environment's heartbeat (nothing changed) or appends a ``Snapshot``.
What runs in snapshot N is the set of ``SnapshotEntry`` rows whose validity range
``[from_index, to_index)`` contains N (``to_index`` NULL = still running). A snapshot in which k of N
artifacts changed closes k entries and opens k, so storage grows with change, not with size.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from snapshots.choices import EnvironmentType, EventKind, ReportStatus, SnapshotReason

# An agent expected to report less often than once a year is a typo; 2**63 was an OverflowError (a 500).
MAX_REPORT_INTERVAL_SECONDS = 365 * 86400

env_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
    "Use 1-100 letters, digits, dots, underscores and hyphens, starting with a letter or digit.",
)


class Environment(models.Model):
    """A place where software runs (a cluster, an ECS service, a server...), reported by agents.

    Mutable (the only mutable table of the journal): its row is the per-environment lock that
    serializes ingest, and it carries denormalized "latest" fields so lists never scan snapshots.
    A ``logical`` environment groups other environments and receives no reports.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="environments")
    name = models.CharField(max_length=100, validators=[env_name_validator])
    type = models.CharField(max_length=20, choices=EnvironmentType.choices)
    description = models.CharField(max_length=1000, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    include_scaling = models.BooleanField(default=False)
    included_environments = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="groups")
    archived = models.BooleanField(default=False)
    # Secure by default: an artifact running here must be authorized (provenance in this org, or an
    # allowlist entry). An org admin may relax it (a sandbox) through
    # snapshots.services.environments.set_environment_authorization, which records who and why.
    require_authorization = models.BooleanField(
        default=True, help_text="Artifacts without provenance or an allowlist entry are unauthorized here.")
    expected_report_interval_seconds = models.PositiveIntegerField(
        default=3600, help_text="Stale / agent silent when no report arrived for this long.",
        validators=[MinValueValidator(60), MaxValueValidator(MAX_REPORT_INTERVAL_SECONDS)],
    )
    # Change windows (snapshots/change_windows.py): when changes are expected, in ``change_window_tz``. Empty:
    # no windows, nothing is ever outside. A change outside every window is flagged as unusual activity.
    change_windows = models.JSONField(default=list, blank=True)
    change_window_tz = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(default=timezone.now)
    last_report_at = models.DateTimeField(null=True, blank=True)
    last_ingested_received_at = models.DateTimeField(null=True, blank=True)
    # Reports are ingested strictly in acceptance order (report id: acceptance is serialized per
    # environment, so ids are commit order): every report of this environment up to this id has an
    # outcome, every later one is pending. The next report to ingest is the first one above it.
    last_ingested_report_id = models.BigIntegerField(default=0)
    # SHA-256 of the last ingested body when the stored state equals it exactly: a byte-identical
    # report (the common heartbeat) is then "unchanged" without parsing it.
    last_ingested_sha256 = models.CharField(max_length=64, blank=True)
    last_snapshot_index = models.PositiveIntegerField(default=0)
    last_snapshot_at = models.DateTimeField(null=True, blank=True)
    last_snapshot_hash = models.CharField(max_length=64, blank=True)
    current_artifact_count = models.PositiveIntegerField(default=0)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="environment_unique_org_name")]
        ordering = ["org", "name"]

    def __str__(self):
        return f"{self.org}/{self.name}"

    @property
    def is_logical(self) -> bool:
        return self.type == EnvironmentType.LOGICAL

    def name_at(self, index: int) -> str:
        """The name the environment had when its snapshot ``index`` was recorded: a snapshot's hash and
        journal leaf commit to that name, so a rename (kosli ``rename environment``) must not make
        ``verify_audit`` see every earlier snapshot as altered. Former names are loaded once per instance."""
        former = getattr(self, "_former_names", None)
        if former is None:
            former = list(EnvironmentName.objects.filter(environment_id=self.pk).order_by("until_index", "id")
                          .values_list("name", "until_index")) if self.pk else []
            self._former_names = former
        for name, until_index in former:
            if index <= until_index:
                return name
        return self.name

    def is_stale(self, now=None) -> bool:
        """True when no report arrived within the expected interval (a silent agent)."""
        if self.is_logical:
            return False
        reference = self.last_report_at or self.created_at
        return ((now or timezone.now()) - reference).total_seconds() > self.expected_report_interval_seconds


class EnvironmentName(models.Model):
    """A name an environment had before a rename (append-only). Snapshots up to ``until_index`` were
    recorded under it. While ``released_at`` is empty the old name still resolves to the environment: an
    agent still reporting under it keeps reporting into the renamed environment (never into a new, empty
    one), until another environment is renamed to that name, which releases it (set once)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="former_names")
    name = models.CharField(max_length=100)
    renamed_to = models.CharField(max_length=100)
    until_index = models.PositiveIntegerField(help_text="The last snapshot recorded under this name (0: none)")
    renamed_at = models.DateTimeField(default=timezone.now)
    renamed_by = models.CharField(max_length=255, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)  # erasures of a person that rewrote the row
    released_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], condition=models.Q(released_at=None),
                                               name="environmentname_unique_active_alias")]
        ordering = ["renamed_at", "id"]

    def __str__(self):
        return f"{self.name} → {self.renamed_to}"


class Report(models.Model):
    """What an agent sent, stored before the API answers: the durable outbox of ingest (append-only).

    ``payload`` is the exact (decompressed) JSON body; ``payload_sha256`` its hash. The org's retention may
    empty ``payload`` of an ingested report once (``payload_dropped_at``; the trigger allows nothing else);
    hash and size stay. Its outcome lives in
    ``ReportOutcome`` (also append-only); a report without an outcome is pending and will be
    (re-)enqueued by the sweeper until a worker ingests it. Reports of one environment are accepted
    one at a time, so their ids are their acceptance (and commit) order, the order of ingest.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="reports")
    type = models.CharField(max_length=20, choices=EnvironmentType.choices)
    payload = models.BinaryField()
    payload_sha256 = models.CharField(max_length=64)
    payload_bytes = models.BigIntegerField()
    payload_dropped_at = models.DateTimeField(null=True, blank=True,
                                              help_text="When retention emptied payload (hash and size kept)")
    entry_count = models.PositiveIntegerField(help_text="Entries in the report's artifacts list")
    idempotency_key = models.CharField(max_length=255, blank=True)
    token = models.ForeignKey(
        "tenants.ApiToken", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    service_account = models.ForeignKey(
        "tenants.ServiceAccount", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    reporter_label = models.CharField(max_length=255)
    actor = models.JSONField(help_text="The AuditContext of the reporter, for the worker's audit event")
    # How many erasures of a person rewrote reporter_label / actor (the trigger allows them only so).
    erasures = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "environment", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="report_unique_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["environment", "received_at"]),
            # Ingest finds an environment's next pending report: the first id above its last ingested one.
            models.Index(fields=["environment", "id"], name="report_env_sequence"),
            # Retention finds an org's old bodies still stored; dropped ones leave this index.
            models.Index(fields=["org", "received_at"], name="report_body_kept",
                         condition=models.Q(payload_dropped_at__isnull=True)),
        ]

    def __str__(self):
        return f"report {self.pk} to {self.environment_id}"


class ReportOutcome(models.Model):
    """What ingesting a report did (append-only, at most one per report: the idempotency marker)."""

    report = models.OneToOneField(Report, on_delete=models.PROTECT, related_name="outcome")
    status = models.CharField(max_length=20, choices=ReportStatus.choices)
    snapshot = models.ForeignKey("Snapshot", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"report {self.report_id}: {self.status}"


class Snapshot(models.Model):
    """Snapshot N of an environment: numbered gap-free from 1, immutable, hash-chained.

    ``hash`` is SHA-256 over the canonical JSON of (environment, index, time, artifact-set digest,
    previous snapshot hash); the same data is committed to the org journal as leaf ``leaf``.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="snapshots")
    index = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    reason = models.CharField(max_length=20, choices=SnapshotReason.choices, default=SnapshotReason.REPORT)
    report = models.OneToOneField(Report, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reporter_label = models.CharField(max_length=255, blank=True)
    token_id = models.BigIntegerField(null=True, blank=True)
    # How many erasures of a person rewrote reporter_label (not in the leaf; the trigger allows it only so).
    erasures = models.PositiveSmallIntegerField(default=0)
    artifact_count = models.PositiveIntegerField()
    instance_count = models.PositiveIntegerField()
    started_count = models.PositiveIntegerField(default=0)
    exited_count = models.PositiveIntegerField(default=0)
    scaled_count = models.PositiveIntegerField(default=0)
    artifacts_digest = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    leaf = models.OneToOneField("journal.JournalLeaf", on_delete=models.PROTECT, related_name="+")
    # The change happened outside every change window of the environment (as configured then); set when
    # the snapshot is made, never later. Its audit event (snapshot.created) says so too.
    outside_change_window = models.BooleanField(default=False)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "index"], name="snapshot_unique_env_index")]
        indexes = [models.Index(fields=["environment", "created_at"])]
        ordering = ["environment", "index"]

    def __str__(self):
        return f"{self.environment.name}#{self.index}"

    def journal_data(self) -> dict:
        """What the snapshot's journal leaf commits to (verify_audit recomputes it from the row)."""
        environment = self.environment
        return {
            "environment": environment.name_at(self.index), "environment_id": environment.pk, "index": self.index,
            "time": self.created_at, "reason": self.reason, "report_id": self.report_id,
            "artifact_count": self.artifact_count, "instance_count": self.instance_count,
            "changes": {"started": self.started_count, "exited": self.exited_count, "scaled": self.scaled_count},
            "artifacts_digest": self.artifacts_digest, "prev": self.prev_hash,
        }

    @property
    def change_count(self) -> int:
        return self.started_count + self.exited_count + self.scaled_count


class SnapshotEntry(models.Model):
    """One artifact (name, fingerprint) running in an environment over a range of snapshots.

    Valid in snapshots ``from_index <= N < to_index`` (``to_index`` NULL: still running). Append-only;
    ``to_index`` may be set exactly once (closing the range). ``change`` says how it entered:
    ``started`` or ``scaled`` (same artifact, other instance count). ``running_since`` is carried over
    when an artifact scales. ``fingerprint`` is "" when the agent could not tell (unknown).
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    name = models.TextField()
    fingerprint = models.CharField(max_length=64, blank=True)
    instance_count = models.PositiveIntegerField()
    # JSON array text, written and read whole (never queried inside): plain text skips PostgreSQL's jsonb
    # parse on write, which for a sidecar running in 150,000 pods is most of the ingest time.
    instances = models.TextField(default="[]")
    running_since = models.DateTimeField()
    from_index = models.PositiveIntegerField()
    to_index = models.PositiveIntegerField(null=True, blank=True)
    change = models.CharField(max_length=20)

    objects = OrgScopedManager()

    class Meta:
        indexes = [
            models.Index(fields=["environment", "from_index", "to_index"], name="entry_env_range"),
            models.Index(fields=["environment", "to_index"], name="entry_env_to"),
            models.Index(fields=["org", "fingerprint"], name="entry_org_fp",
                         opclasses=["int8_ops", "text_pattern_ops"]),
        ]

    def __str__(self):
        return f"{self.name}@{self.fingerprint[:12]} [{self.from_index}, {self.to_index or '…'})"


class SnapshotEvent(models.Model):
    """An artifact started, exited or scaled in an environment at a snapshot (append-only log)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="events")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="events")
    snapshot_index = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    name = models.TextField()
    fingerprint = models.CharField(max_length=64, blank=True)
    old_count = models.PositiveIntegerField(default=0)
    new_count = models.PositiveIntegerField(default=0)

    objects = OrgScopedManager()

    class Meta:
        indexes = [
            models.Index(fields=["environment", "snapshot_index"]),
            models.Index(fields=["environment", "created_at"]),
        ]
        ordering = ["environment", "snapshot_index", "id"]

    def __str__(self):
        return f"{self.environment_id}#{self.snapshot_index} {self.kind} {self.name}"
