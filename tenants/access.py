"""Org resolution and permission checks: the one place that decides who may see and do what in an org.

Used by the API base view (csm/api/base.py) and by web views (``@org_view``). An org the caller does
not belong to — or that does not exist — is a 404 either way, and the attempt on a real org is audited.
"""

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed

from audit.context import AuditContext
from audit.services import record_denied_access
from tenants.models import ApiToken, Membership, Org
from tenants.permissions import MATRIX, has_permission


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
                    membership = Membership.objects.filter(org=org, user_id=token.user_id).first()
                    if membership is not None:
                        access = OrgAccess(org, membership.role, membership, token)
        elif request.user is not None and request.user.is_authenticated:
            membership = Membership.objects.filter(org=org, user=request.user).first()
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


def org_view(permission: str | dict[str, str] = "org.view"):
    """Decorator for web views taking an ``org`` URL kwarg: sign-in required, membership resolved
    (404 otherwise), permission checked (403 page otherwise). Sets ``request.org``,
    ``request.org_access`` and remembers the org as the user's current one.

    ``permission`` is one permission, or a dict by HTTP method for a page whose form posts need more
    than viewing it: ``@org_view({"GET": "actions.view", "POST": "actions.manage"})`` (a ``"default"``
    key covers the methods not named). tests/test_isolation.py reads it from ``view.csm_permission``."""
    by_method = {"default": permission} if isinstance(permission, str) else dict(permission)
    for name in by_method.values():
        if name not in MATRIX:
            raise KeyError(f"unknown permission {name!r}; add it to tenants/permissions.py")

    def required(request) -> str | None:
        method = "GET" if request.method == "HEAD" else request.method
        return by_method.get(method, by_method.get("default"))

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, org, *args, **kwargs):
            access = resolve_org(request, org)
            needed = required(request)
            if needed is None:
                return HttpResponseNotAllowed([m for m in by_method if m != "default"])
            require_permission(request, access, needed)
            request.org = access.org
            request.org_access = access
            request.session["current_org"] = access.org.slug
            return view(request, *args, **kwargs)

        wrapper.csm_permission = permission
        return wrapper

    return decorator
