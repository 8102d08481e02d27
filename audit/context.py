"""Who is acting: built once per request (or passed to a task as a dict) and handed to services."""

from dataclasses import asdict, dataclass, field

from audit.choices import ActorType
from csm.lib.clientip import client_ip


@dataclass(frozen=True)
class AuditContext:
    actor_type: str = ActorType.SYSTEM
    actor_label: str = "system"
    user_id: int | None = None
    service_account_id: int | None = None
    token_id: int | None = None
    request_id: str = ""
    ip: str | None = None
    user_agent: str = field(default="")

    @classmethod
    def system(cls, label: str = "system", request_id: str = "") -> "AuditContext":
        return cls(actor_type=ActorType.SYSTEM, actor_label=label, request_id=request_id)

    @classmethod
    def for_user(cls, user, **request_fields) -> "AuditContext":
        return cls(actor_type=ActorType.USER, actor_label=user.email or user.get_username(), user_id=user.pk,
                   **request_fields)

    @classmethod
    def for_token(cls, token, **request_fields) -> "AuditContext":
        """The actor of an API token (tenants.ApiToken): its service account, or the person it belongs to.
        Also used while the token is being authenticated, before ``request.auth`` is set."""
        if token.service_account_id:
            account = token.service_account
            return cls(actor_type=ActorType.SERVICE_ACCOUNT, actor_label=f"{account.name} ({token.prefix}…)",
                       service_account_id=account.pk, token_id=token.pk, **request_fields)
        user = token.user
        return cls(actor_type=ActorType.USER, actor_label=f"{user.email or user.get_username()} ({token.prefix}…)",
                   user_id=user.pk, token_id=token.pk, **request_fields)

    @classmethod
    def from_request(cls, request) -> "AuditContext":
        request_fields = cls.request_fields(request)
        token = getattr(request, "auth", None)
        if token is not None and hasattr(token, "service_account_id"):  # an API token (tenants.ApiToken)
            return cls.for_token(token, **request_fields)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls.for_user(user, **request_fields)
        return cls(actor_type=ActorType.ANONYMOUS, actor_label="anonymous", **request_fields)

    @classmethod
    def request_fields(cls, request) -> dict:
        """The request's id, client IP and user agent, as every context built from a request carries."""
        return {
            "request_id": getattr(request, "request_id", ""),
            "ip": client_ip(request),
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:255],
        }

    def to_dict(self) -> dict:
        """For Celery task arguments: plain JSON, never model instances."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "AuditContext":
        return cls(**data) if data else cls.system()
