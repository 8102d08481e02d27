from django.db import models


class VulnSeverity(models.TextChoices):
    """An advisory's severity, from its CVSS base score (v4 preferred, then v3.x, then v2) or, when it has
    none, from the severity the database states (GHSA ``database_specific.severity``, Debian urgency).
    ``unknown`` is never treated as low: a policy threshold counts it as failing unless told otherwise."""

    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    UNKNOWN = "unknown", "Unknown"


# Higher is worse. ``unknown`` ranks with ``critical`` for thresholds (secure by default), but sorts last
# in lists (``LIST_ORDER``), where a known critical comes first.
SEVERITY_RANK = {VulnSeverity.LOW: 1, VulnSeverity.MEDIUM: 2, VulnSeverity.HIGH: 3, VulnSeverity.CRITICAL: 4,
                 VulnSeverity.UNKNOWN: 4}
LIST_ORDER = {VulnSeverity.CRITICAL: 0, VulnSeverity.HIGH: 1, VulnSeverity.MEDIUM: 2, VulnSeverity.LOW: 3,
              VulnSeverity.UNKNOWN: 4}


class VexStatus(models.TextChoices):
    """OpenVEX / CycloneDX VEX status, in OpenVEX's words (CycloneDX ``analysis.state`` maps onto them:
    ``not_affected``/``false_positive`` → not_affected, ``resolved`` → fixed, ``exploitable`` → affected,
    ``in_triage`` → under_investigation)."""

    NOT_AFFECTED = "not_affected", "Not affected"
    AFFECTED = "affected", "Affected"
    FIXED = "fixed", "Fixed"
    UNDER_INVESTIGATION = "under_investigation", "Under investigation"


# Statuses that suppress a match for the artifact the VEX document is about (shown as suppressed).
SUPPRESSING = {VexStatus.NOT_AFFECTED, VexStatus.FIXED}


class AliasKind(models.TextChoices):
    """Where an id of an advisory comes from: the record's own ``id``, its ``aliases``, or its ``upstream``."""

    ID = "id", "Own id"
    ALIAS = "alias", "Alias"
    UPSTREAM = "upstream", "Upstream"
