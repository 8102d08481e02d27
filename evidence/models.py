"""Evidence vault: flows, trails, artifacts, attestations and evidence files.

Flows and trails are configuration and may change (each change audited). Artifacts, attestations,
their evidence links, evidence files and SBOM components are append-only (database triggers, see
migrations); each of them commits to a journal leaf whose data is ``journal_data()`` so
``verify_audit`` can tell when a row was altered after the fact.
"""

import hashlib

from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from evidence.choices import AttestationType, Severity, Verification
from journal.canonical import canonical_json


class Flow(models.Model):
    """A delivery process (one service's pipeline). Its ``template`` names the attestations every trail
    and every artifact of the flow must carry: ``{"trail": [{"name", "type"}], "artifacts": [{"name",
    "attestations": [{"name", "type"}]}]}``."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    visibility = models.CharField(max_length=20, default="private")
    tags = models.JSONField(default=dict, blank=True)
    template = models.JSONField(default=dict, blank=True)
    template_yaml = models.TextField(blank=True)
    sarif_threshold = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)
    # An archived flow (kosli ``archive flow``) is hidden from default lists and refuses new trails,
    # artifacts and attestations; everything it recorded stays readable.
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="flow_unique_org_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    def name_at(self, moment) -> str:
        """The name the flow had at ``moment``: its journal leaves committed to the name of their time, so a
        rename must not make ``verify_audit`` see every earlier record as altered. Former names are loaded
        once per instance (renames are rare)."""
        former = getattr(self, "_former_names", None)
        if former is None:
            former = list(FlowName.objects.filter(flow_id=self.pk).order_by("renamed_at", "id")
                          .values_list("name", "renamed_at")) if self.pk else []
            self._former_names = former
        for name, renamed_at in former:
            if moment < renamed_at:
                return name
        return self.name

    def snapshot(self) -> dict:
        return {"name": self.name, "description": self.description, "visibility": self.visibility,
                "tags": self.tags, "template": self.template, "sarif_threshold": self.sarif_threshold}


class FlowName(models.Model):
    """A name a flow had before a rename (kosli ``rename flow``; append-only). While ``released_at`` is
    empty the old name still resolves to the flow — pipelines that still say the old name keep reporting
    into the renamed flow instead of a new empty one — until another flow is renamed to that name, which
    releases it (set once). ``renamed_at`` orders the names: a record made before it carries this name."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="former_names")
    name = models.CharField(max_length=120)
    renamed_to = models.CharField(max_length=120)
    renamed_at = models.DateTimeField(default=timezone.now)
    renamed_by = models.CharField(max_length=255, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)  # erasures of a person that rewrote the row
    released_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], condition=models.Q(released_at=None),
                                               name="flowname_unique_active_alias")]
        ordering = ["renamed_at", "id"]

    def __str__(self):
        return f"{self.name} → {self.renamed_to}"


class Trail(models.Model):
    """One run of a flow, typically named after the git commit or the build id."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="trails")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    git_commit = models.CharField(max_length=64, blank=True, db_index=True)
    git_commit_info = models.JSONField(default=dict, blank=True)
    origin_url = models.URLField(max_length=1000, blank=True)
    user_data = models.JSONField(default=dict, blank=True)
    external_urls = models.JSONField(default=dict, blank=True)
    template = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "flow", "name"], name="trail_unique_flow_name")]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.flow.name}/{self.name}"

    def effective_template(self) -> dict:
        return self.template if self.template is not None else self.flow.template

    def snapshot(self) -> dict:
        return {"name": self.name, "description": self.description, "git_commit": self.git_commit,
                "origin_url": self.origin_url, "user_data": self.user_data, "template": self.template}


class Artifact(models.Model):
    """An artifact a flow reported (append-only). One fingerprint may be reported by several flows; the
    same (flow, trail, fingerprint) is reported once."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="artifacts")
    trail = models.ForeignKey(Trail, null=True, blank=True, on_delete=models.PROTECT, related_name="artifacts")
    fingerprint = models.CharField(max_length=64, db_index=True)
    filename = models.CharField(max_length=500, blank=True)
    template_name = models.CharField(max_length=200, blank=True)
    git_commit = models.CharField(max_length=64, blank=True, db_index=True)
    git_commit_info = models.JSONField(default=dict, blank=True)
    commit_url = models.CharField(max_length=1000, blank=True)
    build_url = models.CharField(max_length=1000, blank=True)
    repo_url = models.CharField(max_length=1000, blank=True)
    repo_info = models.JSONField(default=dict, blank=True)
    external_urls = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    reported_by = models.CharField(max_length=255, blank=True)
    # Which committed values are a person's (JSON Pointer -> journal.PersonKey id; journal/personal.py); None
    # on rows recorded before. ``erasures``: how many erasures of a person rewrote the row.
    personal = models.JSONField(null=True, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    leaf = models.ForeignKey("journal.JournalLeaf", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "flow", "trail", "fingerprint"], name="artifact_unique_report"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.filename or self.template_name} {self.fingerprint[:12]}"

    def journal_data(self) -> dict:
        return {"id": self.pk, "flow": self.flow.name_at(self.created_at),
                "trail": self.trail.name if self.trail else "",
                "fingerprint": self.fingerprint, "filename": self.filename, "template_name": self.template_name,
                "git_commit": self.git_commit, "commit_url": self.commit_url, "build_url": self.build_url,
                "repo_url": self.repo_url, "reported_by": self.reported_by, "created_at": self.created_at}


