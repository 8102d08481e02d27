"""The one place that decides what csm may say about compliance and authorization (secure defaults).

**Compliance** has three states, never two:

- ``compliant``: a policy applies and every running artifact satisfies it;
- ``non-compliant``: a policy applies and something fails it;
- ``unknown``: no policy applies (nothing was checked), or a decision could not be taken. Unknown is
  never shown or counted as compliant.

**Authorization** is a separate fact of every running artifact: it is *authorized* when a flow of the
org reported it (it has provenance) or an unexpired allowlist entry of its environment names it;
otherwise it is *unauthorized*, unless the environment's ``require_authorization`` was relaxed by an
org admin, in which case it is authorized with ``authorization: "relaxed"`` (said, never silent).

Everything that shows a compliance state (API answers, web badges, the assert endpoint, PDF reports)
goes through ``compliance_state`` / ``state_label`` / ``state_badge``; every per-artifact
authorization goes through ``authorization_for``; dashboards read ``environment_standings``.
"""

from django.db import connection
from django.db.models import BooleanField, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from evidence.models import Artifact
from snapshots.selectors import entries_at

from .models import AllowlistEntry, PolicyAttachment, SnapshotCompliance

COMPLIANT = "compliant"
NON_COMPLIANT = "non-compliant"
UNKNOWN = "unknown"
STATES = (COMPLIANT, NON_COMPLIANT, UNKNOWN)

_LABELS = {COMPLIANT: "Compliant", NON_COMPLIANT: "Non-compliant", UNKNOWN: "Unknown — no policy"}
_BADGES = {COMPLIANT: "ok", NON_COMPLIANT: "bad", UNKNOWN: "warn"}

# How an artifact is authorized (or not).
BY_PROVENANCE = "provenance"
BY_ALLOWLIST = "allowlisted"
RELAXED = "relaxed"
UNAUTHORIZED = "none"
_AUTHORIZATION_LABELS = {BY_PROVENANCE: "Authorized", BY_ALLOWLIST: "Authorized (allowlisted)",
                         RELAXED: "Not required (relaxed)", UNAUTHORIZED: "Unauthorized"}
_AUTHORIZATION_BADGES = {BY_PROVENANCE: "ok", BY_ALLOWLIST: "warn", RELAXED: "warn", UNAUTHORIZED: "bad"}


def compliance_state(compliant: bool | None, status: str | None = None) -> str:
    """``compliant`` (True / False / None) → "compliant" / "non-compliant" / "unknown". A per-artifact
    decision ``status`` (already one of the three) wins: an artifact whose rule could not be evaluated
    is ``unknown`` although its ``compliant`` is False."""
    if status in STATES:
        return status
    if compliant is None:
        return UNKNOWN
    return COMPLIANT if compliant else NON_COMPLIANT


def state_label(state: str, no_policy: bool = True) -> str:
    """Words for a state. ``no_policy=False``: an unknown that is not for lack of a policy (a rule that
    could not be evaluated, an environment not evaluated yet) reads plain "Unknown"."""
    if state == UNKNOWN and not no_policy:
        return "Unknown"
    return _LABELS[state]


def state_badge(state: str) -> str:
    """The badge class of a state (``ok`` / ``bad`` / ``warn``): unknown is never green."""
    return _BADGES[state]


def authorization_label(authorization: str) -> str:
    return _AUTHORIZATION_LABELS[authorization]


def authorization_badge(authorization: str) -> str:
    return _AUTHORIZATION_BADGES[authorization]


def active_allowlisted(environment_ids, now=None) -> dict[int, set[str]]:
    """``{environment id: fingerprints with an unexpired, unremoved allowlist entry}`` (one query)."""
    now = now or timezone.now()
    rows = (AllowlistEntry.objects.filter(environment_id__in=list(environment_ids), removed_at=None)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values_list("environment_id", "fingerprint"))
    out: dict[int, set[str]] = {}
    for environment_id, fingerprint in rows:
        out.setdefault(environment_id, set()).add(fingerprint)
    return out


def provenance_fingerprints(org, fingerprints) -> set[str]:
    """The fingerprints among ``fingerprints`` a flow of ``org`` reported (one query, whatever their
    number: on PostgreSQL they travel as one text parameter, as ``evidence.selectors`` does)."""
    wanted = sorted({fp for fp in fingerprints if fp and "," not in fp})
    if not wanted:
        return set()
    rows = Artifact.objects.filter(org_id=getattr(org, "pk", org))
    if connection.vendor == "postgresql":
        column = f'"{Artifact._meta.db_table}"."fingerprint"'  # our own table name; values are bound
        match = RawSQL(f"{column} = ANY(string_to_array(%s, ','))", (",".join(wanted),),  # noqa: S611 - own table name, values bound  # nosec B611
                       output_field=BooleanField())
        rows = rows.alias(wanted=match).filter(wanted=True)
    else:
        rows = rows.filter(fingerprint__in=wanted)
    return set(rows.order_by().values_list("fingerprint", flat=True).distinct())


