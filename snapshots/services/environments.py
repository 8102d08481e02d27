"""Environment writes: create or update (a snapshotter may only create or re-send unchanged settings),
archive and unarchive, rename, join a logical environment, require or relax authorization. Each is one
transaction with its audit event."""


from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from snapshots import hooks
from snapshots.change_windows import validate_change_windows, validate_time_zone
from snapshots.choices import EnvironmentType
from snapshots.models import Environment, EnvironmentName, env_name_validator
from snapshots.selectors import environment_named

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
        "change_windows": env.change_windows, "change_window_tz": env.change_window_tz,
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
                                 may_change_existing: bool = True, change_windows: list | None = None,
                                 change_window_tz: str | None = None) -> tuple[Environment, bool]:
    """Create environment ``name`` or update it (idempotent: no change, no audit event). ``change_windows``
    and ``change_window_tz`` (None: unchanged) are validated by snapshots.change_windows.

    Changing the type of an environment that has snapshots is refused (its history would lie). With
    ``may_change_existing=False`` (a caller without ``environments.edit``, e.g. a snapshotter) only a
    missing environment may be created or an existing one re-sent unchanged; any change is a 403, so a
    reporting agent cannot, say, set a ten-year report interval that silences the agent-silent alert."""
    env = Environment.objects.for_org(org).select_for_update().filter(name=name).first()
    if env is None:  # a name the environment had before a rename still names it (selectors.environment_named)
        renamed = environment_named(org, name)
        env = Environment.objects.select_for_update().get(pk=renamed.pk) if renamed is not None else None
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
    if change_windows is not None:
        env.change_windows = validate_change_windows(change_windows)
    if change_window_tz is not None:
        env.change_window_tz = validate_time_zone(change_window_tz)
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
def set_change_windows(ctx: AuditContext, env: Environment, windows, tz: str) -> Environment:
    """Set the environment's change windows and their time zone (the web page's form; the API sets them
    through ``create_or_update_environment``). Validated by snapshots.change_windows; audited as
    ``environment.updated`` with before and after. Idempotent: no change, no event."""
    windows, tz = validate_change_windows(windows), validate_time_zone(tz)
    env = Environment.objects.select_for_update().get(pk=env.pk)
    if env.is_logical:
        raise ServiceError("A logical environment receives no changes of its own: set change windows on its "
                           "member environments.", "change_windows")
    before = {"change_windows": env.change_windows, "change_window_tz": env.change_window_tz}
    after = {"change_windows": windows, "change_window_tz": tz}
    if before != after:
        env.change_windows, env.change_window_tz = windows, tz
        env.save(update_fields=["change_windows", "change_window_tz"])
        record_event(ctx, env.org, AuditAction.ENVIRONMENT_UPDATED, env, before=before, after=after)
    return env


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


@transaction.atomic(durable=True)
def rename_environment(ctx: AuditContext, org, env: Environment, new_name) -> Environment:
    """Rename ``env`` (kosli ``rename environment``). Its snapshots stay its own and keep verifying: each
    commits to the name it was recorded under (``Environment.name_at``), and the rename holds the
    environment row — the ingest lock — so no snapshot is half-way. The old name becomes an alias that still
    resolves to the environment (reports, ``--auto-environment`` checks, create-if-missing), until another
    environment is renamed to it, which releases it. A name another environment has now is refused (400,
    not 409: the kosli CLI retries a 409). Alert actions naming the old name follow
    (``hooks.environment_renamed``). Renaming to the current name changes nothing."""
    if not isinstance(new_name, str) or not new_name.strip():
        raise ServiceError("new_name is required", "new_name")
    new_name = new_name.strip()
    try:
        env_name_validator(new_name)
    except ValidationError as error:
        raise ServiceError(f"new_name {new_name[:60]!r}: {error.messages[0]}", "new_name") from None
    env = Environment.objects.select_for_update().get(pk=env.pk, org=org)
    old_name = env.name
    if new_name == old_name:
        return env
    if Environment.objects.for_org(org).filter(name=new_name).exclude(pk=env.pk).exists():
        raise ServiceError(f"An environment named '{new_name}' already exists in organization '{org.slug}'",
                           "new_name", code="name_taken")
    now = timezone.now()
    released = []
    for alias in (EnvironmentName.objects.for_org(org).select_for_update().filter(name=new_name, released_at=None)
                  .select_related("environment")):
        EnvironmentName.objects.filter(pk=alias.pk).update(released_at=now)
        released.append({"name": alias.name, "was_alias_of": alias.environment.name})
    EnvironmentName.objects.create(org=org, environment=env, name=old_name, renamed_to=new_name,
                                   until_index=env.last_snapshot_index, renamed_at=now,
                                   renamed_by=ctx.actor_label[:255])
    env.name = new_name
    env.save(update_fields=["name"])
    env._former_names = None  # Environment.name_at reloads the history
    after = {"name": new_name, "old_name_resolves_to_this_environment": old_name,
             "snapshots_under_old_name": env.last_snapshot_index}
    if released:
        after["released_aliases"] = released
    record_event(ctx, org, AuditAction.ENVIRONMENT_RENAMED, env, before={"name": old_name}, after=after)
    hooks.run_environment_renamed(org, env.pk, old_name, new_name, ctx.to_dict())
    return env


@transaction.atomic(durable=True)
def join_environment(ctx: AuditContext, org, logical: Environment, physical_name) -> Environment:
    """Add the environment ``physical_name`` (its current or former name) to the logical environment
    ``logical`` (kosli ``join environment``). Idempotent: already a member, no change and no event;
    otherwise ``environment.updated`` with the members before and after, as an edit of the members."""
    if not isinstance(physical_name, str) or not physical_name.strip():
        raise ServiceError("physical_env_name is required", "physical_env_name")
    logical = Environment.objects.select_for_update().get(pk=logical.pk, org=org)
    if not logical.is_logical:
        raise ServiceError(f"Environment '{logical.name}' is not a logical environment (it is of type "
                           f"{logical.type}); only a logical environment has members.", "logical")
    physical = environment_named(org, physical_name.strip())
    if physical is None:
        raise ServiceError(f"Environment named '{physical_name.strip()}' does not exist for organization "
                           f"'{org.slug}'", "physical_env_name", code="not_found")
    if physical.is_logical:
        raise ServiceError(f"Environment '{physical.name}' is logical: a logical environment joins no other.",
                           "physical_env_name")
    before = environment_state(logical)
    if physical.name in before["included_environments"]:
        return logical
    logical.included_environments.add(physical)
    record_event(ctx, org, AuditAction.ENVIRONMENT_UPDATED, logical, before=before, after=environment_state(logical))
    return logical


@transaction.atomic(durable=True)
def leave_environment(ctx: AuditContext, org, logical: Environment, member_name) -> Environment:
    """Remove ``member_name`` from the logical environment's members (the web page's Remove button; kosli
    has no command for it). Idempotent; ``environment.updated`` with the members before and after."""
    logical = Environment.objects.select_for_update().get(pk=logical.pk, org=org)
    member = environment_named(org, member_name.strip()) if isinstance(member_name, str) else None
    before = environment_state(logical)
    if member is None or member.name not in before["included_environments"]:
        return logical
    logical.included_environments.remove(member)
    record_event(ctx, org, AuditAction.ENVIRONMENT_UPDATED, logical, before=before, after=environment_state(logical))
    return logical
