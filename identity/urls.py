"""Web pages of identity: sign-in, SSO, two-factor, sessions. Each area keeps its own ``urlpatterns`` in
identity/views/<area>.py; SCIM is an API (identity/scim/urls.py, mounted at /scim/v2/ in csm/urls.py)."""

from identity.views import scim, sessions, signin, sso, twofactor

urlpatterns = [*signin.urlpatterns, *sso.urlpatterns, *twofactor.urlpatterns, *sessions.urlpatterns,
               *scim.urlpatterns]
