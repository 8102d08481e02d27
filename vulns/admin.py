"""Read-only admin for vulnerability data: advisories are written by ``import_vulns`` and the sync task,
matches by the matcher, VEX statements and component packages from attestations."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from vulns.models import Advisory, AffectedPackage, ComponentPackage, VexStatement, VulnerabilityMatch, VulnSource


@admin.register(Advisory)
class AdvisoryAdmin(ReadOnlyAdmin):
    list_display = ["osv_id", "group_id", "severity", "modified", "withdrawn", "source"]
    list_filter = ["severity"]
    search_fields = ["osv_id", "group_id", "summary"]


@admin.register(AffectedPackage)
class AffectedPackageAdmin(ReadOnlyAdmin):
    list_display = ["advisory", "ecosystem", "name", "package_key"]
    search_fields = ["package_key", "name"]


@admin.register(ComponentPackage)
class ComponentPackageAdmin(ReadOnlyAdmin):
    list_display = ["purl", "artifact_fingerprint", "org"]
    list_filter = ["org"]
    search_fields = ["purl", "package_key", "artifact_fingerprint"]


@admin.register(VexStatement)
class VexStatementAdmin(ReadOnlyAdmin):
    list_display = ["vulnerability_id", "status", "justification", "artifact_fingerprint", "org", "created_at"]
    list_filter = ["org", "status"]
    search_fields = ["vulnerability_id", "artifact_fingerprint"]


@admin.register(VulnerabilityMatch)
class VulnerabilityMatchAdmin(ReadOnlyAdmin):
    list_display = ["group_id", "advisory", "artifact_fingerprint", "org", "matched_at"]
    list_filter = ["org"]
    search_fields = ["group_id", "artifact_fingerprint"]


@admin.register(VulnSource)
class VulnSourceAdmin(ReadOnlyAdmin):
    list_display = ["location", "last_status", "last_run_at", "last_success_at", "last_error"]
    search_fields = ["location"]
