from django.apps import AppConfig
from django.db import transaction


class VulnsConfig(AppConfig):
    """Runtime vulnerability exposure: OSV advisories (global), their matches against the org's SBOM
    components, VEX suppressions, and exposure windows read from the snapshot journal."""

    name = "vulns"
    label = "vulns"

    def ready(self):
        from django.apps import apps
        from django.db.models.signals import post_save

        from . import hooks as vuln_hooks
        from . import matching

        # An SBOM or VEX attestation is indexed and matched once its transaction has committed (its SBOM
        # components are written after the attestation row, in the same transaction).
        post_save.connect(vuln_hooks.on_attestation_saved, sender=apps.get_model("evidence", "Attestation"),
                          dispatch_uid="vulns-on-attestation")
        # An SBOM attested before its artifact existed (by template name and commit) is matched once the
        # artifact is reported and binds it.
        post_save.connect(_on_artifact_saved, sender=apps.get_model("evidence", "Artifact"),
                          dispatch_uid="vulns-on-artifact")
        # A new, changed or withdrawn advisory re-matches only the components it names.
        vuln_hooks.advisories_changed(matching.rematch_advisories)


def _on_artifact_saved(sender, instance, created, **kwargs):
    if created:
        from .matching import index_bound_attestations

        artifact_id = instance.pk
        transaction.on_commit(lambda: index_bound_attestations(artifact_id))
