"""Who may request and download which report: the one rule, declared here and nowhere else.

A report shows data that other endpoints also serve, each behind its own permission. So a report may
show only what its requester may read there:

* each **kind** declares the permission of its main subject (an audit-trail report is the audit log,
  ``audit.view``); a requester lacking it is refused with a 403 naming the permission;
* each **part** of a kind — a detail section, or data spread over a section, table columns, figures and
  charts (compliance) — declares the permission of the API serving the same data. A part the requester
  may not read is omitted from the report, which says so ("Section omitted: requires actions.view").

The plan (which parts were included, which omitted and why) is stored on the report row when it is
requested, printed in the PDF and written into the JSON export, so a downloaded report describes itself.
Downloading needs the kind's permission and the permission of every part the report contains: a person
whose role was lowered after requesting, or a reader downloading an admin's report, is refused.

``tests/reports/test_access.py`` checks every kind and part against the endpoint serving the same data,
role by role; keep ``API_OF`` there in step with this table.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied

from audit.context import AuditContext
from audit.services import record_denied_access
from reports.choices import ReportKind
from tenants.permissions import has_permission


@dataclass(frozen=True)
class Part:
    """A unit of a report's content and the permission(s) of the data it shows."""

    key: str
    title: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class KindRule:
    permissions: tuple[str, ...]
    parts: tuple[Part, ...]

    def part(self, key: str) -> Part:
        for part in self.parts:
            if part.key == key:
                return part
        raise KeyError(f"report part {key!r} is not declared in reports/access.py")


RULES: dict[str, KindRule] = {
    # The audit log itself (GET /orgs/{org}/audit-events needs audit.view).
    ReportKind.AUDIT: KindRule(("audit.view",), (
        Part("events", "Audit events", ("audit.view",)),
        Part("actors", "Most active actors", ("audit.view",)),
        Part("members", "Members at generation time", ("org.view",)),  # GET /orgs/{org}/members
        Part("tokens", "API tokens at generation time", ("tokens.manage",)),  # service accounts' tokens
    )),
    ReportKind.ENVIRONMENT: KindRule(("environments.view",), (
        Part("snapshots", "Snapshots", ("environments.view",)),
        Part("events", "Artifact changes", ("environments.view",)),
        Part("reporters", "Who reported", ("environments.view",)),
        # Non-compliant periods, the "Compliant" column, compliance figures and chart.
        Part("compliance", "Compliance at the time", ("policies.view",)),
        Part("provenance", "Provenance and evidence of started artifacts", ("evidence.view",)),
        # Delivery rows: action names and delivery status (GET /orgs/{org}/actions/{id}/deliveries).
        Part("alerts", "Alerts raised", ("actions.view",)),
    )),
    # The artifact page and API are the evidence vault's.
    ReportKind.ARTIFACT: KindRule(("evidence.view",), (
        Part("evidence", "Provenance and attestations", ("evidence.view",)),
        Part("runs", "Where it ran and when", ("environments.view",)),
    )),
    ReportKind.ORG: KindRule(("environments.view",), (
        Part("environments", "Environments", ("environments.view",)),
        Part("compliance", "Compliance over time", ("policies.view",)),
        Part("unauthorized", "Artifacts that ran without provenance", ("evidence.view",)),
        # Silences are recorded only when an alert action listens for ON_AGENT_SILENT: alert data.
        Part("silences", "Agent-silent gaps", ("actions.view",)),
    )),
    # Where a vulnerability ran is read from the snapshot journal (GET /vulnerabilities/{org}/{id} is
    # environments' data); advisories are global, shown with the windows they explain.
    ReportKind.EXPOSURE: KindRule(("environments.view",), (
        Part("advisory", "The advisory", ("environments.view",)),
        Part("windows", "Exposure windows", ("environments.view",)),
        Part("components", "Matched components", ("evidence.view",)),  # SBOM components: evidence
        Part("provenance", "Who deployed what: provenance of the affected artifacts", ("evidence.view",)),
        Part("fixes", "When it was fixed", ("environments.view",)),
        Part("suppressed", "VEX suppressions", ("evidence.view",)),  # VEX statements are attestations
        Part("coverage", "Coverage unknown", ("environments.view",)),
    )),
}


def rule(kind: str) -> KindRule:
    return RULES[ReportKind(kind)]


def missing(role: str | None, permissions) -> list[str]:
    """The permissions of ``permissions`` that ``role`` lacks, in order."""
    return [name for name in permissions if not has_permission(role, name)]


def omitted_note(permissions) -> str:
    return "Section omitted: requires " + ", ".join(permissions)


def plan(kind: str, role: str) -> dict:
    """Which parts of ``kind`` a report requested by ``role`` contains (stored on the report row).

    The caller has checked the kind's own permissions (``require_to_request``)."""
    kind_rule = rule(kind)
    included, omitted = [], []
    for part in kind_rule.parts:
        lacking = missing(role, part.permissions)
        if lacking:
            omitted.append({"id": part.key, "title": part.title, "requires": lacking})
        else:
            included.append(part.key)
    return {"role": role, "included": included, "omitted": omitted}


def included_parts(report) -> list[Part]:
    """The parts the report contains. A report requested before plans were stored contains every
    part of its kind, so it is treated as such (downloading it needs every permission)."""
    kind_rule = rule(report.kind)
    if not report.sections or "included" not in report.sections:
        return list(kind_rule.parts)
    keys = set(report.sections["included"])
    return [part for part in kind_rule.parts if part.key in keys]


def needed_to_download(report) -> list[tuple[str, str | None]]:
    """(permission, title of the part needing it — None for the kind itself), each permission once."""
    needed: dict[str, str | None] = dict.fromkeys(rule(report.kind).permissions)
    for part in included_parts(report):
        for permission in part.permissions:
            needed.setdefault(permission, part.title)
    return list(needed.items())


def refusal(role: str | None, permission: str, what: str) -> str:
    return f"Your role '{role}' lacks the permission '{permission}', which {what} needs."


def _deny(request, access, permission: str, message: str):
    record_denied_access(AuditContext.from_request(request), access.org, permission, request.path)
    raise PermissionDenied(message)


def require_to_request(request, access, kind: str) -> None:
    """403 naming the permission (and ``access.denied`` audited) when the role may not read the kind's
    main subject. An unknown kind is left to validation (a 400 naming the field)."""
    if kind not in ReportKind.values:
        return
    for permission in missing(access.role, rule(kind).permissions):
        _deny(request, access, permission, refusal(access.role, permission, f"the {ReportKind(kind).label.lower()}"))


def require_to_download(request, access, report) -> None:
    """403 naming the permission unless the role may read everything the stored report contains."""
    for permission, title in needed_to_download(report):
        if not access.can(permission):
            what = f"the section '{title}' of this report" if title else f"the {report.get_kind_display().lower()}"
            _deny(request, access, permission, refusal(access.role, permission, what))


def lacking_to_download(access, report) -> list[str]:
    """For pages listing reports: the permissions missing to download it (empty: offer the links)."""
    return [permission for permission, _ in needed_to_download(report) if not access.can(permission)]
