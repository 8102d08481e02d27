from django.db import models


class ActorType(models.TextChoices):
    USER = "user", "User"
    SERVICE_ACCOUNT = "service_account", "Service account"
    SYSTEM = "system", "System"
    ANONYMOUS = "anonymous", "Anonymous"


class AuditAction(models.TextChoices):
    """Every action the audit trail records. Add new ones here, never free text."""

    ORG_CREATED = "org.created", "Org created"
    ORG_UPDATED = "org.updated", "Org updated"
    MEMBER_ADDED = "member.added", "Member added"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    INVITATION_CREATED = "invitation.created", "Invitation created"
    INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
    INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"
    SERVICE_ACCOUNT_CREATED = "service_account.created", "Service account created"
    SERVICE_ACCOUNT_UPDATED = "service_account.updated", "Service account updated"
    SERVICE_ACCOUNT_DEACTIVATED = "service_account.deactivated", "Service account deactivated"
    TOKEN_CREATED = "token.created", "Token created"
    TOKEN_ROTATED = "token.rotated", "Token rotated"
    TOKEN_REVOKED = "token.revoked", "Token revoked"
    ACCESS_DENIED = "access.denied", "Access denied"
    ACCESS_DENIED_REPEATED = "access.denied_repeated", "Access denied again (summary of a window)"
    USER_SIGNED_IN = "user.signed_in", "Signed in"
    # snapshots
    ENVIRONMENT_CREATED = "environment.created", "Environment created"
    ENVIRONMENT_UPDATED = "environment.updated", "Environment updated"
    ENVIRONMENT_ARCHIVED = "environment.archived", "Environment archived"
    ENVIRONMENT_UNARCHIVED = "environment.unarchived", "Environment unarchived"
    ENVIRONMENT_AUTHORIZATION_RELAXED = "environment.authorization_relaxed", "Environment authorization relaxed"
    ENVIRONMENT_AUTHORIZATION_REQUIRED = "environment.authorization_required", "Environment authorization required"
    REPORT_RECEIVED = "report.received", "Report received"
    SNAPSHOT_CREATED = "snapshot.created", "Snapshot created"
    # evidence vault
    FLOW_CREATED = "flow.created", "Flow created"
    FLOW_UPDATED = "flow.updated", "Flow updated"
    TRAIL_CREATED = "trail.created", "Trail created"
    TRAIL_UPDATED = "trail.updated", "Trail updated"
    ARTIFACT_REPORTED = "artifact.reported", "Artifact reported"
    ATTESTATION_CREATED = "attestation.created", "Attestation created"
    ATTESTATION_OVERRIDDEN = "attestation.overridden", "Attestation overridden"
    EVIDENCE_UPLOADED = "evidence.uploaded", "Evidence file uploaded"
    EVIDENCE_DOWNLOADED = "evidence.downloaded", "Evidence file downloaded"
    AUDIT_PACKAGE_DOWNLOADED = "audit_package.downloaded", "Audit package downloaded"
    CUSTOM_TYPE_CREATED = "custom_type.created", "Custom attestation type created"
    # policies and alerts
    POLICY_CREATED = "policy.created", "Policy created"
    POLICY_VERSIONED = "policy.versioned", "Policy new version"
    POLICY_ATTACHED = "policy.attached", "Policy attached"
    POLICY_DETACHED = "policy.detached", "Policy detached"
    ALLOWLIST_ADDED = "allowlist.added", "Allowlist entry added"
    ALLOWLIST_REMOVED = "allowlist.removed", "Allowlist entry removed"
    ACTION_CREATED = "action.created", "Alert action created"
    ACTION_UPDATED = "action.updated", "Alert action updated"
    ACTION_DELETED = "action.deleted", "Alert action deleted"
    ACTION_DISABLED = "action.disabled", "Alert action disabled"
    ACTION_TESTED = "action.tested", "Alert action test-sent"
    DELIVERY_REDELIVERED = "delivery.redelivered", "Delivery redelivered"
    # reports
    AUDIT_REPORT_REQUESTED = "audit_report.requested", "Audit report requested"
    AUDIT_REPORT_DOWNLOADED = "audit_report.downloaded", "Audit report downloaded"
    # journal
    JOURNAL_COSIGNED = "journal.cosigned", "Journal checkpoint cosigned by a witness"
