"""Web pages of policies: the policy list, the editor (validation, versions, diff, where attached),
each environment's compliance over time (inline SVG chart) with its allowlist and attached policies,
and one snapshot's artifacts with the reasons for their decisions. Each write is its own POST-only view
(attach, detach, allowlist add / remove) or the form page it belongs to (new policy, new version);
forms (policies/forms.py) validate and policies/services.py writes."""

import difflib

from django.contrib import messages
from django.db.models import Case, Value, When
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.lib import charts
from csm.paging import artifact_page
from csm.web import add_service_error, org_view
from evidence.models import Flow
from snapshots.models import Environment

from . import forms, selectors, services
from .models import (
    AllowlistEntry,
    FlowPolicyAttachment,
    Policy,
    PolicyAttachment,
    SnapshotCompliance,
    decisions_in_force,
)
from .parsing import PolicyError

EXAMPLE = """_schema: https://kosli.com/schemas/policy/environment/v1
artifacts:
  provenance:
    required: true
  trail-compliance:
    required: false
  attestations: []
"""


@org_view("policies.view")
def policy_list(request):
    org = request.org
    policies = Policy.objects.for_org(org).prefetch_related("attachments__environment").order_by("name")
    environments = []
    for env in Environment.objects.for_org(org).filter(archived=False).exclude(type="logical").order_by("name"):
        environments.append((env, selectors.latest_compliance(env)))
    return render(request, "policies/policy_list.html", {
        "policies": policies, "environments": environments,
        "can_manage": request.org_access.can("policies.manage"),
    })


def _save(request, form, name: str):
    """Save the form's content as a version of ``name``; the policy, or None with the refusal shown on
    the form."""
    data = form.cleaned_data
    try:
        policy, version, _ = services.save_policy(
            AuditContext.from_request(request), request.org, name, data["content"],
            description=data["description"], comment=data["comment"], policy_format=data.get("format") or None)
    except PolicyError as error:
        form.add_error("content", [str(problem) for problem in error.problems])
        return None
    except ServiceError as error:
        add_service_error(form, error)
        return None
    messages.success(request, f"Policy {policy.name} saved as version {version.version}.")
    return policy


@org_view("policies.manage")
def policy_new(request):
    form = forms.PolicyForm(request.POST or None, initial={"content": EXAMPLE})
    if request.method == "POST" and form.is_valid():
        policy = _save(request, form, form.cleaned_data["name"])
        if policy is not None:
            return redirect("policy-detail", request.org.slug, policy.name)
    return render(request, "policies/policy_edit.html", {"form": form})


def _render_detail(request, policy, form=None, attach_form=None, gate_form=None, status=200):
    org = request.org
    versions = list(policy.versions.order_by("-version"))
    latest = versions[0] if versions else None
    if form is None:
        form = forms.PolicyContentForm(initial={"content": latest.content if latest else "",
                                                "description": policy.description}, policy_format=policy.format)
    diff = None
    old, new = request.GET.get("from"), request.GET.get("to")
    by_number = {str(v.version): v for v in versions}
    if old in by_number and new in by_number:
        diff = list(difflib.unified_diff(
            by_number[old].content.splitlines(), by_number[new].content.splitlines(),
            fromfile=f"v{old}", tofile=f"v{new}", lineterm=""))
    attached = PolicyAttachment.objects.for_org(org).filter(policy=policy).select_related("environment")
    attached_ids = {a.environment_id for a in attached}
    candidates = Environment.objects.for_org(org).exclude(pk__in=attached_ids).exclude(type="logical")
    gates = FlowPolicyAttachment.objects.for_org(org).filter(policy=policy).select_related("flow")
    flow_candidates = Flow.objects.for_org(org).exclude(pk__in={g.flow_id for g in gates}).order_by("name")
    return render(request, "policies/policy_detail.html", {
        "policy": policy, "versions": versions, "latest": latest, "form": form, "diff": diff,
        "diff_from": old, "diff_to": new, "attached": attached, "candidates": candidates.order_by("name"),
        "attach_form": attach_form or forms.EnvironmentChoiceForm(org=org),
        "gates": gates, "flow_candidates": flow_candidates if policy.format == "rego" else [],
        "gate_form": gate_form or forms.FlowChoiceForm(org=org),
        "can_manage": request.org_access.can("policies.manage"),
    }, status=status)


