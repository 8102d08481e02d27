"""A flow's lifecycle: archive / unarchive and rename (kosli ``archive flow``, ``rename flow``). Each write is
one transaction that locks the flow row FOR UPDATE (every report into the flow holds it FOR SHARE:
``services.lock_flow``) and records its audit event.

Nothing is deleted: an archived flow keeps its trails, artifacts and attestations, readable, and refuses
new ones. A rename keeps every record; the old name is kept as a ``FlowName`` that still resolves to the
flow (``selectors.flow_named``) until another flow is renamed to it, so a pipeline that still says the old
name keeps reporting into the renamed flow instead of creating a new, empty one.
"""

from django.db import transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from evidence.models import Flow, FlowName
from evidence.services import _name


@transaction.atomic(durable=True)
def set_flow_archived(ctx: AuditContext, org, flow: Flow, archived: bool) -> Flow:
    """Archive or unarchive ``flow``. Idempotent: no change, no audit event."""
    flow = Flow.objects.select_for_update().get(pk=flow.pk, org=org)
    if flow.archived == archived:
        return flow
    flow.archived = archived
    flow.updated_at = timezone.now()
    flow.save(update_fields=["archived", "updated_at"])
    record_event(ctx, org, AuditAction.FLOW_ARCHIVED if archived else AuditAction.FLOW_UNARCHIVED, flow,
                 before={"name": flow.name, "archived": not archived}, after={"name": flow.name, "archived": archived})
    return flow


@transaction.atomic(durable=True)
def rename_flow(ctx: AuditContext, org, flow: Flow, new_name) -> Flow:
    """Rename ``flow`` to ``new_name`` (same naming rule as creating a flow). The old name stays an alias
    of the flow. A name another flow has now is refused; a name that is another flow's old name (an
    alias) is taken: that alias is released (kosli: "accessible under its old name until that name is
    taken by another flow") and the audit event says so. Renaming to the current name changes nothing."""
    new_name = _name(new_name, "new_name")
    flow = Flow.objects.select_for_update().get(pk=flow.pk, org=org)
    old_name = flow.name
    if new_name == old_name:
        return flow
    if Flow.objects.for_org(org).filter(name=new_name).exclude(pk=flow.pk).exists():
        # 400, not 409: the kosli CLI retries a 409 as a lock conflict.
        raise ServiceError(f"A flow named '{new_name}' already exists in organization '{org.slug}'", "new_name",
                           code="name_taken")
    now = timezone.now()
    released = []
    for alias in FlowName.objects.for_org(org).select_for_update().filter(name=new_name, released_at=None) \
            .select_related("flow"):
        FlowName.objects.filter(pk=alias.pk).update(released_at=now)
        released.append({"name": alias.name, "was_alias_of": alias.flow.name})
    FlowName.objects.create(org=org, flow=flow, name=old_name, renamed_to=new_name, renamed_at=now,
                            renamed_by=ctx.actor_label[:255])
    flow.name = new_name
    flow.updated_at = now
    flow.save(update_fields=["name", "updated_at"])
    flow._former_names = None  # Flow.name_at reloads the history
    after = {"name": new_name, "old_name_resolves_to_this_flow": old_name}
    if released:
        after["released_aliases"] = released
    record_event(ctx, org, AuditAction.FLOW_RENAMED, flow, before={"name": old_name}, after=after)
    return flow
