"""Rego policies as gates of a flow's trails, and policy decisions recorded as attestations.

A Rego policy attached to a flow (``FlowPolicyAttachment``) is evaluated against a trail whenever the
trail's evidence changes (an attestation or artifact reported; see ``hooks.on_evidence_saved``). Its
input is ``{"trail": <the trail as GET /api/v2/trails/{org}/{flow}/{trail} answers it>}`` after the
transformation ``kosli evaluate trail`` applies (``internal/evaluate/transform.go`` ``TransformTrail``:
``attestations_statuses`` lists become maps keyed by ``attestation_name``), so a policy written for
``kosli evaluate trail`` runs here unchanged. The decision is recorded on the trail as a ``generic``
attestation named ``policy-decision.<policy>``, compliant when the policy allows, whose ``user_data``
names the policy version (``policy_sha256``) and the input (``input_sha256``); the input and the
policy source are stored with it as evidence files, so an auditor can re-run the decision.

Decision attestations are left out of the input (their ``attestations_statuses`` entries, events,
and their effect on the trail's compliance), so a decision never feeds the next one, and recording
one does not trigger another evaluation. A decision is recorded again only when the policy version
or the input changed.

``client_decision(attestation)`` recognises the output of ``kosli evaluate trail --output json``
attested by the client (``kosli attest generic --user-data result.json``; this CLI has no
``--attest``): ``user_data`` with a boolean ``allow`` and a list of ``violations``.
"""

import hashlib
import io
import json

from django.conf import settings
from django.db import transaction
from rest_framework.utils.encoders import JSONEncoder

from audit.context import AuditContext
from evidence import services as evidence_services
from evidence.api import kosli_shapes
from evidence.api.serializers import trail_dict
from evidence.archives import Member
from evidence.models import Attestation, Trail
from evidence.selectors import trail_compliance

from . import rego
from .models import FlowPolicyAttachment, PolicyFormat, PolicyInput

DECISION_PREFIX = "policy-decision."
DECISION_KIND = "policy-decision"


class _BaseUrl:
    """What the kosli answer builders need of a request: absolute URLs on csm's base URL."""

    def build_absolute_uri(self, location: str) -> str:
        return settings.CSM_BASE_URL.rstrip("/") + location


def is_decision(attestation: Attestation) -> bool:
    """A decision csm recorded (server side) — not evidence a policy should see."""
    return attestation.name.startswith(DECISION_PREFIX) and isinstance(attestation.user_data, dict) \
        and attestation.user_data.get("kind") == DECISION_KIND


def client_decision(attestation: Attestation) -> dict | None:
    """The ``kosli evaluate trail --output json`` result a client attested, or None: ``{allow,
    violations, policy_sha256 (when given), input_sha256 (when the input was included with
    --show-input)}``."""
    data = attestation.user_data
    if is_decision(attestation) or not isinstance(data, dict):
        return None
    if not isinstance(data.get("allow"), bool) or not isinstance(data.get("violations", []), (list, type(None))):
        return None
    policy_sha = data.get("policy_sha256")
    return {
        "evaluated_by": "client", "allow": data["allow"],
        "violations": [v for v in data.get("violations") or [] if isinstance(v, str)],
        "policy_sha256": policy_sha if isinstance(policy_sha, str) else None,
        "input_sha256": rego.input_sha256(data["input"]) if "input" in data else None,
    }


def _without_decisions(statuses):
    if isinstance(statuses, list):
        return [s for s in statuses if not str(s.get("attestation_name", "")).startswith(DECISION_PREFIX)]
    return statuses


def _keyed(statuses) -> dict:
    """kosli's TransformTrail: an ``attestations_statuses`` list → a map by ``attestation_name``."""
    if not isinstance(statuses, list):
        return statuses
    return {s["attestation_name"]: s for s in statuses if isinstance(s, dict) and s.get("attestation_name")}


def _without_own_decisions(compliance: dict) -> dict:
    """The trail's compliance as if no decision had been recorded on it (a denial must not deny the next
    evaluation by itself): decision attestations and the reasons they gave removed."""
    compliance = dict(compliance)
    compliance["attestations"] = [a for a in compliance["attestations"]
                                  if not str(a.get("name", "")).startswith(DECISION_PREFIX)]
    compliance["reasons"] = [r for r in compliance["reasons"] if DECISION_PREFIX not in r]
    compliance["compliant"] = not compliance["reasons"]
    return compliance