class EvidenceFile(models.Model):
    """A file stored once per org, content-addressed by SHA-256 (``storage.py``). Never shared across
    orgs: the same bytes uploaded by two orgs are two rows and two stored copies. The org's retention may
    delete the stored bytes (``dropped_at`` set once); the row, its SHA-256 and its journal leaf stay."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    original_name = models.CharField(max_length=1000, blank=True)
    storage_name = models.CharField(max_length=300)
    uploaded_by = models.CharField(max_length=255, blank=True)
    # Which committed values are a person's (JSON Pointer -> journal.PersonKey id; journal/personal.py); None
    # on rows recorded before. ``erasures``: how many erasures of a person rewrote the row.
    personal = models.JSONField(null=True, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    leaf = models.ForeignKey("journal.JournalLeaf", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    dropped_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When the org's retention deleted the stored bytes")

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "sha256"], name="evidencefile_unique_org_sha")]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.original_name or 'evidence'} ({self.sha256[:12]})"

    def journal_data(self) -> dict:
        return {"id": self.pk, "sha256": self.sha256, "size": self.size, "content_type": self.content_type,
                "original_name": self.original_name, "uploaded_by": self.uploaded_by, "created_at": self.created_at}


class CustomAttestationType(models.Model):
    """An org's own attestation type: a JSON Schema the attestation data must satisfy, a compliance rule in
    the safe expression language of ``csm/lib/expressions.py`` (e.g. ``coverage >= 80 and not flaky``)
    and/or kosli's jq rules (``csm/lib/jqrules.py``: every one must evaluate to ``true``).

    Types are versioned as kosli's are: defining a type again under the same name adds a version
    (``CustomAttestationTypeVersion``, append-only); an attestation records the version that judged it.
    ``schema``, ``rule``, ``jq_rules`` and ``summary`` here are those of the latest version. An archived
    type takes no new attestations; the ones it judged keep their judgement."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    schema = models.JSONField(default=dict, blank=True)
    rule = models.TextField(blank=True)
    jq_rules = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=list, blank=True)
    archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="customtype_unique_org_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    def latest_version(self) -> "CustomAttestationTypeVersion | None":
        return self.versions.order_by("-version").first()


class CustomAttestationTypeVersion(models.Model):
    """One version of a custom attestation type, as it was defined (append-only)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    custom_type = models.ForeignKey(CustomAttestationType, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    schema = models.JSONField(default=dict, blank=True)
    rule = models.TextField(blank=True)
    jq_rules = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=255, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)  # erasures of a person that rewrote the row
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["custom_type", "version"], name="customtype_unique_version")]
        ordering = ["custom_type", "version"]

    def __str__(self):
        return f"{self.custom_type.name}@v{self.version}"


class Control(models.Model):
    """An org's named governance requirement (kosli's "control", e.g. ``RCTL-043`` "Peer review"), which
    ``decision`` attestations name. Configuration: created, updated, tagged, archived and unarchived
    through ``evidence/controls.py`` (each change audited; ``version`` counts the changes of its name,
    description and links). Archived controls take no new decisions but keep the ones they have."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    identifier = models.CharField(max_length=120)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    links = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "identifier"], name="control_unique_org_identifier")]
        ordering = ["name", "identifier"]

    def __str__(self):
        return f"{self.identifier} {self.name}"

    def snapshot(self) -> dict:
        return {"identifier": self.identifier, "name": self.name, "description": self.description,
                "links": self.links, "tags": self.tags, "archived": self.archived, "version": self.version}


