"""Go's path handling, reproduced so exclude globs select exactly what the kosli CLI selects.

The kosli CLI expands every exclude glob with ``filepathx.Glob`` (Go's ``filepath.Glob`` plus ``**``)
on the joined path ``filepath.Join(root, glob)`` and skips a walked path when it is *string-equal* to
one of the expanded paths. The details matter for byte-for-byte compatible digests: ``*`` also matches
dot files, ``[^...]`` negates a class, ``a/**`` excludes a's contents but not ``a`` itself (the
expansion keeps the uncleaned ``root/a/``), and a glob that matches a directory also lists everything
under it. The functions here take a small filesystem object (``RealFS`` or ``VirtualFS``) so the
same rules apply to a directory on disk and to an S3 bucket's keys.
"""

import os
import re
import stat

SEP = "/"
_META = set("*?[\\")


class BadPattern(ValueError):
    """A glob Go would reject with ErrBadPattern."""


def clean(path):
    """Go's ``filepath.Clean`` for '/'-separated paths."""
    if path == "":
        return "."
    rooted = path.startswith(SEP)
    parts = []
    for part in path.split(SEP):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = SEP.join(parts)
    if rooted:
        return SEP + out
    return out or "."


def join(*elems):
    """Go's ``filepath.Join``: empty elements are ignored, the result is cleaned."""
    elems = [e for e in elems if e != ""]
    if not elems:
        return ""
    return clean(SEP.join(elems))


def split(path):
    """Go's ``filepath.Split``: dir keeps its trailing separator."""
    i = path.rfind(SEP)
    return path[: i + 1], path[i + 1 :]


def has_meta(path):
    return any(c in _META for c in path)


def _translate(pattern):
    """Translate a Go ``filepath.Match`` pattern (no separators matched by wildcards) to a regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                raise BadPattern(pattern)
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            negate = i < n and pattern[i] == "^"
            if negate:
                i += 1
            ranges = []
            first = True
            while True:
                if i >= n:
                    raise BadPattern(pattern)
                if pattern[i] == "]" and not first:
                    break
                first = False
                lo, i = _class_char(pattern, i)
                hi = lo
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                    if hi < lo:
                        raise BadPattern(pattern)
                ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
            out.append("[" + ("^/" if negate else "") + "".join(ranges) + "]")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_char(pattern, i):
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern(pattern)
    return pattern[i], i + 1


_compiled = {}


def match(pattern, name):
    """Go's ``filepath.Match`` (the whole name must match)."""
    rx = _compiled.get(pattern)
    if rx is None:
        rx = _compiled[pattern] = re.compile(r"(?s:" + _translate(pattern) + r")\Z")
    return rx.match(name) is not None


class RealFS:
    """The local filesystem, as Go's os package sees it."""

    def lexists(self, path):
        try:
            os.lstat(path)
        except OSError:
            return False
        return True

    def is_dir(self, path):
        """Follows symlinks, like os.Stat(...).IsDir()."""
        try:
            return stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            return False

    def is_real_dir(self, path):
        """Does not follow symlinks, like os.Lstat(...).IsDir()."""
        try:
            return stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            return False

    def listdir(self, path):
        return sorted(os.listdir(path), key=os.fsencode)


class VirtualFS:
    """A read-only tree of files given by their '/'-separated paths under ``root`` (an S3 bucket's keys)."""

    def __init__(self, root, rel_paths):
        self.root = root
        self.files = set()
        self.children = {root: set()}
        for rel in rel_paths:
            parts = rel.split(SEP)
            for i in range(len(parts)):
                parent = join(root, *parts[:i])
                if parent in self.files:
                    raise ValueError(f"{SEP.join(parts[:i])!r} is both a file and a directory")
                self.children.setdefault(parent, set()).add(parts[i])
            full = join(root, rel)
            if full in self.children:
                raise ValueError(f"{rel!r} is both a file and a directory")
            self.files.add(full)

    def _norm(self, path):
        """Resolve a path like the OS would: repeated slashes collapse, a trailing slash needs a directory."""
        collapsed = re.sub("/{2,}", SEP, path)
        if collapsed.endswith(SEP) and collapsed != SEP:
            stripped = collapsed.rstrip(SEP)
            return stripped if stripped in self.children else None
        return collapsed

    def lexists(self, path):
        p = self._norm(path)
        return p is not None and (p in self.files or p in self.children)

    def is_dir(self, path):
        p = self._norm(path)
        return p is not None and p in self.children

    is_real_dir = is_dir

    def listdir(self, path):
        p = self._norm(path)
        if p is None or p not in self.children:
            raise NotADirectoryError(path)
        return sorted(self.children[p], key=os.fsencode)


def glob(fs, pattern):
    """Go's ``filepath.Glob`` over ``fs``."""
    _translate(pattern)  # Go validates the whole pattern first (raises BadPattern)
    if not has_meta(pattern):
        return [pattern] if fs.lexists(pattern) else []
    directory, file = split(pattern)
    directory = _clean_glob_path(directory)
    if not has_meta(directory):
        return _glob_in(fs, directory, file, [])
    if directory == pattern:
        raise BadPattern(pattern)
    matches = []
    for d in glob(fs, directory):
        matches = _glob_in(fs, d, file, matches)
    return matches


def _clean_glob_path(path):
    if path == "":
        return "."
    if path == SEP:
        return path
    return path[:-1]


def _glob_in(fs, directory, pattern, matches):
    if not fs.is_dir(directory):
        return matches
    try:
        names = fs.listdir(directory)
    except OSError:
        return matches
    for name in names:
        if match(pattern, name):
            matches.append(join(directory, name))
    return matches


def walk_paths(fs, root):
    """Go's ``filepath.Walk`` paths (lexical order, symlinks not followed, root given verbatim)."""
    out = [root]
    if fs.is_real_dir(root):
        try:
            names = fs.listdir(root)
        except OSError as exc:
            raise OSError(f"cannot list {root}: {exc.strerror or exc}") from exc
        for name in names:
            out.extend(walk_paths(fs, join(root, name)))
    return out


def expand(fs, pattern):
    """``filepathx.Glob``: split on ``**``, glob each part, then every match and all under it."""
    matches = [""]
    for part in pattern.split("**"):
        hits, seen = [], set()
        for m in matches:
            for path in glob(fs, m + part):
                for p in walk_paths(fs, path):
                    if p not in seen:
                        seen.add(p)
                        hits.append(p)
        matches = hits
    return matches
