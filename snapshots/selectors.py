"""Reads of the snapshot journal: addressing, artifacts of a snapshot, diffs, history, search.

This is the stable API the evidence, policies, alerts and reports apps import:

- ``resolve_snapshot(environment, snappish) -> Snapshot`` (raises ``SnapshotNotFound``)
- ``latest_snapshot(environment) -> Snapshot | None``
- ``snapshot_artifacts(snapshot, include_exited=False) -> list[dict]``
- ``logical_artifacts(environment) -> list[dict]`` (union of a logical env's members' latest snapshots)
- ``diff_snapshots(a, b) -> dict``
- ``fingerprint_history(org, fingerprint) -> list[dict]``

Reads never write. What runs in snapshot N of an environment: entries with
``from_index <= N < to_index`` (``to_index`` NULL = still running), served by the
(environment, from_index, to_index) index.
"""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import msgspec
from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, Sum, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lead, TruncDate
from django.urls import reverse
from django.utils import timezone

from csm.errors import ServiceError
from csm.lib.bounded import InputError, parse_datetime, parse_int, relative_time
from csm.lib.fingerprints import is_fingerprint_prefix
from journal.canonical import canonical_json
from snapshots import hooks
from snapshots.choices import Annotation, EnvironmentType
from snapshots.models import Environment, EnvironmentName, Snapshot, SnapshotEntry


class SnapshotNotFound(LookupError):
    """No snapshot matches the address; the message says why (shown to API callers as a 404)."""


class BadSnappish(ValueError):
    """The address is not in a known syntax (an API 400)."""


