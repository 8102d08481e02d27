"""Fingerprints of real files and directory trees, in both digest formats, with the documented vectors."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from csm_agent import fingerprint as fp
from csm_agent.errors import SourceError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fingerprints.md"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def make_tree(root, spec):
    """spec: {relpath: bytes (file) | None (empty dir) | ("link", target) | ("exec", bytes)}."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, value in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if value is None:
            path.mkdir(exist_ok=True)
        elif isinstance(value, tuple) and value[0] == "link":
            os.symlink(value[1], path)
        elif isinstance(value, tuple) and value[0] == "exec":
            path.write_bytes(value[1])
            path.chmod(0o755)
        else:
            path.write_bytes(value)
            path.chmod(0o644)
    return root


# The vectors published in kosli-dev/cli internal/digest/digest_test.go (TestDirSha256 / TestFileSha256):
KOSLI_UPSTREAM = [
    ({"file.extra": b"this is known extra content"},
     "c71f5baef8cce289c9b7c971cf219e21b787a025af68ad6539b82634fe62819e"),
    ({}, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ({"sample.txt": b"some content."}, "388ab80164bbd9d96f132b046b8d09354f68b79a3668da7b507625cd1230dddf"),
    ({"sample.txt": b"some content. And some more."},
     "5b0e14a923d7239b0a23750a6bbfc837f71e684b8bdc2909d5ff6d90e59449c1"),
    ({"sample.yaml": b"some content. And some more."},
     "c38fbc1a99dad628142d0b7e2e05901362623d2b81e316d2cf650b08e93e0cef"),
    ({"sample.yaml": b"some content. And some more.", "nested-dir/file1": b"content1", "nested-dir/file2": b"content2"},
     "5d3c17dae9e208bbb92ee04ff8342abf77cb0959764def4af3ccfe9a2109d4a7"),
    ({"sample.yaml": b"some content. And some more.", "nested-dir2/file1": b"content1",
      "nested-dir2/file2": b"content2"},
     "db40d79b3a15b17ee9fcc2f49aa73736e0073de6b5a35c459268bb9a31e55139"),
]


NESTED = {"sample.yaml": b"some content. And some more.", "nested-dir/file1": b"content1",
          "nested-dir/file2": b"content2"}
# ... and its exclusion vectors (tree, excludePaths, digest):
KOSLI_UPSTREAM_EXCLUDES = [
    (dict(NESTED, **{"logs/file1": b"content1"}), ["logs"],
     "5d3c17dae9e208bbb92ee04ff8342abf77cb0959764def4af3ccfe9a2109d4a7"),
    (dict(NESTED, **{"logs/file1": b"content1"}), ["logs", "nested-dir/file1"],
     "2acbc9efc1f86f89086a9539244946839599b3639da7f4959744c20234cb4f40"),
    (dict(NESTED, **{"logs/file1": b"content1", "nested-dir/logs/log.txt": b"this is a log"}), ["logs", "*/logs"],
     "5d3c17dae9e208bbb92ee04ff8342abf77cb0959764def4af3ccfe9a2109d4a7"),
]


@pytest.mark.parametrize(("spec", "expected"), KOSLI_UPSTREAM)
def test_kosli_format_matches_the_kosli_cli_vectors(tmp_path, spec, expected):
    root = make_tree(tmp_path / "some-dir-name", spec)
    assert fp.fingerprint(str(root), fmt=fp.KOSLI) == expected


@pytest.mark.parametrize(("spec", "excludes", "expected"), KOSLI_UPSTREAM_EXCLUDES)
def test_kosli_format_matches_the_kosli_cli_exclusion_vectors(tmp_path, spec, excludes, expected):
    root = make_tree(tmp_path / "exclusion", spec)
    assert fp.fingerprint(str(root), excludes, fmt=fp.KOSLI) == expected


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"this is non empty", "1256d6510a6606ad61a4f6104243a291b18383b456d50205eba893b51e1807bc"),
    (b"this is non empty.", "a50afcf37a327e0715b3148c2625bc28b3e4dcdf32b6cf78c8b8fa3ac1ebfe47"),
])
def test_a_file_fingerprint_is_the_sha256_of_its_bytes_in_both_formats(tmp_path, content, expected):
    f = tmp_path / "f.bin"
    f.write_bytes(content)
    assert fp.fingerprint(str(f), fmt=fp.KOSLI) == expected
    assert fp.fingerprint(str(f), fmt=fp.CSM) == expected


