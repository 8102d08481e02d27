"""The HTTP client that sends reports to csm: gzip bodies, retries with backoff, idempotency keys."""

import email.utils
import gzip
import json
import logging
import random
import sys
import time
import uuid
from urllib.parse import quote

import requests

from csm_agent import __version__
from csm_agent.errors import ServerError, UsageError

log = logging.getLogger("csm_agent")

RETRY_STATUSES = {429, 500, 502, 503, 504}
BACKOFF_BASE = 0.5  # seconds; attempt n waits up to BACKOFF_BASE * 2**n (full jitter)
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 300.0
TIMEOUT = (10, 120)  # connect, read


def _retry_after(response):
    """Seconds from a Retry-After header (delta seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, min(float(value), RETRY_AFTER_CAP))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), RETRY_AFTER_CAP))


def error_message(response):
    """The server's own error message (``{"error": {"code", "message", "fields"}}``), else the body."""
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return f"HTTP {response.status_code}: {text[:500] or response.reason}", None, {}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = f"HTTP {response.status_code} {err.get('code', '')}: {err.get('message', '')}".strip()
        fields = err.get("fields") or {}
        if fields:
            details = "; ".join(f"{k}: {v}" for k, v in sorted(fields.items()))
            message = f"{message} ({details})"
        return message, err.get("code"), fields
    return f"HTTP {response.status_code}: {json.dumps(body)[:500]}", None, {}


class CsmClient:
    """Talks to one csm server for one org. The token is only ever put in the Authorization header."""

    def __init__(self, host, token, org, *, max_retries=3, compress=True, dry_run=False, out=None,
                 sleep=time.sleep):
        if not org:
            raise UsageError("no org given: use --org, CSM_ORG or 'org' in the config file")
        if not token and not dry_run:
            raise UsageError("no API token given: use --api-token, CSM_API_TOKEN or 'api_token' in the config file")
        if max_retries < 0:
            raise UsageError("--max-api-retries must be 0 or more")
        self.host = host.rstrip("/")
        self.org = org
        self.max_retries = max_retries
        self.compress = compress
        self.dry_run = dry_run
        self.out = out or sys.stdout
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"csm-agent/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, *parts):
        return self.host + "/api/v2/" + "/".join(quote(str(p), safe="") for p in parts)

    def request(self, method, url, payload=None, idempotency_key=None, ok_statuses=(), compress=False):
        """Send with retries on connection errors, 5xx and 429; returns the final response.

        Raises ServerError for a rejection (any other 4xx) or when retries are exhausted. The same
        Idempotency-Key is sent on every attempt, so csm counts a retried report once.
        """
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
            if compress:
                # mtime=0: the same report compresses to the same bytes whenever it is (re)sent
                data = gzip.compress(data, compresslevel=5, mtime=0)
                headers["Content-Encoding"] = "gzip"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        attempt = 0
        while True:
            response, problem = None, None
            try:
                log.debug("%s %s (attempt %d, %s bytes)", method, url, attempt + 1, len(data) if data else 0)
                response = self.session.request(method, url, data=data, headers=headers, timeout=TIMEOUT)
            except requests.RequestException as exc:
                problem = f"cannot reach csm at {self.host}: {exc.__class__.__name__}: {exc}"
            else:
                log.debug("-> HTTP %s", response.status_code)
                if response.status_code < 400 or response.status_code in ok_statuses:
                    return response
                if response.status_code not in RETRY_STATUSES:
                    message, code, fields = error_message(response)
                    raise ServerError(f"csm rejected the request: {message}", response.status_code, code, fields)
                problem = error_message(response)[0]
            if attempt >= self.max_retries:
                status = response.status_code if response is not None else None
                raise ServerError(f"giving up after {attempt + 1} attempts: {problem}", status)
            delay = _retry_after(response)
            if delay is None:
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))  # noqa: S311
            log.warning("%s; retrying in %.1fs (%d/%d)", problem, delay, attempt + 1, self.max_retries)
            self.sleep(delay)
            attempt += 1

    def report(self, env, env_type, artifacts, create_missing=None):
        """PUT one complete snapshot of ``env``. Returns the server's JSON answer (or None on dry run).

        ``create_missing`` (a description) creates the environment with ``env_type`` when csm answers
        404 for it, then sends the same report again. This needs no read permission, so it works with a
        snapshotter token; an existing environment is never modified.
        """
        payload = {"artifacts": artifacts}
        url = self.url("environments", self.org, env, "report", env_type)
        if self.dry_run:
            if create_missing is not None:
                print(f"# dry run: would create environment {env!r} ({env_type}) if missing", file=sys.stderr)
            print(f"# dry run: would PUT {url}", file=sys.stderr)
            self.out.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
            self.out.flush()
            return None
        key = str(uuid.uuid4())  # one key per snapshot, reused by every retry of it
        response = self.request("PUT", url, payload, idempotency_key=key, compress=self.compress, ok_statuses=(404,))
        if response.status_code == 404:
            if create_missing is None:
                raise ServerError(self.missing_environment_hint(response, env, env_type), 404, "not_found")
            self.create_environment(env, env_type, create_missing)
            response = self.request("PUT", url, payload, idempotency_key=key, compress=self.compress)
        try:
            return response.json()
        except ValueError:
            return {}

    def missing_environment_hint(self, response, env, env_type):
        """What to do when the environment does not exist: csm's own words (which name the environment
        and the fix), with the agent's fix added when the server did not give it (an older server)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) else None
        said = (err.get("message") if isinstance(err, dict) else "") or ""
        message = f"csm rejected the report (HTTP 404): {said or 'not found'}"
        if "--auto-environment" not in said:
            message += (f" Environment {env!r} may not exist in org {self.org!r}: create it with "
                        f"PUT /api/v2/environments/{self.org} (name {env!r}, type {env_type!r}) or run "
                        f"again with --auto-environment.")
        return message

    def create_environment(self, env, env_type, description=""):
        """``PUT /api/v2/environments/{org}`` (create-or-update) for ``--auto-environment``."""
        body = {"name": env, "type": env_type,
                "description": description or f"Created by csm-agent snapshot {env_type.lower()}"}
        self.request("PUT", self.url("environments", self.org), body)
        log.info("created environment %s (%s)", env, env_type)
