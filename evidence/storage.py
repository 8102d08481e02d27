"""Content-addressed, per-org storage of evidence files, verified on every read.

A file lives at ``<org id>/<sha256[:2]>/<sha256>`` in the ``evidence`` storage (``STORAGES["evidence"]``
in settings: the filesystem under ``CSM_EVIDENCE_ROOT`` by default, S3-compatible storage through
django-storages when ``CSM_EVIDENCE_STORAGE_BACKEND=storages.backends.s3.S3Storage``). The org id in the
path keeps orgs apart: identical bytes uploaded by two orgs are stored twice, never shared.

Reads re-hash the stored bytes before serving anything; a mismatch raises ``EvidenceCorrupted`` and no
byte of the corrupted file is sent.
"""

import hashlib
import tempfile

from django.core.files import File
from django.core.files.storage import storages

CHUNK = 1024 * 1024


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
    if not storage.exists(name):
        fileobj.seek(0)
        saved = storage.save(name, File(fileobj, name=sha256))
        if saved != name:  # a concurrent upload of the same bytes won the race; keep one copy
            storage.delete(saved)
    return name


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
