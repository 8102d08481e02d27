from django.apps import AppConfig


class VulnsConfig(AppConfig):
    """Runtime vulnerability exposure: OSV advisories (global), their matches against the org's SBOM
    components, VEX suppressions, and exposure windows read from the snapshot journal."""

    name = "vulns"
    label = "vulns"

    def ready(self):
        from django.apps import apps
        from django.db.models.signals import post_save

        from . import hooks as vuln_hooks
        from . import matching, sections

        # An SBOM or VEX attestation is indexed and matched once its transaction has committed (its SBOM
        # components are written after the attestation row, in the same transaction).
        post_save.connect(vuln_hooks.on_attestation_saved, sender=apps.get_model("evidence", "Attestation"),
                          dispatch_uid="vulns-on-attestation")
        # An artifact's report binds the attestations made before it (by template name and commit): its
        # waiting SBOMs are matched and its VEX statements stored from then on.
        post_save.connect(vuln_hooks.on_artifact_saved, sender=apps.get_model("evidence", "Artifact"),
                          dispatch_uid="vulns-on-artifact")
        # A new, changed or withdrawn advisory re-matches only the components it names.
        vuln_hooks.advisories_changed(matching.rematch_advisories)
        # The artifact and environment pages (lower apps) show a "Vulnerabilities" section.
        sections.register()
