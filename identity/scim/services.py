"""SCIM writes and reads. Every write runs in one transaction with the org row locked (SCIM changes of one org
happen one at a time, so uniqueness and the last-owner rule cannot be raced) and records its audit events in
that transaction. The actor is the SCIM token: ``AuditContext(actor_type="system", actor_label="SCIM
(csmscim_AbCd1234…)")`` — an identity provider is neither a person nor a service account of the org.

Users: a ScimUser links the org's SCIM resource to a csm person, found (or created without a password) by
email — the primary ``emails`` value, else an email-shaped ``userName``. The person's membership is created
with the role their SCIM groups map to (identity.GroupRoleMapping) or the org's SCIM default role, source
"scim". ``active: false`` and DELETE suspend the membership (identity.membership); ``active: true``
reactivates a membership SCIM suspended (not one an admin suspended). csm never changes the person's own
account (email, password) over SCIM: the person may belong to other orgs.

Roles: a member's role is the most privileged role their SCIM groups map to, else the SCIM default role (for
memberships SCIM created; one that existed before keeps its role until a group maps). Recomputed on every
group change, audited as ``member.role_changed`` with reason "scim". The org's last active owner is never
demoted: the change is skipped and audited as ``scim.role_change_skipped``, so one owner's mapping cannot
stall an IdP's whole group sync."""

import secrets
import string
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from audit.choices import ActorType, AuditAction
from audit.context import AuditContext
from audit.services import record_denied_access, record_event
from csm.errors import ServiceError
from csm.lib.clientip import client_ip
from identity.membership import reactivate_membership, suspend_membership
from identity.models import ScimGroup, ScimGroupMember, ScimSettings, ScimToken, ScimUser, role_for_groups
from identity.scim.errors import ScimError, invalid_value, not_found
from identity.scim.filters import Compare, Logical, lookup, matches, parse_filter
from identity.scim.patch import apply_patch
from tenants.choices import Role
from tenants.models import Membership, Org
from tenants.services import get_or_create_user
from tenants.tokens import hash_token

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
TOKEN_PREFIX = "csmscim_"  # noqa: S105 - the public prefix secret scanners match, not a secret
_ALPHABET = string.ascii_letters + string.digits
SOURCE = "scim"
SUSPEND_REASON = "scim"
# Never stored: the IdP's password sync (Okta sends one) and what csm computes itself.
_NOT_STORED = {"password", "id", "meta", "groups", "schemas", "username", "externalid", "active", "members",
               "displayname"}


# --- tokens -------------------------------------------------------------------------------------------

def _token_target(token: ScimToken) -> tuple:
    return ("scim_token", token.pk, f"{token.prefix}… ({token.name})")


@transaction.atomic
def create_scim_token(ctx: AuditContext, org: Org, name: str, *, created_by=None) -> tuple[ScimToken, str]:
    """A new SCIM bearer token of ``org``: (row, plaintext). The plaintext exists only in this answer."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ServiceError("Give the token a name of at most 100 characters.", field="name")
    plaintext = TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))
    token = ScimToken.objects.create(org=org, name=name, prefix=plaintext[:len(TOKEN_PREFIX) + 8],
                                     token_hash=hash_token(plaintext), created_by=created_by)
    record_event(ctx, org, AuditAction.SCIM_TOKEN_CREATED, _token_target(token), after={"name": name})
    return token, plaintext


@transaction.atomic
def revoke_scim_token(ctx: AuditContext, token: ScimToken) -> ScimToken:
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record_event(ctx, token.org, AuditAction.SCIM_TOKEN_REVOKED, _token_target(token))
    return token


def scim_token_for(raw: str, request) -> ScimToken | None:
    """The live SCIM token ``raw`` names (its last use noted at most once a minute or on a new IP), else None.
    A revoked one is refused and its use audited in its org."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = ScimToken.objects.select_related("org").filter(token_hash=hash_token(raw)).first()
    if token is None:
        return None
    if token.revoked_at is not None:
        # Someone still holds a revoked token of this org: the org's audit log shows it (aggregated per window).
        record_denied_access(scim_context(request, token), token.org, "scim.revoked_token", request.path)
        return None
    now, ip = timezone.now(), client_ip(request)
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60 or ip != token.last_used_ip:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token


