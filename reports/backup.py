"""What scripts/backup and scripts/restore ask of Django (``manage.py backup_manifest``): where the state
lives, the backup's manifest, its checksums, and the check that a restored database holds the journals the
backup recorded (docs/operations.md, "Backup and restore").

A backup directory holds ``database.dump`` (``pg_dump -Fc``) or ``database.sqlite3``, ``evidence/`` (the
content-addressed evidence files, when they live on the filesystem) and ``manifest.json``::

    {"format": "csm-backup/1", "created_at", "csm": {"commit"}, "database": {"engine", "name"},
     "evidence": {"backend", "location", "copied"}, "migrations": {app: latest applied migration},
     "orgs": {slug: {"head": {"index", "hash"}, "checkpoint": {...}, "checkpoints": n}},
     "files": {relative path: {"sha256", "size"}}}

The journal heads are read *before* the database is dumped (``begin``), so the dump holds every leaf and
checkpoint the manifest names — and perhaps a few appended in between, which the check allows: a restored
journal must contain the recorded head leaf with the recorded hash and the recorded checkpoint, and be at
or past them. It lives on the top floor because it reads the journal, the evidence store and every org.
"""

import datetime
import hashlib
import json
import re
import shlex
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Exists, OuterRef
from django.utils import timezone

from evidence.models import AttestationEvidence, EvidenceFile
from evidence.storage import evidence_storage
from journal import selectors as journal_selectors
from tenants.models import Org

FORMAT = "csm-backup/1"
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024
HEX64 = re.compile(r"[0-9a-f]{64}")
# libpq connection parameters a DATABASE_URL's query string may carry (the rest are psycopg/Django options).
LIBPQ_OPTIONS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "application_name",
                 "options", "target_session_attrs", "channel_binding", "gssencmode", "passfile"}


class BackupError(Exception):
    """A backup directory that cannot be used (no manifest, an unknown format)."""


def shell_environment() -> dict[str, str]:
    """Where the state lives, as shell variables for scripts/backup and scripts/restore: the database
    (a libpq connection string without the password, which goes to PGPASSWORD, or the SQLite file) and the
    evidence store (a directory, or the bucket that is backed up by its own means)."""
    db = settings.DATABASES["default"]
    out = {"CSM_BACKUP_ENGINE": "postgresql" if connection.vendor == "postgresql" else connection.vendor}
    if connection.vendor == "postgresql":
        params = {"host": db.get("HOST"), "port": db.get("PORT"), "user": db.get("USER"), "dbname": db["NAME"]}
        params.update({k: v for k, v in (db.get("OPTIONS") or {}).items() if k in LIBPQ_OPTIONS})
        out["CSM_BACKUP_PG_DSN"] = " ".join(f"{k}='{_libpq_quote(str(v))}'" for k, v in params.items() if v)
        out["PGPASSWORD"] = db.get("PASSWORD") or ""
    elif connection.vendor == "sqlite":
        out["CSM_BACKUP_SQLITE_PATH"] = str(db["NAME"])
    storage = evidence_storage()
    if isinstance(storage, FileSystemStorage):
        out["CSM_BACKUP_EVIDENCE_ROOT"] = str(storage.location)
    else:
        out["CSM_BACKUP_EVIDENCE_ROOT"] = ""
        out["CSM_BACKUP_EVIDENCE_REMOTE"] = _remote_location(storage)
    return out


