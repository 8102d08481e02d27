"""With DEBUG on (today's quick start), error pages never show Django's technical pages — the URL
configuration, tracebacks, settings — to anyone but signed-in staff."""

import pytest
from django.test import override_settings
from django.urls import path

from csm.urls import urlpatterns as csm_urlpatterns

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("secret detail of the failure")


urlpatterns = [path("boom/", _boom), *csm_urlpatterns]
handler404 = "csm.views.handler404"
handler500 = "csm.views.handler500"


@override_settings(DEBUG=True)
def test_unknown_url_shows_the_normal_404_to_visitors(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body and "URLconf" not in body and "api/v2/" not in body and "admin/" not in body


@override_settings(DEBUG=True)
def test_unknown_api_url_is_json_404(client):
    response = client.get("/api/v2/no-such-endpoint")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@override_settings(DEBUG=True)
def test_a_view_raising_404_shows_the_normal_page(client, owner):
    client.force_login(owner)
    response = client.get("/o/no-such-org/")
    assert response.status_code == 404 and "Raised by" not in response.content.decode()


@override_settings(DEBUG=True, ROOT_URLCONF=__name__)
def test_a_crash_shows_the_normal_500_page_and_is_logged(client, caplog):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "secret detail" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert any("Internal Server Error: /boom/" in r.getMessage() for r in caplog.records)


@override_settings(DEBUG=True)
def test_staff_still_get_the_debug_page(client, make_user):
    client.force_login(make_user("staff@example.com", is_staff=True))
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "URLconf" in response.content.decode()


@override_settings(DEBUG=True)
def test_append_slash_still_redirects(client, owner):
    client.force_login(owner)
    assert client.get("/orgs/new").status_code == 301
