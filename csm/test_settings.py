"""Settings for the test suite: real PostgreSQL and Redis (defaults match the documented local
services; override with DATABASE_URL / CELERY_BROKER_URL / CACHE_URL)."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/csm")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CACHE_URL", os.environ["CELERY_BROKER_URL"].rsplit("/", 1)[0] + "/14")
os.environ.setdefault("CSM_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from csm.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; hashing is Django's, not ours
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The tests' workers are threads of the test process (celery_worker): a connection they kept would outlive
# its thread and keep the test database from being dropped. Real worker processes (tests/faults/) keep theirs.
CELERY_DB_REUSE_MAX = None
CSM_WEBHOOK_ALLOW_PRIVATE = True  # tests run receivers on 127.0.0.1; SSRF tests switch it off explicitly

# WhiteNoise warns when STATIC_ROOT does not exist; tests serve static files through the finders.
STATIC_ROOT = VAR_DIR / "static"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
