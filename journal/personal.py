"""Personal data in the journal, in a form that can be erased (docs/operations.md, "Erasure of a person").

A leaf is hashed into the journal once and for ever, so it must not hold a person's name, email or IP
address in clear: nobody could erase them without breaking every hash after it. A row that records
personal values therefore carries ``personal``, a map from a JSON Pointer (RFC 6901) into its committed
data to the id of the person the value belongs to (``PersonKey``), and its leaf commits to

- the map itself (ids only: nothing personal), and
- in place of each such value, ``"hmac-sha256:" + HMAC-SHA256(person's key, value)``.

The row keeps the value in clear for the pages and exports. ``verify_audit`` recomputes the HMAC from the
row while the key exists, so a changed value is detected as before. Erasing the person replaces the
value in the row by ``ERASED`` (the tables' triggers allow exactly that, counted: csm/db.py) and destroys
the key; from then on the check is that the row says ``ERASED`` where the leaf holds a commitment — the
leaf, its hash, the Merkle tree and every signed checkpoint are unchanged, and what the leaf holds can no
longer be tied to anyone.

Rows recorded before this format (no ``personal`` map) committed to their values in clear; an erasure
leaves them as they are and counts them (``erase`` in audit/erasure.py says how many).
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from journal.models import PersonalRef, PersonKey

ERASED = "[erased]"
PREFIX = "hmac-sha256:"
# An email address: a domain ending in a name of letters, so a package version ("requests@2.31.0") or a
# digest ("nginx@sha256:…") is not one.
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")


# --- JSON Pointers (RFC 6901) ------------------------------------------------------------------------

def pointer(*parts) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _parts(ptr: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in ptr.split("/")[1:]]


def _step(node, part: str):
    return node[int(part)] if isinstance(node, list) else node[part]


def get_at(data, ptr: str):
    node = data
    for part in _parts(ptr):
        node = _step(node, part)
    return node


def set_at(data, ptr: str, value) -> None:
    parts = _parts(ptr)
    node = data
    for part in parts[:-1]:
        node = _step(node, part)
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def strings(data, ptr: str = "") -> Iterable[tuple[str, str]]:
    """Every string in ``data`` with its pointer, keys included as the pointer's last part."""
    if isinstance(data, str):
        yield ptr, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from strings(value, ptr + pointer(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from strings(value, ptr + pointer(index))


def last_key(ptr: str) -> str:
    return _parts(ptr)[-1] if ptr else ""


# --- persons and their keys --------------------------------------------------------------------------

def _new_key() -> bytes:
    return secrets.token_bytes(32)


class People:
    """The persons of one org a write mentions, found (or given a key) on first use and cached."""

    def __init__(self, org):
        self.org = org
        self._by_user: dict[int, PersonKey] = {}
        self._by_email: dict[str, PersonKey] = {}

    def for_user(self, user_id: int) -> PersonKey:
        if user_id not in self._by_user:
            self._by_user[user_id] = self._get_or_create(user_id=user_id, email="")
        return self._by_user[user_id]

    def for_email(self, email: str) -> PersonKey:
        """The person an email address names: the user who has it, or the address itself."""
        email = email.strip().lower()
        if email not in self._by_email:
            user_id = (get_user_model().objects.filter(email__iexact=email).order_by("pk")
                       .values_list("pk", flat=True).first())
            self._by_email[email] = (self.for_user(user_id) if user_id is not None
                                     else self._get_or_create(user_id=None, email=email))
        return self._by_email[email]

    def keys(self) -> dict[int, bytes | None]:
        """The keys of the persons found so far (spares ``committed`` reading them again)."""
        persons = [*self._by_user.values(), *self._by_email.values()]
        return {person.pk: (bytes(person.key) if person.key is not None else None) for person in persons}

    def _get_or_create(self, user_id, email) -> PersonKey:
        lookup = PersonKey.objects.filter(org=self.org, user_id=user_id, email=email)
        person = lookup.first()
        if person is None:
            try:
                with transaction.atomic():
                    person = PersonKey.objects.create(org=self.org, user_id=user_id, email=email, key=_new_key())
            except IntegrityError:  # the same person was first mentioned concurrently
                person = lookup.get()
        return person


def seal(value: str, key: bytes) -> str:
    return PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


# Inside ``cached_keys()`` (verify_journal: one read-only snapshot of the database) keys are read once.
_KEYS: ContextVar[dict | None] = ContextVar("csm_person_keys", default=None)


@contextmanager
def cached_keys():
    token = _KEYS.set({})
    try:
        yield
    finally:
        _KEYS.reset(token)


def keys_of(personal: dict | None) -> dict[int, bytes | None]:
    """The keys of the persons a row's ``personal`` map names (None: erased)."""
    ids = set((personal or {}).values())
    if not ids:
        return {}
    cache = _KEYS.get()
    missing = ids if cache is None else ids - cache.keys()
    found = {pk: None for pk in missing}
    if missing:
        found.update({pk: (bytes(key) if key is not None else None)
                      for pk, key in PersonKey.objects.filter(pk__in=missing).values_list("pk", "key")})
    if cache is None:
        return found
    cache.update(found)
    return {pk: cache[pk] for pk in ids}


def committed(data: dict, personal: dict | None, keys: dict[int, bytes | None] | None = None,
              leaf_data: dict | None = None) -> dict:
    """What a leaf commits to for a row whose data is ``data``: the ``personal`` map, and each personal
    value replaced by its HMAC under its person's key. For an erased person (no key) the row must hold
    ``ERASED`` (or nothing) there, and the commitment is taken from ``leaf_data`` — anything else is left
    as it is, so it cannot match. ``personal`` None: a row of the format before this one, unchanged."""
    if personal is None:
        return data
    keys = keys_of(personal) if keys is None else keys
    out = {**data, "personal": dict(sorted(personal.items()))}
    out = _copy(out)
    for ptr, person in personal.items():
        try:
            value = get_at(out, ptr)
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # the row lost the value: the comparison with the leaf fails
        key = keys.get(person)
        if key is not None:
            if isinstance(value, str):
                set_at(out, ptr, seal(value, key))
        elif value in (ERASED, None) and leaf_data is not None:
            try:
                recorded = get_at(leaf_data, ptr)
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if isinstance(recorded, str) and recorded.startswith(PREFIX):
                set_at(out, ptr, recorded)
    return out


def _copy(value):
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def erased_copy(data: dict, personal: dict, persons: set[int]) -> dict:
    """``data`` with the values of ``persons`` replaced by ``ERASED``."""
    out = _copy(data)
    for ptr, person in personal.items():
        if person in persons:
            try:
                set_at(out, ptr, ERASED)
            except (KeyError, IndexError, TypeError, ValueError):
                continue
    return out


def scrub(data: dict, personal: dict, keys: dict[int, bytes | None]) -> tuple[dict, dict]:
    """A write that names a person already erased (a request that raced their erasure, an address mentioned
    again): their values become ``ERASED`` in the data and leave the ``personal`` map."""
    gone = {ptr: person for ptr, person in personal.items() if keys.get(person) is None}
    if not gone:
        return data, personal
    kept = {ptr: person for ptr, person in personal.items() if ptr not in gone}
    return erased_copy(data, gone, set(gone.values())), kept


def record_refs(org, leaf, personal: dict) -> None:
    """Index the leaf under each person it commits to (what an erasure walks)."""
    persons = sorted(set(personal.values()))
    if persons:
        PersonalRef.objects.bulk_create([PersonalRef(org=org, person_id=person, leaf=leaf) for person in persons])


def actor_personal(people: People, user_id: int | None, *pointers: str) -> dict[str, int]:
    """``pointers`` belong to the acting user (none when the actor is no person: a service account, the
    system)."""
    if user_id is None:
        return {}
    person = people.for_user(user_id).pk
    return {ptr: person for ptr in pointers}


# --- erasure: what each app erases of a person ---------------------------------------------------------

# Each app registers what only it knows (audit/erasure.py runs them, like verify_audit's row checks):
#
# - leaf erasers, kind -> fn(leaf_ids, person_ids) -> rows rewritten: the rows of that leaf kind whose
#   ``personal`` map names the persons get ``ERASED`` there (counted in their ``erasures``);
# - label columns, (model, column, counter): a column holding an actor's label ("alice@example.com", or
#   "alice@example.com (csm_ab…)" for a person's token) that no leaf commits to; rows naming the person get
#   ``ERASED`` (append-only tables count it in ``counter``);
# - account erasers, fn(ctx, users, email) -> {what: count}: what is no journal row (memberships, sessions,
#   SSO and SCIM identities, stored report outputs).
_LEAF_ERASERS: dict[str, Callable[[list[int], set[int]], int]] = {}
_LABEL_COLUMNS: list[tuple] = []
_ACCOUNT_ERASERS: list[Callable] = []


def register_leaf_eraser(kind: str, eraser: Callable[[list[int], set[int]], int]) -> None:
    _LEAF_ERASERS[kind] = eraser


def register_label_column(model, column: str, counter: str | None = None) -> None:
    if (model, column, counter) not in _LABEL_COLUMNS:
        _LABEL_COLUMNS.append((model, column, counter))


def register_account_eraser(eraser: Callable) -> None:
    if eraser not in _ACCOUNT_ERASERS:
        _ACCOUNT_ERASERS.append(eraser)


def leaf_erasers() -> dict[str, Callable[[list[int], set[int]], int]]:
    return dict(_LEAF_ERASERS)


def label_columns() -> list[tuple]:
    return list(_LABEL_COLUMNS)


def account_erasers() -> list[Callable]:
    return list(_ACCOUNT_ERASERS)
