"""Vulnerability data and its matches.

**Global** (not per org): ``Advisory`` (one OSV record as imported), ``AdvisoryAlias`` (every id the
record is known by: its own id, its ``aliases`` and ``upstream``) and ``AffectedPackage`` (one
``affected[]`` entry of a record, keyed by purl type and normalized package name). An advisory is updated
in place when its source publishes a newer ``modified``; ``withdrawn`` is set when the source withdraws
it. Advisories that name each other as aliases share a ``group_id`` (the CVE id when any member has one,
else the GHSA id, else the smallest id): a vulnerability is asked for by any alias and answered for the
whole group.

**Per org**: ``ComponentPackage`` (one SBOM component of an artifact, parsed once from its purl and
indexed by ``package_key``), ``VexStatement`` (one statement of a ``vex`` attestation about an artifact)
and ``VulnerabilityMatch`` (an advisory affects a component of an artifact). Matches are derived data:
re-matching rewrites them. When an affected artifact ran, and where, is never copied here; it is read
from the snapshot journal (``SnapshotEntry`` ranges) by ``exposure.py``.
"""

from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from csm.scoping import OrgScopedManager

from .choices import AliasKind, VexStatus, VulnSeverity


class Advisory(models.Model):
    """One OSV record. ``record`` is the document as imported; ``content_sha256`` (SHA-256 of its canonical
    JSON) lets an import skip records that did not change."""

    osv_id = models.CharField(max_length=200, unique=True)
    group_id = models.CharField(max_length=200, db_index=True)
    aliases = models.JSONField(default=list, blank=True, help_text="aliases and upstream ids, sorted")
    summary = models.TextField(blank=True)
    details = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=VulnSeverity.choices, default=VulnSeverity.UNKNOWN)
    cvss_score = models.FloatField(null=True, blank=True)
    cvss_vector = models.CharField(max_length=300, blank=True)
    published = models.DateTimeField(null=True, blank=True)
    modified = models.DateTimeField()
    withdrawn = models.DateTimeField(null=True, blank=True)
    references = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="the source it was last imported from")
    content_sha256 = models.CharField(max_length=64)
    record = models.JSONField(default=dict)
    imported_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["osv_id"]
        indexes = [models.Index(fields=["modified"]), models.Index(fields=["severity"])]

    def __str__(self):
        return self.osv_id


class AdvisoryAlias(models.Model):
    """One id an advisory is known by (its own id included), for lookup by any alias (case-insensitive:
    ``Upper(alias)`` is indexed). ``links_group``: the id joins the advisory's alias group — its own id and
    its ``aliases`` always, an ``upstream`` id only when the record names exactly one (a distribution's
    record of one CVE); a notice listing many upstream CVEs is found by each of them but merges none."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="alias_rows")
    alias = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=10, choices=AliasKind.choices, default=AliasKind.ALIAS)
    links_group = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["advisory", "alias"], name="advisory_alias_unique")]
        indexes = [models.Index(Upper("alias"), name="vulns_alias_upper_idx")]

    def __str__(self):
        return self.alias


class AffectedPackage(models.Model):
    """One ``affected[]`` entry of an advisory: the OSV ecosystem (with its release, e.g. ``Debian:12``),
    the package's purl type and ``package_key`` (``ecosystems.package_key``: type, namespace and name,
    normalized the way that ecosystem compares names), and the ranges and explicit versions as OSV states
    them."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=100)
    name = models.CharField(max_length=500)
    purl_type = models.CharField(max_length=50)
    package_key = models.CharField(max_length=600, db_index=True)
    ranges = models.JSONField(default=list, blank=True)
    versions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["advisory", "id"]

    def __str__(self):
        return f"{self.ecosystem}/{self.name}"


class ComponentPackage(models.Model):
    """An SBOM component of an artifact, parsed from its purl once (on the SBOM's arrival): what matching
    looks up by ``package_key``. ``artifact_fingerprint`` is the artifact the SBOM attestation is about."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    component = models.OneToOneField("evidence.SbomComponent", on_delete=models.CASCADE, related_name="package")
    attestation = models.ForeignKey("evidence.Attestation", on_delete=models.CASCADE, related_name="+")
    artifact_fingerprint = models.CharField(max_length=64)
    purl = models.CharField(max_length=1000)
    purl_type = models.CharField(max_length=50)
    package_key = models.CharField(max_length=600)
    version = models.CharField(max_length=200, blank=True)
    distro = models.CharField(max_length=100, blank=True, help_text="the purl's distro qualifier (deb, apk, rpm)")

    objects = OrgScopedManager()

    class Meta:
        indexes = [models.Index(fields=["package_key"]), models.Index(fields=["org", "artifact_fingerprint"]),
                   models.Index(fields=["org", "package_key"])]

    def __str__(self):
        return self.purl


class VexStatement(models.Model):
    """One statement of a ``vex`` attestation: the vulnerability (any alias, as written), the artifact it
    is about, optionally the component purls it narrows to, its status and justification."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    attestation = models.ForeignKey("evidence.Attestation", on_delete=models.CASCADE, related_name="+")
    artifact_fingerprint = models.CharField(max_length=64)
    vulnerability_id = models.CharField(max_length=200)
    status = models.CharField(max_length=30, choices=VexStatus.choices)
    justification = models.CharField(max_length=200, blank=True)
    impact_statement = models.TextField(blank=True)
    action_statement = models.TextField(blank=True)
    subcomponents = models.JSONField(default=list, blank=True, help_text="purls; empty: every component")
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["org", "artifact_fingerprint"]),
                   models.Index(fields=["org", "vulnerability_id"])]

    def __str__(self):
        return f"{self.vulnerability_id}: {self.status}"


class VulnerabilityMatch(models.Model):
    """An advisory affects a component of an artifact (``fixed``: the versions that fix it, from the
    ranges). Rewritten by re-matching; removed when the advisory is withdrawn or no longer matches."""

    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="+")
    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="matches")
    package = models.ForeignKey(ComponentPackage, on_delete=models.CASCADE, related_name="matches")
    artifact_fingerprint = models.CharField(max_length=64)
    group_id = models.CharField(max_length=200)
    fixed = models.JSONField(default=list, blank=True)
    matched_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["advisory", "package"], name="vuln_match_unique")]
        indexes = [models.Index(fields=["org", "group_id"]), models.Index(fields=["org", "artifact_fingerprint"])]

    def __str__(self):
        return f"{self.advisory_id} → {self.package_id}"


class VulnSource(models.Model):
    """A source of OSV records (a directory, a ``.zip`` or an http(s) URL of a zip) and its last import:
    what ``import_vulns`` and the periodic sync report, and the validators (``etag``, ``last_modified``)
    that make an unchanged URL cost one conditional request. Global, like advisories."""

    location = models.CharField(max_length=2000, unique=True)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True, help_text="the Last-Modified header, as sent")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, blank=True, help_text="ok, not_modified or error")
    last_error = models.TextField(blank=True)
    last_counts = models.JSONField(default=dict, blank=True)
    last_rejected = models.JSONField(default=list, blank=True, help_text="the first rejected records: file, reason")
    last_bytes = models.BigIntegerField(default=0, help_text="bytes downloaded by the last run")

    class Meta:
        ordering = ["location"]

    def __str__(self):
        return self.location
