"""Environment policies, allowlists and compliance evaluation.

- ``Policy`` is a name; its content lives in ``PolicyVersion`` rows (append-only: every update is a
  new version, old versions stay readable).
- ``PolicyAttachment`` says which policies apply to which environment (attach / detach are audited).
- ``AllowlistEntry`` makes one artifact compliant in one environment, optionally until a time.
- ``SnapshotCompliance`` is the evaluation of one snapshot (append-only): the snapshot's compliance,
  the policies applied and the counts, one row per snapshot whatever the environment's size. The
  series of these rows per environment is the environment's compliance over time; ``changed`` marks
  the snapshots where it flipped.
- ``ComplianceDecision`` is one artifact's decision over a range of snapshots, stored like snapshot
  entries: valid in snapshots ``from_index <= N < to_index`` (``to_index`` NULL: still in force). A
  row is written only when an artifact's decision changes (its evidence, the allowlist or a policy
  version behind it changed) or it starts running, so storage grows with change, not with size.
- A policy's ``format`` is ``yaml`` (kosli's environment policy v1) or ``rego`` (a ``package policy``
  module with an ``allow`` rule, as ``kosli evaluate`` runs it; see ``policies.rego``). Both are
  versioned and attached the same way; a version's ``sha256`` names its exact source.
- ``FlowPolicyAttachment`` makes a Rego policy a gate of a flow's trails: each trail is evaluated when
  its evidence changes and the decision recorded on the trail as an attestation.
- ``PolicyInput`` keeps every Rego input a stored decision was taken on, by its SHA-256, so an
  auditor can fetch it and re-run the decision (``opa eval`` / ``kosli evaluate input``).
- ``DecisionRecheck`` marks an artifact of an environment whose evidence changed since the last
  evaluation: the next evaluation decides it again (and consumes the mark).
"""

import hashlib

from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from tenants.models import slug_validator


class PolicyFormat(models.TextChoices):
    YAML = "yaml", "YAML (kosli environment policy v1)"
    REGO = "rego", "Rego (package policy, as kosli evaluate)"


class Policy(models.Model):
    """A named environment policy of an org (kosli ``type: env``); content is in its versions. The
    format is chosen when the policy is created and kept by every version."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100, validators=[slug_validator])
    description = models.CharField(max_length=1000, blank=True)
    type = models.CharField(max_length=20, default="env")
    format = models.CharField(max_length=10, choices=PolicyFormat.choices, default=PolicyFormat.YAML)
    latest_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="policy_unique_org_name")]
        ordering = ["org", "name"]

    def __str__(self):
        return self.name


class PolicyVersion(models.Model):
    """Version N of a policy: the YAML as uploaded and its validated, normalized document (append-only)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.TextField()
    document = models.JSONField()
    comment = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=255, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)  # erasures of a person that rewrote the row

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "version"], name="policy_version_unique")]
        ordering = ["policy", "-version"]

    def __str__(self):
        return f"{self.policy.name} v{self.version}"

    @property
    def sha256(self) -> str:
        """SHA-256 of the source as uploaded (UTF-8): the version's hash named by its decisions."""
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


class PolicyAttachment(models.Model):
    """Policy P applies to environment E (its latest version, always)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="attachments")
    environment = models.ForeignKey("snapshots.Environment", on_delete=models.PROTECT, related_name="+")
    attached_at = models.DateTimeField(default=timezone.now)
    attached_by = models.CharField(max_length=255, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "environment"], name="policy_attachment_unique")
        ]
        ordering = ["environment", "policy__name"]

    def __str__(self):
        return f"{self.policy.name} on {self.environment.name}"


class FlowPolicyAttachment(models.Model):
    """Rego policy P gates the trails of flow F (its latest version, always)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="flow_attachments")
    flow = models.ForeignKey("evidence.Flow", on_delete=models.PROTECT, related_name="+")
    attached_at = models.DateTimeField(default=timezone.now)
    attached_by = models.CharField(max_length=255, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "flow"], name="flow_policy_attachment_unique")]
        ordering = ["flow", "policy__name"]

    def __str__(self):
        return f"{self.policy.name} gates {self.flow.name}"


class PolicyInput(models.Model):
    """A Rego input a stored decision was taken on, by the SHA-256 of its canonical JSON (append-only,
    one row per distinct input of an org)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64)
    document = models.JSONField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "sha256"], name="policy_input_unique")]

    def __str__(self):
        return f"input {self.sha256[:12]}"


class AllowlistEntry(models.Model):
    """Artifact (fingerprint) allowed to run in an environment, with a reason, until ``expires_at``.

    Removing an entry sets ``removed_at`` (kept for the record)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("snapshots.Environment", on_delete=models.PROTECT, related_name="+")
    fingerprint = models.CharField(max_length=64)
    artifact_name = models.CharField(max_length=1000, blank=True)
    reason = models.CharField(max_length=2000)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=255, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.CharField(max_length=255, blank=True)
    expiry_handled_at = models.DateTimeField(
        null=True, blank=True, help_text="When the environment was re-evaluated after this entry expired"
    )

    objects = OrgScopedManager()

    class Meta:
        indexes = [models.Index(fields=["environment", "fingerprint"])]
        ordering = ["environment", "-created_at"]

    def __str__(self):
        return f"{self.fingerprint[:12]} allowed in {self.environment_id}"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.removed_at is None and (self.expires_at is None or self.expires_at > now)

    def as_decision(self) -> dict:
        expires = self.expires_at.isoformat() if self.expires_at else None
        return {"id": self.pk, "reason": self.reason, "expires_at": expires}


