"""Download responses for evidence: always an attachment, never rendered by the browser.

``Content-Disposition: attachment`` with a sanitized file name (RFC 6266 / 5987 encoding by Django),
``Content-Type: application/octet-stream`` whatever the file is, ``X-Content-Type-Options: nosniff`` and a
sandboxing CSP — an uploaded HTML or SVG file can never run in csm's origin."""

from django.http import FileResponse

from evidence.archives import sanitize_upload_name


def attachment(handle, filename: str, size: int | None = None, content_type: str = "application/octet-stream"):
    response = FileResponse(handle, as_attachment=True, filename=sanitize_upload_name(filename),
                            content_type=content_type)
    if size is not None:
        response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
