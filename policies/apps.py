from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    """Environment policies, allowlists and compliance evaluation."""

    name = "policies"
    label = "policies"

    def ready(self):
        from django.apps import apps
        from django.db.models.signals import post_save

        from journal.personal import register_label_column
        from snapshots import hooks
        from vulns import hooks as vuln_hooks

        from . import hooks as policy_hooks

        hooks.after_snapshot(policy_hooks.evaluate_new_snapshot)
        # Who created or attached them, erased with the person (journal/personal.py; policy versions are append-only).
        for model, column, counter in (("PolicyVersion", "created_by", "erasures"),
                                       ("PolicyAttachment", "attached_by", None),
                                       ("FlowPolicyAttachment", "attached_by", None),
                                       ("AllowlistEntry", "created_by", None), ("AllowlistEntry", "removed_by", None)):
            register_label_column(apps.get_model("policies", model), column, counter)
        hooks.snapshot_enricher(policy_hooks.snapshot_compliance_fields)
        hooks.snapshot_list_enricher(policy_hooks.snapshot_list_compliance)
        hooks.environment_enricher(policy_hooks.environment_compliance_fields)
        hooks.environment_settings_changed(policy_hooks.authorization_changed)
        # New provenance or attestations can change an artifact's standing: re-evaluate where it runs.
        # Flow and Trail saves only mark artifacts for their next evaluation (see hooks.on_evidence_saved).
        for model in ("Artifact", "Attestation", "Flow", "Trail"):
            post_save.connect(policy_hooks.on_evidence_saved, sender=apps.get_model("evidence", model),
                              dispatch_uid=f"policies-reevaluate-on-{model}")
        # New vulnerability matches, and changed or withdrawn advisories, change the standing of the
        # artifacts they name (vulnerability rules, Rego inputs): re-evaluate where those run.
        vuln_hooks.matches_added(policy_hooks.vulnerabilities_matched)
        vuln_hooks.advisories_changed(policy_hooks.advisories_changed)
