"""Writes of the policies app: policy versions, attachments, allowlist entries, snapshot evaluations.

Every write by a person or token records its audit event in the same transaction. A change that can
alter an environment's compliance (attach, detach, a new version of an attached policy, an allowlist
entry added, removed or expired, an attestation arriving) asks for a re-evaluation on commit: the
worker evaluates the environment's latest state again and, when the outcome differs, appends a new
snapshot (reason ``reevaluation``) that records it — journal entries are never rewritten.
"""

import json
import logging
from collections import Counter
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from evidence.selectors import latest_trails
from snapshots.models import Environment, Snapshot, SnapshotEntry
from snapshots.selectors import entries_at as journal_entries_at
from snapshots.selectors import latest_snapshot, snapshot_artifacts
from snapshots.services.ingest import append_reevaluation_snapshot

from . import rego
from .evaluation import (
    COMPLIANT,
    NON_COMPLIANT,
    UNKNOWN,
    AppliedPolicy,
    evaluate_artifact,
    needs_changes,
    needs_vulnerabilities,
    rego_input,
)
from .facts import change_facts, gather_facts
from .models import (
    AllowlistEntry,
    ComplianceDecision,
    DecisionRecheck,
    FlowPolicyAttachment,
    Policy,
    PolicyAttachment,
    PolicyFormat,
    PolicyInput,
    PolicyVersion,
    SnapshotCompliance,
)
from .parsing import PolicyError, Problem, parse_policy
from .standing import count_unauthorized

log = logging.getLogger(__name__)

# Names the web pages use as path segments under /o/<org>/policies/.
RESERVED_NAMES = {"new", "environments"}


class PolicyServiceError(ServiceError):
    """A policy, attachment or allowlist write refused (see csm.errors.ServiceError)."""


# --- policies ------------------------------------------------------------------------------------


def parse_content(policy_format: str, content: str) -> dict:
    """Validate a policy's content in its format → the document stored with the version. Raises
    ``PolicyError`` whose first problem names the line (YAML rules, or a Rego syntax error)."""
    if policy_format == PolicyFormat.REGO:
        if len(content.encode()) > settings.CSM_POLICY_MAX_BYTES:
            limit = settings.CSM_POLICY_MAX_BYTES
            raise PolicyError([Problem(None, "", f"the policy file is larger than {limit} bytes")])
        if not content.strip():
            raise PolicyError([Problem(1, "", "the policy file is empty")])
        try:
            rego.check(content)
        except rego.RegoSyntaxError as error:
            raise PolicyError([Problem(error.line, "", f"invalid Rego: {error.message}")]) from None
        return {"format": "rego", "package": "policy", "sha256": rego.sha256_text(content)}
    return parse_policy(content)


def save_policy(ctx: AuditContext, org, name: str, content: str, description: str = "", comment: str = "",
                policy_type: str = "env", policy_format: str | None = None) -> tuple[Policy, PolicyVersion, bool]:
    """Create policy ``name`` or add a version when the content changed. Returns (policy, version,
    created). ``policy_format`` (``yaml`` / ``rego``) defaults to the existing policy's, else YAML; a
    policy keeps its format. Raises ``PolicyError`` for an invalid file. The content is validated
    before the transaction (a Rego compile runs in a child process)."""
    if name in RESERVED_NAMES:
        raise PolicyServiceError(f"{name!r} is reserved; choose another name.", "payload.name")
    if policy_type != "env":
        raise PolicyServiceError("Only environment policies (type 'env') are supported.", "payload.type")
    existing = Policy.objects.for_org(org).filter(name=name).values_list("format", flat=True).first()
    if policy_format is not None and policy_format not in PolicyFormat.values:
        raise PolicyServiceError(f"format must be one of {', '.join(PolicyFormat.values)}.", "payload.format")
    if existing is not None and policy_format is not None and policy_format != existing:
        raise PolicyServiceError(f"Policy {name!r} is a {existing} policy: a policy keeps its format; "
                                 f"create a {policy_format} policy under another name.", "payload.format")
    policy_format = existing or policy_format or PolicyFormat.YAML
    document = parse_content(policy_format, content)
    return _save_policy(ctx, org, name, content, document, description, comment, policy_type, policy_format)