_RELATIVE = re.compile(r"^(\d+)\.(minute|hour|day|week|month)s?\.ago$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}


def latest_snapshot(environment: Environment) -> Snapshot | None:
    """The environment's latest snapshot, or None before its first one."""
    if not environment.last_snapshot_index:
        return None
    return Snapshot.objects.filter(environment=environment, index=environment.last_snapshot_index).first()


def _parse_time(text: str, now) -> datetime:
    """``N.<unit>s.ago`` or an ISO time, as an aware UTC datetime; BadSnappish when malformed or outside
    the calendar (``@{99999999999.days.ago}``, ``@{0001-01-01T00:00:00+14:00}``)."""
    match = _RELATIVE.match(text)
    try:
        if match:
            return relative_time(match.group(1), _UNIT_SECONDS[match.group(2)], now, "id")
        return parse_datetime(text, "id")
    except InputError as error:
        if match or "out of range" in error.message:
            raise BadSnappish(f"{text!r}: {error.message}") from None
        raise BadSnappish(f"{text!r} is neither an ISO timestamp (2026-11-24T14:00:00) nor N.<minutes|hours|days|"
                          "weeks|months>.ago") from None


def resolve_snapshot(environment: Environment, snappish: str, now=None) -> Snapshot:
    """The snapshot of ``environment`` addressed by ``snappish``:

    ``-1`` / ``""`` / ``latest`` (latest), ``#N`` or ``N`` (number N, from 1), ``~N`` (N before the
    latest), ``@{2026-11-24T14:00:00}`` (in force at that UTC moment), ``@{3.days.ago}``
    (``N.minutes|hours|days|weeks|months.ago``; a month is 30 days).

    Raises ``BadSnappish`` for an unknown syntax and ``SnapshotNotFound`` (with a clear message) when
    nothing matches: ``#0``, a number past the latest, ``~N`` past the first, a time before the first."""
    text = (snappish or "").strip()
    latest = environment.last_snapshot_index
    if not latest:
        raise SnapshotNotFound(f"Environment {environment.name!r} has no snapshots yet.")
    if text in ("", "-1", "latest", "NOW"):
        index = latest
    elif text.startswith("@{") and text.endswith("}"):
        moment = _parse_time(text[2:-1].strip(), now or timezone.now())
        snapshot = (Snapshot.objects.filter(environment=environment, created_at__lte=moment)
                    .order_by("-index").first())
        if snapshot is None:
            first = Snapshot.objects.filter(environment=environment, index=1).first()
            raise SnapshotNotFound(f"{moment.isoformat()} is before the first snapshot of {environment.name!r} "
                                   f"(#1 at {first.created_at.isoformat()}).")
        snapshot.environment = environment  # the row in hand: snapshot.environment is no second query
        return snapshot
    elif text.startswith("~"):
        behind = _number(text[1:], text)
        index = latest - behind
        if index < 1:
            raise SnapshotNotFound(f"{text} is past the first snapshot: {environment.name!r} has {latest} "
                                   f"snapshot(s), so ~{latest - 1} is the oldest.")
    elif text.startswith("-"):
        behind = _number(text[1:], text)
        if behind < 1:
            raise SnapshotNotFound("Snapshots are numbered from 1; -1 is the latest.")
        index = latest - behind + 1
        if index < 1:
            raise SnapshotNotFound(f"{text} is past the first snapshot of {environment.name!r} ({latest} in all).")
    else:
        index = _number(text[1:] if text.startswith("#") else text, text)
        if index < 1:
            raise SnapshotNotFound("Snapshots are numbered from 1: there is no snapshot #0.")
        if index > latest:
            raise SnapshotNotFound(f"{environment.name!r} has {latest} snapshot(s); there is no #{index}.")
    snapshot = Snapshot.objects.get(environment=environment, index=index)
    snapshot.environment = environment
    return snapshot


def _number(text: str, whole: str) -> int:
    """A snapshot number or distance: ASCII digits only (``str.isdigit()`` accepted '²', which ``int()``
    refused with a 500), at most a bigint."""
    try:
        return parse_int(text, "id")
    except InputError:
        raise BadSnappish(f"{whole!r} is not a snapshot address: use -1, #N, ~N, @{{ISO time}} or @{{N.days.ago}} "
                          "(N in ASCII digits, at most 19 of them).") from None


def environment_named(org, name: str) -> Environment | None:
    """The environment called ``name`` now, or the one called so before a rename while that old name is not
    released (kosli ``rename environment``: "the environment will remain accessible under its old name
    until that name is taken by another environment"), so an agent still reporting under the old name
    reports into the renamed environment, never into a new, empty one."""
    env = Environment.objects.for_org(org).filter(name=name).first()
    if env is None:
        former = (EnvironmentName.objects.for_org(org).filter(name=name, released_at=None)
                  .select_related("environment").first())
        env = former.environment if former is not None else None
    if env is not None:
        env.org = org  # the org at hand (scoped above): spares a query on every report accepted
    return env


def environment_or_404(org, name: str) -> Environment:
    """``environment_named`` or a 404 in kosli's words (the CLI prints the message)."""
    env = environment_named(org, name)
    if env is None:
        raise ServiceError(f"Environment named '{name}' does not exist for organization '{org.slug}'", "env",
                           code="not_found")
    return env


def parse_environment_snappish(org, text: str) -> tuple[Environment, str]:
    """``ENV``, ``ENV#N``, ``ENV~N``, ``ENV@{...}`` → (environment, snappish). Raises SnapshotNotFound for
    an unknown environment."""
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", text.strip())
    if not match:
        raise BadSnappish(f"{text!r} does not start with an environment name.")
    name, rest = match.groups()
    env = environment_named(org, name)
    if env is None:
        raise SnapshotNotFound(f"No environment named {name!r}.")
    return env, rest


def entries_at(environment_id: int, index: int):
    """Entries valid in snapshot ``index`` (a queryset)."""
    return SnapshotEntry.objects.filter(environment_id=environment_id, from_index__lte=index).filter(
        Q(to_index__isnull=True) | Q(to_index__gt=index))


def _sinceepoch() -> RawSQL:
    """running_since as seconds since the epoch: loading 10,000 aware datetimes through the driver costs
    more than the rest of the query, and most answers need only a few of them as datetimes.
    ``date_part`` computes in float8; ``extract`` computes a numeric (~0.5 µs a row more) and casting it
    gives the same double, the nearest to the exact value."""
    if connection.vendor == "postgresql":
        return RawSQL("date_part('epoch', running_since)", [])
    return RawSQL("(julianday(running_since) - 2440587.5) * 86400.0", [])


def _moments():
    """Epoch seconds → aware datetime, each distinct value converted once: entries reported together
    share their running-since time, and 10,000 conversions are a measurable part of a read."""
    cache: dict[float, datetime] = {}

    def moment(since: float) -> datetime:
        found = cache.get(since)
        if found is None:
            found = cache[since] = datetime.fromtimestamp(since, UTC)
        return found

    return moment


def _entry_rows(queryset, instances: bool = True) -> list[tuple]:
    """(name, fingerprint, instance count, instances text, from_index, running since) of each entry:
    tuples, as a 10,000-entry read builds one dict per artifact anyway. ``instances=False`` reads the
    entry's id in place of its instances text (``build_artifacts`` reads the texts of a page's rows)."""
    rows = queryset.annotate(since=_sinceepoch()).values_list(
        "name", "fingerprint", "instance_count", "instances" if instances else "id", "from_index", "since")
    moment = _moments()
    return [(name, fingerprint, count, instances, from_index, moment(since))
            for name, fingerprint, count, instances, from_index, since in rows]


_decode = msgspec.json.Decoder().decode


def parse_instances(text: str | None) -> list:
    """An entry's stored instance list (JSON text). msgspec: ~5x the standard library's speed, which is
    ~40 ms of reading a 10,000-artifact snapshot; numbers beyond a double (which only an older row could
    hold) fall back to the standard library."""
    try:
        return _decode(text or "[]")
    except msgspec.ValidationError:
        return json.loads(text)


def _artifact(entry: tuple, k8s: bool, annotation: str, was: int, now: int) -> dict:
    name, fingerprint, _, text, _, running_since = entry
    instances = parse_instances(text)
    pods = None
    if k8s:
        pods = {i["podName"]: {"namespace": i.get("namespace"),
                               "creationTimestamp": int(i.get("creationTimestamp") or 0),
                               "owners": i.get("owners") or []} for i in instances if "podName" in i}
    return {
        "name": name,
        "fingerprint": fingerprint,
        "unknown_fingerprint": not fingerprint,
        "instance_count": now,
        "instances": instances,
        "pods": pods,
        "creationTimestamp": sorted(int(i.get("creationTimestamp") or 0) for i in instances),
        "annotation": {"type": annotation, "was": was, "now": now},
        "running_since": running_since,
    }


def snapshot_artifacts(snapshot: Snapshot, include_exited: bool = False) -> list[dict]:
    """The artifacts of ``snapshot``, sorted by name then fingerprint. Each is a dict:

    ``{"name", "fingerprint" ("" when unknown), "unknown_fingerprint", "instance_count", "instances"
    (list of per-instance context: podName/namespace/owners for K8S, taskArn... for ECS, always
    creationTimestamp), "pods" ({podName: {...}} for K8S, else None), "creationTimestamp" (list of
    instance start times, kosli's shape), "annotation": {"type": started|unchanged|scaled|exited,
    "was": count in the previous snapshot, "now": count}, "running_since" (datetime)}``.

    ``include_exited`` adds the artifacts of the previous snapshot that are gone (``now`` = 0)."""
    return build_artifacts(snapshot, snapshot_artifact_rows(snapshot, include_exited))


def snapshot_artifact_rows(snapshot: Snapshot, include_exited: bool = False, instances: bool = True) -> list[tuple]:
    """The rows ``snapshot_artifacts`` builds its dicts from, in its order: ``(entry, annotation, was,
    now)``. Cheap (no instance list parsed): a page shows a slice of them through ``build_artifacts``;
    ``instances=False`` leaves the instance texts out of the read (a page reads its own)."""
    index = snapshot.index
    current = _entry_rows(entries_at(snapshot.environment_id, index), instances)
    closed = _entry_rows(SnapshotEntry.objects.filter(environment_id=snapshot.environment_id,
                                                      to_index=index), instances) if index > 1 else []
    before = {(e[0], e[1]): e for e in closed}
    result = []
    for entry in current:
        count = entry[2]
        if entry[4] != index:
            result.append((entry, Annotation.UNCHANGED, count, count))
        else:
            previous = before.get((entry[0], entry[1]))
            if previous is not None:
                result.append((entry, Annotation.SCALED, previous[2], count))
            else:
                result.append((entry, Annotation.STARTED, 0, count))
    if include_exited:
        still = {(e[0], e[1]) for e in current}
        for key, entry in before.items():
            if key not in still:
                result.append((entry, Annotation.EXITED, entry[2], 0))
    result.sort(key=lambda row: (row[0][0], row[0][1], row[1]))
    return result


def build_artifacts(snapshot: Snapshot, rows: list[tuple]) -> list[dict]:
    """The artifact dicts (see ``snapshot_artifacts``) of rows from ``snapshot_artifact_rows`` (read
    without their instance texts: one query reads those of these rows)."""
    if not rows:
        return []
    k8s = snapshot.environment.type == EnvironmentType.K8S
    ids = [row[0][3] for row in rows if isinstance(row[0][3], int)]
    if ids:
        texts = dict(SnapshotEntry.objects.filter(id__in=ids).values_list("id", "instances"))
        rows = [((e[0], e[1], e[2], texts.get(e[3]) if isinstance(e[3], int) else e[3], e[4], e[5]), *rest)
                for e, *rest in rows]
    return [_artifact(entry, k8s, annotation, was, now) for entry, annotation, was, now in rows]


def logical_artifacts(environment: Environment) -> list[dict]:
    """The union of the latest snapshots of a logical environment's members; each artifact also names
    its ``environment``."""
    result = []
    for member in environment.included_environments.order_by("name"):
        snapshot = latest_snapshot(member)
        if snapshot is None:
            continue
        for artifact in snapshot_artifacts(snapshot):
            result.append({**artifact, "environment": member.name})
    return result


def _diff_rows(snapshot: Snapshot) -> dict[tuple[str, str], tuple]:
    """(name, fingerprint) → (entry id, instance count, running since as epoch seconds)."""
    rows = entries_at(snapshot.environment_id, snapshot.index).annotate(since=_sinceepoch()).values_list(
        "id", "name", "fingerprint", "instance_count", "since")
    return {(name, fp): (pk, count, since) for pk, name, fp, count, since in rows}


def _instance_names(entry_ids: list[int]) -> dict[int, list[str]]:
    """Entry id → its instances' names (pod, task, app or revision; empty names left out), parsed in Python
    (for ``_diff_entries_python``; on PostgreSQL the names come with the diff query)."""
    if not entry_ids:
        return {}
    rows = SnapshotEntry.objects.filter(id__in=entry_ids).values_list("id", "instances")
    names = {}
    for pk, text in rows:
        found = (i.get("podName") or i.get("taskArn") or i.get("app_name") or i.get("revisionName")
                 for i in parse_instances(text))
        names[pk] = [name for name in found if name]
    return names


# One query for the whole diff: the two snapshots' entries, FULL JOINed on (name, fingerprint), give only
# the rows that differ (in one snapshot only, or other instance counts), so a diff of two 10,000-artifact
# snapshots moves its differences through the driver, not 20,000 rows. An entry in one snapshot only, or
# scaled (its names in snapshot 2), also brings its instances' names (pod, task, app or revision; empty
# names left out), parsed as jsonb only
# when the text names one of those keys at all: most instance lists (server, lambda, docker...) name
# none, and parsing 10,000 of them cost more than the join. (JSON writers never escape ASCII letters, so
# the text test has no false negatives.) NULL when there is nothing to extract.
_DIFF_SQL = """
SELECT coalesce(s1.name, s2.name), coalesce(s1.fingerprint, s2.fingerprint), s1.instance_count,
       s2.instance_count, date_part('epoch', coalesce(s2.running_since, s1.running_since)),
       CASE WHEN (s1.id IS NULL OR s2.id IS NULL OR s1.instance_count <> s2.instance_count) AND (
                 strpos(coalesce(s2.instances, s1.instances), '"podName"') > 0
                 OR strpos(coalesce(s2.instances, s1.instances), '"taskArn"') > 0
                 OR strpos(coalesce(s2.instances, s1.instances), '"app_name"') > 0
                 OR strpos(coalesce(s2.instances, s1.instances), '"revisionName"') > 0)
            THEN ARRAY(SELECT n FROM (SELECT coalesce(nullif(i->>'podName', ''), nullif(i->>'taskArn', ''),
                                                      nullif(i->>'app_name', ''), nullif(i->>'revisionName', ''))
                                      FROM jsonb_array_elements(coalesce(s2.instances, s1.instances)::jsonb) AS i)
                                     AS names (n)
                       WHERE n IS NOT NULL) END
FROM (SELECT id, name, fingerprint, instance_count, running_since, instances FROM snapshots_snapshotentry
      WHERE environment_id = %s AND from_index <= %s AND (to_index IS NULL OR to_index > %s)) AS s1
FULL JOIN (SELECT id, name, fingerprint, instance_count, running_since, instances FROM snapshots_snapshotentry
           WHERE environment_id = %s AND from_index <= %s AND (to_index IS NULL OR to_index > %s)) AS s2
     ON s1.name = s2.name AND s1.fingerprint = s2.fingerprint
"""
_DIFF_ONLY = "WHERE s1.id IS NULL OR s2.id IS NULL OR s1.instance_count <> s2.instance_count"
# Code-point order, as Python sorts strings (UTF-8 bytes compare in code-point order), whatever the
# database's collation; sorting here is cheaper than sorting the tuples in Python.
_DIFF_ORDER = ' ORDER BY coalesce(s1.name, s2.name) COLLATE "C", coalesce(s1.fingerprint, s2.fingerprint) COLLATE "C"'


def _diff_entries(a: Snapshot, b: Snapshot, include_unchanged: bool) -> list[tuple]:
    """The entries in which ``a`` and ``b`` differ (and, with ``include_unchanged``, those they share),
    sorted by (name, fingerprint): ``(name, fingerprint, count in a or None, count in b or None, running
    since as epoch seconds (of b's entry when in b), instance names (a list or None; for an entry in one
    snapshot only, and in b for a scaled one))``."""
    if connection.vendor != "postgresql":
        return _diff_entries_python(a, b, include_unchanged)
    with connection.cursor() as cursor:
        cursor.execute((_DIFF_SQL if include_unchanged else _DIFF_SQL + _DIFF_ONLY) + _DIFF_ORDER,
                       [a.environment_id, a.index, a.index, b.environment_id, b.index, b.index])
        return cursor.fetchall()


def _diff_entries_python(a: Snapshot, b: Snapshot, include_unchanged: bool) -> list[tuple]:
    """``_diff_entries`` off PostgreSQL (SQLite): both snapshots' entries read, compared in Python."""
    one, two = _diff_rows(a), _diff_rows(b)
    names = _instance_names([row[0] for key, row in one.items() if key not in two]
                            + [row[0] for key, row in two.items() if key not in one or one[key][1] != row[1]])
    rows = []
    for key, (pk, count, since) in one.items():
        other = two.get(key)
        if other is None:
            rows.append((*key, count, None, since, names.get(pk)))
        elif other[1] != count:
            rows.append((*key, count, other[1], other[2], names.get(other[0])))
        elif include_unchanged:
            rows.append((*key, count, other[1], other[2], None))
    rows.extend((*key, None, count, since, names.get(pk)) for key, (pk, count, since) in two.items()
                if key not in one)
    rows.sort(key=itemgetter(0, 1))
    return rows


def _ref(snapshot: Snapshot) -> dict:
    return {"environment": snapshot.environment.name, "index": snapshot.index, "timestamp": snapshot.created_at,
            "snapshot_id": f"{snapshot.environment.name}#{snapshot.index}"}


def unchanged_between(a: Snapshot, b: Snapshot, limit: int) -> tuple[int, list[dict]]:
    """(how many artifacts run in both snapshots with the same instance count, the first ``limit`` of
    them by name then fingerprint as ``{"name", "fingerprint", "s1_instance_count", "s2_instance_count"}``):
    for a page that shows the count and some rows without building every unchanged artifact."""
    same_in_a = entries_at(a.environment_id, a.index).filter(
        name=OuterRef("name"), fingerprint=OuterRef("fingerprint"), instance_count=OuterRef("instance_count"))
    rows = entries_at(b.environment_id, b.index).filter(Exists(same_in_a))
    first = rows.order_by("name", "fingerprint").values_list("name", "fingerprint", "instance_count")[:limit]
    return rows.count(), [{"name": name, "fingerprint": fp, "s1_instance_count": count, "s2_instance_count": count}
                          for name, fp, count in first]


def diff_snapshots(a: Snapshot, b: Snapshot, include_unchanged: bool = False, pair_upgrades: bool = True) -> dict:
    """Compare any two snapshots (also of two environments). Returns::

        {"snapshot1": ref, "snapshot2": ref,
         "only_in_1": [artifact], "only_in_2": [artifact],
         "changed": [{"name", "fingerprint1", "fingerprint2", "s1_instance_count", "s2_instance_count", ...}],
         "scaled": [artifact with other instance counts], "unchanged": [artifact] (only if asked)}

    where ref = {"environment", "index", "timestamp", "snapshot_id": "env#N"} and each artifact is
    ``{"name", "fingerprint", "sha256", "s1_instance_count", "s2_instance_count", "running_since",
    "most_recent_timestamp", "pods": [names]}`` (running since: snapshot 2's entry when it is in 2; pod /
    task names: where it runs in its only snapshot, or in snapshot 2 when scaled; [] for unchanged
    artifacts), each list sorted by (name, fingerprint).
    "changed" pairs, per artifact name, a fingerprint only in 1 with one only in 2 (an upgrade): the n-th
    of the name's fingerprints only in 1 with the n-th only in 2, in fingerprint order; it has snapshot
    2's fingerprint, running since and pods. ``pair_upgrades=False`` (kosli's diff, which has no upgrades):
    "changed" stays empty and both sides of an upgrade are in "only_in_1" / "only_in_2"."""
    rows = _diff_entries(a, b, include_unchanged)
    since_at = _moments()

    def item(row: tuple) -> dict:
        name, fp, count1, count2, since, pods = row
        return {"name": name, "fingerprint": fp, "sha256": fp, "s1_instance_count": count1 or 0,
                "s2_instance_count": count2 or 0, "running_since": since_at(since),
                "most_recent_timestamp": int(since), "pods": pods if pods is not None else []}

    in1, in2, both = [], {}, []  # rows only in 1; name → its rows only in 2; rows in both
    for row in rows:
        if row[3] is None:
            in1.append(row)
        elif row[2] is None:
            group = in2.get(row[0])
            if group is None:
                in2[row[0]] = [row]
            else:
                group.append(row)
        else:
            both.append(row)
    only1, changed = [], []
    taken: dict[str, int] = {}  # name → how many of its rows only in 2 are paired (the first ones)
    for row1 in in1:
        name = row1[0]
        group = in2.get(name)
        used = taken.get(name, 0)
        if pair_upgrades and group is not None and used < len(group):
            row2 = group[used]
            taken[name] = used + 1
            _, fp2, _, count2, since, pods = row2
            changed.append({"name": name, "fingerprint": fp2, "sha256": fp2, "s1_instance_count": row1[2],
                            "s2_instance_count": count2, "running_since": since_at(since),
                            "most_recent_timestamp": int(since), "pods": pods if pods is not None else [],
                            "fingerprint1": row1[1], "fingerprint2": fp2})
        else:
            only1.append(item(row1))
    result = {
        "snapshot1": _ref(a), "snapshot2": _ref(b),
        "only_in_1": only1,
        "only_in_2": [item(row) for name, group in in2.items() for row in group[taken.get(name, 0):]],
        "changed": changed,
        "scaled": [item(row) for row in both if row[2] != row[3]],
    }
    if include_unchanged:
        result["unchanged"] = [item(row) for row in both if row[2] == row[3]]
    return result


def fingerprint_history(org, fingerprint: str) -> list[dict]:
    """Where ``fingerprint`` runs now and ran, in ``org``: one dict per continuous run in an
    environment, oldest first::

        {"environment", "environment_type", "names": [artifact names], "from_index", "to_index",
         "last_index", "from_time", "to_time", "running": bool}

    ``to_index`` is the snapshot in which it was no longer running (exclusive end) and ``to_time`` that
    snapshot's time; both None while it still runs (``last_index`` is then the latest snapshot)."""
    rows = (SnapshotEntry.objects.for_org(org).filter(fingerprint=fingerprint)
            .order_by("environment_id", "from_index")
            .values_list("environment_id", "name", "from_index", "to_index"))
    runs: list[dict] = []
    for env_id, name, start, end in rows:
        last = runs[-1] if runs else None
        if last and last["environment_id"] == env_id and (last["to_index"] is None or start <= last["to_index"]):
            if last["to_index"] is not None and (end is None or end > last["to_index"]):
                last["to_index"] = end
            if name not in last["names"]:
                last["names"].append(name)
            continue
        runs.append({"environment_id": env_id, "names": [name], "from_index": start, "to_index": end})
    if not runs:
        return []
    envs = {e.pk: e for e in Environment.objects.for_org(org).filter(pk__in={r["environment_id"] for r in runs})}
    wanted = Q()
    for run in runs:
        wanted |= Q(environment_id=run["environment_id"], index__in=[i for i in (run["from_index"], run["to_index"])
                                                                     if i is not None])
    times = {(s.environment_id, s.index): s.created_at for s in Snapshot.objects.filter(wanted).only(
        "environment_id", "index", "created_at")}
    result = []
    for run in runs:
        env = envs[run.pop("environment_id")]
        end = run["to_index"]
        result.append({
            "environment": env.name, "environment_type": env.type, **run,
            "last_index": (end - 1) if end is not None else env.last_snapshot_index,
            "from_time": times.get((env.pk, run["from_index"])),
            "to_time": times.get((env.pk, end)) if end is not None else None,
            "running": end is None,
        })
    result.sort(key=lambda r: (r["from_time"] or timezone.now(), r["environment"]))
    return result


def fingerprint_candidates(org, prefix: str, limit: int = 20) -> list[str]:
    """Distinct fingerprints of ``org`` starting with ``prefix`` (at most ``limit`` + 1, sorted)."""
    return list(SnapshotEntry.objects.for_org(org).filter(fingerprint__startswith=prefix)
                .order_by("fingerprint").values_list("fingerprint", flat=True).distinct()[: limit + 1])


def parse_interval(environment: Environment, interval: str) -> tuple[int, int]:
    """``A..B`` with ``~N`` (N behind latest), ``N`` (number), ``NOW`` or empty (latest) → (lo, hi)."""
    latest = environment.last_snapshot_index

    if ".." not in interval:
        raise BadSnappish("interval must look like A..B (e.g. 3..NOW, ~10..~2).")
    start, end = interval.split("..", 1)
    lo, hi = interval_point(latest, start), interval_point(latest, end)
    return (lo, hi) if lo <= hi else (hi, lo)


def interval_point(latest: int, text: str) -> int:
    """One end of an interval: ``~N`` (N behind the latest), ``-N`` (the N-th latest: -1 is the latest, as
    in a snapshot address), ``N`` / ``#N`` (number N), ``NOW`` or empty (the latest)."""
    text = text.strip()
    if text in ("", "NOW", "now"):
        return latest
    try:  # ASCII digits, within a bigint (a larger snapshot number reaches no row: it is a typo)
        if text.startswith("~"):
            return max(latest - parse_int(text[1:], "interval"), 1)
        if text.startswith("-"):
            return max(latest - parse_int(text[1:], "interval", minimum=1) + 1, 1)
        return parse_int(text.lstrip("#"), "interval")
    except InputError:
        raise BadSnappish(f"{text!r} is not an interval end: use ~N, -N, N or NOW (N in ASCII digits, at most "
                          "19 of them).") from None


def parse_events_interval(environment: Environment, interval: str) -> tuple[int, int]:
    """``kosli log environment --interval``: ``A..B`` (``parse_interval``) or one expression — that snapshot's
    events only (``NOW``: the latest snapshot's, ``-3``: the third latest's)."""
    if ".." in interval:
        return parse_interval(environment, interval)
    index = interval_point(environment.last_snapshot_index, interval)
    return index, index


_SPAN = re.compile(r"^([0-9]{1,19})\s*(second|sec|minute|min|hour|day|week|month)s?$", re.IGNORECASE)
_SPAN_SECONDS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "day": 86400,
                 "week": 7 * 86400, "month": 30 * 86400}