def _policy(request, name) -> Policy:
    return get_object_or_404(Policy.objects.for_org(request.org), name=name)


@org_view({"GET": "policies.view", "POST": "policies.manage"})
def policy_detail(request, name):
    """GET: the policy, its versions (and a diff of two), where it is attached. POST: a new version."""
    policy = _policy(request, name)
    if request.method != "POST":
        return _render_detail(request, policy)
    form = forms.PolicyContentForm(request.POST, policy_format=policy.format)
    if form.is_valid() and _save(request, form, policy.name) is not None:
        return redirect("policy-detail", request.org.slug, policy.name)
    return _render_detail(request, policy, form=form)


def _back_to(request, policy):
    """The page the detach button was on (an environment's page passes ``next``), never off the site."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None) or not target.startswith("/o/"):
        return redirect("policy-detail", request.org.slug, policy.name)
    return redirect(target)


def _attach(request, form, policy, environment) -> bool:
    """Attach ``policy`` to ``environment`` (from either page); a refusal is shown on ``form``."""
    try:
        services.attach_policies(AuditContext.from_request(request), request.org, environment, [policy.name])
    except ServiceError as error:
        add_service_error(form, error)
        return False
    return True


@org_view("policies.manage")
@require_POST
def policy_attach(request, name):
    """Attach the policy to the chosen environment (from the policy's page)."""
    policy = _policy(request, name)
    form = forms.EnvironmentChoiceForm(request.POST, org=request.org)
    if not form.is_valid():
        return _render_detail(request, policy, attach_form=form)
    env = form.cleaned_data["environment"]
    if not _attach(request, form, policy, env):
        return _render_detail(request, policy, attach_form=form)
    messages.success(request, f"Attached {policy.name} to {env.name}; the environment is being re-evaluated.")
    return redirect("policy-detail", request.org.slug, policy.name)


@org_view("policies.manage")
@require_POST
def policy_detach(request, name):
    """Detach the policy from an environment (from the policy's or the environment's page)."""
    policy = _policy(request, name)
    env = get_object_or_404(Environment.objects.for_org(request.org), name=request.POST.get("environment", ""))
    services.detach_policies(AuditContext.from_request(request), request.org, env, [policy.name])
    messages.success(request, f"Detached {policy.name} from {env.name}; the environment is being re-evaluated.")
    return _back_to(request, policy)


@org_view("policies.manage")
@require_POST
def policy_gate(request, name):
    """Make the (Rego) policy a gate of the chosen flow's trails (from the policy's page)."""
    policy = _policy(request, name)
    form = forms.FlowChoiceForm(request.POST, org=request.org)
    if not form.is_valid():
        return _render_detail(request, policy, gate_form=form, status=400)
    flow = form.cleaned_data["flow"]
    try:
        services.attach_flow_policies(AuditContext.from_request(request), request.org, flow, [policy.name])
    except ServiceError as error:
        add_service_error(form, error)
        return _render_detail(request, policy, gate_form=form, status=400)
    messages.success(request, f"{policy.name} now gates the trails of {flow.name}; its latest trails are being "
                              "evaluated.")
    return redirect("policy-detail", request.org.slug, policy.name)


@org_view("policies.manage")
@require_POST
def policy_ungate(request, name):
    """Stop the policy gating a flow's trails (decisions already recorded stay on the trails)."""
    policy = _policy(request, name)
    flow = get_object_or_404(Flow.objects.for_org(request.org), name=request.POST.get("flow", ""))
    services.detach_flow_policies(AuditContext.from_request(request), request.org, flow, [policy.name])
    messages.success(request, f"{policy.name} no longer gates {flow.name}.")
    return redirect("policy-detail", request.org.slug, policy.name)


def compliance_chart(series: list[dict]) -> str:
    """Compliant / unknown / non-compliant artifacts per evaluated snapshot (oldest first), drawn by the
    one chart module the web pages and PDFs share."""
    if not series:
        return ""
    labels = [f"#{row['snapshot_index']}" for row in series]
    bars = [("compliant", [row["compliant_count"] for row in series], charts.PALETTE["ok"]),
            ("unknown", [row["unknown_count"] for row in series], charts.PALETTE["warn"]),
            ("non-compliant", [row["non_compliant_count"] for row in series], charts.PALETTE["bad"])]
    return mark_safe(charts.stacked_bar_chart(  # noqa: S308 - csm.lib.charts escapes every label  # nosec B308, B703
        labels, bars, title="Compliant and non-compliant artifacts per snapshot", width=900, height=220,
        empty_message="No evaluated snapshots yet"))


def _environment(request, env) -> Environment:
    return get_object_or_404(Environment.objects.for_org(request.org), name=env)


def _render_environment(request, environment, allowlist_form=None, attach_form=None, status=200):
    org = request.org
    series = selectors.compliance_series(environment, limit=200)
    entries = AllowlistEntry.objects.for_org(org).filter(environment=environment).order_by("-created_at")
    attached = PolicyAttachment.objects.for_org(org).filter(environment=environment).select_related("policy")
    return render(request, "policies/environment_compliance.html", {
        "environment": environment, "latest": selectors.latest_compliance(environment),
        "chart": compliance_chart(series), "history": selectors.compliance_history(environment, limit=50),
        "periods": selectors.non_compliant_periods(environment)[-20:],
        "allowlist": entries, "attached": attached,
        "policies": Policy.objects.for_org(org).exclude(attachments__environment=environment).order_by("name"),
        "allowlist_form": allowlist_form or forms.AllowlistEntryForm(),
        "attach_form": attach_form or forms.PolicyChoiceForm(org=org),
        "can_manage": request.org_access.can("policies.manage"),
    }, status=status)


@org_view("policies.view")
def environment_compliance(request, env):
    return _render_environment(request, _environment(request, env))


@org_view("policies.manage")
@require_POST
def environment_attach(request, env):
    """Attach the chosen policy to this environment (from the environment's page)."""
    environment = _environment(request, env)
    form = forms.PolicyChoiceForm(request.POST, org=request.org)
    if not form.is_valid():
        return _render_environment(request, environment, attach_form=form)
    policy = form.cleaned_data["policy"]
    if not _attach(request, form, policy, environment):
        return _render_environment(request, environment, attach_form=form)
    messages.success(request, f"Attached {policy.name}; the environment is being re-evaluated.")
    return redirect("policy-environment", request.org.slug, environment.name)


@org_view("policies.manage")
@require_POST
def allowlist_add(request, env):
    """Allowlist an artifact in this environment; an invalid entry re-renders the page with the problem
    next to its field."""
    environment = _environment(request, env)
    form = forms.AllowlistEntryForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_allowlist_entry(AuditContext.from_request(request), request.org, environment,
                                         data["fingerprint"], data["artifact_name"], data["reason"],
                                         data["expires_at"])
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Artifact allowlisted; the environment is being re-evaluated.")
            return redirect("policy-environment", request.org.slug, environment.name)
    return _render_environment(request, environment, allowlist_form=form)


@org_view("policies.manage")
@require_POST
def allowlist_remove(request, env, entry_id):
    environment = _environment(request, env)
    entry = get_object_or_404(AllowlistEntry.objects.for_org(request.org), environment=environment, pk=entry_id)
    services.remove_allowlist_entry(AuditContext.from_request(request), request.org, entry)
    messages.success(request, "Allowlist entry removed.")
    return redirect("policy-environment", request.org.slug, environment.name)


@org_view("policies.view")
def snapshot_compliance(request, env, index):
    environment = get_object_or_404(Environment.objects.for_org(request.org), name=env)
    compliance = get_object_or_404(SnapshotCompliance.objects.for_org(request.org), environment=environment,
                                   snapshot_index=index)
    # Non-compliant first, then unknown, then compliant, then by name: one page of the decisions read
    # (LIMIT / OFFSET), not all of them. Unknown is its own state, never sorted with compliant.
    rank = Case(When(status="non-compliant", then=Value(0)), When(status="unknown", then=Value(1)), default=Value(2))
    decisions = (decisions_in_force(environment.pk, compliance.snapshot_index)
                 .order_by(rank, "name", "fingerprint").values_list("decision", flat=True))
    page = artifact_page(request, decisions)
    return render(request, "policies/snapshot_compliance.html", {
        "environment": environment, "compliance": compliance, "artifacts": page, "artifact_page": page,
    })
