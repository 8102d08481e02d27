"""Content-addressed, per-org storage of evidence files, verified on every read.

A file lives at ``<org id>/<sha256[:2]>/<sha256>`` in the ``evidence`` storage (``STORAGES["evidence"]``
in settings: the filesystem under ``CSM_EVIDENCE_ROOT`` by default, S3-compatible storage through
django-storages when ``CSM_EVIDENCE_STORAGE_BACKEND=storages.backends.s3.S3Storage``). The org id in the
path keeps orgs apart: identical bytes uploaded by two orgs are stored twice, never shared.

Reads re-hash the stored bytes before serving anything; a mismatch raises ``EvidenceCorrupted`` and no
byte of the corrupted file is sent.

Writes to the filesystem go to a temporary name beside the final one and are renamed into place once
complete and synced, so the content-addressed name holds the whole file or nothing: a full disk, a quota
or a crash mid-write never leaves a half-written file under a name a later upload of the same bytes
would take for stored. A full store (ENOSPC, EDQUOT, EFBIG) is ``EvidenceStoreFull``: 507, nothing recorded.
"""

import errno
import hashlib
import os
import shutil
import tempfile
import uuid

from django.core.files import File
from django.core.files.storage import storages

from csm.errors import ServiceError

CHUNK = 1024 * 1024
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class EvidenceStoreFull(ServiceError):
    """The evidence store has no room for a file: the upload is refused (HTTP 507) and, the write being
    one transaction, nothing of it is recorded; the same upload succeeds once space is freed."""

    def __init__(self):
        super().__init__("The evidence store is full: nothing was stored or recorded. Send the same request "
                         "again once the operator has freed space.", "attachment_file", 507, "insufficient_storage")


class EvidenceCorrupted(Exception):
    """The stored bytes no longer hash to the SHA-256 they were stored under."""

    def __init__(self, sha256: str, actual: str | None):
        self.sha256 = sha256
        self.actual = actual
        what = "is missing" if actual is None else f"hashes to {actual}"
        super().__init__(f"evidence file {sha256} failed verification: the stored copy {what}")


def evidence_storage():
    return storages["evidence"]


def storage_name(org, sha256: str) -> str:
    return f"{org.pk}/{sha256[:2]}/{sha256}"


def hash_file(fileobj) -> tuple[str, int]:
    """SHA-256 and size of a seekable file, leaving it rewound."""
    fileobj.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := fileobj.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    fileobj.seek(0)
    return digest.hexdigest(), size


def put(org, sha256: str, fileobj) -> str:
    """Store ``fileobj`` (already hashed to ``sha256``) unless this org already holds those bytes."""
    storage = evidence_storage()
    name = storage_name(org, sha256)
    if storage.exists(name):
        return name
    fileobj.seek(0)
    try:
        try:
            path = storage.path(name)
        except NotImplementedError:  # remote storage (S3 & co.): an object appears whole or not at all
            saved = storage.save(name, File(fileobj, name=sha256))
            if saved != name:  # a concurrent upload of the same bytes won the race; keep one copy
                storage.delete(saved)
        else:
            _write_whole(path, fileobj)
    except OSError as error:
        if error.errno in NO_SPACE:
            raise EvidenceStoreFull() from error
        raise
    return name


def _write_whole(path: str, fileobj) -> None:
    """Write ``fileobj`` to ``path`` atomically: into a temporary file in the same directory, synced, then
    renamed over ``path`` (a concurrent upload of the same bytes renames identical bytes: harmless). On any
    failure the temporary file is removed; only a crash of the process itself can leave one behind, under a
    ``.partial`` name no evidence row ever points to."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, "xb") as out:
            shutil.copyfileobj(fileobj, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise


def open_verified(evidence_file):
    """A temporary file holding the verified bytes of ``evidence_file`` (rewound), or EvidenceCorrupted."""
    storage = evidence_storage()
    try:
        source = storage.open(evidence_file.storage_name, "rb")
    except (FileNotFoundError, OSError):
        raise EvidenceCorrupted(evidence_file.sha256, None) from None
    copy = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115 - returned to the caller
    digest = hashlib.sha256()
    with source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            copy.write(chunk)
    actual = digest.hexdigest()
    if actual != evidence_file.sha256:
        copy.close()
        raise EvidenceCorrupted(evidence_file.sha256, actual)
    copy.seek(0)
    return copy


def read_verified(evidence_file) -> bytes:
    with open_verified(evidence_file) as handle:
        return handle.read()