_TIMESTAMP = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$")


def event_bound(text: str, field: str, now: datetime) -> tuple[str, int | datetime]:
    """A ``start`` / ``end`` of ``kosli log environment``: a snapshot number (``("index", N)``) or a time
    expression (``("time", moment)``): ``NOW``, ``N<unit>`` ago (``1hour``, ``30minutes``, ``2days``; a
    month is 30 days) or ``N.<unit>s.ago``. ``InputError`` naming ``field`` otherwise."""
    text = text.strip()
    if text.upper() == "NOW":
        return "time", now
    if text.isascii() and text.isdigit():
        return "index", parse_int(text, field)
    span, relative = _SPAN.match(text), _RELATIVE.match(text)
    if span:
        return "time", relative_time(span.group(1), _SPAN_SECONDS[span.group(2).lower()], now, field)
    if relative:
        return "time", relative_time(relative.group(1), _UNIT_SECONDS[relative.group(2)], now, field)
    raise InputError(f"{field} must be a snapshot number or a time expression (NOW, 1hour, 30minutes, 2days)",
                     field)


def unix_bound(text: str, field: str) -> datetime:
    """A ``start_ts`` / ``end_ts``: Unix seconds, whole or with a fraction (Go's ``FormatFloat(.., 'f', -1)``),
    at most 12 digits before the point (inside the calendar). ``InputError`` naming ``field`` otherwise."""
    text = text.strip()
    if not _TIMESTAMP.match(text):
        raise InputError(f"{field} must be Unix seconds in ASCII digits, e.g. 1700000000 or 1700000000.5", field)
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (OverflowError, ValueError, OSError):
        raise InputError(f"{field} is out of range (years 1970 to 9999)", field) from None


