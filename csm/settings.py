"""Settings for csm, read from environment variables (see docs/configuration.md).

With no variables set csm runs in its embedded default: DEBUG on, SQLite in ``var/``, tasks run
in-process. Production sets ``DEBUG=0``, ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and
``CELERY_BROKER_URL``; everything else has a secure default when DEBUG is off.
"""

import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from csm.env import env_bool, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CSM_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
# Or read from a file (scripts/start generates var/secret_key, mode 0600, once): the key then stays out of
# the process environment and survives restarts.
CSM_SECRET_KEY_FILE = env_str("CSM_SECRET_KEY_FILE")
if not SECRET_KEY and CSM_SECRET_KEY_FILE:
    try:
        SECRET_KEY = Path(CSM_SECRET_KEY_FILE).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"CSM_SECRET_KEY_FILE: cannot read {CSM_SECRET_KEY_FILE}: {exc}") from None
    if not SECRET_KEY:
        raise ImproperlyConfigured(f"CSM_SECRET_KEY_FILE: {CSM_SECRET_KEY_FILE} is empty")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-csm-development-only-do-not-use-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Public base URL used in emails, webhook payloads and reports ("html_url").
CSM_BASE_URL = (env_str("CSM_BASE_URL", "http://localhost:8000") or "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our own static files: the docs work offline
    "django_htmx",
    "django_otp",  # two-factor: the TOTP device model (identity/twofactor.py); before identity, whose admin
    "django_otp.plugins.otp_totp",  # replaces django-otp's editable device admin with a read-only one
    "csm",
    "journal",
    "tenants",
    "identity",
    "audit",
    "snapshots",
    "evidence",
    "vulns",
    "policies",
    "alerts",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csm.middleware.RequestMetricsMiddleware",  # after WhiteNoise: static files are not counted
    "csm.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "csm.middleware.RevealBidiControlsMiddleware",
    "csm.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "identity.middleware.SessionActivityMiddleware",  # ends revoked sessions; needs auth and messages
    "identity.twofactor_middleware.RequireTwoFactorMiddleware",  # after auth and messages: it redirects with one
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csm.middleware.DebugPagesForStaffOnlyMiddleware",
]

ROOT_URLCONF = "csm.urls"
WSGI_APPLICATION = "csm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "csm" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.orgs",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": parse_database_url(DATABASE_URL)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "csm.sqlite3",
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
# Behind PgBouncer in transaction pooling (docs/scaling.md, "PgBouncer"): consecutive transactions of one
# connection may run on different server connections, so no server-side prepared statements (psycopg 3
# prepares a query run 5 times) and no server-side cursors (.iterator() would DECLARE a cursor that lives on
# one server connection). Only "pgbouncer" is understood; empty: a direct connection.
CSM_DB_POOLER = env_str("CSM_DB_POOLER", "") or ""
if CSM_DB_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured(f"CSM_DB_POOLER must be empty or pgbouncer, got {CSM_DB_POOLER!r}")
# Read replicas (docs/scaling.md, "Read replicas"): PostgreSQL streaming replicas, comma separated; the reads of
# GET/HEAD/OPTIONS requests go to one of them (csm/dbrouter.py), everything else to DATABASE_URL.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URLS and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL")
for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _replica = parse_database_url(_url)
    if _replica["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL: {_url.split('@')[-1]} is not a PostgreSQL URL")
    _replica["OPTIONS"].setdefault("connect_timeout", "2")  # a replica that is down costs a request 2 s at most
    _replica["TEST"] = {"MIRROR": "default"}  # the test runner reads the primary's test database through it
    DATABASES["replica" if _number == 1 else f"replica{_number}"] = _replica
