"""Which values of an audit event are a person's (journal/personal.py commits to them as keyed hashes).

- The acting user's label, IP address and user agent are theirs.
- The event's subject is the user it targets, else the owner of the first email address it mentions
  (a member invited, a sign-in attempted with that address).
- In the target's label, ``before`` and ``after``: every string holding an email address belongs to the
  owner of that address; every string under a key that names a person (``PERSON_KEYS``: ``email``,
  ``userName``, ``displayName``, ``subject``, …) belongs to the subject.
- An anonymous actor's IP address and user agent belong to the subject, when there is one (a failed
  sign-in as someone).

The rules see the data, not the action, so an event type added later is covered as long as it names
people by email address or under one of those keys.
"""

from journal.personal import EMAIL, People, get_at, last_key, pointer, strings

PERSON_KEYS = frozenset({
    "email", "emails", "user", "username", "user_name", "userName", "display_name", "displayName",
    "givenName", "familyName", "formatted", "external_id", "externalId", "subject", "account", "invited_by",
    "requested_by", "reported_by", "uploaded_by", "actor",
})
ACTOR_POINTERS = ("/actor/label", "/ip", "/user_agent")
SCANNED = ("/target/label", "/before", "/after")


def _subject(data: dict, people: People):
    target = data["target"]
    if target["type"] == "user" and str(target["id"]).isdigit():
        return people.for_user(int(target["id"]))
    for ptr in SCANNED:
        for _, text in strings(_at(data, ptr), ptr):
            found = EMAIL.search(text)
            if found:
                return people.for_email(found.group(0))
    return None


def _at(data: dict, ptr: str):
    """The value at ``ptr``, or None where the event has none."""
    try:
        return get_at(data, ptr)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def personal_of(data: dict, user_id: int | None, people: People) -> dict[str, int]:
    """The ``personal`` map (JSON Pointer → person id) of an audit event's canonical data."""
    personal: dict[str, int] = {}
    if user_id is not None:
        person = people.for_user(user_id).pk
        personal.update({ptr: person for ptr in ACTOR_POINTERS if _at(data, ptr)})
    subject = None
    for ptr in SCANNED:
        for path, text in strings(_at(data, ptr), ptr):
            found = EMAIL.search(text)
            if found:
                personal[path] = people.for_email(found.group(0)).pk
            elif text and (last_key(path) in PERSON_KEYS or _in_person_list(path)):
                subject = subject or _subject(data, people)
                if subject is not None:
                    personal[path] = subject.pk
    if data["target"]["type"] == "user" and data["target"]["label"]:
        subject = subject or _subject(data, people)
        personal[pointer("target", "label")] = subject.pk
    if user_id is None and data["actor"]["type"] == "anonymous":
        subject = subject or _subject(data, people)
        if subject is not None:
            personal.update({ptr: subject.pk for ptr in ("/ip", "/user_agent") if _at(data, ptr)})
    return personal


def _in_person_list(path: str) -> bool:
    """A string in a list under a person key (``"emails": [...]``)."""
    parts = path.split("/")
    return len(parts) >= 3 and parts[-1].isdigit() and parts[-2] in PERSON_KEYS