@transaction.atomic(durable=True)
def _save_policy(ctx, org, name, content, document, description, comment, policy_type, policy_format):
    policy = Policy.objects.select_for_update().filter(org=org, name=name).first()
    created = policy is None
    if created:
        policy = Policy(org=org, name=name, description=description, type=policy_type, format=policy_format)
        try:
            policy.full_clean(exclude=["org"], validate_unique=False)
        except ValidationError as error:
            field, problems = next(iter(error.message_dict.items()))
            raise PolicyServiceError(f"{field}: {problems[0]}", f"payload.{field}") from None
        try:
            with transaction.atomic():
                policy.save()
        except IntegrityError:
            raise PolicyServiceError(f"Policy {name!r} was created concurrently; retry.", "payload.name", 409,
                                     "conflict") from None
        record_event(ctx, org, AuditAction.POLICY_CREATED, policy,
                     after={"name": name, "description": description, "format": policy_format})
    latest = policy.versions.order_by("-version").first()
    if policy.format != policy_format:  # created concurrently in the other format
        raise PolicyServiceError(f"Policy {name!r} is a {policy.format} policy.", "payload.format", 409, "conflict")
    if latest is not None and latest.content == content:
        if description and description != policy.description:
            before = {"description": policy.description}
            policy.description = description
            policy.updated_at = timezone.now()
            policy.save(update_fields=["description", "updated_at"])
            record_event(ctx, org, AuditAction.POLICY_VERSIONED, policy, before=before,
                         after={"description": description, "version": latest.version})
        return policy, latest, created
    number = policy.latest_version + 1
    version = PolicyVersion.objects.create(
        org=org, policy=policy, version=number, content=content, document=document, comment=comment,
        created_by=ctx.actor_label,
    )
    policy.latest_version = number
    policy.updated_at = version.created_at
    if description:
        policy.description = description
    policy.save(update_fields=["latest_version", "updated_at", "description"])
    if number > 1:
        record_event(ctx, org, AuditAction.POLICY_VERSIONED, policy, before={"version": number - 1},
                     after={"version": number, "comment": comment, "sha256": version.sha256})
        for attachment in PolicyAttachment.objects.filter(policy=policy):
            request_reevaluation(ctx, attachment.environment_id, f"policy {name} v{number}")
        _regate(policy)
    return policy, version, created


def _regate(policy: Policy) -> None:
    """A new version of a gate: the latest trails of its flows are evaluated again after commit."""
    for gate in FlowPolicyAttachment.objects.filter(policy=policy).select_related("flow"):
        for trail in latest_trails(gate.flow, GATE_TRAILS_ON_ATTACH):
            request_trail_gates(trail.pk)


def _policies_by_name(org, names: list[str]) -> list[Policy]:
    policies = {p.name: p for p in Policy.objects.for_org(org).filter(name__in=names)}
    missing = [name for name in names if name not in policies]
    if missing:
        raise PolicyServiceError(f"No policy named {', '.join(repr(n) for n in missing)}.", "policy_names", 404,
                                 "not_found")
    return [policies[name] for name in names]


@transaction.atomic(durable=True)
def attach_policies(ctx: AuditContext, org, environment, names: list[str]) -> list[str]:
    """Attach policies to an environment; already attached ones are left alone. Returns the newly attached."""
    attached = []
    for policy in _policies_by_name(org, names):
        _, created = PolicyAttachment.objects.get_or_create(
            org=org, policy=policy, environment=environment, defaults={"attached_by": ctx.actor_label}
        )
        if created:
            attached.append(policy.name)
            record_event(ctx, org, AuditAction.POLICY_ATTACHED, policy,
                         after={"policy": policy.name, "environment": environment.name})
    if attached:
        request_reevaluation(ctx, environment.pk, f"attached {', '.join(attached)}")
    return attached


@transaction.atomic(durable=True)
def detach_policies(ctx: AuditContext, org, environment, names: list[str]) -> list[str]:
    detached = []
    for policy in _policies_by_name(org, names):
        deleted, _ = PolicyAttachment.objects.filter(org=org, policy=policy, environment=environment).delete()
        if deleted:
            detached.append(policy.name)
            record_event(ctx, org, AuditAction.POLICY_DETACHED, policy,
                         before={"policy": policy.name, "environment": environment.name})
    if detached:
        request_reevaluation(ctx, environment.pk, f"detached {', '.join(detached)}")
    return detached


# --- flow gates ----------------------------------------------------------------------------------

# On attach, this many of the flow's latest trails are evaluated at once; the others at their next evidence.
GATE_TRAILS_ON_ATTACH = 50


