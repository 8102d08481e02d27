from django.db import models


class AttestationType(models.TextChoices):
    """Built-in attestation types, each parsed and judged on the server. ``custom`` names an org's own
    type (``CustomAttestationType``) in the payload's ``type_name``; ``decision`` records whether a control
    (``Control``) is met, posted by kosli to ``.../system`` with ``type_name: decision``."""

    GENERIC = "generic", "Generic"
    JUNIT = "junit", "JUnit test results"
    SBOM = "sbom", "SBOM (CycloneDX / SPDX)"
    SARIF = "sarif", "SARIF scan"
    SNYK = "snyk", "Snyk scan (SARIF)"
    PULL_REQUEST = "pull_request", "Pull request"
    JIRA = "jira", "Jira issues"
    SONAR = "sonar", "SonarQube quality gate"
    OVERRIDE = "override", "Override"
    CUSTOM = "custom", "Custom"
    DECISION = "decision", "Decision on a control"
    VEX = "vex", "VEX (OpenVEX / CycloneDX VEX)"


# kosli CLI URL segments that are the same type under another name (its PR commands per provider).
TYPE_ALIASES = {
    "github": AttestationType.PULL_REQUEST,
    "gitlab": AttestationType.PULL_REQUEST,
    "bitbucket": AttestationType.PULL_REQUEST,
    "azure": AttestationType.PULL_REQUEST,
    "pull-request": AttestationType.PULL_REQUEST,
}


class Severity(models.TextChoices):
    """Finding severity, ordered by ``SEVERITY_RANK``."""

    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


SEVERITY_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Verification(models.TextChoices):
    """How far csm could check an attestation against its evidence files."""

    VERIFIED = "verified", "Verified from the evidence files"
    UNVERIFIED = "unverified", "Unverified: client summary without files"
    MISMATCH = "mismatch", "Client summary disagrees with the files"
    NOT_APPLICABLE = "n/a", "Nothing to verify"
