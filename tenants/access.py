"""Org resolution, permission checks and token scopes: the one place that decides who may see and do what
in an org.

Used by the API base view (csm/api/base.py) and by web views (``@org_view``). An org the caller does
not belong to — or that does not exist — is a 404 either way, and the attempt on a real org is audited.

A token's scope (``ApiToken.scope_environments``, ``scope_flows``, ``read_only``, ``allowed_networks``) is
enforced here too: ``check_token_use`` on every token use (network, read-only; called by the API's token
authentication, so views that are not org-scoped are covered), ``check_token_scope`` for the environments
and flows an org-scoped request names (called by ``OrgScopedMixin.initial``), ``limit_to_token_scope`` for
the lists such a token reads. A violation is a 403 naming the limit, audited as ``token.scope_denied``.
"""

import ipaddress
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_denied_access
from csm.errors import ServiceError
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
    token = getattr(request, "auth", None)
    # A token's own org was read with it (select_related, this request): no second query for the usual case.
    if isinstance(token, ApiToken) and token.org.slug == slug:
        org = token.org
    else:
        org = Org.objects.filter(slug=slug).first()
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


# --- token scopes -------------------------------------------------------------------------------------

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _names(names) -> str:
    return ", ".join(names)


def _deny(request, token: ApiToken, limit: str, field: str, message: str, details: dict) -> None:
    """Audit the violation (``token.scope_denied``, summarized like ``access.denied`` when repeated) and
    refuse with a 403 in the API's error shape naming the field at fault."""
    ctx = AuditContext.for_token(token, **AuditContext.request_fields(request))
    record_denied_access(ctx, token.org, f"token_scope.{limit}", request.path,
                         action=AuditAction.TOKEN_SCOPE_DENIED,
                         details={"limit": limit, "message": message, "token": token.prefix, **details})
    raise ServiceError(message, field=field, status=403, code="token_scope")


def ip_in_networks(ip: str | None, networks) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for network in networks:
        try:
            if address in ipaddress.ip_network(network):
                return True
        except ValueError:
            continue
    return False


def check_token_use(request, token: ApiToken, ip: str | None) -> None:
    """Every use of ``token``: refuse (403) a client outside its ``allowed_networks`` and a write (any method
    but GET, HEAD, OPTIONS) by a read-only token. Called by csm/api/authentication.py once the token is known
    to be valid, before it is marked as used."""
    if token.allowed_networks and not ip_in_networks(ip, token.allowed_networks):
        _deny(request, token, "networks", "network",
              f"This token may be used only from {_names(token.allowed_networks)}; this request came from "
              f"{ip or 'an unknown address'}.", {"ip": ip, "allowed_networks": token.allowed_networks})
    if token.read_only and request.method.upper() not in SAFE_METHODS:
        _deny(request, token, "read_only", "method",
              f"This token is read-only; it may not {request.method.upper()} {request.path}.",
              {"method": request.method.upper()})


def check_token_scope(request, access: OrgAccess, *, environments=(), flows=()) -> None:
    """Refuse (403) a request naming an environment or a flow outside its token's scope. ``environments`` and
    ``flows`` are the names the request touches (its URL, and for some views its body or query:
    ``OrgScopedMixin.scope_names``). A session (no token) or an unlimited token passes."""
    token = access.token
    if token is None:
        return
    if token.scope_environments:
        outside = [name for name in environments if name and name not in token.scope_environments]
        if outside:
            _deny(request, token, "environments", "environment",
                  f"This token is limited to the environments {_names(token.scope_environments)}; it may not "
                  f"touch {_names(outside)}.", {"environments": outside})
    if token.scope_flows:
        outside = [name for name in flows if name and name not in token.scope_flows]
        if outside:
            _deny(request, token, "flows", "flow",
                  f"This token is limited to the flows {_names(token.scope_flows)}; it may not touch "
                  f"{_names(outside)}.", {"flows": outside})


def limit_to_token_scope(access: OrgAccess, queryset, *, environment_field: str | None = None,
                         flow_field: str | None = None):
    """``queryset`` narrowed to the environments / flows in the scope of the caller's token (by the name
    field given), so a scoped token lists only what it may touch. Unchanged for a session or an unlimited
    token."""
    token = access.token if access is not None else None
    if token is None:
        return queryset
    if environment_field and token.scope_environments:
        queryset = queryset.filter(**{f"{environment_field}__in": token.scope_environments})
    if flow_field and token.scope_flows:
        queryset = queryset.filter(**{f"{flow_field}__in": token.scope_flows})
    return queryset