def kosli_event_range(environment: Environment, params, now: datetime) -> Q:
    """The events ``kosli log environment`` asks for (cmd/kosli/logEnvironment.go): ``interval`` (snapshot
    numbers, ``parse_events_interval``), ``start`` / ``end`` (``event_bound``: a snapshot number or a time)
    and ``start_ts`` / ``end_ts`` (``unix_bound``); all bounds inclusive and combined. ``InputError`` names
    the parameter at fault."""
    where = Q()
    interval = (params.get("interval") or "").strip()
    if interval:
        try:
            lo, hi = parse_events_interval(environment, interval)
        except BadSnappish as error:
            raise InputError(str(error), "interval") from None
        where &= Q(snapshot_index__gte=lo, snapshot_index__lte=hi)
    for field, op in (("start", "gte"), ("end", "lte")):
        text = (params.get(field) or "").strip()
        if text:
            kind, value = event_bound(text, field, now)
            where &= Q(**{f"{'snapshot_index' if kind == 'index' else 'created_at'}__{op}": value})
    for field, op in (("start_ts", "gte"), ("end_ts", "lte")):
        text = (params.get(field) or "").strip()
        if text:
            where &= Q(**{f"created_at__{op}": unix_bound(text, field)})
    return where


def snapshot_rows(environment: Environment, lo: int = 1, hi: int | None = None):
    """Snapshots in [lo, hi] with ``next_at`` (the next snapshot's time, None for the latest) and
    ``journal_index`` (their journal leaf's number, joined in the same query: no read per row)."""
    hi = environment.last_snapshot_index if hi is None else hi
    rows = (Snapshot.objects.filter(environment=environment, index__gte=max(lo - 0, 1), index__lte=hi + 1)
            .annotate(next_at=Window(Lead("created_at"), order_by=F("index").asc()), journal_index=F("leaf__index"))
            .order_by("index"))
    return [row for row in rows if row.index <= hi]


