"""Inspection of uploaded archives without extracting them to disk.

``read_attachment(upload)`` turns the ``attachment_file`` of an attestation into a list of
``Member`` (sanitized name, spooled bytes, SHA-256, size). A tar or tar.gz (what the kosli CLI sends) is
read as a stream, entry by entry, with limits on the number of entries and on the expanded size taken
from the entry headers *before* any entry is read (a zip bomb is rejected without inflating it);
links, devices and names that climb out of the archive (``../``, absolute paths) are rejected. Any other
file is one member under its sanitized upload name.
"""

import hashlib
import re
import tarfile
import tempfile
from dataclasses import dataclass

from django.conf import settings

CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._+@=-]")


class ArchiveError(Exception):
    """A rejected upload: ``status`` 400 (bad name / bad archive) or 413 (over a limit)."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid"):
        self.message = message
        self.status = status
        self.code = code
        super().__init__(message)


@dataclass
class Member:
    name: str
    file: object
    sha256: str
    size: int

    def read(self) -> bytes:
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data


def sanitize_name(raw: str) -> str:
    """A safe relative path: no absolute paths, no ``..``, only ``[A-Za-z0-9._+@=-]`` in each part."""
    name = (raw or "").replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"file name {raw!r} is an absolute path (path traversal)")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise ArchiveError(f"file name {raw!r} climbs out of the archive (path traversal)")
    clean = [_UNSAFE.sub("_", part)[:200] for part in parts]
    clean = ["_" + part if part.startswith("..") else part for part in clean]
    if not clean:
        raise ArchiveError(f"file name {raw!r} is empty")
    return "/".join(clean)[:1000]


def sanitize_upload_name(raw: str) -> str:
    """An uploaded file's own name: its last path part only, sanitized."""
    base = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    return sanitize_name(base) if base not in ("", ".", "..") else "attachment"


def _spool(source, limit: int, label: str):
    spooled = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115 - returned to the caller
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > limit:
            spooled.close()
            raise ArchiveError(f"{label} is larger than the limit of {limit} bytes", 413, "too_large")
        digest.update(chunk)
        spooled.write(chunk)
    spooled.seek(0)
    return spooled, digest.hexdigest(), size


def _looks_like_archive(fileobj) -> bool:
    fileobj.seek(0)
    head = fileobj.read(512)
    fileobj.seek(0)
    return head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


def read_tar(fileobj) -> list[Member]:
    max_entries = settings.CSM_EVIDENCE_MAX_ARCHIVE_ENTRIES
    max_expanded = settings.CSM_EVIDENCE_MAX_EXPANDED_BYTES
    max_file = settings.CSM_EVIDENCE_MAX_FILE_BYTES
    members: list[Member] = []
    seen: set[str] = set()
    expanded = 0
    entries = 0
    fileobj.seek(0)
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as archive:
            for info in archive:
                entries += 1
                if entries > max_entries:
                    raise ArchiveError(f"the archive has more than {max_entries} entries", 413, "too_large")
                if info.isdir():  # nothing is extracted, so a directory entry carries nothing to check
                    continue
                name = sanitize_name(info.name)
                if not info.isfile():
                    raise ArchiveError(f"archive entry {info.name!r} is a link or special file; only regular "
                                       "files are accepted")
                expanded += info.size
                if expanded > max_expanded:
                    raise ArchiveError(f"the archive expands to more than {max_expanded} bytes (zip bomb?)", 413,
                                       "too_large")
                if info.size > max_file:
                    raise ArchiveError(f"archive entry {name!r} is larger than the limit of {max_file} bytes", 413,
                                       "too_large")
                if name in seen:
                    raise ArchiveError(f"archive entry {name!r} appears twice")
                seen.add(name)
                source = archive.extractfile(info)
                spooled, sha256, size = _spool(source, max_file, f"archive entry {name!r}")
                members.append(Member(name, spooled, sha256, size))
    except (tarfile.TarError, EOFError, OSError) as exc:
        for member in members:
            member.file.close()
        raise ArchiveError(f"attachment_file is not a readable tar archive: {exc}") from None
    except ArchiveError:
        for member in members:
            member.file.close()
        raise
    return members


def read_attachment(upload) -> list[Member]:
    """The files of an uploaded attachment: the entries of a tar / tar.gz, or the file itself."""
    if _looks_like_archive(upload):
        head = upload.read(2)
        upload.seek(0)
        try:
            return read_tar(upload)
        except ArchiveError as exc:
            # A plain .gz that is not a tar is kept as one file; a real tar with a problem is rejected.
            if head == b"\x1f\x8b" and "not a readable tar archive" in exc.message:
                pass
            else:
                raise
    name = sanitize_upload_name(getattr(upload, "name", "") or "attachment")
    upload.seek(0)
    streamed = getattr(upload, "sha256", None)  # hashed while it arrived (api/uploads.py)
    if streamed and upload.size <= settings.CSM_EVIDENCE_MAX_FILE_BYTES:
        return [Member(name, upload, streamed, upload.size)]
    spooled, sha256, size = _spool(upload, settings.CSM_EVIDENCE_MAX_FILE_BYTES, f"file {name!r}")
    return [Member(name, spooled, sha256, size)]