if CSM_DB_POOLER == "pgbouncer":
    for _database in DATABASES.values():
        if _database["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured("CSM_DB_POOLER=pgbouncer needs a PostgreSQL DATABASE_URL")
        _database["OPTIONS"]["prepare_threshold"] = None
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
# A client that wrote reads the primary for this long (read-your-own-writes across requests).
CSM_REPLICA_STICKY_SECONDS = env_int("CSM_REPLICA_STICKY_SECONDS", 10, minimum=0)
# A replica whose replay is further behind than this is skipped (0: no lag check).
CSM_REPLICA_MAX_LAG_SECONDS = env_int("CSM_REPLICA_MAX_LAG_SECONDS", 30, minimum=0)
DATABASE_ROUTERS = ["csm.dbrouter.PrimaryReplicaRouter"] if DATABASE_REPLICA_URLS else []
if DATABASE_REPLICA_URLS:  # before the session middleware: reading the session is a read of the request
    MIDDLEWARE.insert(MIDDLEWARE.index("csm.middleware.RequestIdMiddleware") + 1,
                      "csm.dbrouter.ReplicaRoutingMiddleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = ["tenants.backends.EmailOrUsernameBackend"]
# Sign-in rate limits: attempts per window, per account and per client IP.
CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT = env_int("CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT", 5, minimum=1)
CSM_LOGIN_MAX_ATTEMPTS_PER_IP = env_int("CSM_LOGIN_MAX_ATTEMPTS_PER_IP", 20, minimum=1)
CSM_LOGIN_WINDOW_SECONDS = env_int("CSM_LOGIN_WINDOW_SECONDS", 900, minimum=1)
# Password-reset requests: per client IP (then 429) and emails per address, per window.
CSM_PASSWORD_RESET_MAX_PER_IP = env_int("CSM_PASSWORD_RESET_MAX_PER_IP", 10, minimum=1)
CSM_PASSWORD_RESET_MAX_PER_ACCOUNT = env_int("CSM_PASSWORD_RESET_MAX_PER_ACCOUNT", 3, minimum=1)
CSM_PASSWORD_RESET_WINDOW_SECONDS = env_int("CSM_PASSWORD_RESET_WINDOW_SECONDS", 3600, minimum=1)
# Sign-up requests (each sends an email): per client IP (then 429) and emails per address, per window;
# the emailed link to finish creating the account works this long.
CSM_SIGNUP_MAX_PER_IP = env_int("CSM_SIGNUP_MAX_PER_IP", 10, minimum=1)
CSM_SIGNUP_MAX_PER_ACCOUNT = env_int("CSM_SIGNUP_MAX_PER_ACCOUNT", 3, minimum=1)
CSM_SIGNUP_WINDOW_SECONDS = env_int("CSM_SIGNUP_WINDOW_SECONDS", 3600, minimum=1)
CSM_SIGNUP_LINK_TTL_HOURS = env_int("CSM_SIGNUP_LINK_TTL_HOURS", 24, minimum=1)
CSM_INVITATION_TTL_HOURS = env_int("CSM_INVITATION_TTL_HOURS", 72, minimum=1)
# Key for the keyed hash of API tokens. Defaults to one derived from SECRET_KEY; set it explicitly to
# rotate SECRET_KEY without invalidating every token.
CSM_TOKEN_HASH_KEY = env_str("CSM_TOKEN_HASH_KEY") or ("csm-token-hash:" + SECRET_KEY)
# Refused attempts (access.denied) per org + actor + IP + permission: the first of each window is an
# audit event, the rest are counted and summarized in one access.denied_repeated event (docs/operations.md).
CSM_ACCESS_DENIED_WINDOW_SECONDS = env_int("CSM_ACCESS_DENIED_WINDOW_SECONDS", 300, minimum=1)
# Trust X-Forwarded-For for the client IP (only behind a proxy that sets it).
CSM_TRUST_X_FORWARDED_FOR = env_bool("CSM_TRUST_X_FORWARDED_FOR", False)
# --- operations: metrics and logs ---
# /metrics (Prometheus text format) answers a request with "Authorization: Bearer <CSM_METRICS_TOKEN>" or from
# a client address in CSM_METRICS_ALLOWED_NETWORKS (CIDRs, comma separated; empty: the token only); anyone
# else gets a 404. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself) sums several processes.
CSM_METRICS_TOKEN = env_str("CSM_METRICS_TOKEN", "") or ""
CSM_METRICS_ALLOWED_NETWORKS = env_list("CSM_METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
try:
    _metrics_networks = [ipaddress.ip_network(cidr, strict=False) for cidr in CSM_METRICS_ALLOWED_NETWORKS]
except ValueError as exc:
    raise ImproperlyConfigured(f"CSM_METRICS_ALLOWED_NETWORKS: {exc}") from None
# Log lines as plain text (default) or one JSON object per line ("json"), with request and report ids.
CSM_LOG_FORMAT = env_str("CSM_LOG_FORMAT", "plain")
if CSM_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"CSM_LOG_FORMAT must be plain or json, got {CSM_LOG_FORMAT!r}")
# --- identity: two-factor ---
# WebAuthn relying party: the RP ID (a domain; passkeys are bound to it, so it must not change once people
# have registered) defaults to the host of CSM_BASE_URL; the expected origin is CSM_BASE_URL's scheme, host
# and port. The name is what the browser shows when it asks for a passkey.
CSM_WEBAUTHN_RP_ID = env_str("CSM_WEBAUTHN_RP_ID", "")
CSM_WEBAUTHN_RP_NAME = env_str("CSM_WEBAUTHN_RP_NAME", "csm")
# The issuer an authenticator app shows next to the account (otpauth:// URI, django-otp's setting).
OTP_TOTP_ISSUER = env_str("CSM_TOTP_ISSUER", "csm")
# django-otp's own per-device delay after a wrong code is off: failed codes are counted per account and IP
# in the shared cache instead (tenants/ratelimit.py), like failed passwords.
OTP_TOTP_THROTTLE_FACTOR = 0
# Failed second-factor attempts per account in CSM_LOGIN_WINDOW_SECONDS before the half-done sign-in is
# dropped and further attempts are refused; how long the password step stays valid for the second factor.
CSM_TWO_FACTOR_MAX_ATTEMPTS = env_int("CSM_TWO_FACTOR_MAX_ATTEMPTS", 5, minimum=1)
CSM_TWO_FACTOR_PENDING_SECONDS = env_int("CSM_TWO_FACTOR_PENDING_SECONDS", 300, minimum=30)

# --- identity: scim ---
# The most resources one SCIM list answer holds (ServiceProviderConfig filter.maxResults); a larger ``count``
# is lowered to it, an absent one means it (RFC 7644 §3.4.2.4). Okta and Entra ID ask for 100 at a time.
CSM_SCIM_MAX_RESULTS = env_int("CSM_SCIM_MAX_RESULTS", 200, minimum=1)
# --- identity: unusual activity ---
# A token's network is the /24 (IPv4) or /56 (IPv6) of its client address: a new one is unusual.
CSM_UNUSUAL_IPV4_PREFIX = min(env_int("CSM_UNUSUAL_IPV4_PREFIX", 24, minimum=8), 32)
CSM_UNUSUAL_IPV6_PREFIX = min(env_int("CSM_UNUSUAL_IPV6_PREFIX", 56, minimum=16), 128)
# How long the shared cache remembers a (token, network) pair it has seen before asking PostgreSQL again.
CSM_UNUSUAL_NETWORK_CACHE_SECONDS = env_int("CSM_UNUSUAL_NETWORK_CACHE_SECONDS", 86400, minimum=1)
# This many failed sign-ins of one account within the window are flagged once per window.
CSM_UNUSUAL_FAILED_SIGN_INS = env_int("CSM_UNUSUAL_FAILED_SIGN_INS", 5, minimum=1)
CSM_UNUSUAL_FAILED_SIGN_IN_WINDOW_SECONDS = env_int("CSM_UNUSUAL_FAILED_SIGN_IN_WINDOW_SECONDS", 900, minimum=1)
# --- identity: sso ---
# Secrets csm reads back (an org's OpenID Connect client secret) are encrypted with a key derived from this.
CSM_SECRET_ENCRYPTION_KEY = env_str("CSM_SECRET_ENCRYPTION_KEY") or ("csm-secret-encryption:" + SECRET_KEY)
# An org's IdP on a private/loopback address is refused unless the operator allows it (SSRF guard).
CSM_SSO_ALLOW_PRIVATE_ISSUERS = env_bool("CSM_SSO_ALLOW_PRIVATE_ISSUERS", False)
CSM_SSO_TIMEOUT_SECONDS = env_int("CSM_SSO_TIMEOUT_SECONDS", 10, minimum=1)
# Discovery documents and JWKS are cached this long (an unknown key id refetches the JWKS at once).
CSM_SSO_METADATA_CACHE_SECONDS = env_int("CSM_SSO_METADATA_CACHE_SECONDS", 3600, minimum=0)
# How long a started SSO sign-in may take at the IdP before its state expires.
CSM_SSO_SIGN_IN_TIMEOUT_SECONDS = env_int("CSM_SSO_SIGN_IN_TIMEOUT_SECONDS", 600, minimum=30)

# --- Email ----------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "csm <csm@localhost>")

# --- Cache (rate limits) --------------------------------------------------------------------------
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    # A cache, not a dependency: while Redis is down reads miss and writes are dropped (csm/cache.py), and a
    # dead Redis host costs at most the timeouts below per call, never a hung request.
    CACHES = {"default": {"BACKEND": "csm.cache.TolerantRedisCache", "LOCATION": CACHE_URL,
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Internationalization / static ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("CSM_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Source maps (half of the API docs' bundles) are fetched only by browser devtools: served as they are,
# not compressed at collectstatic, which halves its time (scripts/start runs it when static files changed).
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (
    "jpg", "jpeg", "png", "gif", "webp", "zip", "gz", "tgz", "bz2", "tbz", "xz", "br", "swf", "flv", "woff",
    "woff2", "3gp", "3gpp", "asf", "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv", "map",
)

# --- Security ------------------------------------------------------------------------------------
# Behind a TLS-terminating proxy (the documented deployment) these are on whenever DEBUG is off.
# CSM_INSECURE_HTTP=1 turns the HTTPS-only ones off for a plain-HTTP trial (documented as such).
CSM_INSECURE_HTTP = env_bool("CSM_INSECURE_HTTP", False)
_https = not DEBUG and not CSM_INSECURE_HTTP
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("CSM_BEHIND_PROXY", True) else None
SECURE_SSL_REDIRECT = _https
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = env_int("CSM_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every HTML page (csm.middleware.ContentSecurityPolicyMiddleware): csm's pages
# load scripts and styles only from its own static files and have no inline script or style attribute.
CSM_CONTENT_SECURITY_POLICY = env_str("CSM_CONTENT_SECURITY_POLICY", "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "object-src 'none'",
    "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
]))
# /api/docs/ (Swagger UI) and /api/redoc/ (Redoc) are served from csm's own static files (drf-spectacular-sidecar),
# Swagger UI's start-up script from its own URL: nothing loads from another origin, no inline script. Both
# render with inline styles, and Redoc parses the schema in a worker it creates from a blob.
CSM_CONTENT_SECURITY_POLICY_API_DOCS = env_str("CSM_CONTENT_SECURITY_POLICY_API_DOCS", "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "font-src 'self' data:", "worker-src 'self' blob:", "object-src 'none'", "base-uri 'none'",
    "frame-ancestors 'none'", "form-action 'self'",
]))
if _https:
    # Health checks from the proxy, and Prometheus scraping a process directly, arrive over plain HTTP on the
    # internal network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^ready$", r"^metrics$"]

# --- REST API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "csm.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "csm.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "csm.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "csm.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "csm.api.parsers.BoundedJSONParser",  # size, depth, finite numbers, an object (csm/lib/bounded.py)
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "csm API",
    "DESCRIPTION": "Continuous security monitoring: environments, snapshots, evidence, policies, audit.",
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v2",
    # Choice sets that share a field name ("type", "role") get stable component names.
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "tenants.choices.Role",
        "EnvironmentTypeEnum": "snapshots.choices.EnvironmentType",
        "ActionTypeEnum": "alerts.choices.ActionType",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
# Unset broker: the embedded default runs tasks in-process, right after the transaction commits.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = env_bool("CSM_EAGER_PROPAGATES", False)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a request when Redis is down: fail fast, the sweeper re-enqueues.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "socket_timeout": 2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
# Queues: reports are ingested on "ingest", webhooks / Slack / email go out on "alerts", PDFs render
# on "reports", the rest (sweepers, re-evaluation) runs on "celery". A worker started without -Q
# consumes all four; dedicated workers (-Q ingest) keep ingest from waiting behind a receiver that
# times out or a busy-year PDF (docs/operations.md).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", "ingest", "alerts", "reports")]
CELERY_TASK_ROUTES = {
    "snapshots.ingest_report": {"queue": "ingest"},
    "alerts.deliver": {"queue": "alerts"},
    "reports.*": {"queue": "reports"},
}
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE["audit-summarize-denied-access"] = {"task": "audit.summarize_denied_access", "schedule": 60}

# --- Verifiable journal (docs/journal.md) ------------------------------------------------------------
# The Ed25519 key that signs every org's checkpoints, in signed-note signer format. Never in the database.
CSM_JOURNAL_KEY_FILE = Path(env_str("CSM_JOURNAL_KEY_FILE", str(VAR_DIR / "journal-signing.key")))
# Create the key on first use when the file is missing (the embedded default); off: a missing key is an error.
CSM_JOURNAL_GENERATE_KEY = env_bool("CSM_JOURNAL_GENERATE_KEY", not env_str("CSM_JOURNAL_KEY_FILE"))
CSM_JOURNAL_KEY_NAME = env_str("CSM_JOURNAL_KEY_NAME", "")
# Checkpoint origin lines are <this>/api/v2/journal/<org> (default: host and path of CSM_BASE_URL),
# fixed per org at its first checkpoint.
CSM_JOURNAL_ORIGIN_BASE = env_str("CSM_JOURNAL_ORIGIN_BASE", "")
# New leaves are batched into one checkpoint per org per this many seconds.
CSM_JOURNAL_CHECKPOINT_DELAY_SECONDS = env_int("CSM_JOURNAL_CHECKPOINT_DELAY_SECONDS", 1, minimum=0)
CELERY_BEAT_SCHEDULE["journal-checkpoints"] = {
    "task": "journal.publish_due_checkpoints",
    "schedule": env_int("CSM_JOURNAL_CHECKPOINT_SWEEP_SECONDS", 10, minimum=1),
}
# Witnesses (docs/journal-witnesses.md): the verifier keys (<name>+<hex id>+<base64(0x04 || key)>, comma or
# space separated) whose C2SP tlog-cosignatures csm accepts on its checkpoints. Checked at startup
# (journal/apps.py): a bad key stops the process, naming it.
CSM_JOURNAL_WITNESS_KEYS = (env_str("CSM_JOURNAL_WITNESS_KEYS", "") or "").replace(",", " ").split()
# RFC 3161 Time-Stamp Authority: when set, every new checkpoint's signed note is timestamped there
# (SHA-256 imprint, nonce, certReq) and the DER TimeStampResp kept with the checkpoint.
CSM_JOURNAL_TSA_URL = env_str("CSM_JOURNAL_TSA_URL", "") or ""
# The TSA URL goes through the outbound HTTP guard: private, loopback and link-local addresses are refused
# unless the operator allows them here (a TSA on the operator's own network).
CSM_JOURNAL_TSA_ALLOW_PRIVATE = env_bool("CSM_JOURNAL_TSA_ALLOW_PRIVATE", False)
CSM_JOURNAL_TSA_TIMEOUT_SECONDS = env_int("CSM_JOURNAL_TSA_TIMEOUT_SECONDS", 10, minimum=1)

# --- Snapshots (issue: snapshot journal) -----------------------------------------------------------
CSM_REPORT_MAX_BYTES = env_int("CSM_REPORT_MAX_BYTES", 128 * 1024 * 1024, minimum=1024)
CSM_SWEEP_INTERVAL_SECONDS = env_int("CSM_SWEEP_INTERVAL_SECONDS", 60, minimum=1)
# How long a report may stay pending before the sweeper assumes its message was lost.
CSM_SWEEP_GRACE_SECONDS = env_int("CSM_SWEEP_GRACE_SECONDS", 30, minimum=0)
# Re-enqueue reports still pending (a lost Redis message loses nothing): celery beat / run_scheduler.
CELERY_BEAT_SCHEDULE["sweep-pending-reports"] = {
    "task": "snapshots.sweep_pending_reports", "schedule": CSM_SWEEP_INTERVAL_SECONDS,
}

# --- Evidence vault --------------------------------------------------------------------------------
CSM_EVIDENCE_ROOT = Path(env_str("CSM_EVIDENCE_ROOT", str(VAR_DIR / "evidence")))
CSM_EVIDENCE_MAX_FILE_BYTES = env_int("CSM_EVIDENCE_MAX_FILE_BYTES", 100 * 1024 * 1024, minimum=1)
CSM_EVIDENCE_MAX_REQUEST_BYTES = env_int("CSM_EVIDENCE_MAX_REQUEST_BYTES", 500 * 1024 * 1024, minimum=1)
# Archives (tar / tar.gz attachments) are read as streams, never extracted to disk; beyond these → 413.
CSM_EVIDENCE_MAX_ARCHIVE_ENTRIES = env_int("CSM_EVIDENCE_MAX_ARCHIVE_ENTRIES", 10_000, minimum=1)
CSM_EVIDENCE_MAX_EXPANDED_BYTES = env_int("CSM_EVIDENCE_MAX_EXPANDED_BYTES", 1024 * 1024 * 1024, minimum=1)
# Evidence storage: the filesystem under CSM_EVIDENCE_ROOT, or S3-compatible storage through
# django-storages with CSM_EVIDENCE_STORAGE_BACKEND=storages.backends.s3.S3Storage plus
# CSM_EVIDENCE_S3_BUCKET (and CSM_EVIDENCE_S3_ENDPOINT_URL for MinIO & co.; credentials from the usual
# AWS_* environment variables). Any other Django storage backend works the same way.
_evidence_backend = env_str("CSM_EVIDENCE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
STORAGES["evidence"] = {
    "BACKEND": _evidence_backend,
    "OPTIONS": {"location": str(CSM_EVIDENCE_ROOT)}
    if _evidence_backend == "django.core.files.storage.FileSystemStorage"
    else {"bucket_name": env_str("CSM_EVIDENCE_S3_BUCKET", ""),
          "location": env_str("CSM_EVIDENCE_S3_PREFIX", "evidence"),
          "endpoint_url": env_str("CSM_EVIDENCE_S3_ENDPOINT_URL", None), "default_acl": None,
          "file_overwrite": False},
}

# --- Retention (docs/operations.md, "Retention") ------------------------------------------------------
# Each org may drop stored report bodies and evidence files after N days (org settings); this task applies
# it. Rows are changed in transactions of at most CSM_RETENTION_BATCH_SIZE rows and, for report bodies,
# CSM_RETENTION_BATCH_BYTES bytes (past the first row), so memory and lock time stay bounded.
CSM_RETENTION_INTERVAL_SECONDS = env_int("CSM_RETENTION_INTERVAL_SECONDS", 3600, minimum=60)
CSM_RETENTION_BATCH_SIZE = env_int("CSM_RETENTION_BATCH_SIZE", 1000, minimum=1)
CSM_RETENTION_BATCH_BYTES = env_int("CSM_RETENTION_BATCH_BYTES", 256 * 1024 * 1024, minimum=1)
CELERY_BEAT_SCHEDULE["retention"] = {"task": "evidence.apply_retention", "schedule": CSM_RETENTION_INTERVAL_SECONDS}

# --- Vulnerability data (OSV import, docs/vulnerabilities.md) ----------------------------------------------
# Sources the periodic sync imports: directories, .zip files or http(s) URLs of zips of OSV JSON records,
# separated by spaces or commas (osv.dev publishes one zip per ecosystem). Empty: no periodic sync.
CSM_VULN_SOURCES = (env_str("CSM_VULN_SOURCES", "") or "").replace(",", " ").split()
CSM_VULN_SYNC_INTERVAL_SECONDS = env_int("CSM_VULN_SYNC_INTERVAL_SECONDS", 3600, minimum=60)
# A source URL goes through the outbound HTTP guard: private, loopback and link-local addresses are refused
# unless the operator allows them here (a mirror on the operator's own network).
CSM_VULN_SOURCES_ALLOW_PRIVATE = env_bool("CSM_VULN_SOURCES_ALLOW_PRIVATE", False)
# Largest zip a source URL may send (the download stops there and the source is reported as failed).
CSM_VULN_DOWNLOAD_MAX_BYTES = env_int("CSM_VULN_DOWNLOAD_MAX_BYTES", 1024 * 1024 * 1024, minimum=1024)
CSM_VULN_DOWNLOAD_TIMEOUT_SECONDS = env_int("CSM_VULN_DOWNLOAD_TIMEOUT_SECONDS", 60, minimum=1)
# Largest single OSV record (a bigger file or zip member is rejected unread: a zip bomb expands no further).
CSM_VULN_MAX_RECORD_BYTES = env_int("CSM_VULN_MAX_RECORD_BYTES", 16 * 1024 * 1024, minimum=1024)
CELERY_BEAT_SCHEDULE["vulns-sync-sources"] = {"task": "vulns.sync_vuln_sources",
                                              "schedule": CSM_VULN_SYNC_INTERVAL_SECONDS}

# --- Policies ------------------------------------------------------------------------------------
# Largest accepted policy YAML file.
CSM_POLICY_MAX_BYTES = env_int("CSM_POLICY_MAX_BYTES", 64 * 1024, minimum=1024)
# Rego policies run in a child process (policies.rego): wall-clock seconds per decision, address-space
# limit in MiB of that process, and the largest input (canonical JSON bytes) one decision may get.
CSM_REGO_TIMEOUT_SECONDS = env_int("CSM_REGO_TIMEOUT_SECONDS", 5, minimum=1)
CSM_REGO_MEMORY_MB = env_int("CSM_REGO_MEMORY_MB", 512, minimum=128)
CSM_REGO_MAX_INPUT_BYTES = env_int("CSM_REGO_MAX_INPUT_BYTES", 4 * 1024 * 1024, minimum=1024)
# Expired allowlist entries change standing: re-evaluate their environments this often (seconds).
CELERY_BEAT_SCHEDULE["policies-allowlist-expiry"] = {"task": "policies.handle_expired_allowlist_entries",
                                                     "schedule": 60}
# A vulnerability rule's grace period ends: decide the artifacts it held back again (checked this often).
CELERY_BEAT_SCHEDULE["policies-vulnerability-grace"] = {"task": "policies.recheck_grace_periods", "schedule": 60}

# --- Alerts --------------------------------------------------------------------------------------
CSM_WEBHOOK_ALLOW_PRIVATE = env_bool("CSM_WEBHOOK_ALLOW_PRIVATE", False)
# Key encrypting webhook signing secrets at rest (derived from SECRET_KEY unless set).
CSM_ACTION_SECRET_KEY = env_str("CSM_ACTION_SECRET_KEY") or ("csm-action-secrets:" + SECRET_KEY)
CSM_WEBHOOK_TIMEOUT_SECONDS = env_int("CSM_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Retries: exponential backoff (base * 2^n, capped, with jitter) until this long after the event.
CSM_WEBHOOK_RETRY_BASE_SECONDS = env_int("CSM_WEBHOOK_RETRY_BASE_SECONDS", 5, minimum=0)
CSM_WEBHOOK_RETRY_MAX_DELAY_SECONDS = env_int("CSM_WEBHOOK_RETRY_MAX_DELAY_SECONDS", 3600, minimum=1)
CSM_WEBHOOK_RETRY_FOR_SECONDS = env_int("CSM_WEBHOOK_RETRY_FOR_SECONDS", 86400, minimum=0)
# Disable an action (and email the org's admins) after this many failed attempts in a row.
CSM_WEBHOOK_DISABLE_AFTER_FAILURES = env_int("CSM_WEBHOOK_DISABLE_AFTER_FAILURES", 50, minimum=1)
CSM_AGENT_SILENT_CHECK_SECONDS = env_int("CSM_AGENT_SILENT_CHECK_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["alerts-agent-silent"] = {
    "task": "alerts.check_agent_silence", "schedule": CSM_AGENT_SILENT_CHECK_SECONDS,
}
CELERY_BEAT_SCHEDULE["alerts-retry-due"] = {"task": "alerts.retry_due_deliveries", "schedule": 30}

# --- Audit reports ---------------------------------------------------------------------------------
# Detail tables print at most this many rows in the PDF (WeasyPrint lays out ~200-600 rows a second);
# the JSON export beside the PDF always holds every row. Figures and charts always cover every row.
CSM_REPORT_PDF_MAX_ROWS = env_int("CSM_REPORT_PDF_MAX_ROWS", 500, minimum=10)

# Ordinary JSON bodies; the report endpoint streams its body with its own limit (CSM_REPORT_MAX_BYTES).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CSM_MAX_JSON_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000
# Input limits (docs/api.md, "Input limits"): how deep a JSON body / data_json may nest, and the bounds of a
# flow template's YAML (template in a JSON body or template_file), checked before any recursive parsing.
CSM_JSON_MAX_DEPTH = env_int("CSM_JSON_MAX_DEPTH", 64, minimum=8)
CSM_TEMPLATE_MAX_BYTES = env_int("CSM_TEMPLATE_MAX_BYTES", 256 * 1024, minimum=1024)
CSM_YAML_MAX_DEPTH = env_int("CSM_YAML_MAX_DEPTH", 32, minimum=8)
CSM_YAML_MAX_NODES = env_int("CSM_YAML_MAX_NODES", 20_000, minimum=100)
CSM_YAML_MAX_ALIASES = env_int("CSM_YAML_MAX_ALIASES", 50, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "csm.logs.JsonFormatter"}},
    # Every record gets request_id / report_id / org from the current request or task (csm/logs.py).
    "filters": {"context": {"()": "csm.logs.LogContextFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": CSM_LOG_FORMAT,
                             "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_str("CSM_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