@transaction.atomic(durable=True)
def attach_flow_policies(ctx: AuditContext, org, flow, names: list[str]) -> list[str]:
    """Make Rego policies gates of a flow's trails; already attached ones are left alone. The flow's
    latest trails are evaluated after commit. Returns the newly attached."""
    policies = _policies_by_name(org, names)
    for policy in policies:
        if policy.format != PolicyFormat.REGO:
            raise PolicyServiceError(f"Policy {policy.name!r} is a {policy.format} policy: only Rego policies "
                                     "gate a flow's trails (attach YAML policies to environments).", "policy_names")
    attached = []
    for policy in policies:
        _, created = FlowPolicyAttachment.objects.get_or_create(
            org=org, policy=policy, flow=flow, defaults={"attached_by": ctx.actor_label})
        if created:
            attached.append(policy.name)
            record_event(ctx, org, AuditAction.POLICY_ATTACHED, policy,
                         after={"policy": policy.name, "flow": flow.name})
    if attached:
        for trail in latest_trails(flow, GATE_TRAILS_ON_ATTACH):
            request_trail_gates(trail.pk)
    return attached


@transaction.atomic(durable=True)
def detach_flow_policies(ctx: AuditContext, org, flow, names: list[str]) -> list[str]:
    detached = []
    for policy in _policies_by_name(org, names):
        deleted, _ = FlowPolicyAttachment.objects.filter(org=org, policy=policy, flow=flow).delete()
        if deleted:
            detached.append(policy.name)
            record_event(ctx, org, AuditAction.POLICY_DETACHED, policy,
                         before={"policy": policy.name, "flow": flow.name})
    return detached


def request_trail_gates(trail_id: int) -> None:
    """Ask (after this transaction commits) for the trail's gates to be evaluated (``policies.gates``)."""
    from .tasks import evaluate_trail_gates

    ctx_dict = AuditContext.system("policy gate").to_dict()
    transaction.on_commit(lambda: evaluate_trail_gates.delay(trail_id, ctx_dict))


# --- allowlist -----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def add_allowlist_entry(ctx: AuditContext, org, environment, fingerprint: str, artifact_name: str, reason: str,
                        expires_at=None) -> AllowlistEntry:
    if expires_at is not None and expires_at <= timezone.now():
        raise PolicyServiceError("expires_at must be in the future.", "expires_at")
    if len(artifact_name) > 1000:
        raise PolicyServiceError("artifact_name is longer than 1000 characters.", "artifact_name")
    if not reason or len(reason) > 2000:
        raise PolicyServiceError("Give a reason of at most 2000 characters.", "reason")
    entry = AllowlistEntry.objects.create(
        org=org, environment=environment, fingerprint=fingerprint, artifact_name=artifact_name, reason=reason,
        expires_at=expires_at, created_by=ctx.actor_label,
    )
    record_event(ctx, org, AuditAction.ALLOWLIST_ADDED, entry, after={
        "environment": environment.name, "fingerprint": fingerprint, "artifact_name": artifact_name,
        "reason": reason, "expires_at": expires_at,
    })
    request_reevaluation(ctx, environment.pk, f"allowlisted {fingerprint[:12]}")
    return entry


@transaction.atomic(durable=True)
def remove_allowlist_entry(ctx: AuditContext, org, entry: AllowlistEntry) -> AllowlistEntry:
    entry = AllowlistEntry.objects.select_for_update().get(pk=entry.pk, org=org)
    if entry.removed_at is not None:
        return entry
    entry.removed_at = timezone.now()
    entry.removed_by = ctx.actor_label
    entry.save(update_fields=["removed_at", "removed_by"])
    record_event(ctx, org, AuditAction.ALLOWLIST_REMOVED, entry, before={
        "environment": entry.environment.name, "fingerprint": entry.fingerprint, "reason": entry.reason,
    })
    request_reevaluation(ctx, entry.environment_id, f"allowlist entry {entry.pk} removed")
    return entry


def handle_expired_allowlist_entries(now=None) -> int:
    """Re-evaluate environments whose allowlist entries expired since the last check. Returns how many."""
    now = now or timezone.now()
    handled = 0
    expired = AllowlistEntry.objects.filter(removed_at=None, expires_at__lte=now, expiry_handled_at=None)
    for entry in expired.select_related("environment")[:500]:
        with transaction.atomic():
            updated = AllowlistEntry.objects.filter(pk=entry.pk, expiry_handled_at=None).update(expiry_handled_at=now)
            if updated:
                handled += 1
                request_reevaluation(AuditContext.system("allowlist expiry"), entry.environment_id,
                                     f"allowlist entry {entry.pk} expired")
    return handled


