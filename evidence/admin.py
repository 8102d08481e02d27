"""Read-only admin for the evidence vault: every write goes through services.py (audited), and the
attestation / artifact / evidence tables are append-only."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from evidence.models import (
    Artifact,
    Attestation,
    AttestationEvidence,
    Control,
    CustomAttestationType,
    CustomAttestationTypeVersion,
    EvidenceFile,
    Flow,
    FlowName,
    Repository,
    RepositorySighting,
    SbomComponent,
    Trail,
)


@admin.register(Flow)
class FlowAdmin(ReadOnlyAdmin):
    list_display = ["name", "org", "archived", "sarif_threshold", "updated_at"]
    list_filter = ["org"]
    search_fields = ["name", "description"]


@admin.register(FlowName)
class FlowNameAdmin(ReadOnlyAdmin):
    list_display = ["name", "renamed_to", "flow", "org", "renamed_at", "released_at"]
    list_filter = ["org"]
    search_fields = ["name", "renamed_to"]


@admin.register(Trail)
class TrailAdmin(ReadOnlyAdmin):
    list_display = ["name", "flow", "org", "git_commit", "created_at"]
    list_filter = ["org"]
    search_fields = ["name", "git_commit"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ["fingerprint", "filename", "flow", "trail", "git_commit", "created_at"]
    list_filter = ["org"]
    search_fields = ["fingerprint", "filename", "git_commit"]


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["name", "type", "trail", "is_compliant", "verification", "reported_by", "created_at"]
    list_filter = ["org", "type", "is_compliant", "verification"]
    search_fields = ["name", "artifact_fingerprint", "git_commit"]


@admin.register(EvidenceFile)
class EvidenceFileAdmin(ReadOnlyAdmin):
    list_display = ["sha256", "original_name", "size", "org", "created_at"]
    list_filter = ["org"]
    search_fields = ["sha256", "original_name"]


@admin.register(CustomAttestationType)
class CustomAttestationTypeAdmin(ReadOnlyAdmin):
    list_display = ["name", "org", "rule", "archived", "created_at", "updated_at"]
    list_filter = ["org", "archived"]


@admin.register(CustomAttestationTypeVersion)
class CustomAttestationTypeVersionAdmin(ReadOnlyAdmin):
    list_display = ["custom_type", "version", "org", "created_by", "created_at"]
    list_filter = ["org"]


@admin.register(Control)
class ControlAdmin(ReadOnlyAdmin):
    list_display = ["identifier", "name", "org", "archived", "version", "updated_at"]
    list_filter = ["org", "archived"]
    search_fields = ["identifier", "name", "description"]


@admin.register(AttestationEvidence)
class AttestationEvidenceAdmin(ReadOnlyAdmin):
    list_display = ["attestation", "evidence_file", "org"]
    list_filter = ["org"]


@admin.register(SbomComponent)
class SbomComponentAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "purl", "org"]
    list_filter = ["org"]
    search_fields = ["name", "purl"]


@admin.register(Repository)
class RepositoryAdmin(ReadOnlyAdmin):
    list_display = ["name", "provider", "external_id", "url", "org", "last_seen_at"]
    list_filter = ["org", "provider"]
    search_fields = ["name", "url", "external_id"]


@admin.register(RepositorySighting)
class RepositorySightingAdmin(ReadOnlyAdmin):
    list_display = ["repository", "flow", "trail", "artifact", "git_commit", "seen_at"]
    list_filter = ["org"]
    search_fields = ["git_commit"]