def trail_input(trail: Trail) -> dict:
    """``{"trail": ...}``: the trail's kosli answer, transformed as ``kosli evaluate trail`` does, without
    decision attestations (plain JSON, rendered as the API renders it: the same bytes the CLI gets)."""
    trail = Trail.objects.select_related("flow", "org").get(pk=trail.pk)
    compliance = _without_own_decisions(trail_compliance(trail))
    data = trail_dict(trail, compliance)
    data.update(kosli_shapes.trail_fields(_BaseUrl(), trail.org, trail, compliance, kosli_cli=True))
    data = json.loads(json.dumps(data, cls=JSONEncoder))  # rendered as the API renders it
    data["events"] = [e for e in data.get("events", [])
                      if not str(e.get("template_reference_name", "")).startswith(DECISION_PREFIX)]
    status = data.get("compliance_status")
    if isinstance(status, dict):
        status["attestations_statuses"] = _keyed(_without_decisions(status.get("attestations_statuses")))
        for artifact in (status.get("artifacts_statuses") or {}).values():
            if isinstance(artifact, dict):
                artifact["attestations_statuses"] = _keyed(_without_decisions(artifact.get("attestations_statuses")))
    return {"trail": data}


def _latest_decision(trail: Trail, name: str) -> Attestation | None:
    return Attestation.objects.filter(trail=trail, name=name).order_by("-created_at", "-id").first()


def _member(name: str, content: bytes) -> Member:
    return Member(name, io.BytesIO(content), hashlib.sha256(content).hexdigest(), len(content))


def evaluate_trail_gates(trail_id: int, ctx: AuditContext) -> list[Attestation]:
    """Evaluate the Rego gates of the trail's flow against the trail now and record each decision that
    differs from the last one recorded (policy version or input changed). Returns the new attestations."""
    trail = Trail.objects.select_related("flow", "org").filter(pk=trail_id).first()
    if trail is None:
        return []
    gates = list(FlowPolicyAttachment.objects.filter(flow=trail.flow, policy__format=PolicyFormat.REGO)
                 .select_related("policy").order_by("policy__name"))
    if not gates:
        return []
    document = trail_input(trail)
    canonical = rego.canonical_json(document)
    digest = rego.sha256_text(canonical)
    recorded = []
    for gate in gates:
        policy = gate.policy
        version = policy.versions.filter(version=policy.latest_version).first()
        if version is None:
            continue
        name = f"{DECISION_PREFIX}{policy.name}"
        last = _latest_decision(trail, name)
        if last is not None and is_decision(last) and last.user_data.get("policy_sha256") == version.sha256 \
                and last.user_data.get("input_sha256") == digest:
            continue
        decision = rego.evaluate(version.content, [document])[0]
        with transaction.atomic():
            PolicyInput.objects.bulk_create([PolicyInput(org=trail.org, sha256=digest, document=document,
                                                         size=len(canonical.encode()))], ignore_conflicts=True)
        user_data = {
            "kind": DECISION_KIND, "evaluated_by": "csm", "policy": policy.name, "policy_version": version.version,
            "policy_sha256": version.sha256, "input_sha256": digest, "query": "data.policy.allow",
            **decision.as_dict(),
        }
        verdict = {True: "allowed", False: "denied", None: "could not decide"}[decision.allow]
        description = f"Rego policy {policy.name} v{version.version} {verdict} this trail"
        if decision.error:
            description += f": {decision.error}"
        elif decision.violations:
            description += ": " + "; ".join(decision.violations)
        recorded.append(evidence_services.create_attestation(
            ctx, trail.org, trail.flow, trail.name, "generic",
            {"attestation_name": name, "is_compliant": decision.allow is True, "user_data": user_data,
             "description": description[:10_000]},
            members=[_member("policy-input.json", canonical.encode()),
                     _member(f"{policy.name}.rego", version.content.encode())]))
    return recorded


def trail_decisions(trail: Trail) -> list[dict]:
    """Every policy decision recorded on a trail, newest first: csm's gate decisions and the clients'
    ``kosli evaluate`` results attested on it."""
    out = []
    for attestation in Attestation.objects.filter(trail=trail).order_by("-created_at", "-id"):
        if is_decision(attestation):
            data = attestation.user_data
            out.append({"attestation": attestation, "evaluated_by": "csm", "policy": data.get("policy"),
                        "policy_version": data.get("policy_version"), "policy_sha256": data.get("policy_sha256"),
                        "input_sha256": data.get("input_sha256"), "allow": data.get("allow"),
                        "violations": data.get("violations") or [], "error": data.get("error")})
        else:
            client = client_decision(attestation)
            if client is not None:
                out.append({"attestation": attestation, "policy": attestation.name, "policy_version": None,
                            "error": None, **client})
    return out
