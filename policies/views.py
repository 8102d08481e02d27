"""Web pages of policies: the policy list, the editor (validation, versions, diff, where attached),
each environment's compliance over time (inline SVG chart) with its allowlist and attached policies,
and one snapshot's artifacts with the reasons for their decisions."""

import difflib

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from audit.context import AuditContext
from csm.lib import charts
from csm.web import org_view
from snapshots.models import Environment

from . import selectors, services
from .models import AllowlistEntry, Policy, PolicyAttachment, SnapshotCompliance
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


def _save(request, name, content, description, comment):
    try:
        policy, version, created = services.save_policy(
            AuditContext.from_request(request), request.org, name, content, description=description, comment=comment)
    except PolicyError as error:
        return None, [str(problem) for problem in error.problems]
    except services.PolicyServiceError as error:
        return None, [error.message]
    messages.success(request, f"Policy {policy.name} saved as version {version.version}.")
    return policy, []


@org_view("policies.manage")
def policy_new(request):
    form = {"name": "", "description": "", "content": EXAMPLE, "comment": ""}
    problems = []
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        if not form["name"]:
            problems = ["name: required"]
        else:
            policy, problems = _save(request, form["name"].strip(), form["content"], form["description"],
                                     form["comment"])
            if policy is not None:
                return redirect("policy-detail", request.org.slug, policy.name)
    return render(request, "policies/policy_edit.html", {"form": form, "problems": problems, "policy": None})


@org_view({"GET": "policies.view", "POST": "policies.manage"})
def policy_detail(request, name):
    org = request.org
    policy = get_object_or_404(Policy.objects.for_org(org), name=name)
    versions = list(policy.versions.order_by("-version"))
    latest = versions[0] if versions else None
    form = {"content": latest.content if latest else "", "comment": "", "description": policy.description}
    problems = []
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        saved, problems = _save(request, policy.name, form["content"], form["description"], form["comment"])
        if saved is not None:
            return redirect("policy-detail", org.slug, policy.name)
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
    return render(request, "policies/policy_detail.html", {
        "policy": policy, "versions": versions, "form": form, "problems": problems, "diff": diff,
        "diff_from": old, "diff_to": new, "attached": attached, "candidates": candidates.order_by("name"),
        "can_manage": request.org_access.can("policies.manage"),
    })


