"""Validation of report parameters, shared by the API and the web form. Errors name the field."""

import datetime

from django.apps import apps
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from csm.errors import ServiceError
from csm.lib.fingerprints import is_fingerprint
from reports.choices import ReportKind
from vulns import exposure

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


def vulnerability_group(value) -> tuple[str, str]:
    """(the id as asked, its group id) for a vulnerability named by any alias (CVE-…, GHSA-…, PYSEC-…, any
    letter case; ``vulns.exposure.resolve_group``, as the API answers it), or ServiceError naming
    ``vulnerability``."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("Name the vulnerability by any of its ids, e.g. CVE-2024-22195 or GHSA-h5c8-rqwp-cp95.",
                           "vulnerability")
    text = value.strip()
    if len(text) > 200:
        raise ServiceError("A vulnerability id is at most 200 characters.", "vulnerability")
    group_id = exposure.resolve_group(text)
    if group_id is None:
        raise ServiceError(f"No known vulnerability has the id '{text[:100]}' (import its advisory first: "
                           "python manage.py import_vulns).", "vulnerability")
    return text, group_id


def optional_range(raw: dict) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """An optional ``from`` / ``to`` pair: both or neither (the range is from ≤ t < to)."""
    given = [key for key in ("from", "to") if raw.get(key) not in (None, "")]
    if not given:
        return None, None
    if len(given) == 1:
        missing = "to" if given == ["from"] else "from"
        raise ServiceError("Give both 'from' and 'to', or neither (the whole history).", missing)
    start, end = parse_instant(raw["from"], "from"), parse_instant(raw["to"], "to")
    if end <= start:
        raise ServiceError("'to' must be after 'from' (the range is from ≤ t < to).", "to")
    return start, end


def _environment_name(org, raw: dict) -> str:
    name = raw.get("environment")
    if not isinstance(name, str) or not name.strip():
        raise ServiceError("Name the environment.", "environment")
    Environment = apps.get_model("snapshots", "Environment")
    if not Environment.objects.for_org(org).filter(name=name.strip()).exists():
        raise ServiceError(f"No environment named '{name.strip()[:100]}' in this org.", "environment")
    return name.strip()


def _exposure_params(org, raw: dict) -> tuple[dict, str]:
    asked, group_id = vulnerability_group(raw.get("vulnerability"))
    params: dict = {"vulnerability": asked, "group_id": group_id}
    scope = "all environments"
    if raw.get("environment") not in (None, ""):
        params["environment"] = _environment_name(org, raw)
        scope = params["environment"]
    start, end = optional_range(raw)
    span = "whole history"
    if start is not None:
        params.update({"from": _iso(start), "to": _iso(end)})
        span = f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"
    return params, f"Exposure report: {group_id}, {scope}, {span}"


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
    if kind == ReportKind.EXPOSURE:
        params, title = _exposure_params(org, raw)
        return kind, params, title
    if kind == ReportKind.ENVIRONMENT:
        params["environment"] = _environment_name(org, raw)
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
