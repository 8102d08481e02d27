"""Extension points of tenants for the floors above it (registered from their ``AppConfig.ready()``).

``token_used``: functions ``fn(request, token, ip)`` called by the API's token authentication
(csm/api/authentication.py) after a token was accepted, before the view runs. identity registers the
unusual-network detector here. A listener must be cheap (it runs on every API request) and must not raise
for the caller: an exception is logged and the request goes on."""

import logging

logger = logging.getLogger(__name__)

token_used: list = []


def on_token_used(fn):
    token_used.append(fn)
    return fn


def run_token_used(request, token, ip) -> None:
    for fn in list(token_used):
        try:
            fn(request, token, ip)
        except Exception:
            logger.exception("token_used hook %r failed for token %s", fn, token.pk)
