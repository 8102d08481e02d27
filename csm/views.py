from django.core.exceptions import SuspiciousOperation
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults

from csm.api.errors import error_body, json_404, json_500, request_limit_error


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
