"""Admin base shared by every app."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows are shown, never added, edited or deleted here: writes go through the audited services,
    and append-only tables reject changes in the database anyway."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