class Attestation(models.Model):
    """A piece of evidence about a trail or an artifact (append-only). A newer attestation with the same
    name on the same trail/artifact supersedes the older one for compliance; the older stays visible.
    An attestation made on a trail before its artifact exists names the artifact by template name and git
    commit (or by fingerprint) and is bound (``artifact`` set once) when the artifact arrives."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="attestations")
    trail = models.ForeignKey(Trail, on_delete=models.PROTECT, related_name="attestations")
    artifact = models.ForeignKey(Artifact, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="attestations")
    artifact_fingerprint = models.CharField(max_length=64, blank=True)
    target_artifact = models.CharField(max_length=200, blank=True)
    git_commit = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=40, choices=AttestationType.choices)
    custom_type = models.ForeignKey(CustomAttestationType, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    control = models.ForeignKey(Control, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions",
                                help_text="the control a decision attestation is about")
    custom_type_version = models.ForeignKey(CustomAttestationTypeVersion, null=True, blank=True,
                                            on_delete=models.PROTECT, related_name="+")
    is_compliant = models.BooleanField()
    verification = models.CharField(max_length=12, choices=Verification.choices, default=Verification.NOT_APPLICABLE)
    problems = models.JSONField(default=list, blank=True)
    results = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    user_data = models.JSONField(default=dict, blank=True)
    external_urls = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)
    origin_url = models.CharField(max_length=1000, blank=True)
    git_commit_info = models.JSONField(default=dict, blank=True)
    repo_info = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    reported_by = models.CharField(max_length=255, blank=True)
    # Which committed values are a person's (JSON Pointer -> journal.PersonKey id; journal/personal.py); None
    # on rows recorded before. ``erasures``: how many erasures of a person rewrote the row.
    personal = models.JSONField(null=True, blank=True)
    erasures = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    leaf = models.ForeignKey("journal.JournalLeaf", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["trail", "name"]), models.Index(fields=["org", "artifact_fingerprint"])]

    def __str__(self):
        return f"{self.name} ({self.type})"

    @property
    def type_label(self) -> str:
        return self.custom_type.name if self.custom_type_id else self.type

    def journal_data(self) -> dict:
        """What the journal leaf commits to. The artifact binding is settable once later, so it is not here:
        the leaf records what was attested and to what it was addressed."""
        files = [{"name": link.name, "sha256": link.evidence_file.sha256}
                 for link in self.evidence_links.select_related("evidence_file").order_by("name", "id")]
        return {"id": self.pk, "flow": self.flow.name_at(self.created_at), "trail": self.trail.name, "name": self.name,
                "type": self.type_label, "is_compliant": self.is_compliant, "verification": self.verification,
                "artifact_fingerprint": self.artifact_fingerprint, "target_artifact": self.target_artifact,
                "git_commit": self.git_commit, "reason": self.reason, "reported_by": self.reported_by,
                "results_sha256": _digest(self.results), "evidence": files, "created_at": self.created_at,
                **({"control": self.control.identifier} if self.control_id else {})}


def _digest(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


class AttestationEvidence(models.Model):
    """One evidence file attached to an attestation, under the (sanitized) name it had in the upload."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    attestation = models.ForeignKey(Attestation, on_delete=models.PROTECT, related_name="evidence_links")
    evidence_file = models.ForeignKey(EvidenceFile, on_delete=models.PROTECT, related_name="links")
    name = models.CharField(max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class SbomComponent(models.Model):
    """A component listed by an SBOM attestation, kept queryable by name, version and purl."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    attestation = models.ForeignKey(Attestation, on_delete=models.PROTECT, related_name="components")
    name = models.CharField(max_length=500)
    version = models.CharField(max_length=200, blank=True)
    purl = models.CharField(max_length=1000, blank=True)
    kind = models.CharField(max_length=50, blank=True)
    licenses = models.CharField(max_length=1000, blank=True, default="",
                                help_text="SPDX ids, names or expressions the SBOM states, joined by ', '")

    objects = OrgScopedManager()

    class Meta:
        ordering = ["name", "version"]
        indexes = [models.Index(fields=["org", "name"]), models.Index(fields=["org", "purl"])]

    def __str__(self):
        return f"{self.name}@{self.version}"


class Repository(models.Model):
    """A source repository csm has seen in the git provenance of what it received: the ``repo_info`` of a
    trail, artifact or attestation (kosli's ``gitview.GitRepoInfo``: url, name, id, provider) or, failing
    that, an artifact's ``repo_url``. As in kosli, a repository is the provider's id (``external_id``) at a
    provider: two repositories may share a name (a fork recreated, another server of the same provider).
    Without a provider id (a bare ``repo_url``) it is the name at the provider. Tags are the org's own
    (``kosli tag repo``)."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=300)
    provider = models.CharField(max_length=40)
    url = models.CharField(max_length=1000, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "provider", "external_id"], condition=~models.Q(external_id=""),
                                    name="repository_unique_external_id"),
            models.UniqueConstraint(fields=["org", "provider", "name"], condition=models.Q(external_id=""),
                                    name="repository_unique_unidentified_name"),
        ]
        indexes = [models.Index(fields=["org", "name"])]
        ordering = ["name", "provider", "id"]
        verbose_name_plural = "repositories"

    def __str__(self):
        return f"{self.name} ({self.provider})"

    def snapshot(self) -> dict:
        return {"name": self.name, "provider": self.provider, "url": self.url, "external_id": self.external_id,
                "tags": self.tags}


class RepositorySighting(models.Model):
    """Where a repository was seen (append-only): the trail, artifact or attestation whose provenance named
    it, with the commit. A trail is sighted once per repository; every artifact and attestation once."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="sightings")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="+")
    trail = models.ForeignKey(Trail, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    artifact = models.ForeignKey(Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    attestation = models.ForeignKey(Attestation, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    git_commit = models.CharField(max_length=64, blank=True)
    commit_url = models.CharField(max_length=1000, blank=True)
    seen_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-seen_at", "-id"]
        indexes = [models.Index(fields=["repository", "seen_at"]), models.Index(fields=["trail"]),
                   models.Index(fields=["artifact"])]

    def __str__(self):
        return f"{self.repository.name} @ {self.git_commit[:12] or '?'}"
