"""Tenant scoping: the one queryset guard every tenant-owned model uses.

``Model.objects.for_org(org)`` is the only sanctioned way to list tenant rows in views; it fails
closed (raises) when no org was resolved, so a view that forgot to resolve its org returns an error
instead of every org's rows.
"""

from django.db import models


class OrgNotResolved(RuntimeError):
    """A tenant query ran without an org: a bug, never a reason to return unscoped rows."""


class OrgScopedQuerySet(models.QuerySet):
    def for_org(self, org):
        if org is None or getattr(org, "pk", None) is None:
            raise OrgNotResolved(f"{self.model.__name__} queried without an org")
        return self.filter(org=org)


OrgScopedManager = models.Manager.from_queryset(OrgScopedQuerySet)
