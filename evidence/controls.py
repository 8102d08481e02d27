"""Controls: an org's named governance requirements (kosli ``create / get / list / update / archive /
unarchive control``, ``tag control``), and the ``decision`` attestations that say whether a trail meets one
(kosli ``attest decision``).

Writes (each atomic, each audited): ``create_control``, ``update_control``, ``archive_control``,
``unarchive_control``; tags change through the one tag service (``evidence.tags``, type ``control``).
Reads: ``get_control``, ``list_controls``, ``decisions_of``.
``judge_decision`` is what ``services.create_attestation`` calls for a decision: the control must exist
in the org and not be archived; the decision is compliant iff its ``attestation_data.is_compliant``.

Refusals raise ``csm.errors.ServiceError`` with kosli's wording where the CLI prints it
(``cmd/kosli/*Control_test.go``): "Control 'X' does not exist in org 'Y'" (404), "A control with
identifier 'X' already exists in organization 'Y'" (409).
"""

import re
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.api.filters import filter_by_tags
from csm.errors import ServiceError
from evidence.choices import Verification
from evidence.models import Attestation, Control
from evidence.parsers.judge import Judgement
from evidence.tags import MAX_TAGS, validate_changes

# kosli: "must start with a letter or number, and only contain letters, numbers, ., -, _, and ~"
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,119}$")
LINK_NAME = re.compile(r"^[^\x00-\x1f]{1,100}$")
MAX_LINKS = 50
SORT_DIRECTIONS = ("asc", "desc")


def _identifier(value) -> str:
    if not isinstance(value, str) or not value:
        raise ServiceError("identifier is required", "identifier")
    if not IDENTIFIER.match(value):
        raise ServiceError(f"identifier {value[:60]!r} must start with a letter or digit and contain only letters, "
                           "digits, '.', '-', '_' and '~' (at most 120 characters)", "identifier")
    return value


def _control_name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("name is required", "name")
    value = value.strip()
    if len(value) > 200 or any(ord(ch) < 32 for ch in value):
        raise ServiceError("name must be one line of at most 200 characters", "name")
    return value


