"""sessions pages (docs/identity.md)."""

urlpatterns = []
