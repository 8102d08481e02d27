from django.contrib import admin

from .models import AllowlistEntry, Policy, PolicyAttachment, PolicyVersion, SnapshotCompliance


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "latest_version", "updated_at"]
    list_filter = ["org"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ["policy", "version", "created_at", "created_by"]
    readonly_fields = [f.name for f in PolicyVersion._meta.fields]


admin.site.register(PolicyAttachment)
admin.site.register(AllowlistEntry)


@admin.register(SnapshotCompliance)
class SnapshotComplianceAdmin(admin.ModelAdmin):
    list_display = ["environment", "snapshot_index", "compliant", "changed", "evaluated_at"]
    readonly_fields = [f.name for f in SnapshotCompliance._meta.fields]
