from django.db import models


class Role(models.TextChoices):
    """Roles of a membership or service account. owner > admin > member; snapshotter and reader are
    narrow roles for agents and auditors (see tenants/permissions.py and docs/permissions.md)."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    SNAPSHOTTER = "snapshotter", "Snapshotter"
    READER = "reader", "Reader"
