"""Tags: an org's own key/value labels on its flows, environments, repositories, controls (and whatever else
registers).

One service, ``change_tags``, serves ``kosli tag`` (``PATCH /api/v2/tags/{org}/{type}/{id}`` with
``{"set_tags": {key: value}, "remove_tags": [key]}``) and the web pages' tag forms. Each taggable type is a
``TagType`` in a small registry: its kosli names, the permission that changing its tags needs, and how to
find one object of an org by the id the CLI sends. Another module makes a type taggable with one call::

    register(TagType("repo", ("repos", "repository"), "evidence.report", _repository, label="repository"))

The object must have a ``tags`` JSON field (a ``{str: str}`` object). Rules, the same for every type:
a key is 1-64 characters (letters, digits, ``_ . - /``, starting with a letter or digit: no ``=``, ``,``
or ``:``, which kosli's ``--set key=value`` and ``--tag key:value`` use as separators); a value is at
most 200 printable characters; at most 50 tags per object. The change is atomic and audited
(``tags.changed``, before and after).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from evidence.models import Control, Flow, Repository
from snapshots.models import Environment

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_VALUE = 200
MAX_TAGS = 50
MAX_CHANGES = 100  # keys in one request (set + remove)


@dataclass(frozen=True)
class TagType:
    """A taggable type: ``name`` (singular, as csm names it), its other kosli spellings, the permission a
    change needs, and ``lookup(org, identifier)`` → a queryset of at most one object of ``org``."""

    name: str
    aliases: tuple[str, ...]
    permission: str
    lookup: Callable
    label: str = ""
    page: Callable | None = None  # (org slug, object) -> the URL of the object's web page, for the tag form

    @property
    def title(self) -> str:
        return self.label or self.name


REGISTRY: dict[str, TagType] = {}


def register(tag_type: TagType) -> TagType:
    for spelling in (tag_type.name, *tag_type.aliases):
        existing = REGISTRY.get(spelling)
        if existing is not None and existing.name != tag_type.name:
            raise ValueError(f"tag type {spelling!r} is already registered for {existing.name!r}")
        REGISTRY[spelling] = tag_type
    return tag_type


def tag_type(kind: str) -> TagType:
    found = REGISTRY.get(kind)
    if found is None:
        names = sorted({t.name for t in REGISTRY.values()})
        raise ServiceError(f"'{kind[:40]}' is not a resource type csm can tag; use one of {', '.join(names)}",
                           "type", 404, "not_found")
    return found


def _repository(org, identifier: str):
    if not identifier.isascii() or not identifier.isdigit() or len(identifier) > 18:
        return Repository.objects.none()
    return Repository.objects.for_org(org).filter(pk=int(identifier))


register(TagType("flow", ("flows",), "evidence.report",
                 lambda org, key: Flow.objects.for_org(org).filter(name=key),
                 page=lambda slug, flow: reverse("flow-detail", args=[slug, flow.name])))
register(TagType("environment", ("env", "environments"), "environments.edit",
                 lambda org, key: Environment.objects.for_org(org).filter(name=key),
                 page=lambda slug, env: reverse("environment-detail", args=[slug, env.name])))
register(TagType("repo", ("repos", "repository"), "evidence.report", _repository, label="repository",
                 page=lambda slug, repo: reverse("repo-detail", args=[slug, repo.pk])))
register(TagType("control", ("controls",), "controls.manage",
                 lambda org, key: Control.objects.for_org(org).filter(identifier=key),
                 page=lambda slug, control: reverse("control-detail", args=[slug, control.identifier])))


def find(org, kind: str, identifier: str):
    """The object ``identifier`` names in ``org`` (404 when there is none: another org's is none)."""
    spec = tag_type(kind)
    found = spec.lookup(org, identifier).first() if identifier else None
    if found is None:
        raise ServiceError(f"{spec.title.capitalize()} '{identifier[:200]}' does not exist in org '{org.slug}'.",
                           "id", 404, "not_found")
    return found


def validate_changes(set_tags, remove_tags) -> tuple[dict[str, str], list[str]]:
    """kosli's ``TagResourcePayload`` → (tags to set, keys to remove); 400 naming the member at fault.
    A removal may be written ``key`` or ``key=value`` (kosli's help shows ``--unset key1=value1``): the key
    is what is removed."""
    if set_tags is None:
        set_tags = {}
    if remove_tags is None:
        remove_tags = []
    if not isinstance(set_tags, dict):
        raise ServiceError("set_tags must be an object of key: value", "set_tags")
    if not isinstance(remove_tags, list):
        raise ServiceError("remove_tags must be a list of keys", "remove_tags")
    if len(set_tags) + len(remove_tags) > MAX_CHANGES:
        raise ServiceError(f"at most {MAX_CHANGES} tags can be set or removed at once", "set_tags")
    for key, value in set_tags.items():
        if not KEY.match(key):
            raise ServiceError(f"Tag key '{key[:80]}' is invalid: use 1-64 letters, digits and _ . - / "
                               "(starting with a letter or digit)", f"set_tags.{key[:80]}")
        if not isinstance(value, str):
            raise ServiceError(f"Tag '{key}' must have a string value", f"set_tags.{key}")
        if len(value) > MAX_VALUE or CONTROL.search(value):
            raise ServiceError(f"Tag '{key}' has a value longer than {MAX_VALUE} characters or with control "
                               "characters", f"set_tags.{key}")
    keys = []
    for index, item in enumerate(remove_tags):
        if not isinstance(item, str):
            raise ServiceError("remove_tags must be a list of keys", f"remove_tags[{index}]")
        key = item.split("=", 1)[0]
        if not KEY.match(key):
            raise ServiceError(f"Tag key '{key[:80]}' is invalid: use 1-64 letters, digits and _ . - / "
                               "(starting with a letter or digit)", f"remove_tags[{index}]")
        if key in set_tags:
            raise ServiceError(f"Tag '{key}' is both set and removed: do one or the other", f"remove_tags[{index}]")
        keys.append(key)
    return dict(set_tags), list(dict.fromkeys(keys))


@transaction.atomic
def change_tags(ctx: AuditContext, org, kind: str, identifier: str, set_tags=None, remove_tags=None):
    """Set and remove tags on one object of ``org``; returns the object with its new tags. Nothing is
    written (and nothing audited) when the tags do not change."""
    spec = tag_type(kind)
    to_set, to_remove = validate_changes(set_tags, remove_tags)
    target = find(org, spec.name, identifier)
    target = type(target).objects.select_for_update().get(pk=target.pk)
    before = dict(target.tags or {})
    after = {key: value for key, value in before.items() if key not in to_remove} | to_set
    if len(after) > MAX_TAGS:
        raise ServiceError(f"{spec.title.capitalize()} '{identifier}' would have {len(after)} tags; at most "
                           f"{MAX_TAGS} are allowed", "set_tags")
    if after == before:
        return target
    target.tags = after
    fields = ["tags"]
    if hasattr(target, "updated_at"):
        target.updated_at = timezone.now()
        fields.append("updated_at")
    target.save(update_fields=fields)
    record_event(ctx, org, AuditAction.TAGS_CHANGED, target, before={"tags": before},
                 after={"type": spec.name, "tags": after})
    return target