def test_large_file_matches_sha256sum(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * fp.READ_SIZE + 12345))
    expected = subprocess.run(["sha256sum", str(big)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert fp.fingerprint(str(big)) == expected


def kosli_reference(root, excluded=()):
    """The kosli algorithm written out plainly from its specification (docs/fingerprints.md)."""
    parts = []

    def visit(d):
        for name in sorted(os.listdir(d), key=os.fsencode):
            path = os.path.join(d, name)
            if os.path.relpath(path, root) in excluded:
                continue
            parts.append(sha(name.encode()))
            if os.path.islink(path) and os.path.isdir(path):
                parts.append(sha(os.readlink(path).encode()))
            elif os.path.isdir(path):
                visit(path)
            else:
                parts.append(sha(Path(path).read_bytes()))

    visit(root)
    return sha("".join(parts).encode())


def test_kosli_format_symlinks_excludes_and_kosli_ignore(tmp_path):
    root = make_tree(tmp_path / "app", {
        "bin/run": ("exec", b"#!/bin/sh\necho hi\n"),
        "conf/app.yaml": b"port: 8080\n",
        "current": ("link", "conf"),            # symlink to a directory: hash of the target string
        "app.yaml": ("link", "conf/app.yaml"),   # symlink to a file: hashed like the file
        "logs/today.log": b"noise",
        "cache/a/b.pyc": b"\x00\x01",
        "src/m.pyc": b"\x00\x02",
        "src/m.py": b"print(1)\n",
        ".kosli_ignore": b"# generated files\nlogs   # runtime output\n\n**/*.pyc\n",
    })
    expected = kosli_reference(str(root), excluded={"logs", "logs/today.log", "cache/a/b.pyc", "src/m.pyc"})
    assert fp.fingerprint(str(root), fmt=fp.KOSLI) == expected
    # Command-line excludes add to the ignore file's rules.
    assert fp.fingerprint(str(root), ["logs"], fmt=fp.KOSLI) == expected


def test_kosli_exclude_of_dir_contents_keeps_the_dir_name(tmp_path):
    root = make_tree(tmp_path / "d", {"a/x": b"1", "a/y": b"2", "b": b"3"})
    # "a/**" expands to a's contents (and the uncleaned "root/a/"), so "a" itself is still hashed.
    assert fp.fingerprint(str(root), ["a/**"], fmt=fp.KOSLI) == sha((sha(b"a") + sha(b"b") + sha(b"3")).encode())
    assert fp.fingerprint(str(root), ["a"], fmt=fp.KOSLI) == sha((sha(b"b") + sha(b"3")).encode())
    # Go's * matches dot files too
    make_tree(root, {".hidden": b"h"})
    assert fp.fingerprint(str(root), ["a", "*"], fmt=fp.KOSLI) == fp.EMPTY_SHA256


def test_kosli_format_is_ambiguous_but_csm_is_not(tmp_path):
    one = make_tree(tmp_path / "one", {"a/f": b"x"})
    two = make_tree(tmp_path / "two", {"a": None, "f": b"x"})
    assert fp.fingerprint(str(one), fmt=fp.KOSLI) == fp.fingerprint(str(two), fmt=fp.KOSLI)
    assert fp.fingerprint(str(one), fmt=fp.CSM) != fp.fingerprint(str(two), fmt=fp.CSM)


def test_csm_format_records_exec_bit_and_link_targets_not_link_contents(tmp_path):
    root = make_tree(tmp_path / "r", {"run.sh": b"echo\n", "target.txt": b"v1", "link": ("link", "target.txt")})
    before = fp.fingerprint(str(root))
    (root / "run.sh").chmod(0o755)
    executable = fp.fingerprint(str(root))
    assert executable != before
    (root / "run.sh").chmod(0o640)  # only the owner-executable bit counts
    assert fp.fingerprint(str(root)) == before
    # Changing what a link points at changes the digest through the target file, not the link entry:
    # the link itself is recorded by its target string, so re-pointing it changes the digest.
    (root / "link").unlink()
    os.symlink("elsewhere.txt", root / "link")  # a dangling link is fine in csm format
    assert fp.fingerprint(str(root)) not in (before, executable)


def test_broken_symlink_fails_in_kosli_format(tmp_path):
    root = make_tree(tmp_path / "r", {"ok": b"1", "dangling": ("link", "missing")})
    with pytest.raises(SourceError, match="cannot follow symlink .*dangling"):
        fp.fingerprint(str(root), fmt=fp.KOSLI)


def unprivileged(fn):
    """Run fn() in a forked child without root's power to read anything; returns (ok, value or message)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            result = ("ok", fn())
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            result = ("error", f"{type(exc).__name__}: {exc}")
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return tuple(json.loads(data))


@pytest.fixture
def shared_tmp():
    """A temp dir an unprivileged user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="csm-agent-test-"))
    path.chmod(0o755)
    yield path
    for p in path.rglob("*"):
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(path)


