"""Request id for every request (taken from a sane ``X-Request-ID`` or generated, echoed back); Django's
debug pages for staff only; bidi controls shown visibly and a Content-Security-Policy on HTML pages."""

import functools
import logging
import re
import time
import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import Resolver404, resolve

from csm import views as csm_views
from csm.lib.text import has_bidi_controls, reveal_bidi_controls
from csm.logs import org_var, request_id_var
from csm.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Also the log context of the request (csm/logs.py): its id, and its org once the URL names one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            if hasattr(request, "_log_org_token"):
                org_var.reset(request._log_org_token)
        response["X-Request-ID"] = request.request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        org = view_kwargs.get("org")
        if isinstance(org, str) and not hasattr(request, "_log_org_token"):
            request._log_org_token = org_var.set(org)
        return None


class RequestMetricsMiddleware:
    """``csm_http_requests_total`` and ``csm_http_request_duration_seconds`` (csm/metrics.py), labelled with
    the URL pattern that answered (``api/v2/environments/<str:org>/<str:env>``), never the path: org and
    environment names stay out of the labels and their number stays bounded. A request no pattern matched is
    ``<unmatched>``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = route_label(match.route or match.view_name or "<unnamed>") if match is not None else "<unmatched>"
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()\\]|\\.|\([^()]*\))*\)")
_CONVERTER = re.compile(r"<\w+:(\w+)>")
_ANCHOR = re.compile(r"(^|/)\^")


@functools.lru_cache(maxsize=1024)
def route_label(route: str) -> str:
    """One spelling for path() and re_path() routes: ``api/v2/environments/<org>/<env>/report/<report_type>``
    (named groups and converters become ``<name>``; anchors and optional trailing slashes go)."""
    label = _CONVERTER.sub(r"<\1>", _NAMED_GROUP.sub(r"<\1>", route))
    label = _ANCHOR.sub(r"\1", label)
    return label.removesuffix("$").removesuffix("/?")


class DebugPagesForStaffOnlyMiddleware:
    """With DEBUG on (the quick start), Django answers an unknown URL with its technical 404 page, which
    lists the whole URL configuration, and an exception with a traceback and settings — to anyone. Only
    signed-in staff see those; everyone else gets the same 404/500 pages (or API JSON) as with DEBUG off
    (csm.views.handler404 / handler500). Sits after CommonMiddleware, whose APPEND_SLASH redirect still
    applies to the 404 answered here, and after AuthenticationMiddleware, which tells who is staff."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _debug_hidden(request):
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404:
                return csm_views.handler404(request)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not _debug_hidden(request) or isinstance(exception, PermissionDenied):
            return None  # a 403 renders the normal 403 page even with DEBUG on
        if isinstance(exception, Http404):
            return csm_views.handler404(request, exception)
        # Django logs (and signals) an unhandled exception only when it renders the error itself.
        logging.getLogger("django.request").error("Internal Server Error: %s", request.path, exc_info=exception)
        return csm_views.handler500(request)


def _debug_hidden(request) -> bool:
    from django.conf import settings

    user = getattr(request, "user", None)
    return settings.DEBUG and not (user is not None and user.is_authenticated and user.is_staff)


class RevealBidiControlsMiddleware:
    """Every HTML page shows bidi controls (U+202E & co.) in user-supplied text as visible code points
    (csm/lib/text.py), so no template can forget it: names with a right-to-left override no longer read
    reversed on the audit log, environment, flow, trail or artifact pages. csm's own templates contain
    no such controls, so only user text changes. Inside CommonMiddleware, which then sets Content-Length."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            return response
        charset = response.charset or "utf-8"
        try:
            text = response.content.decode(charset)
        except UnicodeDecodeError:
            return response
        if has_bidi_controls(text):
            response.content = reveal_bidi_controls(text).encode(charset)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on every HTML page (``CSM_CONTENT_SECURITY_POLICY``): scripts and
    styles only from csm's own static files, no inline script or style, no plugins, no framing, forms
    post only to csm. A script injected through some escaping mistake does not run. The interactive API
    docs (Swagger UI and Redoc, served locally; they style inline) get ``CSM_CONTENT_SECURITY_POLICY_API_DOCS``.
    Django's technical error pages (DEBUG on, staff only) are inline-styled and get none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        response = self.get_response(request)
        if response.has_header("Content-Security-Policy"):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if settings.DEBUG and response.status_code >= 400 and not _debug_hidden(request):
            return response
        docs = request.path_info.startswith(("/api/docs/", "/api/redoc/"))
        response["Content-Security-Policy"] = (settings.CSM_CONTENT_SECURITY_POLICY_API_DOCS if docs
                                               else settings.CSM_CONTENT_SECURITY_POLICY)
        return response
