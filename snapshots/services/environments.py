"""Environment writes: create or update (a snapshotter may only create or re-send unchanged settings),
archive and unarchive, require or relax authorization. Each is one transaction with its audit event."""


from django.db import transaction

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from snapshots import hooks
from snapshots.choices import EnvironmentType
from snapshots.models import Environment

# Who may change an existing environment's settings (tenants/permissions.py); the API view decides.
EDIT_PERMISSION = "environments.edit"
# Who may relax (or require again) authorization in an environment: org owners and admins.
AUTHORIZATION_PERMISSION = "environments.manage"
MAX_REASON = 1000


def environment_state(env: Environment) -> dict:
    return {
        "name": env.name, "type": env.type, "description": env.description, "tags": env.tags,
        "include_scaling": env.include_scaling, "archived": env.archived,
        "expected_report_interval_seconds": env.expected_report_interval_seconds,
        "included_environments": sorted(e.name for e in env.included_environments.all()) if env.pk else [],
    }


def _members(org, env_type: str, names) -> list[Environment]:
    if names is None:
        return None
    if env_type != EnvironmentType.LOGICAL:
        if names:
            raise ServiceError("Only a logical environment includes other environments.", "included_environments")
        return []
    found = {e.name: e for e in Environment.objects.for_org(org).filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ServiceError(f"No such environment(s): {', '.join(missing)}.", "included_environments")
    nested = [n for n in names if found[n].is_logical]
    if nested:
        raise ServiceError(f"A logical environment cannot include logical ones: {', '.join(nested)}.",
                           "included_environments")
    return list(found.values())


@transaction.atomic(durable=True)
def create_or_update_environment(ctx: AuditContext, org, name: str, env_type: str, description: str = "",
                                 include_scaling: bool | None = None, included_environments=None,
                                 tags: dict | None = None,
                                 expected_report_interval_seconds: int | None = None,
                                 may_change_existing: bool = True) -> tuple[Environment, bool]:
    """Create environment ``name`` or update it (idempotent: no change, no audit event).

    Changing the type of an environment that has snapshots is refused (its history would lie). With
    ``may_change_existing=False`` (a caller without ``environments.edit``, e.g. a snapshotter) only a
    missing environment may be created or an existing one re-sent unchanged; any change is a 403, so a
    reporting agent cannot, say, set a ten-year report interval that silences the agent-silent alert."""
    env = Environment.objects.for_org(org).select_for_update().filter(name=name).first()
    members = _members(org, env_type, included_environments)
    if env is None:
        env = Environment(org=org, name=name, type=env_type)
        env.full_clean(exclude=["org", "included_environments"])
        created, before = True, None
    else:
        if env.type != env_type and env.last_snapshot_index:
            raise ServiceError(f"Environment {name!r} is of type {env.type} and has snapshots; its type cannot "
                               "change.", "type", 409, "conflict")
        created, before = False, environment_state(env)
    env.type = env_type
    env.description = description or ""
    if include_scaling is not None:
        env.include_scaling = include_scaling
    if tags is not None:
        env.tags = tags
    if expected_report_interval_seconds is not None:
        env.expected_report_interval_seconds = expected_report_interval_seconds
    env.save()
    if members is not None:
        env.included_environments.set(members)
    after = environment_state(env)
    if not created and before != after and not may_change_existing:
        changed = sorted(key for key in after if before.get(key) != after[key])
        raise ServiceError(f"Changing an existing environment ({', '.join(changed)}) needs the permission "
                           f"'{EDIT_PERMISSION}'; your role may only create missing environments or re-send "
                           "their settings unchanged.", "", 403, "permission_denied")
    if before != after:
        action = AuditAction.ENVIRONMENT_CREATED if created else AuditAction.ENVIRONMENT_UPDATED
        record_event(ctx, org, action, env, before=before, after=after)
    return env, created


@transaction.atomic(durable=True)
def set_environment_archived(ctx: AuditContext, env: Environment, archived: bool) -> Environment:
    """Archive or unarchive an environment (deleting one archives it: journal rows are never destroyed)."""
    env = Environment.objects.select_for_update().get(pk=env.pk)
    if env.archived != archived:
        env.archived = archived
        env.save(update_fields=["archived"])
        action = AuditAction.ENVIRONMENT_ARCHIVED if archived else AuditAction.ENVIRONMENT_UNARCHIVED
        record_event(ctx, env.org, action, env, before={"archived": not archived}, after={"archived": archived})
    return env


@transaction.atomic(durable=True)
def set_environment_authorization(ctx: AuditContext, env: Environment, required: bool, reason: str) -> Environment:
    """Require authorization in an environment (the default) or relax it (e.g. a sandbox): in a relaxed
    environment an artifact without provenance or allowlist entry is authorized with ``authorization:
    "relaxed"`` (shown, never silent) and raises no unauthorized-artifact alert. Needs a reason; records
    ``environment.authorization_relaxed`` / ``environment.authorization_required`` with who and why;
    the environment is re-evaluated after commit. Idempotent: no change, no event."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why (the reason is kept in the audit trail).", "reason")
    if len(reason) > MAX_REASON:
        raise ServiceError(f"Keep the reason under {MAX_REASON} characters.", "reason")
    env = Environment.objects.select_for_update().get(pk=env.pk)
    if env.is_logical:
        raise ServiceError("A logical environment has no artifacts of its own: relax or require authorization in "
                           "its member environments.", "require_authorization")
    if env.require_authorization == required:
        return env
    env.require_authorization = required
    env.save(update_fields=["require_authorization"])
    action = (AuditAction.ENVIRONMENT_AUTHORIZATION_REQUIRED if required
              else AuditAction.ENVIRONMENT_AUTHORIZATION_RELAXED)
    record_event(ctx, env.org, action, env, before={"require_authorization": not required},
                 after={"require_authorization": required, "reason": reason})
    hooks.run_environment_settings_changed(
        env.pk, f"authorization {'required' if required else 'relaxed'}", ctx.to_dict())
    return env