def scim_context(request, token: ScimToken) -> AuditContext:
    return AuditContext(actor_type=ActorType.SYSTEM, actor_label=f"SCIM ({token.prefix}…)",
                        request_id=getattr(request, "request_id", ""), ip=client_ip(request),
                        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255])


@transaction.atomic
def set_default_role(ctx: AuditContext, org: Org, role: str) -> ScimSettings:
    if role not in Role.values:
        raise ServiceError(f"Unknown role '{role}'.", field="default_role")
    if role == Role.OWNER:  # an IdP must not mint owners of everyone it provisions
        raise ServiceError("The default role cannot be owner; map an IdP group to owner instead.",
                           field="default_role")
    current = ScimSettings.of(org)
    if current.pk is not None and current.default_role == role:
        return current
    before = {"default_role": current.default_role}
    current.default_role, current.updated_at = role, timezone.now()
    current.save()
    record_event(ctx, org, AuditAction.SCIM_SETTINGS_CHANGED, ("org", org.pk, org.slug), before=before,
                 after={"default_role": role})
    return current


# --- representations ----------------------------------------------------------------------------------

def location(kind: str, resource_id) -> str:
    return settings.CSM_BASE_URL + reverse(f"scim-{kind.lower()}", args=[str(resource_id)])


def _meta(kind: str, row) -> dict:
    return {"resourceType": kind, "created": row.created_at.isoformat(), "lastModified": row.updated_at.isoformat(),
            "location": location(kind, row.scim_id)}


def user_resource(scim_user: ScimUser, groups=None) -> dict:
    """The SCIM representation of a provisioned user: what the IdP sent (without its password), with csm's
    id, the user's groups (read-only) and meta."""
    resource = dict(scim_user.resource)
    schemas = [USER_SCHEMA] + ([ENTERPRISE_USER_SCHEMA] if ENTERPRISE_USER_SCHEMA in resource else [])
    resource.update({"schemas": schemas, "id": str(scim_user.scim_id), "userName": scim_user.user_name,
                     "active": scim_user.active})
    if scim_user.external_id:
        resource["externalId"] = scim_user.external_id
    if scim_user.display_name:
        resource["displayName"] = scim_user.display_name
    if groups is None:
        groups = [m.group for m in scim_user.group_memberships.select_related("group")]
    resource["groups"] = [{"value": str(g.scim_id), "display": g.display_name, "$ref": location("Group", g.scim_id)}
                          for g in groups]
    resource["meta"] = _meta("User", scim_user)
    return resource


def group_resource(group: ScimGroup, members=None) -> dict:
    if members is None:
        members = [m.user for m in group.memberships.select_related("user")]
    resource = {"schemas": [GROUP_SCHEMA], "id": str(group.scim_id), "displayName": group.display_name,
                "members": [{"value": str(u.scim_id), "display": u.user_name, "$ref": location("User", u.scim_id)}
                            for u in members],
                "meta": _meta("Group", group)}
    if group.external_id:
        resource["externalId"] = group.external_id
    return resource


def _scim_uuid(resource_id: str):
    try:
        return uuid.UUID(str(resource_id))
    except ValueError:
        return None


def get_user(org: Org, resource_id: str) -> ScimUser:
    scim_id = _scim_uuid(resource_id)
    row = ScimUser.objects.for_org(org).filter(scim_id=scim_id).select_related("user").first() if scim_id else None
    if row is None:
        raise not_found("User", resource_id)
    return row


def get_group(org: Org, resource_id: str) -> ScimGroup:
    scim_id = _scim_uuid(resource_id)
    row = ScimGroup.objects.for_org(org).filter(scim_id=scim_id).first() if scim_id else None
    if row is None:
        raise not_found("Group", resource_id)
    return row


# --- lists --------------------------------------------------------------------------------------------