def change_sparkline(environments, days: int = 14) -> dict[int, list[int]]:
    """Per environment id: changes (started + exited + scaled) per day over the last ``days`` days."""
    since = (timezone.now() - timedelta(days=days - 1)).date()
    series = {env.pk: [0] * days for env in environments}
    rows = (Snapshot.objects.filter(environment__in=list(series), created_at__date__gte=since)
            .annotate(day=TruncDate("created_at")).values("environment_id", "day")
            .annotate(changes=Sum(F("started_count") + F("exited_count") + F("scaled_count"))))
    for row in rows:
        offset = (row["day"] - since).days
        if 0 <= offset < days:
            series[row["environment_id"]][offset] = row["changes"] or 0
    return series


def check_snapshot_leaf(leaf) -> str | None:
    """Journal row check: the snapshot row still matches the leaf that committed to it."""
    snapshot = Snapshot.objects.filter(leaf_id=leaf.pk).select_related("environment").first()
    if snapshot is None:
        return "its snapshot row is missing"
    data = snapshot.journal_data()
    if hashlib.sha256(canonical_json(data)).hexdigest() != snapshot.hash:
        return f"snapshot {snapshot} does not match its own hash"
    if canonical_json({**data, "hash": snapshot.hash}) != canonical_json(json.loads(leaf.payload)["data"]):
        return f"snapshot {snapshot} (id {snapshot.pk}) was altered after it was recorded"
    return None