def _description(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ServiceError("description must be a string", "description")
    if len(value) > 10_000:
        raise ServiceError("description is longer than 10000 characters", "description")
    return value


def _links(value) -> dict:
    """``{name: url}``, http(s) URLs only: they are links on the control's page."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ServiceError("links must be an object of name: URL", "links")
    if len(value) > MAX_LINKS:
        raise ServiceError(f"links has more than {MAX_LINKS} entries", "links")
    out = {}
    for name, url in value.items():
        if not LINK_NAME.match(name):
            raise ServiceError(f"link name {name[:60]!r} must be 1-100 printable characters", f"links.{name[:60]}")
        if not isinstance(url, str) or len(url) > 1000 or not re.match(r"^https?://\S+$", url, re.IGNORECASE):
            raise ServiceError(f"link {name!r} must be an http(s) URL", f"links.{name}")
        out[name] = url
    return out


def _initial_tags(tags) -> dict:
    """Tags given at creation follow the rules of every tag (``evidence.tags``; later changes go through
    ``kosli tag control`` / the page's Tags panel, ``tags.change_tags``)."""
    if tags is not None and not isinstance(tags, dict):
        raise ServiceError("tags must be an object of key: value", "tags")
    try:
        to_set, _ = validate_changes(tags, [])
    except ServiceError as error:
        raise ServiceError(error.message, "tags") from None
    if len(to_set) > MAX_TAGS:
        raise ServiceError(f"a control carries at most {MAX_TAGS} tags", "tags")
    return to_set


def does_not_exist(org, identifier: str) -> ServiceError:
    return ServiceError(f"Control '{identifier}' does not exist in org '{org.slug}'", "control", code="not_found")


# --- reads -------------------------------------------------------------------------------------------


def get_control(org, identifier: str, *, for_update: bool = False) -> Control:
    """The org's control ``identifier`` (archived or not); 404 with kosli's message otherwise."""
    controls = Control.objects.for_org(org)
    if for_update:
        controls = controls.select_for_update()
    control = controls.filter(identifier=identifier).first()
    if control is None:
        raise does_not_exist(org, identifier)
    return control


def list_controls(org, *, search: str = "", tags=(), archived: bool = False, sort_direction: str = "asc"):
    """The org's active controls (or, with ``archived``, its archived ones) by name then identifier.
    ``search``: name or identifier contains it (case-insensitive). ``tags``: ``key`` or ``key:value``; a
    control carrying any of them matches (the CLI: "can be repeated to match more than one tag")."""
    if sort_direction not in SORT_DIRECTIONS:
        raise ServiceError(f"sort_direction must be one of {', '.join(SORT_DIRECTIONS)}", "sort_direction")
    controls = Control.objects.for_org(org).filter(archived=archived)
    if search:
        controls = controls.filter(Q(name__icontains=search) | Q(identifier__icontains=search))
    controls = filter_by_tags(controls, tags)  # any of them, as kosli list environments --tag
    order = ["name", "identifier"] if sort_direction == "asc" else ["-name", "-identifier"]
    return controls.order_by(*order)


def decision_counts(org, listed) -> dict[int, dict]:
    """``{control id: {"total", "compliant"}}`` for the ``listed`` controls, in one query."""
    rows = (Attestation.objects.for_org(org).filter(control__in=listed).values("control_id")
            .annotate(total=Count("id"), compliant=Count("id", filter=Q(is_compliant=True))))
    return {row["control_id"]: {"total": row["total"], "compliant": row["compliant"],
                                "non_compliant": row["total"] - row["compliant"]} for row in rows}


def decisions_of(control: Control, limit: int = 500) -> dict:
    """A control's decisions across flows and trails: ``{"total", "compliant", "non_compliant"`` (all its
    decisions), ``"latest_compliant", "latest_non_compliant"`` (trails by their latest decision), ``"trails":
    [{"flow", "trail", "latest": Attestation, "count"}]`` (newest first), "limit"}``; the
    per-trail part reads the ``limit`` newest decisions."""
    decisions = list(Attestation.objects.for_org(control.org).filter(control=control)
                     .select_related("flow", "trail", "artifact").order_by("-created_at", "-id")[:limit])
    per_trail: dict[int, list[Attestation]] = defaultdict(list)
    for decision in decisions:
        per_trail[decision.trail_id].append(decision)
    trails = [{"flow": items[0].flow, "trail": items[0].trail, "latest": items[0], "count": len(items)}
              for items in per_trail.values()]
    counts = Attestation.objects.for_org(control.org).filter(control=control).aggregate(
        total=Count("id"), compliant=Count("id", filter=Q(is_compliant=True)))
    return {"total": counts["total"], "compliant": counts["compliant"],
            "non_compliant": counts["total"] - counts["compliant"],
            "latest_compliant": sum(1 for t in trails if t["latest"].is_compliant),
            "latest_non_compliant": sum(1 for t in trails if not t["latest"].is_compliant),
            "trails": trails, "limit": limit}


# --- writes ------------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def create_control(ctx: AuditContext, org, data: dict) -> Control:
    """kosli ``create control``: ``{identifier, name, description?}`` (csm also takes ``links`` and
    ``tags``). A taken identifier is a 409 (the CLI does not retry it: ``DisableConflictRetry``)."""
    identifier = _identifier(data.get("identifier"))
    fields = {"name": _control_name(data.get("name")), "description": _description(data.get("description")),
              "links": _links(data.get("links"))}
    tags = _initial_tags(data.get("tags"))
    conflict = ServiceError(f"A control with identifier '{identifier}' already exists in organization "
                            f"'{org.slug}'", "identifier", code="conflict")
    if Control.objects.filter(org=org, identifier=identifier).exists():
        raise conflict
    try:
        with transaction.atomic():
            control = Control.objects.create(org=org, identifier=identifier, tags=tags,
                                             created_by=ctx.actor_label[:255], **fields)
    except IntegrityError:  # created concurrently
        raise conflict from None
    record_event(ctx, org, AuditAction.CONTROL_CREATED, control, after=control.snapshot())
    return control


@transaction.atomic(durable=True)
def update_control(ctx: AuditContext, org, identifier: str, data: dict) -> Control:
    """kosli ``update control``: only the fields sent change (``name``, ``description``, ``links`` — links
    replace all existing ones). ``version`` goes up by one when something changed."""
    if not isinstance(data, dict):
        raise ServiceError("the body must be a JSON object", "body")
    unknown = sorted(set(data) - {"name", "description", "links"})
    if unknown:
        raise ServiceError(f"unknown field(s) {', '.join(unknown)}: a control's name, description and links can "
                           "be updated", unknown[0])
    control = get_control(org, identifier, for_update=True)
    before = control.snapshot()
    if "name" in data:
        control.name = _control_name(data["name"])
    if "description" in data:
        control.description = _description(data["description"])
    if "links" in data:
        control.links = _links(data["links"])
    if control.snapshot() != before:
        control.version += 1
        control.updated_at = timezone.now()
        control.save()
        record_event(ctx, org, AuditAction.CONTROL_UPDATED, control, before=before, after=control.snapshot())
    return control


@transaction.atomic  # not durable: the tags endpoint may call it inside its own transaction
def _set_archived(ctx, org, identifier: str, archived: bool) -> Control:
    control = get_control(org, identifier, for_update=True)
    if control.archived == archived:  # already so: nothing written, nothing to audit
        return control
    control.archived = archived
    control.archived_at = timezone.now() if archived else None
    control.updated_at = timezone.now()
    control.save(update_fields=["archived", "archived_at", "updated_at"])
    action = AuditAction.CONTROL_ARCHIVED if archived else AuditAction.CONTROL_UNARCHIVED
    record_event(ctx, org, action, control, before={"archived": not archived}, after={"archived": archived})
    return control


@transaction.atomic(durable=True)
def archive_control(ctx: AuditContext, org, identifier: str) -> Control:
    """kosli ``archive control``: it takes no new decisions; its decisions stay. Archiving an archived
    control answers it unchanged."""
    return _set_archived(ctx, org, identifier, True)


@transaction.atomic(durable=True)
def unarchive_control(ctx: AuditContext, org, identifier: str) -> Control:
    """kosli ``unarchive control``: active again."""
    return _set_archived(ctx, org, identifier, False)


# --- decisions ---------------------------------------------------------------------------------------


def judge_decision(org, data: dict) -> tuple[Control, Judgement, dict]:
    """A ``decision`` attestation (kosli ``DecisionAttestationPayload``: ``control``, ``attestation_data:
    {is_compliant}``): the control must exist in ``org`` and be active; compliant iff ``is_compliant``.
    Called inside ``services.create_attestation``'s transaction."""
    identifier = data.get("control")
    if not isinstance(identifier, str) or not identifier:
        raise ServiceError("control is required for a decision: the identifier of the control decided on",
                           "control")
    control = Control.objects.for_org(org).filter(identifier=identifier).first()
    if control is None:
        raise does_not_exist(org, identifier)
    if control.archived:
        raise ServiceError(f"Control '{identifier}' is archived in org '{org.slug}': it takes no new decisions "
                           "(unarchive it first)", "control")
    attestation_data = data.get("attestation_data")
    if not isinstance(attestation_data, dict):
        raise ServiceError("attestation_data must be an object with is_compliant", "attestation_data")
    compliant = attestation_data.get("is_compliant")
    if not isinstance(compliant, bool):
        raise ServiceError("attestation_data.is_compliant must be true or false", "attestation_data.is_compliant")
    problems = [] if compliant else [f"decision: control {identifier} ({control.name}) is not met"]
    results = {"control": identifier, "control_name": control.name, "is_compliant": compliant}
    return control, Judgement(compliant, Verification.NOT_APPLICABLE, problems, results), {
        "control": identifier, "attestation_data": {"is_compliant": compliant}}
