"""Global settings: command-line flags, then CSM_* environment variables, then the TOML config file."""

import os
import stat
import tomllib
from dataclasses import dataclass

from csm_agent.errors import UsageError

DEFAULT_HOST = "http://localhost:8000"
DEFAULT_MAX_RETRIES = 3
ENV_VARS = {"host": "CSM_HOST", "api_token": "CSM_API_TOKEN", "org": "CSM_ORG",
            "max_api_retries": "CSM_MAX_API_RETRIES"}
FILE_KEYS = {"host": str, "api_token": str, "org": str, "max_api_retries": int, "compress": bool,
             "journal_check": bool, "journal_key": str, "journal_state_dir": str}


@dataclass
class Settings:
    """Resolved global settings. ``repr`` hides the token so it can never end up in a log line."""

    host: str = DEFAULT_HOST
    api_token: str = ""
    org: str = ""
    max_api_retries: int = DEFAULT_MAX_RETRIES
    compress: bool = True
    config_path: str = ""
    journal_check: bool = True  # after each report, witness the org's journal (csm_agent.witness)
    journal_key: str = ""  # pinned verifier key(s), space or comma separated; empty: trust on first use
    journal_state_dir: str = ""  # where the last checkpoint per (server, org) is kept

    def __repr__(self):
        token = "<set>" if self.api_token else "<unset>"
        return (f"Settings(host={self.host!r}, org={self.org!r}, api_token={token}, "
                f"max_api_retries={self.max_api_retries}, compress={self.compress}, config={self.config_path!r}, "
                f"journal_check={self.journal_check}, journal_key={self.journal_key!r}, "
                f"journal_state_dir={self.journal_state_dir!r})")


def default_config_path():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "csm", "agent.toml")


def default_journal_state_dir():
    """Next to the config file: ``~/.config/csm/journal`` (``$XDG_CONFIG_HOME/csm/journal``)."""
    return os.path.join(os.path.dirname(default_config_path()), "journal")


def read_config_file(path, required):
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
            mode = os.fstat(f.fileno()).st_mode
    except FileNotFoundError:
        if required:
            raise UsageError(f"config file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from exc
    for key, value in data.items():
        if key not in FILE_KEYS:
            raise UsageError(f"config file {path}: unknown key {key!r} (known: {', '.join(sorted(FILE_KEYS))})")
        if not isinstance(value, FILE_KEYS[key]) or (FILE_KEYS[key] is int and isinstance(value, bool)):
            raise UsageError(f"config file {path}: {key} must be a {FILE_KEYS[key].__name__}")
    if "api_token" in data and mode & (stat.S_IRGRP | stat.S_IROTH):
        import logging

        logging.getLogger("csm_agent").warning("config file %s holds an API token and is readable by others "
                                               "(chmod 600 it)", path)
    return data


def resolve(args, environ=None):
    """Merge flags (highest), environment, config file and defaults into Settings."""
    environ = os.environ if environ is None else environ
    path = getattr(args, "config", None) or environ.get("CSM_AGENT_CONFIG")
    required = bool(path)
    path = path or default_config_path()
    data = read_config_file(path, required)
    settings = Settings(config_path=path if data else "")
    for key in ("host", "api_token", "org", "max_api_retries", "compress", "journal_check", "journal_key",
                "journal_state_dir"):
        value = data.get(key)
        env_name = ENV_VARS.get(key)
        if env_name and environ.get(env_name):
            value = environ[env_name]
        flag = getattr(args, key, None)
        if flag is not None:
            value = flag
        if value is None:
            continue
        if key == "max_api_retries":
            try:
                value = int(value)
            except ValueError:
                raise UsageError(f"max_api_retries must be an integer, got {value!r}") from None
            if value < 0:
                raise UsageError("max_api_retries must be 0 or more")
        if key == "journal_key" and isinstance(value, list):  # --journal-key is repeatable
            value = " ".join(value)
        setattr(settings, key, value)
    settings.journal_state_dir = settings.journal_state_dir or default_journal_state_dir()
    return settings
