"""With only DEBUG=0, a strong SECRET_KEY and ALLOWED_HOSTS set, Django's deployment checks pass."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _production_env(tmp_path, **extra):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_URL", "CELERY_", "CACHE_URL", "CSM_", "DJANGO_", "DEBUG", "SECRET_KEY",
                                  "ALLOWED_HOSTS"))}
    env.update({"DJANGO_SETTINGS_MODULE": "csm.settings", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "csm.example.com", "CSM_VAR_DIR": str(tmp_path)}, **extra)
    return env


def _check(env):
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_deploy_check_passes_with_the_three_required_settings(tmp_path):
    result = _check(_production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_secret_key_is_required_when_debug_is_off(tmp_path):
    env = _production_env(tmp_path)
    del env["SECRET_KEY"]
    result = _check(env)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


@pytest.mark.slow
def test_plain_http_trial_is_an_explicit_opt_out(tmp_path):
    result = _check(_production_env(tmp_path, CSM_INSECURE_HTTP="1"))
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stdout + result.stderr


def test_every_environment_variable_is_documented():
    """docs/configuration.md names every variable csm/settings.py reads."""
    import re

    settings_text = (ROOT / "csm" / "settings.py").read_text()
    names = set(re.findall(r'env_(?:str|int|bool|list)\(\s*"([A-Z0-9_]+)"', settings_text))
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in doc and name not in doc)
    assert not missing, f"add to docs/configuration.md: {missing}"
