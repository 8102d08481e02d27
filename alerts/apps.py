from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert actions (webhook, Slack, email), triggers and deliveries."""

    name = "alerts"
    label = "alerts"

    def ready(self):
        from alerts.erasure import erase_recipients
        from identity import hooks as identity_hooks
        from journal.personal import register_account_eraser
        from snapshots import hooks
        from vulns import hooks as vuln_hooks

        from . import hooks as alert_hooks

        hooks.after_snapshot(alert_hooks.raise_snapshot_alerts)
        register_account_eraser(erase_recipients)
        hooks.environment_renamed(alert_hooks.follow_environment_rename)
        # New vulnerability matches (a new advisory, or a new SBOM) of artifacts running now.
        vuln_hooks.matches_added(alert_hooks.raise_vulnerability_alerts)
        # Unusual use of credentials (identity.activity), after the audit event committed.
        if alert_hooks.raise_unusual_activity_alert not in identity_hooks.unusual_activity:
            identity_hooks.on_unusual_activity(alert_hooks.raise_unusual_activity_alert)
