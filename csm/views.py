import hmac
import ipaddress
import logging
import uuid

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csm.api.errors import error_body, json_404, json_500, request_limit_error
from csm.lib.clientip import client_ip
from csm.metrics import scrape_registry

logger = logging.getLogger(__name__)


def handler400(request, exception=None):
    """Django's 400 for a request refused before any view ran (a disallowed Host, too many form fields read
    by a middleware...): the API's JSON error on /api/, instead of an HTML page an API client cannot read."""
    if request.path.startswith("/api/"):
        limit = request_limit_error(exception) if isinstance(exception, SuspiciousOperation) else None
        if limit is not None:
            return JsonResponse(error_body(limit.code, limit.message, limit.fields), status=limit.status_code)
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return defaults.bad_request(request, exception)


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return render(request, "404.html", status=404)


def handler500(request):
    if request.path.startswith("/api/"):
        return json_500(request)
    return render(request, "500.html", status=500)


# --- readiness -------------------------------------------------------------------------------------

def _check_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url:
        return "none configured (embedded mode: background work runs in the web process)"
    from kombu import Connection  # Celery's own transport library; imported only when a broker is set

    timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
    with Connection(url, connect_timeout=timeout,
                    transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout}) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        channel = broker.default_channel
        if hasattr(channel, "client") and hasattr(channel.client, "ping"):
            channel.client.ping()  # Redis: a connection is not an answer
    return "ok"


def _check_evidence_storage() -> str:
    """Write and delete a small probe file where evidence files go (the filesystem or S3)."""
    storage = storages["evidence"]
    name = storage.save(f"ready-probe/{uuid.uuid4().hex}", ContentFile(b"ready\n"))
    storage.delete(name)
    return "writable"


READY_CHECKS = [("database", _check_database), ("broker", _check_broker),
                ("evidence storage", _check_evidence_storage)]


@never_cache
def ready(request):
    """``GET /ready``, what ``kosli status`` / ``kosli assert status`` call (no authentication; the CLI's
    token, if any, is ignored). 200 when csm can serve: the database answers, the broker (when configured)
    answers, evidence storage takes a write. 503 otherwise, naming what failed. The body is text, which the
    CLI prints as it is: ``OK`` (what kosli's server answers) then one line per check. Errors say what kind
    of failure it was; their details (hosts, paths) go to the server log, not to an unauthenticated caller.
    ``/healthz`` stays the liveness probe (the process answers at all)."""
    lines, ready_now = [], True
    for name, check in READY_CHECKS:
        try:
            lines.append(f"{name}: {check()}")
        except Exception as error:  # noqa: BLE001 - any failure of a dependency means "not ready"
            ready_now = False
            logger.warning("readiness check %s failed: %s", name, error, exc_info=True)
            lines.append(f"{name}: FAILED ({type(error).__name__}; details in the server log)")
    body = "\n".join(["OK" if ready_now else "NOT READY", *lines]) + "\n"
    return HttpResponse(body, status=200 if ready_now else 503, content_type="text/plain; charset=utf-8")


# --- retired kosli endpoints --------------------------------------------------------------------------

@csrf_exempt  # a token client's PUT, answered the same to everyone, changing nothing
def kosli_beta_retired(request):
    """``kosli enable beta`` / ``kosli disable beta`` (cmd/kosli/disableBeta.go ``betaOptions.run``: PUT
    /api/v2/organizations/{org}/experimental_features). kosli retired beta toggles; csm has no beta features
    to toggle. 410 for every caller and method: the answer names no org and reveals nothing."""
    message = ("Beta features are retired: kosli no longer has beta toggles, and csm has no beta features; "
               "everything is available without 'kosli enable beta'. Nothing was changed.")
    return JsonResponse(error_body("gone", message), status=410)


# --- Prometheus metrics --------------------------------------------------------------------------------

@never_cache
def metrics(request):
    """``GET /metrics``: Prometheus text format (csm/metrics.py), for a scraper holding ``CSM_METRICS_TOKEN``
    (``Authorization: Bearer``) or calling from ``CSM_METRICS_ALLOWED_NETWORKS``. Anyone else gets the
    ordinary 404 page: the endpoint is not advertised."""
    if not _may_scrape(request):
        return handler404(request)
    body = generate_latest(scrape_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _may_scrape(request) -> bool:
    expected = settings.CSM_METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode()):
        return True
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    networks = (ipaddress.ip_network(cidr, strict=False) for cidr in settings.CSM_METRICS_ALLOWED_NETWORKS)
    return any(ip in network for network in networks if network.version == ip.version)