def test_unreadable_file_is_a_clear_error(shared_tmp):
    root = make_tree(shared_tmp / "r", {"ok": b"1", "secret/key.pem": b"k"})
    for d in (root, root / "secret"):
        d.chmod(0o755)
    (root / "secret/key.pem").chmod(0)
    status, message = unprivileged(lambda: fp.fingerprint(str(root)))
    assert status == "error"
    assert message.startswith("FingerprintError: cannot read") and "key.pem: Permission denied" in message
    # Excluding the unreadable file makes it work.
    status, digest = unprivileged(lambda: fp.fingerprint(str(root), ["secret/*"]))
    assert status == "ok" and re.fullmatch(r"[0-9a-f]{64}", digest)


def test_unreadable_directory_is_a_clear_error(shared_tmp):
    root = make_tree(shared_tmp / "r", {"locked/f": b"1"})
    root.chmod(0o755)
    (root / "locked").chmod(0)
    status, message = unprivileged(lambda: fp.fingerprint(str(root)))
    assert status == "error"
    assert "cannot read directory" in message and "locked: Permission denied" in message


def test_unreadable_file_exit_code(tmp_path, run, monkeypatch):
    """The CLI maps a read failure to exit code 2 and prints the reason."""
    root = make_tree(tmp_path / "r", {"ok": b"1"})

    def deny(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(fp.os, "open", deny)
    code, out, err = run("fingerprint", root)
    assert (code, out) == (2, "")
    assert "cannot read" in err and "Permission denied" in err


def test_special_files_are_refused(tmp_path):
    root = make_tree(tmp_path / "r", {"f": b"1"})
    os.mkfifo(root / "pipe")
    with pytest.raises(SourceError, match="not a regular file"):
        fp.fingerprint(str(root))


def test_missing_path(run, tmp_path):
    code, _, err = run("fingerprint", tmp_path / "nope")
    assert code == 2 and "No such file or directory" in err


def test_parallel_and_serial_hashing_agree(tmp_path):
    spec = {f"d{i % 7}/f{i}.txt": os.urandom(i * 37 % 5000) for i in range(400)}
    spec["big.bin"] = os.urandom(2 * fp.READ_SIZE + 1)
    root = make_tree(tmp_path / "many", spec)
    for fmt in fp.FORMATS:
        assert fp.fingerprint(str(root), fmt=fmt, workers=1) == fp.fingerprint(str(root), fmt=fmt, workers=8)


def test_symlinked_root_is_resolved(tmp_path):
    root = make_tree(tmp_path / "real", {"f": b"1"})
    os.symlink(root, tmp_path / "alias")
    assert fp.fingerprint(str(tmp_path / "alias")) == fp.fingerprint(str(root))


def test_virtual_tree_digest_equals_the_same_tree_on_disk(tmp_path):
    spec = {"index.html": b"<h1>", "css/site.css": b"body{}", "js/app.js": b"x()", "js/vendor/lib.js": b"y()",
            ".kosli_ignore": b"js/vendor\n"}
    root = make_tree(tmp_path / "site", spec)
    fetched = []

    def fetch(rel):
        fetched.append(rel)
        return sha(spec[rel])

    for fmt in fp.FORMATS:
        fetched.clear()
        virtual = fp.virtual_dir_fingerprint({k: None for k in spec}, fmt, rules=["js/vendor"], fetch=fetch)
        assert virtual == fp.fingerprint(str(root), fmt=fmt)
        assert "js/vendor/lib.js" not in fetched  # excluded objects are never downloaded


def test_cli_fingerprint_both_formats(run, tmp_path):
    root = make_tree(tmp_path / "x", {"sample.txt": b"some content."})
    assert run("fingerprint", root, "--digest-format", "kosli")[1].strip() == KOSLI_UPSTREAM[2][1]
    code, out, _ = run("fingerprint", root)
    assert code == 0 and out.strip() == fp.fingerprint(str(root), fmt=fp.CSM)
    code, _, err = run("fingerprint", root, "--digest-format", "md5")
    assert code == 1 and "invalid choice" in err


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "csm-agent"
    assert exe.exists() or shutil.which("csm-agent")
    done = subprocess.run([str(exe) if exe.exists() else "csm-agent", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "snapshot" in done.stdout


# --- the test vectors published in docs/fingerprints.md --------------------------------------------------------

VECTOR_TREES = {
    "V1": {},
    "V2": {"hello.txt": b"hello\n"},
    "V3": {"a/f": b"x"},
    "V4": {"a": None, "f": b"x"},
    "V5": {"bin/run": ("exec", b"#!/bin/sh\n"), "etc/app.conf": b"debug = false\n", "current": ("link", "etc"),
           "app.conf": ("link", "etc/app.conf")},
    "V6": {".kosli_ignore": b"*.log\ntmp\n", "app.py": b"print(1)\n", "debug.log": b"x", "tmp/scratch": b"y"},
}


def documented_vectors():
    """Rows of the table in docs/fingerprints.md: | V1 | kosli digest | csm digest |."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        m = re.match(r"\|\s*(V\d+)\s*\|.*\|\s*`([0-9a-f]{64})`\s*\|\s*`([0-9a-f]{64})`\s*\|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


@pytest.mark.parametrize("name", sorted(VECTOR_TREES))
def test_documented_vectors(tmp_path, name):
    rows = documented_vectors()
    assert name in rows, f"{name} missing from docs/fingerprints.md"
    root = make_tree(tmp_path / name, VECTOR_TREES[name])
    kosli, csm = rows[name]
    assert fp.fingerprint(str(root), fmt=fp.KOSLI) == kosli
    assert fp.fingerprint(str(root), fmt=fp.CSM) == csm


def test_progress_bar_draws_on_a_terminal_only():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = fp.Progress("hashing x", total=4, stream=tty)
    bar.advance(2)
    bar.advance(2)
    bar.close()
    assert "hashing x [" in tty.getvalue() and "4/4" in tty.getvalue() and tty.getvalue().endswith("\n")
    pipe = io.StringIO()
    quiet = fp.Progress("hashing x", total=4, stream=pipe)
    quiet.advance(4)
    quiet.close()
    assert pipe.getvalue() == ""


def test_python_dash_m(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"this is non empty")
    done = subprocess.run([sys.executable, "-m", "csm_agent", "fingerprint", str(f)], capture_output=True, text=True)
    assert done.stdout.strip() == "1256d6510a6606ad61a4f6104243a291b18383b456d50205eba893b51e1807bc"


# kosli-dev/cli internal/digest/virtualignore_test.go: a tree reaching every glob behaviour, and rule sets
# with whether they change the digest. Our on-disk and virtual (S3) digests must agree for each, and
# the rules must have an effect exactly when kosli's do.
IGNORE_TREE = {"app.js": b"app", "app.log": b"log at the root", "notes.txt": b"notes", "logs/file1": b"c1",
               "logs/deep/file2": b"c2", "nested-dir/file1": b"n1", "nested-dir/logs/log.txt": b"nl",
               "vendor/lib/v.js": b"v", "vendor/lib/.kosli_ignore": b"nested-rules", "a/x": b"ax", "a/b/x": b"abx",
               "a/b/c/x": b"abcx"}
IGNORE_CASES = [
    ("", False), ("# nothing\n\n   \n", False), ("logs", True), ("app.js", True), ("*/logs", True),
    ("logs/*", True), ("*.log", True), ("**/*.log", True), ("**/x", True), ("a/**/x", True), ("**/logs", True),
    ("**", True), ("**.log", False), ("vendor/**/.kosli_ignore", True), ("logs/", True), ("/logs", True),
    ("./logs", True), ("nested-dir//logs", True), ("../logs", False), ("does-not-exist", False),
    ("nonexistent/**/a[", False), ("*", True), ("app.[jl]?", True), ("a/?", True), ("app\\*", False),
    ("logs\n# keep vendor\n*/logs\napp.log  # trailing comment\n", True), (".kosli_ignore", False),
    ("*ignore*", False), (".kosli*", False), ("**/.kosli_ignore", True),
]


@pytest.mark.parametrize(("rules", "has_effect"), IGNORE_CASES)
def test_kosli_ignore_rules_like_the_kosli_cli(tmp_path, rules, has_effect):
    spec = dict(IGNORE_TREE)
    if rules:
        spec[".kosli_ignore"] = rules.encode()
    root = make_tree(tmp_path / "t", spec)
    on_disk = fp.fingerprint(str(root), fmt=fp.KOSLI)
    shas = {k: sha(v) for k, v in spec.items()}
    parsed = fp.parse_ignore_rules(rules)
    assert fp.virtual_dir_fingerprint(shas, fp.KOSLI, parsed) == on_disk
    assert (fp.virtual_dir_fingerprint(shas, fp.KOSLI) != on_disk) == has_effect


@pytest.mark.parametrize("ignore", [".kosli_ignore\napp/backdoor.js", "*ignore*\napp/backdoor.js",
                                    ".kosli*\napp/backdoor.js", "**/.kosli_ignore\napp/backdoor.js",
                                    "**\napp/backdoor.js"])
def test_the_ignore_file_cannot_hide_itself(tmp_path, ignore):
    baseline = {"app/index.js": b"console.log(1)", "app/lib/util.js": b"exports.x = 1"}
    approved = make_tree(tmp_path / "approved", baseline)
    deployed = make_tree(tmp_path / "deployed", dict(baseline, **{"app/backdoor.js": b"BACKDOOR",
                                                                 ".kosli_ignore": ignore.encode()}))
    for fmt in fp.FORMATS:
        assert fp.fingerprint(str(approved), fmt=fmt) != fp.fingerprint(str(deployed), fmt=fmt)


def test_an_exclude_flag_can_drop_the_ignore_file_whose_rules_still_apply(tmp_path):
    baseline = {"app/index.js": b"console.log(1)"}
    approved = make_tree(tmp_path / "approved", baseline)
    deployed = make_tree(tmp_path / "deployed", dict(baseline, **{"app/backdoor.js": b"B",
                                                                 ".kosli_ignore": b"app/backdoor.js"}))
    assert fp.fingerprint(str(approved), [".kosli_ignore"], fmt=fp.KOSLI) == fp.fingerprint(
        str(deployed), [".kosli_ignore"], fmt=fp.KOSLI)


def test_malformed_rules_are_errors(tmp_path):
    root = make_tree(tmp_path / "t", dict(IGNORE_TREE, **{".kosli_ignore": b"["}))
    with pytest.raises(Exception, match=r"invalid exclude glob '\['"):
        fp.fingerprint(str(root), fmt=fp.KOSLI)
    for rule in ("nonexistent/a[", "a/**/[", "../a["):
        with pytest.raises(Exception, match="invalid exclude glob"):
            fp.fingerprint(str(root), [rule], fmt=fp.KOSLI)