def recheck_grace_periods(now=None) -> int:
    """Periodic: a decision that rests on a vulnerability still in its grace period carries ``recheck_at``
    (when the first such grace period ends). Once that time has passed, the artifact is marked for a new
    decision and its environment re-evaluated (a new snapshot records it when the outcome changes).
    A mark not yet consumed is not made again, so a decision whose outcome did not change is not asked
    for every minute. Returns how many environments were asked."""
    now = now or timezone.now()
    # Environments with a policy whose latest version has a vulnerability rule with a grace period.
    graced = (PolicyVersion.objects.filter(policy__format=PolicyFormat.YAML, version=F("policy__latest_version"),
                                           document__vulnerabilities__grace_seconds__gt=0)
              .values("policy_id"))
    graced = PolicyAttachment.objects.filter(policy_id__in=graced).values("environment_id")
    asked = 0
    for environment in Environment.objects.filter(pk__in=graced).select_related("org"):
        due = {fingerprint for fingerprint, recheck_at in
               ComplianceDecision.objects.filter(environment=environment, to_index=None,
                                                 decision__has_key="recheck_at")
               .values_list("fingerprint", "decision__recheck_at")
               if fingerprint and datetime.fromisoformat(recheck_at) <= now}
        due -= set(DecisionRecheck.objects.filter(environment=environment, fingerprint__in=due)
                   .values_list("fingerprint", flat=True))
        if not due:
            continue
        with transaction.atomic():
            DecisionRecheck.objects.bulk_create([
                DecisionRecheck(org=environment.org, environment=environment, fingerprint=fingerprint,
                                reason="vulnerabilities: grace period ended") for fingerprint in sorted(due)])
            request_reevaluation(AuditContext.system("vulnerability grace period"), environment.pk,
                                 "vulnerabilities: grace period ended")
        asked += 1
    return asked


# --- evaluation ----------------------------------------------------------------------------------


def applied_policy(policy: Policy, version: PolicyVersion) -> AppliedPolicy:
    if policy.format == PolicyFormat.REGO:
        return AppliedPolicy(policy.name, version.version, version.document, "rego", version.content, version.sha256)
    return AppliedPolicy(policy.name, version.version, version.document)


def attached_policies(environment) -> list[AppliedPolicy]:
    """The latest version of every policy attached to the environment, by name."""
    attachments = PolicyAttachment.objects.filter(environment=environment).select_related("policy")
    applied = []
    for attachment in attachments.order_by("policy__name"):
        policy = attachment.policy
        version = policy.versions.filter(version=policy.latest_version).first()
        if version is not None:
            applied.append(applied_policy(policy, version))
    return applied


def run_rego(policies: list[AppliedPolicy], facts: dict, environment, inputs: dict | None = None) -> dict:
    """Evaluate the Rego policies among ``policies`` for every artifact of ``facts`` (``{key:
    ArtifactFacts}``), one bounded child process per policy (``policies.rego``). Returns ``{key: {policy
    name: {allow, violations, error, input_sha256}}}``; ``inputs`` (when given) receives ``{sha256: input}``
    of every input evaluated, for the caller that stores the decisions."""
    rego_policies = [p for p in policies if p.is_rego]
    if not rego_policies or not facts:
        return {}
    env = {"name": environment.name, "type": environment.type} if environment is not None else None
    keys = list(facts)
    documents = [rego_input(facts[key], env) for key in keys]
    hashes = [rego.input_sha256(document) for document in documents]
    if inputs is not None:
        inputs.update(zip(hashes, documents, strict=True))
    results: dict = {key: {} for key in keys}
    for policy in rego_policies:
        for key, digest, decision in zip(keys, hashes, rego.evaluate(policy.source, documents), strict=True):
            results[key][policy.name] = {**decision.as_dict(), "input_sha256": digest}
    return results


def store_inputs(org, inputs: dict, wanted=None) -> None:
    """Keep the Rego inputs (``{sha256: input}``) decisions name, once per org (append-only rows)."""
    rows = [PolicyInput(org=org, sha256=digest, document=document, size=len(rego.canonical_json(document).encode()))
            for digest, document in inputs.items() if wanted is None or digest in wanted]
    PolicyInput.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


