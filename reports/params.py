"""Validation of report parameters, shared by the API and the web form. Errors name the field."""

import datetime

from django.apps import apps
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from csm.errors import ServiceError
from csm.lib.fingerprints import is_fingerprint
from reports.choices import ReportKind

RANGE_KINDS = {ReportKind.ENVIRONMENT, ReportKind.ORG, ReportKind.AUDIT}


def parse_instant(value, field: str) -> datetime.datetime:
    """An ISO 8601 date or date-time; naive values are UTC, a bare date means its midnight."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("Give an ISO 8601 date or date-time, e.g. 2026-07-01 or 2026-07-01T00:00:00Z.", field)
    text = value.strip()
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            parsed = datetime.datetime.combine(day, datetime.time()) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ServiceError(f"'{text[:40]}' is not an ISO 8601 date or date-time.", field)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def report_range(params: dict) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    if "from" not in params:
        return None, None
    return parse_instant(params["from"], "from"), parse_instant(params["to"], "to")


def _iso(value: datetime.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def validate_params(org, kind, raw: dict) -> tuple[str, dict, str]:
    """(kind, normalised params, title) or ServiceError naming the field."""
    if kind not in ReportKind.values:
        raise ServiceError(f"Choose one of: {', '.join(ReportKind.values)}.", "kind")
    kind = ReportKind(kind)
    raw = raw or {}
    params: dict = {}
    if kind in RANGE_KINDS:
        start = parse_instant(raw.get("from"), "from")
        end = parse_instant(raw.get("to"), "to")
        if end <= start:
            raise ServiceError("'to' must be after 'from' (the range is from ≤ t < to).", "to")
        params.update({"from": _iso(start), "to": _iso(end)})
        span = f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"
    if kind == ReportKind.ENVIRONMENT:
        name = raw.get("environment")
        if not isinstance(name, str) or not name.strip():
            raise ServiceError("Name the environment.", "environment")
        Environment = apps.get_model("snapshots", "Environment")
        if not Environment.objects.for_org(org).filter(name=name.strip()).exists():
            raise ServiceError(f"No environment named '{name.strip()[:100]}' in this org.", "environment")
        params["environment"] = name.strip()
        return kind, params, f"Environment change report: {params['environment']}, {span}"
    if kind == ReportKind.ARTIFACT:
        fingerprint = raw.get("fingerprint")
        if not is_fingerprint(fingerprint):
            raise ServiceError("A fingerprint is a lowercase 64-hex SHA-256.", "fingerprint")
        params["fingerprint"] = fingerprint
        return kind, params, f"Artifact report: {fingerprint[:12]}…"
    if kind == ReportKind.ORG:
        return kind, params, f"Org compliance summary: {org.name}, {span}"
    return kind, params, f"Audit-trail report: {org.name}, {span}"
