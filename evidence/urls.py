from django.urls import path

from evidence import views

urlpatterns = [
    path("o/<slug:org>/flows/", views.flow_list, name="flow-list"),
    path("o/<slug:org>/flows/<str:flow>/", views.flow_detail, name="flow-detail"),
    path("o/<slug:org>/flows/<str:flow>/manage/", views.flow_manage, name="flow-manage"),
    path("o/<slug:org>/flows/<str:flow>/trails/<str:trail>/", views.trail_detail, name="trail-detail"),
    path("o/<slug:org>/flows/<str:flow>/trails/<str:trail>/attestations/<int:attestation_id>/",
         views.attestation_detail, name="attestation-detail"),
    # The kosli CLI's own links (``get trail`` markdown: ``{host}/{org}/flows/{flow}/trails/{trail}[?attestation_id=]``)
    path("<slug:org>/flows/<str:flow>/trails/<str:trail>", views.kosli_trail_link, name="kosli-trail-link"),
    path("o/<slug:org>/artifacts/<str:fingerprint>/", views.artifact_detail, name="artifact-detail"),
    path("o/<slug:org>/repos/", views.repo_list, name="repo-list"),
    path("o/<slug:org>/repos/<int:repo_id>/", views.repo_detail, name="repo-detail"),
    path("o/<slug:org>/tags/<str:kind>/<str:identifier>/", views.tags_edit, name="tags-edit"),
    path("o/<slug:org>/evidence/<str:sha256>/", views.evidence_detail, name="evidence-detail"),
    path("o/<slug:org>/evidence/<str:sha256>/download/", views.evidence_download, name="evidence-download"),
    path("o/<slug:org>/controls/", views.control_list, name="control-list"),
    path("o/<slug:org>/controls/<str:identifier>/", views.control_detail, name="control-detail"),
    path("o/<slug:org>/controls/<str:identifier>/archive/", views.control_archive, name="control-archive"),
    path("o/<slug:org>/controls/<str:identifier>/unarchive/", views.control_unarchive, name="control-unarchive"),
    path("o/<slug:org>/attestation-types/", views.attestation_type_list, name="attestation-type-list"),
    path("o/<slug:org>/attestation-types/new/", views.attestation_type_new, name="attestation-type-new"),
    path("o/<slug:org>/attestation-types/<str:name>/", views.attestation_type_detail, name="attestation-type-detail"),
    path("o/<slug:org>/attestation-types/<str:name>/archive/", views.attestation_type_archive,
         name="attestation-type-archive"),
]
