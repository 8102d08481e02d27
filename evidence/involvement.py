"""Who was involved with an artifact or an attestation: the reads behind the artifact page's "Who was
involved" section and the attestation page's header.

- ``reporters(org, attestations)``: per attestation, the identity that reported it (service account, user
  or personal token, from the attestation's audit event; the row's ``reported_by`` when no event is found).
- ``environment_reporters(org, fingerprint)``: per environment, the snapshot where the artifact first
  ran there and the token / service account / user whose report made that snapshot.
- ``involved(org, fingerprint, records, attestations)``: commits and authors, pull requests and their
  approvers, the CI identities that reported each attestation, overrides and who approved them, and
  the environments' first reporters.

Every function runs a fixed number of queries whatever the number of attestations or environments.
"""

from collections import defaultdict

from django.db.models import Q

from audit.choices import ActorType, AuditAction
from audit.models import AuditEvent
from evidence.choices import AttestationType
from snapshots.models import Snapshot, SnapshotEntry

ATTESTATION_ACTIONS = (AuditAction.ATTESTATION_CREATED, AuditAction.ATTESTATION_OVERRIDDEN)


def _identity(label: str, actor_type: str = "", service_account_id=None, token_id=None, user_id=None) -> dict:
    kind = ActorType(actor_type).label if actor_type in ActorType.values else ""
    if actor_type == ActorType.USER and token_id:
        kind = "User (personal API token)"
    elif actor_type == ActorType.SERVICE_ACCOUNT:
        kind = "Service account (API token)"
    return {"label": label or "unknown", "type": actor_type, "kind": kind, "service_account_id": service_account_id,
            "token_id": token_id, "user_id": user_id}


def reporters(org, attestations) -> dict[int, dict]:
    """``{attestation id: identity}`` (one query): identity is ``{"label", "type", "kind",
    "service_account_id", "token_id", "user_id"}``."""
    attestations = list(attestations)
    if not attestations:
        return {}
    events = (AuditEvent.objects.for_org(org)
              .filter(action__in=ATTESTATION_ACTIONS, target_type="attestation",
                      target_id__in=[str(a.pk) for a in attestations])
              .only("target_id", "actor_type", "actor_label", "actor_service_account_id", "actor_token_id",
                    "actor_user_id"))
    found = {int(e.target_id): _identity(e.actor_label, e.actor_type, e.actor_service_account_id, e.actor_token_id,
                                         e.actor_user_id) for e in events}
    return {a.pk: found.get(a.pk) or _identity(a.reported_by) for a in attestations}


def _report_identity(snapshot: Snapshot) -> dict:
    report = snapshot.report
    if report is None:
        return _identity(snapshot.reporter_label or "csm (no agent report)", ActorType.SYSTEM)
    account, token, user = report.service_account, report.token, report.user
    if account is not None:
        label = f"{account.name} ({token.prefix}…)" if token is not None else account.name
        return _identity(label, ActorType.SERVICE_ACCOUNT, account.pk, report.token_id)
    if user is not None:
        name = user.email or user.get_username()
        label = f"{name} ({token.prefix}…)" if token is not None else name
        return _identity(label, ActorType.USER, None, report.token_id, user.pk)
    return _identity(report.reporter_label, report.actor.get("actor_type", "") if isinstance(report.actor, dict)
                     else "", report.service_account_id, report.token_id, report.user_id)


def environment_reporters(org, fingerprint: str) -> list[dict]:
    """Per environment where ``fingerprint`` ran: ``{"environment", "environment_type", "snapshot_index",
    "time", "names", "reporter": identity}`` for the snapshot where it first ran there. Two queries."""
    if not fingerprint:
        return []
    first: dict[int, dict] = {}
    names: dict[int, list[str]] = defaultdict(list)
    for env_id, name, start in (SnapshotEntry.objects.for_org(org).filter(fingerprint=fingerprint)
                                .order_by("environment_id", "from_index")
                                .values_list("environment_id", "name", "from_index")):
        first.setdefault(env_id, {"index": start})
        if name not in names[env_id]:
            names[env_id].append(name)
    if not first:
        return []
    wanted = Q()
    for env_id, start in first.items():
        wanted |= Q(environment_id=env_id, index=start["index"])
    snapshots = (Snapshot.objects.for_org(org).filter(wanted)
                 .select_related("environment", "report", "report__service_account", "report__token", "report__user"))
    out = [{"environment": s.environment.name, "environment_type": s.environment.type, "snapshot_index": s.index,
            "time": s.created_at, "names": names[s.environment_id], "reporter": _report_identity(s)}
           for s in snapshots]
    out.sort(key=lambda row: (row["time"], row["environment"]))
    return out


def _commits(records) -> list[dict]:
    commits: dict[str, dict] = {}
    for record in records:
        for sha, info, url in ((record.git_commit, record.git_commit_info, record.commit_url),
                               (record.trail.git_commit if record.trail_id else "",
                                record.trail.git_commit_info if record.trail_id else {}, "")):
            if not sha:
                continue
            info = info if isinstance(info, dict) else {}
            entry = commits.setdefault(sha, {"sha": sha, "url": "", "author": "", "message": "", "branch": "",
                                             "flows": []})
            entry["url"] = entry["url"] or url
            for key in ("author", "message", "branch"):
                if not entry[key] and isinstance(info.get(key), str):
                    entry[key] = info[key][:500]
            label = f"{record.flow.name}/{record.trail.name}" if record.trail_id else record.flow.name
            if label not in entry["flows"]:
                entry["flows"].append(label)
    return list(commits.values())


def involved(org, fingerprint: str, records, attestations) -> dict:
    """Everything the artifact page's "Who was involved" section shows (see the module docstring).
    ``records`` are the artifact's reports (flow, trail selected), ``attestations`` its attestations
    (flow, trail selected). Three queries."""
    attestations = sorted(attestations, key=lambda a: (a.created_at, a.pk))
    identities = reporters(org, attestations)
    by_id = {a.pk: a for a in attestations}
    pull_requests = []
    for attestation in attestations:
        if attestation.type != AttestationType.PULL_REQUEST:
            continue
        for pr in (attestation.results or {}).get("pull_requests", []):
            pull_requests.append({**pr, "attestation": attestation})
    reported: dict[str, dict] = {}
    for attestation in attestations:
        identity = identities[attestation.pk]
        row = reported.setdefault(identity["label"], {"identity": identity, "attestations": []})
        row["attestations"].append(attestation)
    overrides = [{"attestation": a, "identity": identities[a.pk], "reason": a.reason,
                  "target": by_id.get((a.results or {}).get("overrides"))}
                 for a in attestations if a.type == AttestationType.OVERRIDE]
    artifact_reporters = sorted({record.reported_by for record in records if record.reported_by})
    return {"commits": _commits(records), "pull_requests": pull_requests, "reporters": list(reported.values()),
            "overrides": overrides, "artifact_reporters": artifact_reporters,
            "environments": environment_reporters(org, fingerprint)}
