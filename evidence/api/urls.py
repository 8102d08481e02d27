"""Evidence vault API under /api/v2/. The flows / trails / artifacts / attestations paths are the ones
the kosli CLI calls; the rest are csm's own."""

from django.urls import path

from evidence.api import attestations, lifecycle, repos, tags, views

FP = "<str:fingerprint>"

urlpatterns = [
    path("flows/<str:org>", views.FlowsView.as_view(), name="api-flows"),
    path("flows/<str:org>/template_file", views.FlowTemplateFileView.as_view(), name="api-flow-template-file"),
    path("flows/<str:org>/<str:flow>", views.FlowDetailView.as_view(), name="api-flow"),
    path("trails/<str:org>/<str:flow>", views.TrailsView.as_view(), name="api-trails"),
    path("trails/<str:org>/<str:flow>/<str:trail>", views.TrailDetailView.as_view(), name="api-trail"),
    path("trails/<str:org>/<str:flow>/<str:trail>/audit-package", views.TrailPackageView.as_view(),
         name="api-trail-package"),
    path("artifacts/<str:org>/<str:flow>", views.ArtifactsView.as_view(), name="api-artifacts"),
    path(f"artifacts/<str:org>/<str:flow>/fingerprint/{FP}", views.ArtifactView.as_view(), name="api-artifact"),
    path(f"artifacts/<str:org>/<str:flow>/fingerprint/{FP}/audit-package", views.ArtifactPackageView.as_view(),
         name="api-artifact-package"),
    path(f"artifacts/<str:org>/<str:flow>/{FP}/latest_commit", views.ArtifactLatestCommitView.as_view(),
         name="api-artifact-latest-commit"),
    # GET lists a trail's attestations; on the longer path POST with the type attests (kosli attest <type>)
    # and GET with a name reads it (kosli get attestation --trail): kosli's paths.
    path("attestations/<str:org>/<str:flow>/trail/<str:trail>",
         views.AttestationsView.as_view(http_method_names=["get", "head", "options"]),
         name="api-attestations"),
    path("attestations/<str:org>/<str:flow>/trail/<str:trail>/<str:kind>",
         attestations.TrailAttestationView.as_view(), name="api-attest"),
    path("attestations/<str:org>/id/<int:pk>", views.AttestationDetailView.as_view(), name="api-attestation"),
    path("attestations/<str:org>/id/<int:pk>/audit-package", views.AttestationPackageView.as_view(),
         name="api-attestation-package"),
    path("evidence/<str:org>/<str:sha256>", views.EvidenceFileView.as_view(), name="api-evidence"),
    path("evidence/<str:org>/<str:sha256>/download", views.EvidenceDownloadView.as_view(),
         name="api-evidence-download"),
    path("repos/<str:org>", repos.RepositoriesView.as_view(), name="api-repos"),
    path("repos/<str:org>/<path:name>", repos.RepositoryView.as_view(), name="api-repo"),
    path("tags/<str:org>/<str:kind>/<str:identifier>", tags.TagsView.as_view(), name="api-tags"),
    path("orgs/<str:org>/attestation-types", views.CustomTypesView.as_view(), name="api-attestation-types"),
    # kosli get attestation: by id (also kosli evaluate's enrichment), and by name on an artifact
    path("attestations/<str:org>", attestations.AttestationByIdView.as_view(), name="api-attestation-by-id"),
    path(f"attestations/<str:org>/<str:flow>/artifact/{FP}/<str:name>",
         attestations.ArtifactAttestationView.as_view(), name="api-artifact-attestation"),
]

from evidence.api import attestation_types  # noqa: E402  (kosli's custom attestation types)

urlpatterns += [
    path("custom-attestation-types/<str:org>", attestation_types.CustomAttestationTypesView.as_view(),
         name="api-custom-attestation-types"),
    path("custom-attestation-types/<str:org>/<str:name>", attestation_types.CustomAttestationTypeView.as_view(),
         name="api-custom-attestation-type"),
    path("custom-attestation-types/<str:org>/<str:name>/archive",
         attestation_types.CustomAttestationTypeArchiveView.as_view(http_method_names=["put", "options"]),
         name="api-custom-attestation-type-archive"),
]

# kosli archive / rename flow, list trails, list artifacts, get artifact FLOW:COMMIT (evidence/api/lifecycle.py)
urlpatterns += [
    path("flows/<str:org>/<str:flow>/archive", lifecycle.FlowArchiveView.as_view(), name="api-flow-archive"),
    path("flows/<str:org>/<str:flow>/unarchive", lifecycle.FlowUnarchiveView.as_view(), name="api-flow-unarchive"),
    path("flows/<str:org>/<str:flow>/rename", lifecycle.FlowRenameView.as_view(), name="api-flow-rename"),
    path("trails/<str:org>", lifecycle.OrgTrailsView.as_view(), name="api-org-trails"),
    path("artifacts/<str:org>", lifecycle.OrgArtifactsView.as_view(), name="api-org-artifacts"),
    path("artifacts/<str:org>/<str:flow>/commit_sha/<str:sha>", lifecycle.ArtifactsByCommitView.as_view(),
         name="api-artifacts-by-commit"),
]

# Controls (kosli create / get / list / update / archive / unarchive control): evidence/api/controls.py
from evidence.api import controls as control_views  # noqa: E402

urlpatterns += [
    path("controls/<str:org>", control_views.ControlsView.as_view(), name="api-controls"),
    path("controls/<str:org>/<str:identifier>", control_views.ControlDetailView.as_view(), name="api-control"),
    path("controls/<str:org>/<str:identifier>/archive", control_views.ControlArchiveView.as_view(),
         name="api-control-archive"),
    path("controls/<str:org>/<str:identifier>/unarchive", control_views.ControlUnarchiveView.as_view(),
         name="api-control-unarchive"),
]
