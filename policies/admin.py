"""Staff views of policies and compliance. Changes go through the audited services (API and pages)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin

from .models import (
    AllowlistEntry,
    ComplianceDecision,
    DecisionRecheck,
    FlowPolicyAttachment,
    Policy,
    PolicyAttachment,
    PolicyInput,
    PolicyVersion,
    SnapshotCompliance,
)


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ["name", "org", "format", "latest_version", "updated_at"]
    list_filter = ["org"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["policy", "version", "created_at", "created_by"]
    list_filter = ["org"]


@admin.register(PolicyAttachment)
class PolicyAttachmentAdmin(ReadOnlyAdmin):
    list_filter = ["org"]


@admin.register(AllowlistEntry)
class AllowlistEntryAdmin(ReadOnlyAdmin):
    list_filter = ["org"]


@admin.register(SnapshotCompliance)
class SnapshotComplianceAdmin(ReadOnlyAdmin):
    list_display = ["environment", "snapshot_index", "compliant", "changed", "evaluated_at"]
    list_filter = ["org", "compliant"]


@admin.register(ComplianceDecision)
class ComplianceDecisionAdmin(ReadOnlyAdmin):
    list_display = ["environment", "name", "status", "from_index", "to_index"]
    list_filter = ["org", "status"]


@admin.register(DecisionRecheck)
class DecisionRecheckAdmin(ReadOnlyAdmin):
    list_display = ["environment", "fingerprint", "reason", "created_at"]
    list_filter = ["org"]


@admin.register(FlowPolicyAttachment)
class FlowPolicyAttachmentAdmin(ReadOnlyAdmin):
    list_display = ["policy", "flow", "attached_at", "attached_by"]
    list_filter = ["org"]


@admin.register(PolicyInput)
class PolicyInputAdmin(ReadOnlyAdmin):
    list_display = ["sha256", "org", "size", "created_at"]
    list_filter = ["org"]
