"""URL map. Follow the includes to find where a request is handled:

- ``/healthz``      liveness (the process answers); ``/ready`` readiness (``kosli status``; csm/views.py)
- ``/metrics``      Prometheus metrics, for a token or an allowed address only (csm/views.py, csm/metrics.py)
- ``/api/v2/...``   each app's ``api/urls.py`` (kosli-compatible paths, ``/api/v2/orgs/{org}/...`` and the
  journal's pinned ``/api/v2/journal/{org}/...``)
- ``/scim/v2/...``  SCIM 2.0 provisioning of an org's members by its identity provider (identity/scim/urls.py)
- ``/api/schema/``, ``/api/docs/``, ``/api/redoc/``   OpenAPI 3 schema and interactive docs (offline)
- ``/admin/``       Django admin for staff
- everything else   each app's ``urls.py`` (web pages)
"""

from django.contrib import admin
from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from csm import views as csm_views
from tenants import views as tenants_views


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def favicon(request):
    """Browsers and crawlers ask for /favicon.ico whatever the page says: send them to the SVG icon."""
    return HttpResponsePermanentRedirect(static("csm/favicon.svg"))


api_v2 = [
    # Retired by kosli (enable/disable beta): a 410 naming no org, for anyone.
    re_path(r"^organizations/[^/]+/experimental_features/?$", csm_views.kosli_beta_retired,
            name="kosli-beta-retired"),
    path("", include("tenants.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("snapshots.api.urls")),
    path("", include("evidence.api.urls")),
    path("", include("vulns.api.urls")),
    path("", include("policies.api.urls")),
    path("", include("alerts.api.urls")),
    path("", include("reports.api.urls")),
    path("", include("journal.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("ready", csm_views.ready, name="ready"),
    path("metrics", csm_views.metrics, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("api/v2/", include(api_v2)),
    # SCIM 2.0 provisioning (identity/scim): its own token auth and error format, no session, no CSRF.
    path("scim/v2/", include("identity.scim.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema", template_name="csm/api_redoc.html"),
         name="api-redoc"),
    # Rate-limited sign-in for the admin (tenants.ratelimit), ahead of the admin's own login URL.
    path("admin/login/", tenants_views.admin_sign_in, name="admin-sign-in"),
    path("admin/", admin.site.urls),
    path("", include("identity.urls")),
    path("", include("tenants.urls")),
    path("", include("audit.urls")),
    path("", include("snapshots.urls")),
    path("", include("evidence.urls")),
    path("", include("vulns.urls")),
    path("", include("policies.urls")),
    path("", include("alerts.urls")),
    path("", include("reports.urls")),
    path("", include("journal.urls")),
]

handler400 = "csm.views.handler400"
handler404 = "csm.views.handler404"
handler500 = "csm.views.handler500"
