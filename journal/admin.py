"""Read-only admin for the journal (append-only: no add, change or delete)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from journal.models import (
    JournalCheckpoint,
    JournalCosignature,
    JournalHead,
    JournalKey,
    JournalLeaf,
    JournalNode,
    JournalTree,
    PersonalRef,
    PersonKey,
)


@admin.register(JournalLeaf)
class JournalLeafAdmin(ReadOnlyAdmin):
    list_display = ["org", "index", "kind", "object_id", "leaf_hash", "created_at"]
    list_filter = ["org", "kind"]
    search_fields = ["leaf_hash", "object_id"]


@admin.register(JournalHead)
class JournalHeadAdmin(ReadOnlyAdmin):
    list_display = ["org", "last_index", "last_hash"]
    list_filter = ["org"]


@admin.register(JournalCheckpoint)
class JournalCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["org", "size", "root_hash", "key_name", "created_at"]
    list_filter = ["org"]


@admin.register(JournalNode)
class JournalNodeAdmin(ReadOnlyAdmin):
    list_display = ["org", "level", "index", "hash"]
    list_filter = ["org"]


@admin.register(JournalTree)
class JournalTreeAdmin(ReadOnlyAdmin):
    list_display = ["org", "origin", "size", "root_hash", "updated_at"]
    list_filter = ["org"]


@admin.register(JournalCosignature)
class JournalCosignatureAdmin(ReadOnlyAdmin):
    list_display = ["org", "checkpoint", "witness", "key_id", "timestamp", "created_at"]
    list_filter = ["org"]


@admin.register(JournalKey)
class JournalKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "key_id", "verifier", "created_at"]


@admin.register(PersonKey)
class PersonKeyAdmin(ReadOnlyAdmin):
    """Which persons an org's journal commits to, and whether they were erased. The key itself is never shown
    (it would let whoever sees it test guesses against the person's commitments); erasing is
    ``manage.py erase_person`` (docs/operations.md)."""

    list_display = ["org", "id", "user", "email", "created_at", "erased_at"]
    list_filter = ["org", ("erased_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "user__email"]
    exclude = ["key"]


@admin.register(PersonalRef)
class PersonalRefAdmin(ReadOnlyAdmin):
    list_display = ["org", "person", "leaf"]
    list_filter = ["org"]
    raw_id_fields = ["person", "leaf"]
