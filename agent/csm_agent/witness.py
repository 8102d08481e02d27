"""Witnessing csm's journal: keep the last checkpoint seen per (server, org) and check every new one
against it, so a history rewritten on the server (or a different history shown to this client) is
caught. Used by ``csm-verify monitor`` and by ``csm-agent`` after each report.

A step, for one org: fetch the latest signed checkpoint; check its signature against the pinned keys and
its origin; when the tree grew, fetch the consistency proof from the size held to the new size and check
it (RFC 9162 2.1.4.2); a smaller tree, another root at the same size or a failing proof is an
inconsistency. Only a checkpoint that passed every check replaces the stored one (atomically: a crash
never leaves a half-written state); a rejected one is kept next to the state as evidence.

HTTP is urllib with ``Authorization: Bearer <token>`` (as the agent's report client sends it).
"""

import datetime
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import quote

from csm_agent import __version__
from csm_agent.tlog import (
    ALG_ED25519,
    Checkpoint,
    InputError,
    PublicKey,
    VerificationFailed,
    WitnessKey,
    check_consistency,
    decode_hashes,
    parse_checkpoint,
    parse_public_key,
    verified_checkpoint,
)

TIMEOUT = 30
MAX_BODY = 4 * 1024 * 1024


class FetchError(Exception):
    """The server could not be asked (unreachable, an HTTP error, an answer that is not what was asked)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class Inconsistent(VerificationFailed):
    """The server's journal contradicts a checkpoint this witness already accepted."""