def active_allowlist(environment, now=None) -> dict[str, AllowlistEntry]:
    now = now or timezone.now()
    entries = AllowlistEntry.objects.filter(environment=environment, removed_at=None).order_by("created_at")
    return {entry.fingerprint: entry for entry in entries if entry.is_active(now)}


def evaluate_artifacts(org, environment, artifacts: list[dict], now=None) -> tuple[list[AppliedPolicy], list[dict]]:
    """Decide every ``{name, fingerprint}`` of ``artifacts`` in ``environment`` now."""
    policies = attached_policies(environment)
    return policies, decide(org, policies, active_allowlist(environment, now), artifacts, environment)


def decide(org, policies: list[AppliedPolicy], allowlist: dict, artifacts: list[dict], environment=None,
           inputs: dict | None = None, snapshot_index: int | None = None) -> list[dict]:
    """The decision of each of ``artifacts`` against ``policies`` and ``allowlist`` (the evaluator's
    answer plus name, fingerprint and provenance). Rego policies get each artifact's input
    (``evaluation.rego_input``); ``inputs`` receives them by hash (see ``run_rego``)."""
    if not policies:
        # Nothing is checked: every artifact's compliance is unknown (never compliant by default), and
        # the evidence vault need not be asked (authorization is read apart: policies.standing).
        return [unpoliced_decision(artifact, allowlist) for artifact in artifacts]
    facts = gather_facts(org, artifacts, vulnerabilities=needs_vulnerabilities(policies))
    if needs_changes(policies):  # when each artifact changed here (the change-window rule, Rego's input)
        for key, change in change_facts(environment, facts, snapshot_index).items():
            facts[key].change = change
    rego_results = run_rego(policies, facts, environment, inputs)
    decisions = []
    for artifact in artifacts:
        fingerprint = artifact.get("fingerprint") or ""
        entry = allowlist.get(fingerprint) if fingerprint else None
        key = (artifact["name"], fingerprint)
        decision = evaluate_artifact(facts[key], policies, entry.as_decision() if entry else None,
                                     rego_results.get(key))
        if not fingerprint and decision["status"] == COMPLIANT and policies:
            decision.update(status=UNKNOWN, compliant=False,
                            reasons_for_incompliance=["the agent could not fingerprint this artifact"])
        provenance = facts[(artifact["name"], fingerprint)].provenance or None
        decisions.append({"name": artifact["name"], "fingerprint": fingerprint, "provenance": provenance, **decision})
    return decisions


def unpoliced_decision(artifact: dict, allowlist: dict) -> dict:
    fingerprint = artifact.get("fingerprint") or ""
    entry = allowlist.get(fingerprint) if fingerprint else None
    return {"name": artifact["name"], "fingerprint": fingerprint, "provenance": None, "status": UNKNOWN,
            "compliant": None, "allowlisted": entry is not None,
            "allowlist_entry": entry.as_decision() if entry else None, "has_provenance": None,
            "policy_decisions": [], "reasons_for_incompliance": []}


def _stored_artifacts(policies, decisions) -> list[dict]:
    """What a stored evaluation keeps per artifact: nothing when no policy applies and nothing is
    allowlisted (every artifact's compliance unknown), so unpoliced environments store O(1)."""
    if not policies and not any(d["allowlisted"] for d in decisions):
        return []
    return decisions


def _outcome(policies, decisions) -> dict:
    return {
        "compliant": all(d["compliant"] for d in decisions) if policies else None,
        "applied_policies": [{"name": p.name, "version": p.version} for p in policies],
        "statuses": sorted((d["name"], d["fingerprint"], d["status"], d["allowlisted"])
                           for d in _stored_artifacts(policies, decisions)),
    }


def entries_at(environment_id: int, index: int):
    return journal_entries_at(environment_id, index)


def snapshot_artifact_keys(snapshot) -> list[dict]:
    return [{"name": a["name"], "fingerprint": a.get("fingerprint") or ""} for a in snapshot_artifacts(snapshot)]


def preview_snapshot(snapshot) -> dict:
    """The evaluation a snapshot would get now, without storing it (for reads of a snapshot whose
    evaluation has not run yet: reads never write)."""
    policies, decisions = evaluate_artifacts(snapshot.org, snapshot.environment, snapshot_artifact_keys(snapshot))
    outcome = _outcome(policies, decisions)
    return {"compliant": outcome["compliant"], "applied_policies": outcome["applied_policies"],
            "artifacts": decisions}


