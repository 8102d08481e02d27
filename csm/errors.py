"""The one exception for a refused write, shared by every app's services."""

STATUS_BY_CODE = {"invalid": 400, "forbidden": 403, "not_found": 404, "conflict": 409, "too_large": 413}


class ServiceError(Exception):
    """A write refused for a reason the caller can show: ``message`` for the person, ``field`` naming
    the input at fault (or ""), ``code`` for machines, ``status`` for HTTP (derived from the code unless
    given). API views let it propagate: the API's exception handler (csm/api/errors.py) alone turns it
    into the error body. Web views show the message next to the field."""

    def __init__(self, message: str, field: str | None = "", status: int | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field or ""
        self.code = code
        self.status = status or STATUS_BY_CODE.get(code, 400)
