"""sso pages (docs/identity.md)."""

urlpatterns = []