def _lock_environment_evaluations(environment_id: int) -> None:
    """Serialize evaluations of one environment (transaction-scoped). An advisory lock, not the
    environment row, so ingest of the next report is never blocked by an evaluation. SQLite (the
    embedded default) has a single writer and needs none."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_EVALUATION_LOCK_CLASS, environment_id])


_EVALUATION_LOCK_CLASS = 0x63736D  # "csm": keeps our advisory lock ids apart from anyone else's


def evaluate_snapshot(snapshot_id: int) -> SnapshotCompliance | None:
    """Evaluate a snapshot once and store the result (idempotent: the stored row wins).

    Evaluations of one environment are serialized and stored in snapshot order: if two workers run the
    after-snapshot hooks of snapshots N and N+1 at once, N is evaluated first, so ``changed`` (and the
    environment-compliance alert that reads it) always compares a snapshot with its true predecessor."""
    existing = SnapshotCompliance.objects.filter(snapshot_id=snapshot_id).first()
    if existing is not None:
        return existing
    snapshot = Snapshot.objects.select_related("environment", "org").filter(pk=snapshot_id).first()
    if snapshot is None:
        return None
    with transaction.atomic():
        _lock_environment_evaluations(snapshot.environment_id)
        existing = SnapshotCompliance.objects.filter(snapshot_id=snapshot_id).first()
        if existing is not None:
            return existing
        last = (SnapshotCompliance.objects.filter(environment=snapshot.environment, snapshot_index__lt=snapshot.index)
                .order_by("-snapshot_index").values_list("snapshot_index", flat=True).first())
        pending = (Snapshot.objects.select_related("environment", "org")
                   .filter(environment=snapshot.environment, index__lt=snapshot.index, index__gt=last or 0)
                   .order_by("index"))
        for earlier in pending:
            _store_evaluation(earlier)
        return _store_evaluation(snapshot)


def _store_evaluation(snapshot) -> SnapshotCompliance:
    """Evaluate snapshot N (the environment's evaluations up to N-1 are stored) and store its summary
    row plus only the decisions that changed: an artifact that started, or whose allowlist entry,
    evidence (a ``DecisionRecheck`` mark) or policies changed, is decided again and gets a new range
    when its decision differs; every other open range simply stays open. A change of the applied
    policies (attach, detach, new version) or a gap in the series decides every artifact again."""
    environment = snapshot.environment
    index = snapshot.index
    previous = (SnapshotCompliance.objects.filter(environment=environment, snapshot_index__lt=index)
                .order_by("-snapshot_index").first())
    rechecks = list(DecisionRecheck.objects.filter(environment=environment).values_list("pk", "fingerprint"))
    policies = attached_policies(environment)
    allowlist = active_allowlist(environment)
    applied = [{"name": p.name, "version": p.version} for p in policies]
    if not policies and not _running_allowlisted(environment, index, allowlist):
        # Compact: no policy, so every artifact's compliance is unknown; nothing stored per artifact (O(1)).
        _close_ranges(ComplianceDecision.objects.filter(environment=environment, to_index=None), index)
        counts = (0, 0, snapshot.artifact_count if not allowlist else entries_at(environment.pk, index).count())
    else:
        incremental = (previous is not None and previous.snapshot_index == index - 1
                       and previous.applied_policies == applied and _stored_per_artifact(previous))
        if incremental:
            fingerprints = {fp for _, fp in rechecks} | set(allowlist) | _allowlisted_in_force(environment)
            running, candidates = _changed_keys(environment, index, fingerprints)
        else:
            running = {(a["name"], a["fingerprint"]) for a in snapshot_artifact_keys(snapshot)}
            candidates = running | set(ComplianceDecision.objects.filter(environment=environment, to_index=None)
                                       .values_list("name", "fingerprint"))
        delta = _store_decisions(snapshot, policies, allowlist, applied, running, candidates, every=not incremental)
        if incremental:  # the previous counts plus what changed: no pass over every decision
            counts = tuple(before + delta.get(status, 0) for before, status in zip(
                (previous.compliant_count, previous.non_compliant_count, previous.unknown_count),
                (COMPLIANT, NON_COMPLIANT, UNKNOWN), strict=True))
        else:
            counts = _counts_at(environment, index)
    DecisionRecheck.objects.filter(pk__in=[pk for pk, _ in rechecks]).delete()
    # Unknown (None) without a policy: nothing was checked, so nothing can be called compliant.
    compliant = counts[1] + counts[2] == 0 if policies else None
    return SnapshotCompliance.objects.create(
        org=snapshot.org, environment=environment, snapshot=snapshot, snapshot_index=index,
        snapshot_at=snapshot.created_at, compliant=compliant,
        changed=previous is None or previous.compliant != compliant, applied_policies=applied,
        compliant_count=counts[0], non_compliant_count=counts[1], unknown_count=counts[2],
        unauthorized_count=count_unauthorized(environment, index, set(allowlist)),
    )


def _store_decisions(snapshot, policies, allowlist, applied, running: set, candidates: set,
                     every: bool) -> dict[str, int]:
    """Decide the ``candidates`` that run in the snapshot; close the range of every candidate whose
    decision changed or that no longer runs, and open a range for every new decision. ``every``: the
    candidates are all artifacts (read every open range at once rather than by fingerprint). Returns
    the change of the count of each status."""
    environment, index = snapshot.environment, snapshot.index
    in_force = _open_ranges(environment, keys=None if every else candidates)
    inputs: dict = {}
    decided = decide(snapshot.org, policies, allowlist,
                     [{"name": name, "fingerprint": fp} for name, fp in sorted(candidates & running)],
                     environment, inputs, snapshot_index=index)
    gone = [value for key, value in in_force.items() if key not in running]
    new_rows, closing = [], [pk for pk, _ in gone]
    delta: Counter = Counter()
    for _, decision in gone:
        delta[decision["status"]] -= 1
    for decision in decided:
        decision = json.loads(json.dumps(decision))  # as stored (JSON), so equal decisions compare equal
        key = (decision["name"], decision["fingerprint"])
        current = in_force.get(key)
        if current is not None and current[1] == decision:
            continue
        if current is not None:
            closing.append(current[0])
            delta[current[1]["status"]] -= 1
        delta[decision["status"]] += 1
        entry = decision["allowlist_entry"]
        new_rows.append(ComplianceDecision(
            org=snapshot.org, environment=environment, name=key[0], fingerprint=key[1], status=decision["status"],
            compliant=decision["compliant"], allowlisted=decision["allowlisted"], decision=decision,
            basis={"policies": applied, "allowlist_entry": entry["id"] if entry else None}, from_index=index,
        ))
    _close_ranges(ComplianceDecision.objects.filter(pk__in=closing), index)
    ComplianceDecision.objects.bulk_create(new_rows, batch_size=2000)
    if inputs:  # the inputs the new Rego decisions name, so each can be re-run offline
        store_inputs(snapshot.org, inputs, {item.get("input_sha256") for row in new_rows
                                            for item in row.decision["policy_decisions"]})
    return delta


def _close_ranges(rows, index: int) -> int:
    # Setting a NULL to_index once is the only update the append-only trigger allows.
    return rows.filter(to_index=None).update(to_index=index)


def _open_ranges(environment, keys: set | None = None) -> dict[tuple[str, str], tuple[int, dict]]:
    """``{(name, fingerprint): (row id, decision)}`` of the decisions still in force (of ``keys`` only,
    when given: read by fingerprint, so O(len(keys)))."""
    rows = ComplianceDecision.objects.filter(environment=environment, to_index=None)
    if keys is not None:
        rows = rows.filter(fingerprint__in={fp for _, fp in keys})
    found = {(name, fp): (pk, decision) for pk, name, fp, decision in
             rows.values_list("pk", "name", "fingerprint", "decision").iterator(chunk_size=2000)}
    return found if keys is None else {key: value for key, value in found.items() if key in keys}


def _changed_keys(environment, index: int, fingerprints: set[str]) -> tuple[set, set]:
    """(running, candidates) for an incremental evaluation of snapshot ``index``: the artifacts that
    started, scaled or exited in it, plus every artifact with one of ``fingerprints`` (rechecks and
    allowlist); ``running`` tells which of those run in the snapshot."""
    entries = SnapshotEntry.objects.filter(environment=environment)
    started = set(entries.filter(from_index=index).values_list("name", "fingerprint"))
    exited = set(entries.filter(to_index=index).values_list("name", "fingerprint"))
    touched = set(entries_at(environment.pk, index).filter(fingerprint__in=fingerprints)
                  .values_list("name", "fingerprint")) if fingerprints else set()
    in_force = set(ComplianceDecision.objects.filter(environment=environment, to_index=None,
                                                     fingerprint__in=fingerprints)
                   .values_list("name", "fingerprint")) if fingerprints else set()
    running = started | touched
    return running, running | exited | in_force


def _allowlisted_in_force(environment) -> set[str]:
    return set(ComplianceDecision.objects.filter(environment=environment, to_index=None, allowlisted=True)
               .values_list("fingerprint", flat=True))


def _running_allowlisted(environment, index: int, allowlist: dict) -> bool:
    return bool(allowlist) and entries_at(environment.pk, index).filter(fingerprint__in=list(allowlist)).exists()


def _in_force_at(environment, index: int):
    return ComplianceDecision.objects.filter(environment=environment, from_index__lte=index).filter(
        Q(to_index__isnull=True) | Q(to_index__gt=index))


def _stored_per_artifact(compliance: SnapshotCompliance) -> bool:
    """Whether an evaluation stored per-artifact decisions (else it was compact: all compliant)."""
    return bool(compliance.applied_policies) or _in_force_at(compliance.environment_id, compliance.snapshot_index) \
        .exists()


def _counts_at(environment, index: int) -> tuple[int, int, int]:
    by_status = dict(_in_force_at(environment, index).order_by().values_list("status").annotate(n=Count("id")))
    return tuple(by_status.get(status, 0) for status in (COMPLIANT, NON_COMPLIANT, UNKNOWN))


def request_reevaluation(ctx: AuditContext, environment_id: int, reason: str) -> None:
    """Ask (after this transaction commits) for the environment's latest state to be re-evaluated."""
    from .tasks import reevaluate_environment

    ctx_dict = ctx.to_dict()
    transaction.on_commit(lambda: reevaluate_environment.delay(environment_id, reason, ctx_dict))


def reevaluate(environment_id: int, reason: str, ctx: AuditContext):
    """Evaluate the environment's latest snapshot again; when the outcome differs from the stored
    evaluation, append a re-evaluation snapshot (evaluated by the after-snapshot hook). Returns it or None.

    Only what can have changed is decided again: everything when the applied policies changed, else
    the artifacts whose evidence changed (``DecisionRecheck``) or whose allowlist entry did. Outcome =
    overall compliance, applied policies and each artifact's (status, allowlisted), as before."""
    environment = Environment.objects.select_related("org").filter(pk=environment_id).first()
    if environment is None:
        return None
    snapshot = latest_snapshot(environment)
    if snapshot is None:
        return None
    stored = evaluate_snapshot(snapshot.pk)
    if _outcome_differs(environment, snapshot, stored):
        return append_reevaluation_snapshot(ctx, environment, reason)
    return None


def _outcome_differs(environment, snapshot, stored: SnapshotCompliance) -> bool:
    policies = attached_policies(environment)
    allowlist = active_allowlist(environment)
    if [{"name": p.name, "version": p.version} for p in policies] != stored.applied_policies:
        return True
    if count_unauthorized(environment, snapshot.index, set(allowlist)) != stored.unauthorized_count:
        return True  # provenance arrived, an allowlist entry changed, or authorization was relaxed/required
    per_artifact = bool(policies) or _running_allowlisted(environment, snapshot.index, allowlist)
    was_per_artifact = _stored_per_artifact(stored)
    if per_artifact != was_per_artifact:
        return True
    if not per_artifact:
        return False  # compact both times: every artifact's compliance unknown
    stored_rows = _in_force_at(environment, stored.snapshot_index)
    fingerprints = (set(DecisionRecheck.objects.filter(environment=environment).values_list("fingerprint", flat=True))
                    | set(allowlist) | set(stored_rows.filter(allowlisted=True).values_list("fingerprint", flat=True)))
    keys = set(entries_at(environment.pk, snapshot.index).filter(fingerprint__in=fingerprints)
               .values_list("name", "fingerprint"))
    was = {(name, fp): (status, allowlisted) for name, fp, status, allowlisted in
           stored_rows.filter(fingerprint__in=fingerprints).values_list("name", "fingerprint", "status", "allowlisted")}
    decided = decide(environment.org, policies, allowlist, [{"name": n, "fingerprint": f} for n, f in sorted(keys)],
                     environment)
    return any(was.get((d["name"], d["fingerprint"])) != (d["status"], d["allowlisted"]) for d in decided)
