from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    """Environment policies, allowlists and compliance evaluation."""

    name = "snapshots.policies"
    label = "policies"

    def ready(self):
        from snapshots import hooks

        from . import hooks as policy_hooks

        hooks.after_snapshot(policy_hooks.evaluate_new_snapshot)
        hooks.snapshot_enricher(policy_hooks.snapshot_compliance_fields)