@org_view("policies.manage")
def policy_attachment(request, name):
    """POST: attach (``environment`` + ``attach``) or detach (``detach``) a policy."""
    policy = get_object_or_404(Policy.objects.for_org(request.org), name=name)
    env = get_object_or_404(Environment.objects.for_org(request.org), name=request.POST.get("environment", ""))
    ctx = AuditContext.from_request(request)
    if request.method == "POST" and "detach" in request.POST:
        services.detach_policies(ctx, request.org, env, [policy.name])
        messages.success(request, f"Detached {policy.name} from {env.name}; the environment is being re-evaluated.")
    elif request.method == "POST":
        services.attach_policies(ctx, request.org, env, [policy.name])
        messages.success(request, f"Attached {policy.name} to {env.name}; the environment is being re-evaluated.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None) or not target.startswith("/o/"):
        target = f"/o/{request.org.slug}/policies/{policy.name}/"
    return redirect(target)


@org_view("policies.manage")
def environment_attach(request, env):
    """POST ``policy``: attach it to this environment (from the environment's page)."""
    environment = get_object_or_404(Environment.objects.for_org(request.org), name=env)
    if request.method == "POST":
        policy = get_object_or_404(Policy.objects.for_org(request.org), name=request.POST.get("policy", ""))
        services.attach_policies(AuditContext.from_request(request), request.org, environment, [policy.name])
        messages.success(request, f"Attached {policy.name}; the environment is being re-evaluated.")
    return redirect("policy-environment", request.org.slug, environment.name)


def compliance_chart(series: list[dict]) -> str:
    """Compliant / unknown / non-compliant artifacts per evaluated snapshot (oldest first), drawn by the
    one chart module the web pages and PDFs share."""
    if not series:
        return ""
    labels = [f"#{row['snapshot_index']}" for row in series]
    bars = [("compliant", [row["compliant_count"] for row in series], charts.PALETTE["ok"]),
            ("unknown", [row["unknown_count"] for row in series], charts.PALETTE["warn"]),
            ("non-compliant", [row["non_compliant_count"] for row in series], charts.PALETTE["bad"])]
    return mark_safe(charts.stacked_bar_chart(  # noqa: S308 - csm.lib.charts escapes every label
        labels, bars, title="Compliant and non-compliant artifacts per snapshot", width=900, height=220,
        empty_message="No evaluated snapshots yet"))


@org_view("policies.view")
def environment_compliance(request, env):
    org = request.org
    environment = get_object_or_404(Environment.objects.for_org(org), name=env)
    series = selectors.compliance_series(environment, limit=200)
    entries = AllowlistEntry.objects.for_org(org).filter(environment=environment).order_by("-created_at")
    attached = PolicyAttachment.objects.for_org(org).filter(environment=environment).select_related("policy")
    return render(request, "policies/environment_compliance.html", {
        "environment": environment, "latest": selectors.latest_compliance(environment),
        "chart": compliance_chart(series), "history": selectors.compliance_history(environment, limit=50),
        "periods": selectors.non_compliant_periods(environment)[-20:],
        "allowlist": entries, "attached": attached,
        "policies": Policy.objects.for_org(org).exclude(attachments__environment=environment).order_by("name"),
        "can_manage": request.org_access.can("policies.manage"),
    })


@org_view("policies.manage")
def allowlist_change(request, env):
    """POST: add an allowlist entry (fingerprint, artifact_name, reason, optional expires_at) or remove one."""
    environment = get_object_or_404(Environment.objects.for_org(request.org), name=env)
    ctx = AuditContext.from_request(request)
    back = redirect("policy-environment", request.org.slug, environment.name)
    if request.method != "POST":
        return back
    if request.POST.get("remove"):
        entry = get_object_or_404(AllowlistEntry.objects.for_org(request.org), environment=environment,
                                  pk=request.POST["remove"])
        services.remove_allowlist_entry(ctx, request.org, entry)
        messages.success(request, "Allowlist entry removed.")
        return back
    fingerprint = request.POST.get("fingerprint", "").strip().lower()
    reason = request.POST.get("reason", "").strip()
    expires_raw = request.POST.get("expires_at", "").strip()
    expires_at = parse_datetime(expires_raw) if expires_raw else None
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = timezone.make_aware(expires_at)
    if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
        messages.error(request, "The fingerprint must be a 64-hex SHA-256.")
    elif not reason:
        messages.error(request, "Give a reason.")
    elif expires_raw and expires_at is None:
        messages.error(request, "The expiry must be a date and time (YYYY-MM-DDTHH:MM).")
    else:
        try:
            services.add_allowlist_entry(ctx, request.org, environment, fingerprint,
                                         request.POST.get("artifact_name", "").strip(), reason, expires_at)
            messages.success(request, "Artifact allowlisted; the environment is being re-evaluated.")
        except services.PolicyServiceError as error:
            messages.error(request, error.message)
    return back


@org_view("policies.view")
def snapshot_compliance(request, env, index):
    environment = get_object_or_404(Environment.objects.for_org(request.org), name=env)
    compliance = get_object_or_404(SnapshotCompliance.objects.for_org(request.org), environment=environment,
                                   snapshot_index=index)
    artifacts = sorted(compliance.artifacts, key=lambda a: (a["compliant"], a["name"]))
    return render(request, "policies/snapshot_compliance.html", {
        "environment": environment, "compliance": compliance, "artifacts": artifacts,
    })