SEARCH_RULE = "Search by at least 5 (at most 64) hex characters of a SHA-256 fingerprint."


def search(org, query: str) -> dict:
    """The fingerprint search behind the API and the web page alike. ``candidates``: fingerprints that
    start with the prefix; with exactly one, ``fingerprint`` and where it ran (``history``, ``names``,
    ``running_now``); ``extra``: the search matchers' hits (evidence: git commits). A query that is not
    5-64 hex characters raises ServiceError naming ``prefix``."""
    prefix = query.strip().lower()
    if not is_fingerprint_prefix(prefix):
        raise ServiceError(SEARCH_RULE, field="prefix")
    candidates = [fp for fp in fingerprint_candidates(org, prefix) if fp]
    result = {"prefix": prefix, "candidates": candidates, "fingerprint": None, "history": [], "names": [],
              "running_now": [], "extra": hooks.extra_search_matches(org, prefix)}
    if len(candidates) == 1:
        history = fingerprint_history(org, candidates[0])
        result.update(fingerprint=candidates[0], history=history,
                      names=sorted({name for run in history for name in run["names"]}),
                      running_now=sorted({run["environment"] for run in history if run["running"]}))
    return result


def epoch(moment) -> float | None:
    """Seconds since 1970 (what the kosli CLI reads for times), None for no time."""
    return moment.timestamp() if moment is not None else None