def _int_param(params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_value(f"'{name}' must be an integer.") from None


def _case_insensitive(queryset, field: str, value: str):
    """``field`` equal to ``value`` ignoring case, as ``lower(field) = lower(value)`` so the unique index on
    (lower(field), org) serves it (``__iexact`` compiles to UPPER() and would read every row of the org)."""
    return queryset.annotate(**{f"{field}_lower": Lower(field)}).filter(**{f"{field}_lower": value.lower()})


def _narrow(queryset, node, columns: dict):
    """Pre-filter in the database where the filter pins a column exactly (``userName eq "x"``); the filter
    itself is still evaluated on each representation, so this only ever saves work."""
    if isinstance(node, Logical) and node.op == "and":
        return _narrow(_narrow(queryset, node.left, columns), node.right, columns)
    if isinstance(node, Compare) and node.op == "eq" and isinstance(node.value, str) and len(node.path.names) == 1:
        lookup_name = columns.get(node.path.names[0].lower())
        if lookup_name == "scim_id":
            value = _scim_uuid(node.value)
            return queryset.filter(scim_id=value) if value else queryset.none()
        if lookup_name in ("user_name", "display_name"):
            return _case_insensitive(queryset, lookup_name, node.value)
        if lookup_name:
            return queryset.filter(**{lookup_name: node.value})
    return queryset


def list_resources(org: Org, kind: str, params) -> dict:
    """A ListResponse of the org's Users or Groups: ``filter``, ``startIndex`` (1-based), ``count`` (at most
    CSM_SCIM_MAX_RESULTS), in creation order so pages are stable."""
    node = parse_filter(params["filter"]) if params.get("filter") is not None else None
    start = max(_int_param(params, "startIndex", 1), 1)
    count = min(max(_int_param(params, "count", settings.CSM_SCIM_MAX_RESULTS), 0), settings.CSM_SCIM_MAX_RESULTS)
    if kind == "Users":
        queryset = ScimUser.objects.for_org(org).prefetch_related("group_memberships__group")
        columns = {"username": "user_name", "externalid": "external_id", "id": "scim_id"}
        render = lambda row: user_resource(row, [m.group for m in row.group_memberships.all()])  # noqa: E731
    else:
        queryset = ScimGroup.objects.for_org(org).prefetch_related("memberships__user")
        columns = {"displayname": "display_name", "externalid": "external_id", "id": "scim_id"}
        render = lambda row: group_resource(row, [m.user for m in row.memberships.all()])  # noqa: E731
    queryset = _narrow(queryset, node, columns) if node is not None else queryset
    resources = [render(row) for row in queryset.order_by("created_at", "pk")]
    if node is not None:
        resources = [r for r in resources if matches(node, r)]
    page = resources[start - 1:start - 1 + count]
    return {"schemas": [LIST_SCHEMA], "totalResults": len(resources), "startIndex": start,
            "itemsPerPage": len(page), "Resources": page}


def select_attributes(resource: dict, params) -> dict:
    """``attributes`` / ``excludedAttributes`` (RFC 7644 §3.9), top-level names; id and schemas stay."""
    wanted = [a.strip().lower().split(".")[0] for a in (params.get("attributes") or "").split(",") if a.strip()]
    excluded = {a.strip().lower() for a in (params.get("excludedAttributes") or "").split(",") if a.strip()}
    keep = {"id", "schemas"}
    return {k: v for k, v in resource.items()
            if k.lower() in keep or ((not wanted or k.lower() in wanted) and k.lower() not in excluded)}


# --- users --------------------------------------------------------------------------------------------

def _bool(value, field: str) -> bool:
    """A SCIM boolean, also as the strings Entra ID sends ("True", "False")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value(f"'{field}' must be a boolean.")


def _text(value, field: str, *, required=False, limit=255) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise invalid_value(f"'{field}' must be a string.")
    value = value.strip()
    if required and not value:
        raise invalid_value(f"'{field}' is required.")
    if len(value) > limit:
        raise invalid_value(f"'{field}' is longer than {limit} characters.")
    return value


def _is_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def _primary_email(resource: dict, user_name: str) -> str:
    _, emails = lookup(resource, "emails")
    candidates = [e for e in (emails if isinstance(emails, list) else []) if isinstance(e, dict)]
    candidates.sort(key=lambda e: (lookup(e, "primary")[1] not in (True, "true", "True"),
                                   str(lookup(e, "type")[1] or "").lower() != "work"))
    for email in candidates:
        value = lookup(email, "value")[1]
        if isinstance(value, str) and _is_email(value.strip()):
            return value.strip().lower()
    if _is_email(user_name):
        return user_name.lower()
    raise invalid_value("A user needs an email address: an 'emails' value or an email-shaped 'userName'.")


def _user_fields(resource: dict) -> dict:
    if not isinstance(resource, dict):
        raise ScimError(400, "The body must be a User object.", "invalidSyntax")
    user_name = _text(lookup(resource, "userName")[1], "userName", required=True)
    _, active = lookup(resource, "active")
    return {
        "user_name": user_name,
        "external_id": _text(lookup(resource, "externalId")[1], "externalId"),
        "display_name": _text(lookup(resource, "displayName")[1], "displayName"),
        "email": _primary_email(resource, user_name),
        "active": True if active is None else _bool(active, "active"),
        "resource": {k: v for k, v in resource.items() if k.lower() not in _NOT_STORED},
    }


def _user_target(row: ScimUser) -> tuple:
    return ("scim_user", row.scim_id, row.user_name)


def _summary(row: ScimUser) -> dict:
    return {"userName": row.user_name, "externalId": row.external_id, "email": row.email,
            "displayName": row.display_name, "active": row.active}


def _lock(org: Org) -> Org:
    return Org.objects.select_for_update().get(pk=org.pk)


def _ensure_unique_user_name(org: Org, user_name: str, exclude_pk=None):
    clash = _case_insensitive(ScimUser.objects.for_org(org), "user_name", user_name).exclude(pk=exclude_pk)
    if clash.exists():
        raise ScimError(409, f"A user with userName '{user_name}' is already provisioned.", "uniqueness")


def _group_names(row: ScimUser) -> list[str]:
    return list(ScimGroupMember.objects.filter(user=row).values_list("group__display_name", flat=True))


def _sync_role(ctx: AuditContext, org: Org, row: ScimUser) -> None:
    """Give the member the role their SCIM groups map to (else the default role, for memberships SCIM
    created); never demote the last active owner (skipped, audited)."""
    membership = Membership.objects.filter(org=org, user=row.user).select_related("user").first()
    if membership is None:
        return
    groups = _group_names(row)
    role = role_for_groups(org, groups, None)
    if role is None:
        if membership.source != SOURCE:
            return
        role = ScimSettings.of(org).default_role
    if role == membership.role:
        return
    target = ("user", membership.user_id, membership.user.email or membership.user.get_username())
    if membership.role == Role.OWNER and not Membership.objects.filter(
            org=org, role=Role.OWNER, suspended_at=None).exclude(pk=membership.pk).exists():
        record_event(ctx, org, AuditAction.SCIM_ROLE_CHANGE_SKIPPED, target,
                     after={"role": role, "groups": groups,
                            "why": "the org's last active owner keeps the owner role"})
        return
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    record_event(ctx, org, AuditAction.MEMBER_ROLE_CHANGED, target, before=before,
                 after={"role": role, "reason": SOURCE, "groups": groups})


def _ensure_membership(ctx: AuditContext, org: Org, row: ScimUser) -> Membership:
    membership = Membership.objects.filter(org=org, user=row.user).first()
    if membership is None:
        role = role_for_groups(org, _group_names(row), ScimSettings.of(org).default_role)
        membership = Membership.objects.create(org=org, user=row.user, role=role, source=SOURCE)
        record_event(ctx, org, AuditAction.MEMBER_ADDED,
                     ("user", row.user_id, row.user.email or row.user.get_username()),
                     after={"role": role, "source": SOURCE})
    return membership


def _apply_active(ctx: AuditContext, org: Org, row: ScimUser, membership: Membership) -> None:
    """Make the membership follow the SCIM ``active`` flag. Reactivation undoes only a SCIM suspension."""
    if not row.active and membership.suspended_at is None:
        suspend_membership(ctx, membership, reason=SUSPEND_REASON)
        record_event(ctx, org, AuditAction.SCIM_USER_SUSPENDED, _user_target(row), after={"active": False})
    elif row.active and membership.suspended_at is not None and membership.suspended_reason == SUSPEND_REASON:
        reactivate_membership(ctx, membership, reason=SUSPEND_REASON)
        record_event(ctx, org, AuditAction.SCIM_USER_REACTIVATED, _user_target(row), after={"active": True})


@transaction.atomic
def create_user(ctx: AuditContext, org: Org, body) -> ScimUser:
    org = _lock(org)
    fields = _user_fields(body)
    _ensure_unique_user_name(org, fields["user_name"])
    user, _ = get_or_create_user(fields["email"])
    existing = ScimUser.objects.for_org(org).filter(user=user).first()
    if existing is not None:
        raise ScimError(409, f"{fields['email']} is already provisioned as userName '{existing.user_name}'.",
                        "uniqueness")
    row = ScimUser.objects.create(org=org, user=user, **fields)
    record_event(ctx, org, AuditAction.SCIM_USER_CREATED, _user_target(row), after=_summary(row))
    membership = _ensure_membership(ctx, org, row)
    _apply_active(ctx, org, row, membership)
    return row


@transaction.atomic
def replace_user(ctx: AuditContext, org: Org, row: ScimUser, body) -> ScimUser:
    """PUT: the resource becomes ``body`` (and a PATCH's result goes through here too)."""
    org = _lock(org)
    row = ScimUser.objects.select_for_update().select_related("user").get(pk=row.pk)
    fields = _user_fields(body)
    if fields["user_name"].lower() != row.user_name.lower():
        _ensure_unique_user_name(org, fields["user_name"], exclude_pk=row.pk)
    before = _summary(row)
    resource_changed = fields["resource"] != row.resource
    for name, value in fields.items():
        setattr(row, name, value)
    after = _summary(row)
    changed = {k: v for k, v in after.items() if before[k] != v and k != "active"}
    if changed or resource_changed:
        row.updated_at = timezone.now()
        row.save()
        attributes = sorted(set(changed) | ({"attributes"} if resource_changed else set()))
        record_event(ctx, org, AuditAction.SCIM_USER_UPDATED, _user_target(row),
                     before={k: before[k] for k in changed}, after={**changed, "changed": attributes})
    elif before["active"] != after["active"]:
        row.updated_at = timezone.now()
        row.save(update_fields=["active", "updated_at"])
    membership = _ensure_membership(ctx, org, row)
    _apply_active(ctx, org, row, membership)
    return row


def user_patch_base(row: ScimUser) -> dict:
    resource = dict(row.resource)
    resource.update({"userName": row.user_name, "active": row.active})
    if row.external_id:
        resource["externalId"] = row.external_id
    if row.display_name:
        resource["displayName"] = row.display_name
    return resource


def patch_user(ctx: AuditContext, org: Org, row: ScimUser, body) -> ScimUser:
    return replace_user(ctx, org, row, apply_patch(user_patch_base(row), body))


@transaction.atomic
def delete_user(ctx: AuditContext, org: Org, row: ScimUser) -> None:
    """DELETE: the SCIM resource goes (a later POST may provision the person again); the membership is
    suspended, never deleted, so the person's history in the org stays theirs."""
    org = _lock(org)
    row = ScimUser.objects.select_for_update().select_related("user").get(pk=row.pk)
    membership = Membership.objects.filter(org=org, user=row.user).first()
    if membership is not None and membership.suspended_at is None:
        suspend_membership(ctx, membership, reason=SUSPEND_REASON)
    record_event(ctx, org, AuditAction.SCIM_USER_DELETED, _user_target(row), before=_summary(row),
                 after={"membership": "suspended" if membership is not None else "none"})
    row.delete()


# --- groups -------------------------------------------------------------------------------------------

def _group_target(group: ScimGroup) -> tuple:
    return ("scim_group", group.scim_id, group.display_name)


def _member_ids(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_value("'members' must be a list.")
    ids = []
    for item in value:
        member_id = lookup(item, "value")[1] if isinstance(item, dict) else None
        if not isinstance(member_id, str) or not member_id:
            raise invalid_value("Each of 'members' needs a 'value' (a User id).")
        ids.append(member_id)
    return ids


def _users_by_id(org: Org, ids: list[str]) -> dict:
    uuids = {i: _scim_uuid(i) for i in ids}
    unknown = [i for i, u in uuids.items() if u is None]
    found = {str(u.scim_id): u for u in ScimUser.objects.for_org(org).filter(
        scim_id__in=[u for u in uuids.values() if u is not None]).select_related("user")}
    unknown += [i for i, u in uuids.items() if u is not None and str(u) not in found]
    if unknown:
        raise invalid_value(f"No provisioned User has the id '{unknown[0]}'.")
    return {i: found[str(uuids[i])] for i in ids}


def _group_fields(org: Org, body, *, exclude_pk=None) -> dict:
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a Group object.", "invalidSyntax")
    name = _text(lookup(body, "displayName")[1], "displayName", required=True)
    if _case_insensitive(ScimGroup.objects.for_org(org), "display_name", name).exclude(pk=exclude_pk).exists():
        raise ScimError(409, f"A group named '{name}' already exists.", "uniqueness")
    return {"display_name": name, "external_id": _text(lookup(body, "externalId")[1], "externalId")}


def _set_members(ctx: AuditContext, org: Org, group: ScimGroup, wanted: dict) -> tuple[list, list]:
    """Make ``wanted`` ({id: ScimUser}) the group's members; (added, removed) ScimUsers."""
    current = {str(m.user.scim_id): m.user for m in group.memberships.select_related("user__user")}
    added = [u for i, u in wanted.items() if i not in current]
    removed = [u for i, u in current.items() if i not in wanted]
    ScimGroupMember.objects.filter(group=group, user__in=removed).delete()
    ScimGroupMember.objects.bulk_create([ScimGroupMember(org=org, group=group, user=u) for u in added])
    return added, removed


def _resync(ctx: AuditContext, org: Org, users) -> None:
    for row in {u.pk: u for u in users}.values():
        _sync_role(ctx, org, row)


@transaction.atomic
def create_group(ctx: AuditContext, org: Org, body) -> ScimGroup:
    org = _lock(org)
    fields = _group_fields(org, body)
    members = _users_by_id(org, _member_ids(lookup(body, "members")[1]))
    group = ScimGroup.objects.create(org=org, **fields)
    added, _ = _set_members(ctx, org, group, members)
    record_event(ctx, org, AuditAction.SCIM_GROUP_CREATED, _group_target(group),
                 after={"displayName": group.display_name, "externalId": group.external_id,
                        "members": [u.user_name for u in added]})
    _resync(ctx, org, added)
    return group


def _update_group(ctx: AuditContext, org: Org, group: ScimGroup, fields: dict, members: dict | None) -> ScimGroup:
    before = {"displayName": group.display_name, "externalId": group.external_id}
    renamed = fields["display_name"] != group.display_name
    group.display_name, group.external_id = fields["display_name"], fields["external_id"]
    added, removed = _set_members(ctx, org, group, members) if members is not None else ([], [])
    after = {"displayName": group.display_name, "externalId": group.external_id}
    if before == after and not added and not removed:
        return group
    group.updated_at = timezone.now()
    group.save()
    record_event(ctx, org, AuditAction.SCIM_GROUP_UPDATED, _group_target(group), before=before,
                 after={**after, "added": [u.user_name for u in added], "removed": [u.user_name for u in removed]})
    affected = list(added) + list(removed)
    if renamed:
        affected += [m.user for m in group.memberships.select_related("user__user")]
    _resync(ctx, org, affected)
    return group


@transaction.atomic
def replace_group(ctx: AuditContext, org: Org, group: ScimGroup, body) -> ScimGroup:
    """PUT. A body without ``members`` leaves the members as they are (clearing a group's members, and
    with them their roles, takes an explicit empty list)."""
    org = _lock(org)
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    fields = _group_fields(org, body, exclude_pk=group.pk)
    _, members = lookup(body, "members")
    wanted = _users_by_id(org, _member_ids(members)) if members is not None else None
    return _update_group(ctx, org, group, fields, wanted)


@transaction.atomic
def patch_group(ctx: AuditContext, org: Org, group: ScimGroup, body) -> ScimGroup:
    org = _lock(org)
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    base = {"displayName": group.display_name,
            "members": [{"value": str(m.user.scim_id)} for m in group.memberships.select_related("user")]}
    if group.external_id:
        base["externalId"] = group.external_id
    patched = apply_patch(base, body)
    fields = _group_fields(org, patched, exclude_pk=group.pk)
    wanted = _users_by_id(org, _member_ids(lookup(patched, "members")[1]))
    return _update_group(ctx, org, group, fields, wanted)


@transaction.atomic
def delete_group(ctx: AuditContext, org: Org, group: ScimGroup) -> None:
    org = _lock(org)
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    former = [m.user for m in group.memberships.select_related("user__user")]
    record_event(ctx, org, AuditAction.SCIM_GROUP_DELETED, _group_target(group),
                 before={"displayName": group.display_name, "members": [u.user_name for u in former]})
    group.delete()
    _resync(ctx, org, former)
