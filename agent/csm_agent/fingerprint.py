"""SHA-256 fingerprints of files and directories, in two directory formats (see docs/fingerprints.md).

* ``kosli`` reproduces the kosli CLI's directory digest byte for byte, so fingerprints computed by
  existing kosli pipelines match ours.
* ``csm`` (the default) hashes each entry's kind, relative path, executable bit and content or link
  target, so trees that kosli cannot tell apart (``a/f`` vs an empty ``a/`` beside ``f``) differ.

Both walk the tree first (cheap), then hash every file in a thread pool with large reads (hashlib
releases the GIL while hashing), then combine the per-entry digests in walk order.
"""

import hashlib
import io
import os
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from csm_agent import goglob
from csm_agent.errors import SourceError, UsageError

KOSLI = "kosli"
CSM = "csm"
FORMATS = (CSM, KOSLI)
IGNORE_FILE = ".kosli_ignore"
CSM_HEADER = b"csm-dir-v1\n"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

READ_SIZE = 1 << 20  # large reads: one syscall per MiB
_local = threading.local()


class FingerprintError(SourceError):
    """A path could not be fingerprinted (missing, unreadable, a broken link, a special file)."""


@dataclass(slots=True)
class Entry:
    """One walked entry: ``kind`` is d (directory), f (file), l (symlink, csm) or ld (symlink to a
    directory, kosli); ``sha`` is the content digest of a file once hashed."""

    rel: str
    name: str
    kind: str
    path: str = ""
    target: str = ""
    sha: str = ""
    executable: bool = False


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _buffer():
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(READ_SIZE)
    return buf


def hash_file(path):
    """Return (hex SHA-256 of the file's bytes, owner-executable bit). Follows symlinks."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FingerprintError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FingerprintError(f"cannot fingerprint {path}: not a regular file")
        h = hashlib.sha256()
        if st.st_size < READ_SIZE:
            # Small file: read it whole, no buffer juggling (this is most files in most trees).
            while chunk := os.read(fd, st.st_size + 1 if st.st_size else 4096):
                h.update(chunk)
        else:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            buf = _buffer()
            view = memoryview(buf)
            raw = io.FileIO(fd, closefd=False)
            while n := raw.readinto(buf):
                h.update(view[:n])
        return h.hexdigest(), bool(st.st_mode & stat.S_IXUSR)
    except OSError as exc:
        raise FingerprintError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, label, total=0, enabled=None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label, self.total, self.done, self.last = label, total, 0, 0.0
        self.lock = threading.Lock()

    def advance(self, n=1):
        if not self.enabled:
            return
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now - self.last < 0.1 and self.done != self.total:
                return
            self.last = now
            if self.total:
                width = 30
                filled = width * self.done // self.total
                bar = "#" * filled + "-" * (width - filled)
                self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            else:
                self.stream.write(f"\r{self.label} {self.done}")
            self.stream.flush()

    def close(self):
        if self.enabled and (self.done or self.total):
            self.stream.write("\n")
            self.stream.flush()


def default_workers():
    return min(16, (os.cpu_count() or 2) * 4)


def hash_entries(entries, workers=None, progress=None):
    """Fill ``sha``/``executable`` of every file entry, hashing in parallel in batches."""
    files = [e for e in entries if e.kind == "f" and not e.sha]
    if not files:
        return
    workers = workers or default_workers()
    if len(files) == 1 or workers == 1:
        for e in files:
            e.sha, e.executable = hash_file(e.path)
            if progress:
                progress.advance()
        return
    # Batches amortise the executor's per-task cost over many small files.
    batch = max(1, min(64, len(files) // (workers * 4) or 1))
    batches = [files[i : i + batch] for i in range(0, len(files), batch)]

    def run(chunk):
        for e in chunk:
            e.sha, e.executable = hash_file(e.path)
        if progress:
            progress.advance(len(chunk))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        for _ in pool.map(run, batches):
            pass


def parse_ignore_rules(text):
    """The kosli ``.kosli_ignore`` syntax: one glob per line, ``#`` starts a comment."""
    rules = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip(" ").strip()
        if line:
            rules.append(line)
    return rules


def excluded_paths(fs, root, excludes):
    """Every path (as Go would spell it) that one of the exclude globs selects."""
    out = set()
    for pattern in excludes:
        try:
            out.update(goglob.expand(fs, goglob.join(root, pattern)))
        except goglob.BadPattern:
            raise UsageError(f"invalid exclude glob {pattern!r}") from None
        except OSError as exc:
            raise FingerprintError(str(exc)) from exc
    return out


def _walk_real(root, excluded, fmt):
    """Walk ``root`` like Go's filepath.WalkDir (names in byte order, depth first, root skipped)."""
    entries = []

    def visit(directory, rel_dir):
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda d: os.fsencode(d.name))
        except OSError as exc:
            raise FingerprintError(f"cannot read directory {directory}: {exc.strerror}") from exc
        for d in children:
            path = goglob.join(directory, d.name)
            rel = f"{rel_dir}/{d.name}" if rel_dir else d.name
            if path in excluded:
                continue
            try:
                is_link = d.is_symlink()
                is_dir = not is_link and d.is_dir(follow_symlinks=False)
                is_file = not is_link and d.is_file(follow_symlinks=False)
            except OSError as exc:
                raise FingerprintError(f"cannot stat {path}: {exc.strerror}") from exc
            if is_link:
                target = os.readlink(path)
                if fmt == CSM:
                    entries.append(Entry(rel, d.name, "l", path, target))
                    continue
                try:
                    st = os.stat(path)
                except OSError as exc:
                    raise FingerprintError(f"cannot follow symlink {path} -> {target}: {exc.strerror}") from exc
                if stat.S_ISDIR(st.st_mode):
                    entries.append(Entry(rel, d.name, "ld", path, target))
                elif stat.S_ISREG(st.st_mode):
                    entries.append(Entry(rel, d.name, "f", path))
                else:
                    raise FingerprintError(f"cannot fingerprint {path}: links to a special file")
            elif is_dir:
                entries.append(Entry(rel, d.name, "d", path))
                visit(path, rel)
            elif is_file:
                entries.append(Entry(rel, d.name, "f", path))
            else:
                raise FingerprintError(f"cannot fingerprint {path}: not a regular file, directory or symlink")

    visit(root, "")
    return entries