def authorization(fingerprint: str, provenance: set[str], allowlisted: set[str], required: bool) -> dict:
    """``{"authorized": bool, "authorization": "provenance" | "allowlisted" | "relaxed" | "none"}``."""
    if fingerprint and fingerprint in provenance:
        how = BY_PROVENANCE
    elif fingerprint and fingerprint in allowlisted:
        how = BY_ALLOWLIST
    elif not required:
        how = RELAXED
    else:
        how = UNAUTHORIZED
    return {"authorized": how != UNAUTHORIZED, "authorization": how}


def authorization_for(org, environment, fingerprints) -> dict[str, dict]:
    """Per fingerprint running in ``environment``: ``authorization(...)``; the key ``""`` answers for an
    artifact the agent could not fingerprint. Two queries whatever the number of fingerprints."""
    wanted = {fp for fp in fingerprints if fp}
    provenance = provenance_fingerprints(org, wanted)
    allowlisted = active_allowlisted([environment.pk]).get(environment.pk, set())
    required = environment.require_authorization
    out = {fp: authorization(fp, provenance, allowlisted, required) for fp in wanted}
    out[""] = authorization("", provenance, allowlisted, required)
    return out


def count_unauthorized(environment, index: int, allowlisted=None) -> int:
    """How many artifacts running in snapshot ``index`` are unauthorized: no report by a flow of the
    org and no active allowlist entry (0 when the environment does not require authorization). Reads
    the running fingerprints (one column) and asks the evidence vault about them in one batched query,
    as the snapshot answer does; nothing is written per artifact. (A single anti-join in SQL was
    planned as a nested loop on freshly written rows: seconds at 10,000 artifacts.)"""
    if not environment.require_authorization:
        return 0
    if allowlisted is None:
        allowlisted = active_allowlisted([environment.pk]).get(environment.pk, set())
    running = list(entries_at(environment.pk, index).values_list("fingerprint", flat=True).iterator(chunk_size=5000))
    unknown = {fp for fp in running if fp and fp not in allowlisted}
    reported = provenance_fingerprints(environment.org_id, unknown) if unknown else set()
    return sum(1 for fp in running if not fp or (fp not in allowlisted and fp not in reported))


def environment_standings(org, environments) -> dict[int, dict]:
    """Per environment id: ``{"state", "compliant", "unauthorized", "non_compliant", "unknown",
    "running", "snapshot_index", "policed", "require_authorization"}`` from each environment's latest
    evaluation (``SnapshotCompliance``). A fixed number of queries (two) whatever the number of
    environments.

    ``policed``: a policy is attached now. ``compliant`` is None (state ``unknown``) when no policy
    applied to the latest evaluation or nothing was evaluated yet. ``unauthorized`` counts the running
    artifacts without provenance or allowlist entry (0 where authorization is relaxed)."""
    environments = list(environments)
    ids = [env.pk for env in environments]
    if not ids:
        return {}
    policed = set(PolicyAttachment.objects.filter(org=org, environment_id__in=ids)
                  .values_list("environment_id", flat=True).distinct())
    newest = (SnapshotCompliance.objects.filter(environment_id=OuterRef("environment_id"))
              .order_by("-snapshot_index").values("snapshot_index")[:1])
    latest = {row["environment_id"]: row for row in
              SnapshotCompliance.objects.filter(org=org, environment_id__in=ids, snapshot_index=Subquery(newest))
              .values("environment_id", "snapshot_index", "compliant", "compliant_count", "non_compliant_count",
                      "unknown_count", "unauthorized_count")}
    out = {}
    for env in environments:
        row = latest.get(env.pk)
        compliant = row["compliant"] if row else None
        out[env.pk] = {
            "state": compliance_state(compliant),
            "compliant": compliant,
            "unauthorized": row["unauthorized_count"] if row else 0,
            "non_compliant": row["non_compliant_count"] if row else 0,
            "unknown": row["unknown_count"] if row else env.current_artifact_count,
            "running": env.current_artifact_count,
            "snapshot_index": row["snapshot_index"] if row else None,
            "policed": env.pk in policed,
            "require_authorization": env.require_authorization,
        }
    return out


def environment_standing(environment) -> dict:
    """``environment_standings`` for one environment."""
    return environment_standings(environment.org, [environment])[environment.pk]

