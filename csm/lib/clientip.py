"""The client's IP address for audit events and rate limits: ``REMOTE_ADDR``, or the first address of
``X-Forwarded-For`` when the operator says csm runs behind a proxy that sets it
(``CSM_TRUST_X_FORWARDED_FOR``; trusting it otherwise would let a client choose its own address)."""

from django.conf import settings


def client_ip(request) -> str | None:
    if settings.CSM_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None
