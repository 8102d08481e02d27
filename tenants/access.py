"""Org resolution and permission checks: the one place that decides who may see and do what in an org.

Used by the API base view (csm/api/base.py) and by web views (``@org_view``). An org the caller does
not belong to — or that does not exist — is a 404 either way, and the attempt on a real org is audited.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from audit.context import AuditContext
from audit.services import record_denied_access
from tenants.models import ApiToken, Membership, Org
from tenants.permissions import has_permission


@dataclass
class OrgAccess:
    org: Org
    role: str
    membership: Membership | None = None
    token: ApiToken | None = None

    def can(self, permission: str) -> bool:
        return has_permission(self.role, permission)


def resolve_org(request, slug: str) -> OrgAccess:
    """The org named in the URL, if the caller (token or signed-in user) belongs to it; else 404."""
    org = Org.objects.filter(slug=slug).first()
    token = getattr(request, "auth", None)
    access = None
    if org is not None:
        if isinstance(token, ApiToken):
            if token.org_id == org.pk:
                if token.service_account_id:
                    access = OrgAccess(org, token.service_account.role, token=token)
                else:
                    membership = Membership.objects.filter(org=org, user_id=token.user_id, suspended_at=None).first()
                    if membership is not None:
                        access = OrgAccess(org, membership.role, membership, token)
        elif request.user is not None and request.user.is_authenticated:
            membership = Membership.objects.filter(org=org, user=request.user, suspended_at=None).first()
            if membership is not None:
                access = OrgAccess(org, membership.role, membership)
    if access is None:
        if org is not None:
            record_denied_access(AuditContext.from_request(request), org, "org.view", request.path)
        raise Http404("No such org.")
    return access


def require_permission(request, access: OrgAccess, permission: str) -> None:
    """Raise PermissionDenied naming the permission (and audit it) when the role lacks it."""
    if not access.can(permission):
        record_denied_access(AuditContext.from_request(request), access.org, permission, request.path)
        raise PermissionDenied(f"Your role '{access.role}' lacks the permission '{permission}'.")
