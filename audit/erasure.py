"""Erasure of a person: their name, email and addresses removed from every page, export and audit event,
with the journal still verifying (docs/operations.md, "Erasure of a person"; journal/personal.py).

``erase_person(email)`` runs in one transaction, across every org:

1. the account erasers of the apps (registered in their ``apps.py``) remove what is no journal row:
   memberships (each removal audited), tokens revoked, sessions, SSO and SCIM identities, second factors,
   pending invitations, report outputs that print the person;
2. every row whose leaf commits to one of the person's values (``PersonalRef``) gets ``ERASED`` there;
3. every label column naming the person gets ``ERASED``;
4. the person's keys are destroyed, and the user account keeps only its id (``erased-<id>``, no email, no
   password, inactive), so foreign keys still resolve;
5. each org the person was known to records ``person.erased`` naming only the person's number there.

Every org that knows the person holds its writes (their journal heads are locked) until the erasure commits, so
nothing naming the person slips in between reading their rows and destroying their keys. A write that names a
person already erased records ``ERASED`` there (journal/personal.py ``scrub``). An operator runs it
(``manage.py erase_person``); ``dry_run`` does all of it and rolls it back, to show what it would change.
"""

from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from audit.services import record_event
from csm.errors import ServiceError
from journal.models import PersonalRef, PersonKey
from journal.personal import EMAIL, ERASED, account_erasers, erased_copy, label_columns, leaf_erasers
from journal.services import locked_head


@dataclass
class Erasure:
    email: str
    users: list[int] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    earlier_format: int = 0
    dry_run: bool = False

    def lines(self) -> list[str]:
        what = "would erase" if self.dry_run else "erased"
        out = [f"{what} {self.email}: {len(self.users)} user account(s), known to {len(self.orgs)} org(s)"
               f"{' (' + ', '.join(self.orgs) + ')' if self.orgs else ''}"]
        out += [f"  {name}: {count}" for name, count in sorted(self.counts.items()) if count]
        if self.earlier_format:
            out.append(f"  {self.earlier_format} audit event(s) recorded before the erasable format still name this "
                       "person in their journal leaf; they are left as they are (docs/operations.md)")
        return out


def labels_of(users, email: str) -> list[str]:
    """How the person is named in label columns: the email, and a username where there is no email."""
    labels = {email}
    labels.update(user.get_username().lower() for user in users if not user.email and user.get_username())
    return sorted(label for label in labels if label)


def naming(column: str, labels: list[str]) -> Q:
    """Rows whose ``column`` is one of ``labels``, or a person's token label ``"<label> (<prefix>…)"``."""
    query = Q()
    for label in labels:
        query |= Q(**{f"{column}__iexact": label}) | Q(**{f"{column}__istartswith": f"{label} ("})
    return query


def erase_audit_rows(leaf_ids: list[int], persons: set[int]) -> int:
    """The audit events among ``leaf_ids``: the persons' values become ``ERASED``."""
    erased = 0
    for event in AuditEvent.objects.filter(leaf_id__in=leaf_ids).exclude(personal=None).order_by("pk"):
        data = event.canonical_data()
        copy = erased_copy(data, event.personal, persons)
        if copy == data:
            continue
        event.apply_canonical(copy)
        event.erasures += 1
        event.save(update_fields=[*AuditEvent.PERSONAL_COLUMNS, "erasures"])
        erased += 1
    return erased


def _persons(user_ids: list[int], email: str) -> list[PersonKey]:
    """The person's keys not yet destroyed, in every org (a user's, and their address's from before)."""
    return list(PersonKey.objects.select_for_update().select_related("org")
                .filter(Q(user_id__in=user_ids) | Q(user=None, email=email)).filter(erased_at=None).order_by("pk"))


def _orgs_knowing(user_ids: list[int], email: str) -> list:
    """The orgs whose journal names the person or that they are a member of, locked in a fixed order: each
    org row first, then (by the caller) its journal head — the order every org write takes them in."""
    keyed = PersonKey.objects.filter(Q(user_id__in=user_ids) | Q(user=None, email=email)).values("org_id")
    Org = PersonKey._meta.get_field("org").related_model
    members = Org._meta.get_field("memberships").related_model.objects.filter(user_id__in=user_ids).values("org_id")
    return list(Org.objects.select_for_update().filter(Q(pk__in=keyed) | Q(pk__in=members)).order_by("pk"))


def _erase_leaf_rows(persons: list[PersonKey], *, counts: Counter) -> None:
    """Rewrite the rows of every leaf indexed under ``persons``."""
    erasers = leaf_erasers()
    for person in persons:
        by_kind: dict[str, list[int]] = {}
        for leaf_id, kind in PersonalRef.objects.filter(person=person).values_list("leaf_id", "leaf__kind"):
            by_kind.setdefault(kind, []).append(leaf_id)
        for kind, leaf_ids in sorted(by_kind.items()):
            if kind in erasers:
                counts[f"{kind} rows"] += erasers[kind](leaf_ids, {person.pk})


def erase_person(email: str, *, ctx: AuditContext | None = None, dry_run: bool = False) -> Erasure:
    email = (email or "").strip().lower()
    if not EMAIL.fullmatch(email):
        raise ServiceError("Enter the email address of the person to erase.", field="email")
    ctx = ctx or AuditContext.system("erasure")
    result = Erasure(email=email, dry_run=dry_run)
    with transaction.atomic():
        users = list(get_user_model().objects.select_for_update().filter(email__iexact=email).order_by("pk"))
        result.users = [user.pk for user in users]
        labels = labels_of(users, email)
        # What the person's events name them by, counted before their account is renamed below.
        result.earlier_format = AuditEvent.objects.filter(personal=None).filter(
            Q(actor_user_id__in=result.users) | naming("actor_label", labels) | naming("target_label", labels)
            | Q(target_label__icontains=email)).count()
        # Every org that knows the person holds its writes until this commits: a write naming them that
        # committed between reading their rows and destroying their key would keep their values in clear.
        for org in _orgs_knowing(result.users, email):
            locked_head(org)
        for eraser in account_erasers():
            result.counts.update(eraser(ctx, users, email))
        persons = _persons(result.users, email)
        _erase_leaf_rows(persons, counts=result.counts)
        for model, column, counter in label_columns():
            rows = model.objects.filter(naming(column, labels))
            changes = {column: ERASED, **({counter: F(counter) + 1} if counter else {})}
            result.counts[f"{model._meta.label_lower}.{column}"] += rows.update(**changes)
        now = timezone.now()
        PersonKey.objects.filter(pk__in=[person.pk for person in persons]).update(key=None, email="", erased_at=now)
        for user in users:
            user.email, user.first_name, user.last_name = "", "", ""
            user.username = f"erased-{user.pk}"
            user.is_active = user.is_staff = user.is_superuser = False
            user.set_unusable_password()
            user.save()
        orgs = {}
        for person in persons:
            orgs.setdefault(person.org_id, (person.org, []))[1].append(person.pk)
        for org, numbers in sorted(orgs.values(), key=lambda item: item[0].slug):
            record_event(ctx, org, AuditAction.PERSON_ERASED, ("person", numbers[0], f"person #{numbers[0]}"),
                         after={"persons": numbers})
        result.orgs = sorted(org.slug for org, _ in orgs.values())
        if dry_run:
            transaction.set_rollback(True)
    return result