def combine(entries, fmt):
    """The directory digest of already-hashed entries, in walk order."""
    h = hashlib.sha256()
    if fmt == KOSLI:
        for e in entries:
            h.update(sha256_hex(os.fsencode(e.name)).encode())
            if e.kind == "f":
                h.update(e.sha.encode())
            elif e.kind == "ld":
                h.update(sha256_hex(os.fsencode(e.target)).encode())
        return h.hexdigest()
    h.update(CSM_HEADER)
    for e in entries:
        if e.kind == "f":
            mode, value = ("755" if e.executable else "644"), e.sha
        elif e.kind == "l":
            mode, value = "-", sha256_hex(os.fsencode(e.target))
        else:
            mode, value = "-", "-"
        h.update(b"%s\0%s\0%s\0%s\n" % (e.kind.encode(), mode.encode(), os.fsencode(e.rel), value.encode()))
    return h.hexdigest()


def read_ignore_rules(root):
    """The rules of the root ``.kosli_ignore`` (a regular file; a directory of that name is not one)."""
    ignore_file = goglob.join(root, IGNORE_FILE)
    if not os.path.isfile(ignore_file):
        return []
    try:
        with open(ignore_file, encoding="utf-8", errors="surrogateescape") as f:
            return parse_ignore_rules(f.read())
    except OSError as exc:
        raise FingerprintError(f"cannot read {ignore_file}: {exc.strerror}") from exc


def excluded_by(fs, root, excludes, rules):
    """Paths excluded by the flags plus those excluded by the ignore file's rules.

    As in the kosli CLI, the ignore file's own rules can never exclude the root ignore file itself:
    its content stays in the digest, so a tree cannot add files and list them (and itself) to keep an
    approved fingerprint. An explicit ``--exclude .kosli_ignore`` flag still excludes it.
    """
    excluded = excluded_paths(fs, root, excludes) if excludes else set()
    if rules:
        excluded |= excluded_paths(fs, root, rules) - {goglob.join(root, IGNORE_FILE)}
    return excluded


def dir_fingerprint(path, excludes=(), fmt=CSM, workers=None, progress=True):
    root = goglob.clean(path)
    excluded = excluded_by(goglob.RealFS(), root, list(excludes), read_ignore_rules(root))
    entries = _walk_real(root, excluded, fmt)
    files = sum(1 for e in entries if e.kind == "f")
    bar = Progress(f"hashing {path}", files, enabled=None if progress and files >= 1000 else False)
    try:
        hash_entries(entries, workers, bar)
    finally:
        bar.close()
    return combine(entries, fmt)


def fingerprint(path, excludes=(), fmt=CSM, workers=None, progress=True):
    """SHA-256 of a file's bytes, or the directory digest of ``path`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown digest format {fmt!r} (choose csm or kosli)")
    try:
        # A symlinked root is resolved: the kosli CLI would walk nothing and return the empty digest.
        st = os.stat(path)
    except OSError as exc:
        raise FingerprintError(f"cannot fingerprint {path}: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        real = path if not os.path.islink(path) else os.path.realpath(path)
        return dir_fingerprint(real, excludes, fmt, workers, progress)
    if stat.S_ISREG(st.st_mode):
        return hash_file(path)[0]
    raise FingerprintError(f"cannot fingerprint {path}: not a regular file or directory")


def virtual_dir_fingerprint(files, fmt=CSM, rules=(), fetch=None, workers=None):
    """The directory digest of a virtual tree ``{relative path: sha256 or None}`` (an S3 bucket).

    ``rules`` are exclude globs (the bucket's .kosli_ignore); ``fetch(rel) -> sha256`` is called, in
    parallel, for every file that is not excluded and has no digest yet, so excluded objects are never
    downloaded. Gives the same digest as ``dir_fingerprint`` of the same tree on disk.
    """
    root = "/bucket"
    try:
        vfs = goglob.VirtualFS(root, files)
    except ValueError as exc:
        raise FingerprintError(f"cannot lay the objects out as a tree: {exc}") from exc
    excluded = excluded_by(vfs, root, (), list(rules))
    entries = []

    def visit(directory, rel_dir):
        for name in vfs.listdir(directory):
            path = goglob.join(directory, name)
            if path in excluded:
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if vfs.is_dir(path):
                entries.append(Entry(rel, name, "d", path))
                visit(path, rel)
            else:
                entries.append(Entry(rel, name, "f", path, sha=files[rel] or ""))

    visit(root, "")
    missing = [e for e in entries if e.kind == "f" and not e.sha]
    if missing:
        if fetch is None:
            raise FingerprintError("no content digest for " + missing[0].rel)
        with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
            for e, sha in zip(missing, pool.map(lambda e: fetch(e.rel), missing), strict=True):
                e.sha = sha
    return combine(entries, fmt)
