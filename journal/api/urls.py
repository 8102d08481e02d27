"""The journal's read API, pinned paths (issue 14): /api/v2/journal/{org}/checkpoint, key, entries/{index},
proof/inclusion, proof/consistency and the C2SP tlog-tiles tree under tile/; witnesses' cosignature and the
checkpoint's RFC 3161 timestamp (witness.py) (entry bundles first: a
hash tile path never starts with "entries")."""

from django.urls import re_path

from journal.api import views, witness

ORG = r"(?P<org>[^/]+)"

urlpatterns = [
    re_path(rf"^journal/{ORG}/checkpoint$", views.CheckpointView.as_view(), name="api-journal-checkpoint"),
    re_path(rf"^journal/{ORG}/checkpoint/timestamp$", witness.CheckpointTimestampView.as_view(),
            name="api-journal-checkpoint-timestamp"),
    re_path(rf"^journal/{ORG}/cosignature$", witness.CosignatureView.as_view(), name="api-journal-cosignature"),
    re_path(rf"^journal/{ORG}/key$", views.KeyView.as_view(), name="api-journal-key"),
    re_path(rf"^journal/{ORG}/entries/(?P<index>[^/]*)$", views.EntryView.as_view(), name="api-journal-entry"),
    re_path(rf"^journal/{ORG}/proof/inclusion$", views.InclusionProofView.as_view(),
            name="api-journal-inclusion"),
    re_path(rf"^journal/{ORG}/proof/consistency$", views.ConsistencyProofView.as_view(),
            name="api-journal-consistency"),
    re_path(rf"^journal/{ORG}/tile/entries/(?P<tile>.*)$", views.EntryBundleView.as_view(),
            name="api-journal-entry-bundle"),
    re_path(rf"^journal/{ORG}/tile/(?P<tile>.*)$", views.HashTileView.as_view(), name="api-journal-tile"),
]