def shell_lines(variables: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def _libpq_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _remote_location(storage) -> str:
    bucket = getattr(storage, "bucket_name", "") or ""
    prefix = getattr(storage, "location", "") or ""
    return f"{type(storage).__module__}.{type(storage).__name__} bucket {bucket!r} prefix {prefix!r}"


def _commit() -> str:
    """The git commit csm runs from, when it runs from a clone (else empty)."""
    try:
        # A fixed argument list (no shell); git from PATH, as an operator runs it.
        run = subprocess.run(["git", "-C", str(settings.BASE_DIR), "rev-parse", "HEAD"],  # noqa: S603,S607
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return run.stdout.strip() if run.returncode == 0 else ""


def latest_migrations() -> dict[str, str]:
    """The latest migration applied to the database, per app (by name: Django names them in order)."""
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        if name > latest.get(app, ""):
            latest[app] = name
    return dict(sorted(latest.items()))


def journal_heads() -> dict[str, dict]:
    return {org.slug: journal_selectors.journal_state(org) for org in Org.objects.order_by("slug")}


def begin_manifest() -> dict:
    """The manifest's state part, read before the database is dumped."""
    variables = shell_environment()
    storage = evidence_storage()
    filesystem = isinstance(storage, FileSystemStorage)
    return {
        "format": FORMAT,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "csm": {"commit": _commit()},
        "database": {"engine": variables["CSM_BACKUP_ENGINE"], "name": str(settings.DATABASES["default"]["NAME"])},
        "evidence": {
            "backend": "filesystem" if filesystem else "remote",
            "location": str(storage.location) if filesystem else _remote_location(storage),
            "copied": filesystem,
            **({} if filesystem else {"note": "not copied: back the bucket up with its own versioning or "
                                              "replication (docs/operations.md)"}),
        },
        "migrations": latest_migrations(),
        "orgs": journal_heads(),
        "files": {},
    }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _backup_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST)


def read_manifest(directory: Path) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{directory / MANIFEST} does not exist: not a csm backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{directory / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{directory / MANIFEST} is not a {FORMAT} manifest")
    return manifest


def write_manifest(directory: Path, manifest: dict) -> None:
    path = directory / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def seal(directory: Path) -> tuple[dict, list[str]]:
    """Record the SHA-256 and size of every file of the backup in its manifest; returns the manifest and
    the evidence files left out.

    An evidence file is stored under its own SHA-256 (evidence/storage.py) and written before the row that
    refers to it commits, so a copy whose bytes do not hash to its name was caught mid-write, after the dump:
    no row of the dump refers to it, and restoring it would plant a truncated file where the next upload of
    those bytes finds it already "stored". It is left out of the backup."""
    manifest = read_manifest(directory)
    files, dropped = {}, []
    for path in _backup_files(directory):
        name = path.relative_to(directory).as_posix()
        digest = sha256_of(path)
        if name.startswith("evidence/") and HEX64.fullmatch(path.name) and path.name != digest:
            path.unlink()
            dropped.append(name)
            continue
        files[name] = {"sha256": digest, "size": path.stat().st_size}
    manifest["files"] = files
    write_manifest(directory, manifest)
    return manifest, dropped


def verify_files(directory: Path) -> list[str]:
    """Every file the manifest lists, with its SHA-256 and size, and no other: the problems found."""
    manifest = read_manifest(directory)
    problems = []
    listed = manifest.get("files") or {}
    if not listed:
        problems.append("the manifest lists no files (the backup did not finish)")
    for name, expected in sorted(listed.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != expected["size"] or sha256_of(path) != expected["sha256"]:
            problems.append(f"{name}: SHA-256 does not match the manifest")
    present = {p.relative_to(directory).as_posix() for p in _backup_files(directory)}
    problems.extend(f"{name}: not in the manifest" for name in sorted(present - set(listed)))
    return problems


def database_is_empty() -> bool:
    """No table in the database csm is configured with (a fresh database to restore into)."""
    with connection.cursor() as cursor:
        return not connection.introspection.table_names(cursor)


def check_restored(manifest: dict) -> list[str]:
    """Compare the restored database with the manifest: every recorded migration applied, and each org's
    journal holding the recorded head leaf (index and hash) and latest checkpoint (size, root, signed note)
    and at least as many checkpoints; and, when the backup copied the evidence files, every evidence file a
    row says is stored present in the evidence store. Returns the problems, each naming its org."""
    problems = []
    applied = set(MigrationRecorder(connection).applied_migrations())
    problems.extend(f"migration {app}.{name} of the backup is not applied"
                    for app, name in sorted((manifest.get("migrations") or {}).items()) if (app, name) not in applied)
    orgs = {org.slug: org for org in Org.objects.all()}
    for slug, recorded in sorted((manifest.get("orgs") or {}).items()):
        org = orgs.get(slug)
        if org is None:
            problems.append(f"org {slug}: missing from the restored database")
            continue
        state = journal_selectors.journal_state(org)
        head, now = recorded["head"], state["head"]
        if now["index"] < head["index"]:
            problems.append(f"org {slug}: journal head is #{now['index']}, the backup recorded #{head['index']}")
        elif head["index"] and journal_selectors.leaf_hash_at(org, head["index"]) != head["hash"]:
            problems.append(f"org {slug}: journal leaf #{head['index']} does not have the recorded hash "
                            f"{head['hash']}")
        checkpoint = recorded.get("checkpoint")
        if checkpoint and not journal_selectors.has_checkpoint(org, checkpoint["size"], checkpoint["root_hash"],
                                                               checkpoint["note"]):
            problems.append(f"org {slug}: the recorded checkpoint of {checkpoint['size']} leaves (root "
                            f"{checkpoint['root_hash']}) is missing or differs")
        if state["checkpoints"] < recorded.get("checkpoints", 0):
            problems.append(f"org {slug}: {state['checkpoints']} checkpoint(s), the backup recorded "
                            f"{recorded['checkpoints']}")
        if (manifest.get("evidence") or {}).get("copied"):
            problems.extend(missing_evidence(org))
    return problems


def missing_evidence(org, now: datetime.datetime | None = None) -> list[str]:
    """The org's evidence files that a row says are stored (not dropped by retention) but the evidence
    store lacks. One exception is not a problem: a file the org's retention was deleting while the backup
    ran (its bytes go before its row's ``dropped_at`` commits, so the dump may still call it stored) — the
    next retention run marks it dropped. Every other missing file is named."""
    store = evidence_storage()
    rows = EvidenceFile.objects.filter(org=org, dropped_at__isnull=True)
    days = org.evidence_file_retention_days
    if days:
        cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
        newer = AttestationEvidence.objects.filter(evidence_file=OuterRef("pk"), attestation__created_at__gte=cutoff)
        due = rows.filter(created_at__lt=cutoff).exclude(Exists(newer))
        rows = rows.exclude(pk__in=due.values("pk"))
    return [f"org {org.slug}: evidence file {name or sha256} ({sha256}) is missing from the evidence store"
            for name, sha256, stored in rows.order_by("pk").values_list("original_name", "sha256", "storage_name")
            .iterator(chunk_size=2000) if not store.exists(stored)]
