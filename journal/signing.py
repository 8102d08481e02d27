"""The server's checkpoint-signing key: read from the file named by ``CSM_JOURNAL_KEY_FILE``, never
stored in the database.

The file holds one signer key in the signed-note format (``PRIVATE+KEY+<name>+<id>+<base64>``). When it
does not exist and ``CSM_JOURNAL_GENERATE_KEY`` is on (the embedded default) the first process that
needs it creates it (mode 0600, exclusively: concurrent processes agree on one key). Every public key
that signs is recorded in ``JournalKey`` — the published key history, so checkpoints signed before a
rotation keep verifying with the key that signed them.

Rotation (``manage.py rotate_journal_key``) writes a new key over the file atomically; processes notice
the changed file on their next checkpoint.
"""

import datetime
import os
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from journal.models import JournalKey
from journal.notes import NoteError, Signer, generate_signer, parse_signer

_cache: dict[str, tuple[tuple[int, int], Signer]] = {}


def server_name() -> str:
    """``host[:port][/path]`` of the public base URL (``CSM_JOURNAL_ORIGIN_BASE`` overrides it)."""
    base = settings.CSM_JOURNAL_ORIGIN_BASE
    if base:
        return base.strip("/")
    parts = urlsplit(settings.CSM_BASE_URL)
    return (parts.netloc + parts.path).strip("/") or "csm"


def default_key_name(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return f"{server_name()}/journal-key-{now.strftime('%Y%m%dT%H%M%SZ')}"


def key_path() -> Path:
    return Path(settings.CSM_JOURNAL_KEY_FILE)


def _write_new(path: Path, signer: Signer, exclusive: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"{signer}\n".encode()
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def current_signer() -> Signer:
    """The signing key in ``CSM_JOURNAL_KEY_FILE`` (created on first use in the embedded default)."""
    path = key_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        if not settings.CSM_JOURNAL_GENERATE_KEY:
            raise ImproperlyConfigured(
                f"CSM_JOURNAL_KEY_FILE: {path} does not exist; create it with "
                "'manage.py rotate_journal_key' (or set CSM_JOURNAL_GENERATE_KEY=1)") from None
        try:
            _write_new(path, generate_signer(settings.CSM_JOURNAL_KEY_NAME or default_key_name()), exclusive=True)
        except FileExistsError:
            pass  # another process made it first: use theirs
        stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_ino)
    cached = _cache.get(str(path))
    if cached and cached[0] == stamp:
        # Published again if its history row is gone (a rolled-back transaction that first registered it):
        # a checkpoint must never be signed by a key missing from the history verify_audit checks against.
        if not JournalKey.objects.filter(verifier=str(cached[1].verifier)).exists():
            register(cached[1])
        return cached[1]
    try:
        signer = parse_signer(path.read_text(encoding="utf-8"))
    except (OSError, NoteError) as exc:
        raise ImproperlyConfigured(f"CSM_JOURNAL_KEY_FILE: {path}: {exc}") from None
    register(signer)
    _cache[str(path)] = (stamp, signer)
    return signer


def register(signer: Signer) -> JournalKey:
    """Publish ``signer``'s public key in the key history (once)."""
    verifier = signer.verifier
    key, _ = JournalKey.objects.get_or_create(
        verifier=str(verifier), defaults={"name": verifier.name, "key_id": verifier.id_hex})
    return key


def rotate(name: str | None = None) -> Signer:
    """A new signing key replaces the file's (atomically); its public key joins the history. The old
    private key is gone with the old file; its public key stays published."""
    signer = generate_signer(name or default_key_name())
    if any(key.name == signer.name for key in JournalKey.objects.all()):
        raise NoteError(f"a key named {signer.name} was used before: give the new key its own name")
    _write_new(key_path(), signer, exclusive=False)
    register(signer)
    _cache.pop(str(key_path()), None)
    return signer
