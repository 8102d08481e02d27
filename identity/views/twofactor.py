"""twofactor pages (docs/identity.md)."""

urlpatterns = []
