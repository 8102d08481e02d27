"""Read-only admin for the evidence vault: every write goes through services.py (audited), and the
attestation / artifact / evidence tables are append-only."""

from django.contrib import admin

from audit.admin import AppendOnlyAdmin
from audit.evidence.models import Artifact, Attestation, CustomAttestationType, EvidenceFile, Flow, Trail


@admin.register(Flow)
class FlowAdmin(AppendOnlyAdmin):
    list_display = ["name", "org", "sarif_threshold", "updated_at"]
    list_filter = ["org"]
    search_fields = ["name", "description"]


@admin.register(Trail)
class TrailAdmin(AppendOnlyAdmin):
    list_display = ["name", "flow", "org", "git_commit", "created_at"]
    list_filter = ["org"]
    search_fields = ["name", "git_commit"]


@admin.register(Artifact)
class ArtifactAdmin(AppendOnlyAdmin):
    list_display = ["fingerprint", "filename", "flow", "trail", "git_commit", "created_at"]
    list_filter = ["org"]
    search_fields = ["fingerprint", "filename", "git_commit"]


@admin.register(Attestation)
class AttestationAdmin(AppendOnlyAdmin):
    list_display = ["name", "type", "trail", "is_compliant", "verification", "reported_by", "created_at"]
    list_filter = ["org", "type", "is_compliant", "verification"]
    search_fields = ["name", "artifact_fingerprint", "git_commit"]


@admin.register(EvidenceFile)
class EvidenceFileAdmin(AppendOnlyAdmin):
    list_display = ["sha256", "original_name", "size", "org", "created_at"]
    list_filter = ["org"]
    search_fields = ["sha256", "original_name"]


@admin.register(CustomAttestationType)
class CustomAttestationTypeAdmin(AppendOnlyAdmin):
    list_display = ["name", "org", "rule", "created_at"]
    list_filter = ["org"]