def run_events(runs: list[dict]) -> list[dict]:
    """The ``{event, timestamp}`` history entries kosli answers carry for a fingerprint's runs
    (``fingerprint_history``): when it started running in, and exited from, each environment."""
    events = []
    for run in runs:
        events.append({"event": f"Started running in {run['environment']}#{run['from_index']}",
                       "timestamp": epoch(run["from_time"])})
        if not run["running"]:
            events.append({"event": f"Exited from {run['environment']}#{run['to_index']}",
                           "timestamp": epoch(run["to_time"])})
    return events


def _search_artifact(org, fingerprint: str, name: str, provenance: dict) -> dict:
    """One artifact as ``kosli search`` reads it (its ``SearchArtifact``): provenance from the enrichers,
    where it runs and ran from the snapshot journal, and ``history`` events with epoch ``timestamp``s
    (what the CLI's ``formattedTimestamp`` parses)."""
    runs = fingerprint_history(org, fingerprint)
    running = sorted({run["environment"] for run in runs if run["running"]})
    events = run_events(runs)
    events.sort(key=lambda event: event["timestamp"] or 0)
    has_provenance = bool(provenance.get("provenance"))
    compliant = provenance.get("artifact_compliant")
    return {
        "fingerprint": fingerprint,
        "name": name or next((n for run in runs for n in run["names"]), ""),
        "flow": provenance.get("flow") or "",
        "git_commit": provenance.get("git_commit") or "",
        "has_provenance": has_provenance,
        "commit_url": provenance.get("commit_url") or "",
        "build_url": provenance.get("build_url") or "",
        "html_url": f"{settings.CSM_BASE_URL}{reverse('search', args=[org.slug])}?q={fingerprint}",
        "compliance_state": ("COMPLIANT" if compliant else "NON-COMPLIANT") if has_provenance and compliant is not None
        else "",
        "running_in": running,
        "exited_from": sorted({run["environment"] for run in runs} - set(running)),
        "history": events,
    }