class Journal:
    """The read API of one org's journal on one csm server."""

    def __init__(self, server: str, org: str, token: str = ""):
        if not server.startswith(("http://", "https://")):
            raise InputError(f"the server URL {server!r} must start with http:// or https://")
        self.server = server.rstrip("/")
        self.org = org
        self.token = token

    def url(self, *parts, query=""):
        path = "/".join(quote(str(p), safe="") for p in ("journal", self.org, *parts))
        return f"{self.server}/api/v2/{path}" + (f"?{query}" if query else "")

    def get(self, *parts, query="", accept="text/plain") -> bytes:
        url = self.url(*parts, query=query)
        return self._send(urllib.request.Request(url, headers=self._headers(accept)))  # noqa: S310 - http(s) only

    def post(self, *parts, data: bytes, content_type="text/plain; charset=utf-8") -> bytes:
        headers = self._headers("application/json")
        headers["Content-Type"] = content_type
        url = self.url(*parts)
        return self._send(urllib.request.Request(url, data=data, headers=headers, method="POST"))  # noqa: S310

    def _headers(self, accept):
        headers = {"Accept": accept, "User-Agent": f"csm-verify/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _send(self, request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) URL given by the user  # nosec B310
                return response.read(MAX_BODY + 1)[:MAX_BODY]
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace").strip()
            try:
                error = json.loads(detail)["error"]
                detail = f"{error.get('code', '')}: {error.get('message', '')}"
            except (ValueError, KeyError, TypeError):
                pass
            raise FetchError(f"{request.get_method()} {request.full_url}: HTTP {exc.code} {detail}"[:600],
                             exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"cannot reach {self.server}: {reason}") from None

    def checkpoint_note(self) -> str:
        return self._text(self.get("checkpoint"), "the checkpoint")

    def keys(self) -> list[PublicKey]:
        text = self._text(self.get("key"), "the key list")
        return [parse_public_key(line) for line in text.splitlines() if line.strip()]

    def consistency(self, old: int, new: int) -> list[bytes]:
        data = self._json(self.get("proof", "consistency", query=f"from={old}&to={new}", accept="application/json"))
        if not isinstance(data, dict) or data.get("from") != old or data.get("to") != new:
            raise FetchError(f"the server answered a consistency proof for other sizes than {old} -> {new}")
        return decode_hashes(data.get("hashes"), f"consistency proof {old} -> {new}")

    def inclusion(self, index: int, size: int) -> list[bytes]:
        data = self._json(self.get("proof", "inclusion", query=f"index={index}&size={size}", accept="application/json"))
        if not isinstance(data, dict) or data.get("index") != index or data.get("size") != size:
            raise FetchError(f"the server answered an inclusion proof for another leaf or size than {index} in {size}")
        return decode_hashes(data.get("hashes"), f"inclusion proof of {index} in {size}")

    @staticmethod
    def _text(raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FetchError(f"{what} is not UTF-8 text") from None

    @staticmethod
    def _json(raw: bytes):
        try:
            return json.loads(raw)
        except ValueError:
            raise FetchError("the server's proof is not JSON") from None


# --- state -------------------------------------------------------------------------------------------------

def state_path(state_dir: str, server: str, org: str) -> str:
    """One file per (server, org): readable name, plus a hash so distinct servers never share a file."""
    server = server.rstrip("/")
    tag = hashlib.sha256(f"{server}\n{org}".encode()).hexdigest()[:12]
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", server.split("://", 1)[-1])[:60]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", org)[:60]
    return os.path.join(state_dir, f"{host}-{name}-{tag}.json")


def load_state(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"witness state {path} cannot be read: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("checkpoint"), str):
        raise InputError(f"witness state {path} is not a csm-verify state file")
    return state


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` as a whole or not at all: a temporary file in the same directory, fsynced, renamed."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- one witnessing step ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    org: str
    checkpoint: Checkpoint
    previous_size: int | None  # None: the first checkpoint this witness keeps
    messages: list[str] = field(default_factory=list)


def expected_origin_suffix(org: str) -> str:
    return f"/api/v2/journal/{org}"


def witness(journal: Journal, state_dir: str, keys: list[PublicKey], *, origin: str | None = None,
            trust_on_first_use: bool = False, cosign_key: WitnessKey | None = None) -> Outcome:
    """Check the server's latest checkpoint for ``journal.org`` against the one kept in ``state_dir`` and
    keep it when it is consistent. Raises Inconsistent (state untouched, evidence saved), VerificationFailed,
    FetchError or InputError.

    ``keys`` are the pinned verifier keys. With ``trust_on_first_use`` and no keys, the keys the server
    publishes at ``/key`` are trusted the first time and remembered in the state; later runs use the
    remembered keys, and a key first seen later is trusted only with a message saying so."""
    path = state_path(state_dir, journal.server, journal.org)
    state = load_state(path)
    messages: list[str] = []
    note = journal.checkpoint_note()
    keys = list(keys)
    if not keys and trust_on_first_use:
        keys = [parse_public_key(k) for k in (state or {}).get("keys", [])]
        try:
            verified_checkpoint(note, keys)
        except (VerificationFailed, InputError):
            fresh = [k for k in journal.keys() if k.alg == ALG_ED25519 and k not in keys]
            if fresh:
                messages.append(("trusting" if not keys else "trusting a new") + " journal key on first use: "
                                + ", ".join(map(str, fresh)) + " (pin it with --journal-key after checking it "
                                "with the csm operator)")
            keys += fresh
    if not keys:
        raise InputError("no verifier key to check the checkpoint with")
    checkpoint, _ = verified_checkpoint(note, keys, origin or (state or {}).get("origin"))
    if state is None and not origin and not checkpoint.origin.endswith(expected_origin_suffix(journal.org)):
        raise VerificationFailed(f"the checkpoint's origin {checkpoint.origin!r} is not org {journal.org!r}'s journal")
    previous = None
    if state is not None:
        held = parse_checkpoint(state["text"]) if isinstance(state.get("text"), str) else None
        if held is None:
            raise InputError(f"witness state {path} has no checkpoint text")
        previous = held.size
        try:
            proof = journal.consistency(held.size, checkpoint.size) if checkpoint.size > held.size else []
            check_consistency(held.size, checkpoint.size, held.root, checkpoint.root, proof)
        except VerificationFailed as exc:
            evidence = _keep_evidence(path, state, note, str(exc))
            raise Inconsistent(
                f"JOURNAL INCONSISTENT for org {journal.org!r} at {journal.server}: {exc}. This witness holds "
                f"a checkpoint of size {held.size} (root {held.root_b64}); the server now shows size "
                f"{checkpoint.size} (root {checkpoint.root_b64}). Either the server's history was rewritten "
                f"or it shows this client a different log. The state was NOT advanced; both checkpoints are "
                f"kept in {evidence}.") from None
    record = {"server": journal.server, "org": journal.org, "origin": checkpoint.origin, "size": checkpoint.size,
              "root": checkpoint.root_b64, "text": checkpoint.text, "checkpoint": note,
              "keys": [str(k) for k in keys], "updated": _now(),
              "first_seen": (state or {}).get("first_seen") or _now()}
    try:
        write_atomic(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise InputError(f"cannot keep the witness state in {state_dir}: {exc.strerror or exc}") from None
    if cosign_key is not None:
        line = cosign_key.cosign(checkpoint.text)
        try:
            journal.post("cosignature", data=line.encode())
            messages.append(f"cosigned size {checkpoint.size} as witness {cosign_key.name}")
        except FetchError as exc:
            messages.append(f"warning: the cosignature was not accepted: {exc}")
    return Outcome(journal.org, checkpoint, previous, messages)


def _keep_evidence(path: str, state: dict, note: str, problem: str) -> str:
    """Both checkpoints (held and rejected), signed, so the inconsistency can be shown to anyone."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    evidence = f"{path[:-5]}.inconsistent-{stamp}.json"
    body = {"problem": problem, "held_checkpoint": state.get("checkpoint"), "rejected_checkpoint": note,
            "server": state.get("server"), "org": state.get("org"), "detected": _now()}
    try:
        write_atomic(evidence, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        return f"nowhere (cannot write {evidence}: {exc.strerror or exc})"
    return evidence
