"""One module per report kind; each exposes ``build(doc, progress)`` filling a ``ReportDoc``.

Imported lazily by kind, so a kind whose data lives in another app only imports that app when such
a report is generated.
"""

from importlib import import_module

from reports.builders.common import ProgressFn, ReportDoc
from reports.choices import ReportKind
from reports.params import report_range

MODULES = {
    ReportKind.AUDIT: "reports.builders.audit_trail",
    ReportKind.ENVIRONMENT: "reports.builders.environment",
    ReportKind.ARTIFACT: "reports.builders.artifact",
    ReportKind.ORG: "reports.builders.org_summary",
    ReportKind.EXPOSURE: "reports.builders.exposure",
}


def scope_text(report) -> str:
    params, org = report.params, report.org
    if report.kind == ReportKind.ENVIRONMENT:
        return f"Environment {params['environment']}"
    if report.kind == ReportKind.ARTIFACT:
        return f"Artifact {params['fingerprint']}"
    if report.kind == ReportKind.EXPOSURE:
        where = f"environment {params['environment']}" if params.get("environment") else "every environment"
        return f"Vulnerability {params['group_id']} in {where} of {org.name}"
    if report.kind == ReportKind.ORG:
        return f"All environments of {org.name}"
    return f"Audit trail of {org.name}"


def build_report(report, progress: ProgressFn) -> dict:
    """The report's data (the JSON export), built by its kind's module."""
    start, end = report_range(report.params)
    doc = ReportDoc(report, scope_text(report), start, end)
    import_module(MODULES[ReportKind(report.kind)]).build(doc, progress)
    return doc.data()