def kosli_search(org, result: dict) -> dict:
    """``search``'s answer in the shape ``kosli search`` decodes (``SearchResponse``): ``resolved_to``
    (``type`` "fingerprint" or "commit" when the text names exactly one of either, else "mixed";
    ``full_match``; the fingerprints — seen running or reported by a flow — and git commits it matched)
    and ``artifacts``: every matched fingerprint and every artifact built from the matched commits
    (bounded by the matchers: about 20 fingerprints, 50 commit hits)."""
    commits = [match for match in result["extra"] if match.get("kind") == "git_commit"]
    commit_shas = sorted({match["git_commit"] for match in commits})
    reported = {match["fingerprint"]: match.get("name") or "" for match in result["extra"]
                if match.get("kind") == "fingerprint"}
    fingerprints = sorted(set(result["candidates"]) | set(reported))
    if len(fingerprints) == 1 and not commit_shas:
        kind, full = "fingerprint", fingerprints[0]
    elif len(commit_shas) == 1 and not fingerprints:
        kind, full = "commit", commit_shas[0]
    else:
        kind, full = "mixed", ""
    wanted: dict[str, str] = {fp: "" if fp in result["candidates"] else reported[fp] for fp in fingerprints}
    for match in commits:
        wanted.setdefault(match["fingerprint"], match.get("name") or "")
    provenance = hooks.enrich(org, set(wanted))
    return {
        "resolved_to": {
            "type": kind, "full_match": full,
            "fingerprints": {"type": "fingerprint", "count": len(fingerprints), "matches": fingerprints},
            "commits": {"type": "commit", "count": len(commit_shas), "matches": commit_shas},
        },
        "artifacts": [_search_artifact(org, fp, name, provenance.get(fp, {})) for fp, name in wanted.items()],
    }


SEARCH_MIN = 2
SEARCH_MAX = 200
SEARCH_LIMIT = 50
COMMIT_PREFIX = re.compile(r"[0-9a-f]{4,64}").fullmatch


def search_everything(org, query: str, limit: int = SEARCH_LIMIT) -> dict:
    """The web search: one text, every kind of thing it may name. ``{"query", "fingerprint" (the
    fingerprint search's answer when the text is 5-64 hex characters, else None), "artifacts" (by name
    or fingerprint prefix: ``[{name, fingerprint, running: [env], ran: [env]}]``), "commits" (artifacts
    built from a commit starting with the text: the search matchers' ``git_commit`` hits), "flows",
    "trails", "reported" (artifacts a flow reported under a matching name)}``. Bounded: 2 to 200
    characters (ServiceError naming ``q`` otherwise), at most ``limit`` hits per group."""
    text = (query or "").strip()
    if len(text) < SEARCH_MIN:
        raise ServiceError(f"Type at least {SEARCH_MIN} characters.", field="q")
    if len(text) > SEARCH_MAX:
        raise ServiceError(f"Search for at most {SEARCH_MAX} characters.", field="q")
    lowered = text.lower()
    result = {"query": text, "fingerprint": None, "artifacts": [], "commits": [], "flows": [], "trails": [],
              "reported": []}
    extra: list[dict] = []
    if is_fingerprint_prefix(lowered):
        result["fingerprint"] = search(org, lowered)
        extra = result["fingerprint"]["extra"]
    elif COMMIT_PREFIX(lowered):
        extra = hooks.extra_search_matches(org, lowered)
    result["commits"] = [m for m in extra if m.get("kind") == "git_commit"][:limit]
    by_name = Q(name__icontains=text)
    if is_fingerprint_prefix(lowered):
        by_name |= Q(fingerprint__startswith=lowered)
    pairs = list(SnapshotEntry.objects.for_org(org).filter(by_name).order_by("name", "fingerprint")
                 .values_list("name", "fingerprint").distinct()[:limit])
    if pairs:
        places: dict[tuple[str, str], dict] = {pair: {"running": set(), "ran": set()} for pair in pairs}
        rows = (SnapshotEntry.objects.for_org(org)
                .filter(name__in={p[0] for p in pairs}, fingerprint__in={p[1] for p in pairs})
                .values_list("name", "fingerprint", "environment__name", "to_index").distinct())
        for name, fingerprint, env, end in rows:
            place = places.get((name, fingerprint))
            if place is not None:
                place["running" if end is None else "ran"].add(env)
        for (name, fingerprint), place in places.items():
            result["artifacts"].append({"name": name, "fingerprint": fingerprint, "running": sorted(place["running"]),
                                        "ran": sorted(place["ran"] - place["running"])})
    for match in hooks.extra_name_matches(org, text, limit):
        group = {"flow": "flows", "trail": "trails", "artifact": "reported"}.get(match.get("kind"))
        if group:
            result[group].append(match)
    return result


def agent_command(org) -> str:
    """The agent command for an org without environments, host and org filled in; the token stays a
    variable (it is shown once, on the token page)."""
    return (f"export CSM_HOST={settings.CSM_BASE_URL} CSM_ORG={org.slug} CSM_API_TOKEN=<your token>\n"
            f"csm-agent snapshot docker prod --auto-environment")