class SnapshotCompliance(models.Model):
    """The compliance evaluation of one snapshot (append-only): O(1) per snapshot.

    ``applied_policies`` is ``[{name, version}]``; the per-artifact decisions are the
    ``ComplianceDecision`` ranges covering this snapshot (see ``artifacts``). ``compliant`` is None when no
    policy applies (unknown: never counted as compliant). ``changed`` is True when ``compliant`` differs
    from the previous evaluation of the environment, None being a state of its own (or this is the first
    one)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("snapshots.Environment", on_delete=models.PROTECT, related_name="+")
    snapshot = models.OneToOneField("snapshots.Snapshot", on_delete=models.PROTECT, related_name="compliance")
    snapshot_index = models.PositiveIntegerField()
    snapshot_at = models.DateTimeField()
    # True / False when a policy applies; None ("unknown") when none does: never compliant by default.
    compliant = models.BooleanField(null=True)
    changed = models.BooleanField(default=False)
    applied_policies = models.JSONField(default=list)
    compliant_count = models.PositiveIntegerField(default=0)
    non_compliant_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0)
    # Running artifacts without provenance in the org and without an allowlist entry, when the
    # environment requires authorization (0 when it is relaxed).
    unauthorized_count = models.PositiveIntegerField(default=0)
    evaluated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        indexes = [models.Index(fields=["environment", "snapshot_index"])]
        ordering = ["environment", "snapshot_index"]

    def __str__(self):
        state = {True: "compliant", False: "non-compliant", None: "unknown"}[self.compliant]
        return f"{self.environment_id}#{self.snapshot_index}: {state}"

    @property
    def artifacts(self) -> list[dict]:
        """Every artifact's decision in this snapshot, ``[{name, fingerprint, provenance, status,
        compliant, allowlisted, allowlist_entry, has_provenance, policy_decisions,
        reasons_for_incompliance}]`` sorted by name then fingerprint; ``[]`` when the evaluation is
        compact (no policy and nothing allowlisted: every artifact's compliance unknown)."""
        if not hasattr(self, "_artifacts"):
            self._artifacts = decisions_at(self.environment_id, self.snapshot_index)
        return self._artifacts

    def artifacts_by_fingerprint(self) -> dict[str, dict]:
        return {item["fingerprint"]: item for item in self.artifacts if item.get("fingerprint")}


class ComplianceDecision(models.Model):
    """One artifact's compliance decision in an environment over a range of snapshots (append-only).

    Valid in snapshots ``from_index <= N < to_index`` (``to_index`` NULL: still in force); ``to_index``
    may be set exactly once (closing the range), as for ``snapshots.SnapshotEntry``. ``decision`` is the
    whole answer (``{name, fingerprint, provenance, status, compliant, allowlisted, allowlist_entry,
    has_provenance, policy_decisions, reasons_for_incompliance}``); ``status`` / ``compliant`` /
    ``allowlisted`` repeat it for counting and filtering. ``basis`` says what it was decided against:
    ``{"policies": [{name, version}], "allowlist_entry": id or null}``."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("snapshots.Environment", on_delete=models.PROTECT, related_name="+")
    name = models.TextField()
    fingerprint = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20)
    compliant = models.BooleanField(null=True)  # None: no policy applies (allowlisted, compliance unknown)
    allowlisted = models.BooleanField(default=False)
    decision = models.JSONField()
    basis = models.JSONField(default=dict)
    from_index = models.PositiveIntegerField()
    to_index = models.PositiveIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        indexes = [
            models.Index(fields=["environment", "from_index", "to_index"], name="decision_env_range"),
            models.Index(fields=["environment", "to_index"], name="decision_env_to"),
            models.Index(fields=["environment", "fingerprint"], name="decision_env_fp"),
            # the allowlisted decisions in force: re-decided at every evaluation, found without a scan
            models.Index(fields=["environment"], condition=models.Q(allowlisted=True, to_index=None),
                         name="decision_env_allowlisted"),
        ]

    def __str__(self):
        return f"{self.name}@{self.fingerprint[:12]} {self.status} [{self.from_index}, {self.to_index or '…'})"


class DecisionRecheck(models.Model):
    """Evidence about ``fingerprint`` changed while it runs in ``environment``: its decision must be
    taken again at the next evaluation, which deletes the mark (a work list, not history: the
    evidence itself and the decisions are the record)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("snapshots.Environment", on_delete=models.PROTECT, related_name="+")
    fingerprint = models.CharField(max_length=64)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        indexes = [models.Index(fields=["environment", "fingerprint"], name="recheck_env_fp")]

    def __str__(self):
        return f"recheck {self.fingerprint[:12]} in {self.environment_id}"


def decisions_in_force(environment_id: int, index: int):
    """The ComplianceDecision rows in force in snapshot ``index`` of an environment (a queryset)."""
    return ComplianceDecision.objects.filter(environment_id=environment_id, from_index__lte=index).filter(
        models.Q(to_index__isnull=True) | models.Q(to_index__gt=index))


def decisions_at(environment_id: int, index: int, fingerprints=None) -> list[dict]:
    """The decisions in force in snapshot ``index`` of an environment, sorted by name then fingerprint
    (the order of the snapshot's artifacts); only those of ``fingerprints`` when given (a page of them)."""
    rows = decisions_in_force(environment_id, index)
    if fingerprints is not None:
        rows = rows.filter(fingerprint__in=list(fingerprints))
    decisions = list(rows.values_list("decision", flat=True))
    decisions.sort(key=lambda d: (d["name"], d["fingerprint"]))
    return decisions
