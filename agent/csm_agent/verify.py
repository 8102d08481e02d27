"""``csm-verify``: check csm's journal from outside the server, with nothing but the verifier key.

Sub-commands: ``checkpoint`` (a signed checkpoint against pinned keys, optionally k-of-n witness
cosignatures), ``inclusion`` and ``consistency`` (RFC 9162 proofs from files or a server), ``report`` (a
report's JSON export or PDF: every cited record proven in a signed checkpoint), ``package`` (an evidence
audit package), ``monitor`` (a witness that keeps the last checkpoint per org and fails loudly on a rewritten
history) and ``witness-key`` (a cosigning key for ``monitor --cosign-key``).

Exit codes: 0 verified, 1 verification failed, 2 usage or input error (including a server that could not be
asked). No Django, no database: the standard library and ``cryptography``.
"""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import zlib

from csm_agent import __version__
from csm_agent.tlog import (
    Checkpoint,
    InputError,
    PublicKey,
    VerificationFailed,
    check_consistency,
    check_inclusion,
    decode_hashes,
    leaf_hash,
    new_witness_key,
    parse_public_key,
    parse_witness_key,
    verified_checkpoint,
    verify_cosignatures,
)
from csm_agent.witness import FetchError, Inconsistent, Journal, witness

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
BUNDLE_FORMAT = "csm-journal-proofs/1"
MAX_INPUT = 512 * 1024 * 1024

EPILOG = "exit codes: 0 verified, 1 verification failed, 2 usage or input error (or the server could not be asked)"


# --- inputs ----------------------------------------------------------------------------------------------

def read_bytes(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read(MAX_INPUT)
        with open(path, "rb") as handle:
            return handle.read(MAX_INPUT)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def read_text(path: str) -> str:
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None


def read_json(path: str):
    try:
        return json.loads(read_bytes(path))
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from None


def pinned_keys(args) -> list[PublicKey]:
    """The verifier keys the user pinned (``--key`` and every line of each ``--key-file``)."""
    texts = list(args.key or [])
    for path in args.key_file or []:
        texts += [line for line in read_text(path).splitlines() if line.strip() and not line.startswith("#")]
    keys = [parse_public_key(text) for text in texts]
    if not keys:
        raise InputError("pin the csm journal's verifier key with --key or --key-file")
    return keys


def witness_keys(args) -> tuple[list[PublicKey], int]:
    keys = [parse_public_key(text) for text in args.witness_key or []]
    for key in keys:
        if key.alg != 0x04:
            raise InputError(f"--witness-key {key.name} is not a cosignature (0x04) key")
    quorum = len(keys) if args.quorum is None else args.quorum
    if not 0 <= quorum <= len(keys):
        raise InputError(f"--quorum {quorum} needs at least that many --witness-key (given {len(keys)})")
    return keys, quorum


def check_witnesses(note: str, args) -> str:
    """Enforce ``--quorum`` of ``--witness-key`` cosignatures; a summary line (empty when none asked)."""
    keys, quorum = witness_keys(args)
    if not keys:
        return ""
    good = verify_cosignatures(note, keys)
    if len(good) < quorum:
        missing = ", ".join(k.name for k in keys if str(k) not in good) or "none"
        raise VerificationFailed(f"only {len(good)} of the required {quorum} witness cosignatures verify "
                                 f"(missing: {missing})")
    return f"; cosigned by {len(good)} of {len(keys)} witnesses (quorum {quorum})"


def token(args) -> str:
    return os.environ.get(args.token_env or "CSM_API_TOKEN", "")


def describe(checkpoint: Checkpoint, key: PublicKey) -> str:
    return f"{checkpoint.origin} size {checkpoint.size} root {checkpoint.root_b64}, signed by {key.name}"


# --- checkpoint, inclusion, consistency --------------------------------------------------------------------

def cmd_checkpoint(args) -> int:
    note = read_text(args.file)
    checkpoint, key = verified_checkpoint(note, pinned_keys(args), args.origin)
    print(f"OK checkpoint {describe(checkpoint, key)}{check_witnesses(note, args)}")
    return EXIT_OK


def _leaf_hash(args) -> bytes:
    if (args.leaf_hash is None) == (args.entry is None):
        raise InputError("give the leaf as --leaf-hash B64 or as --entry FILE (its exact bytes)")
    if args.entry is not None:
        return leaf_hash(read_bytes(args.entry))
    raw = decode_hashes([args.leaf_hash], "--leaf-hash")
    return raw[0]


def _journal(args) -> Journal:
    if not args.org:
        raise InputError("--server needs --org")
    return Journal(args.server, args.org, token(args))


def cmd_inclusion(args) -> int:
    checkpoint, key = verified_checkpoint(read_text(args.checkpoint), pinned_keys(args), args.origin)
    leaf = _leaf_hash(args)
    if args.proof:
        data = read_json(args.proof)
        if not isinstance(data, dict) or data.get("index") != args.index or data.get("size") != checkpoint.size:
            raise InputError(f"{args.proof} is not the inclusion proof of leaf {args.index} in a tree of "
                             f"{checkpoint.size} (it says index {data.get('index') if isinstance(data, dict) else '?'},"
                             f" size {data.get('size') if isinstance(data, dict) else '?'})")
        path = decode_hashes(data.get("hashes"), args.proof)
    elif args.server:
        path = _journal(args).inclusion(args.index, checkpoint.size)
    else:
        raise InputError("give the proof as --proof FILE or fetch it with --server URL --org ORG")
    check_inclusion(args.index, checkpoint.size, leaf, path, checkpoint.root)
    print(f"OK leaf {args.index} (journal #{args.index + 1}, hash {base64.b64encode(leaf).decode()}) is in "
          f"{describe(checkpoint, key)}")
    return EXIT_OK


def cmd_consistency(args) -> int:
    keys = pinned_keys(args)
    old, old_key = verified_checkpoint(read_text(args.old), keys, args.origin)
    new, new_key = verified_checkpoint(read_text(args.new), keys, args.origin or old.origin)
    if args.proof:
        data = read_json(args.proof)
        if not isinstance(data, dict) or data.get("from") != old.size or data.get("to") != new.size:
            raise InputError(f"{args.proof} is not a consistency proof from {old.size} to {new.size}")
        path = decode_hashes(data.get("hashes"), args.proof)
    elif args.server:
        path = _journal(args).consistency(old.size, new.size) if 0 < old.size < new.size else []
    elif old.size in (0, new.size):  # nothing to prove: the roots alone decide
        path = []
    else:
        raise InputError("give the proof as --proof FILE or fetch it with --server URL --org ORG")
    check_consistency(old.size, new.size, old.root, new.root, path)
    print(f"OK {describe(new, new_key)} extends size {old.size} root {old.root_b64} (signed by {old_key.name})")
    return EXIT_OK


# --- proof bundles (reports, packages) ------------------------------------------------------------------

def check_bundle(bundle, keys: list[PublicKey], args) -> tuple[Checkpoint, PublicKey, dict[int, bytes], str]:
    """Verify a ``csm-journal-proofs/1`` bundle: its checkpoint is signed by a pinned key (the bundle's own
    ``keys`` are not trusted), its origin is the expected one, and every proof leads to the checkpoint's
    root. Returns the checkpoint, the key, ``{journal_index: proven leaf hash}`` and the witness summary."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise InputError(f"no {BUNDLE_FORMAT} proof bundle found")
    note = bundle.get("checkpoint")
    if not isinstance(note, str) or not note:
        raise VerificationFailed("the proof bundle carries no checkpoint (the journal had none when it was made)")
    checkpoint, key = verified_checkpoint(note, keys, args.origin)
    if bundle.get("origin") != checkpoint.origin:
        raise VerificationFailed(f"the bundle names the log {bundle.get('origin')!r} but its checkpoint is for "
                                 f"{checkpoint.origin!r}")
    if bundle.get("tree_size") != checkpoint.size or bundle.get("root_hash") != checkpoint.root_b64:
        raise VerificationFailed("the bundle's tree_size / root_hash differ from its signed checkpoint")
    witnesses = check_witnesses(note, args)
    proven: dict[int, bytes] = {}
    proofs = bundle.get("proofs")
    if not isinstance(proofs, list):
        raise InputError("the bundle's proofs are not a list")
    for proof in proofs:
        if not isinstance(proof, dict) or not isinstance(proof.get("journal_index"), int):
            raise InputError("a proof in the bundle has no journal_index")
        number = proof["journal_index"]
        if proof.get("index") != number - 1:
            raise VerificationFailed(f"journal #{number}: its proof is for Merkle leaf {proof.get('index')}, "
                                     f"not {number - 1}")
        leaf = decode_hashes([proof.get("leaf_hash")], f"journal #{number} leaf_hash")[0]
        try:
            check_inclusion(number - 1, checkpoint.size, leaf, decode_hashes(proof.get("hashes"),
                                                                              f"journal #{number}"), checkpoint.root)
        except VerificationFailed as exc:
            raise VerificationFailed(f"journal #{number}: {exc}") from None
        proven[number] = leaf
    return checkpoint, key, proven, witnesses


def check_cited(records: list[tuple[str, int, str]], proven: dict[int, bytes]) -> list[str]:
    """``(name, journal_index, leaf hash hex)`` of each record that must be proven -> the failures."""
    failures = []
    for name, number, hex_hash in records:
        if number not in proven:
            failures.append(f"{name} (journal #{number}): no inclusion proof in the bundle")
        elif proven[number].hex() != str(hex_hash).lower():
            failures.append(f"{name} (journal #{number}): cites leaf hash {hex_hash} but the proven leaf is "
                            f"{proven[number].hex()}")
    return failures


def _finish(what: str, checkpoint, key, witnesses, records, failures) -> int:
    if failures:
        for failure in failures:
            print(f"FAILED {failure}", file=sys.stderr)
        print(f"csm-verify: {what}: {len(failures)} of {len(records)} cited records NOT proven", file=sys.stderr)
        return EXIT_FAILED
    print(f"OK {what}: all {len(records)} cited records are in {describe(checkpoint, key)}{witnesses}")
    return EXIT_OK


def extract_pdf_json(data: bytes) -> dict:
    """The report JSON export attached to a PDF: scan its streams (inflating FlateDecode ones) for the one
    that parses as a report with an ``integrity`` section. Standard library only, no PDF parser."""
    view = memoryview(data)
    for match in re.finditer(rb"stream\r?\n", data):
        start = match.end()
        try:  # peek first: fonts and images are inflated only as far as their first bytes
            inflate = zlib.decompressobj()
            raw = inflate.decompress(view[start:], 64)
            if raw.lstrip()[:1] == b"{":
                raw += inflate.decompress(inflate.unconsumed_tail)
        except zlib.error:
            end = data.find(b"endstream", start)
            raw = data[start:end].rstrip(b"\r\n") if end > start else b""
        if raw.lstrip()[:1] != b"{":
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("integrity"), dict):
            return value
    raise InputError("the PDF carries no attached report JSON (report.json) with an integrity section")


def cmd_report(args) -> int:
    data = read_bytes(args.file)
    if data.lstrip()[:5] == b"%PDF-":
        report = extract_pdf_json(data)
    else:
        try:
            report = json.loads(data)
        except ValueError as exc:
            raise InputError(f"{args.file} is neither a PDF nor JSON: {exc}") from None
    integrity = report.get("integrity") if isinstance(report, dict) else None
    if not isinstance(integrity, dict) or "proofs" not in integrity:
        raise InputError(f"{args.file} has no integrity.proofs: not a csm report export with journal proofs")
    checkpoint, key, proven, witnesses = check_bundle(integrity["proofs"], pinned_keys(args), args)
    records = []
    for item in integrity.get("cited") or []:
        if not isinstance(item, list) or len(item) != 4 or not isinstance(item[1], int):
            raise InputError(f"a cited record is not [kind, journal_index, leaf_hash, label]: {str(item)[:80]}")
        kind, number, hex_hash, label = item
        records.append((f"{kind} {label}".strip(), number, hex_hash))
    return _finish(f"report {args.file}", checkpoint, key, witnesses, records, check_cited(records, proven))


def _journal_refs(value, where: str, out: list) -> None:
    """Every ``"journal": {"index", "leaf_hash"}`` in the manifest, named by where it is."""
    if isinstance(value, dict):
        ref = value.get("journal")
        if isinstance(ref, dict) and "index" in ref:
            label = value.get("path") or value.get("name") or value.get("fingerprint") or value.get("id") or ""
            out.append((f"{where} {label}".strip(), ref.get("index"), ref.get("leaf_hash")))
        for key, item in value.items():
            if key not in ("journal", "journal_proofs"):
                _journal_refs(item, key if isinstance(item, list) else where, out)
    elif isinstance(value, list):
        for item in value:
            _journal_refs(item, where, out)


def cmd_package(args) -> int:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(read_bytes(args.file)), mode="r:*")  # noqa: SIM115
    except tarfile.TarError as exc:
        raise InputError(f"{args.file} is not a tar.gz audit package: {exc}") from None
    with archive:
        try:
            manifest = json.load(archive.extractfile("manifest.json"))
        except (KeyError, AttributeError, ValueError):
            raise InputError(f"{args.file} has no readable manifest.json") from None
        if not isinstance(manifest, dict) or "journal_proofs" not in manifest:
            raise InputError(f"{args.file}: manifest.json has no journal_proofs")
        failures = []
        for entry in manifest.get("files") or []:
            failures += _check_file(archive, entry)
    checkpoint, key, proven, witnesses = check_bundle(manifest["journal_proofs"], pinned_keys(args), args)
    records: list = []
    _journal_refs({k: v for k, v in manifest.items() if k != "files"}, "record", records)
    _journal_refs({"files": manifest.get("files") or []}, "files", records)
    unique = list(dict.fromkeys((name, number, h) for name, number, h in records))
    bad = [r for r in unique if not isinstance(r[1], int)]
    if bad:
        raise InputError(f"{bad[0][0]}: its journal index is not a number")
    failures += check_cited(unique, proven)
    return _finish(f"package {args.file}", checkpoint, key, witnesses, unique, failures)


def _check_file(archive: tarfile.TarFile, entry) -> list[str]:
    """A packaged evidence file must be the bytes the manifest describes (SHA-256 and size)."""
    if not isinstance(entry, dict) or not entry.get("path"):
        return []
    try:
        handle = archive.extractfile(entry["path"])
    except KeyError:
        handle = None
    if handle is None:
        return [f"file {entry['path']}: listed in the manifest but missing from the package"]
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    if digest.hexdigest() != entry.get("sha256") or (entry.get("size") is not None and size != entry["size"]):
        return [f"file {entry['path']}: its bytes do not match the manifest's SHA-256 / size"]
    return []


# --- monitor and witness keys ------------------------------------------------------------------------------

def cmd_monitor(args) -> int:
    keys = pinned_keys(args)
    cosign_key = parse_witness_key(read_text(args.cosign_key)) if args.cosign_key else None
    worst = EXIT_OK
    for org in dict.fromkeys(args.org):
        journal = Journal(args.server, org, token(args))
        try:
            outcome = witness(journal, args.state, keys, origin=args.origin, cosign_key=cosign_key)
        except Inconsistent as exc:
            print(f"csm-verify: {exc}", file=sys.stderr)
            worst = EXIT_FAILED
            continue
        except VerificationFailed as exc:
            print(f"csm-verify: org {org}: checkpoint REJECTED: {exc} (state not advanced)", file=sys.stderr)
            worst = EXIT_FAILED
            continue
        except (FetchError, InputError) as exc:
            print(f"csm-verify: org {org}: not checked: {exc}", file=sys.stderr)
            worst = max(worst, EXIT_INPUT) if worst != EXIT_FAILED else worst
            continue
        cp = outcome.checkpoint
        if outcome.previous_size is None:
            print(f"OK {org}: first checkpoint kept: size {cp.size} root {cp.root_b64} ({cp.origin})")
        elif outcome.previous_size == cp.size:
            print(f"OK {org}: unchanged at size {cp.size}")
        else:
            print(f"OK {org}: size {outcome.previous_size} -> {cp.size} is consistent (root {cp.root_b64})")
        for message in outcome.messages:
            print(f"csm-verify: {org}: {message}", file=sys.stderr if message.startswith("warning") else sys.stdout)
    return worst


def cmd_witness_key(args) -> int:
    key = new_witness_key(args.name)
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{args.out} exists: a witness key is never overwritten") from None
    except OSError as exc:
        raise InputError(f"cannot create {args.out}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{key}\n")
    print(key.public)
    print(f"csm-verify: private key written to {args.out} (mode 0600); give the line above to the csm operator "
          "(CSM_JOURNAL_WITNESS_KEYS)", file=sys.stderr)
    return EXIT_OK


# --- command line ------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    keys = argparse.ArgumentParser(add_help=False)
    k = keys.add_argument_group("trust")
    k.add_argument("--key", action="append", metavar="KEY",
                   help="a pinned csm journal verifier key <name>+<hex id>+<base64>; repeatable (key history)")
    k.add_argument("--key-file", action="append", metavar="FILE", help="verifier keys, one per line; repeatable")
    k.add_argument("--origin", help="the log's expected origin line (default: any, as signed)")
    wit = argparse.ArgumentParser(add_help=False)
    w = wit.add_argument_group("witnesses")
    w.add_argument("--witness-key", action="append", metavar="KEY",
                   help="a witness cosignature verifier key (alg 0x04); repeatable")
    w.add_argument("--quorum", type=int, metavar="K", help="cosignatures required (default: every --witness-key)")
    server = argparse.ArgumentParser(add_help=False)
    s = server.add_argument_group("fetching proofs")
    s.add_argument("--server", metavar="URL", help="csm base URL to fetch the proof from")
    s.add_argument("--org", help="org slug (with --server)")
    s.add_argument("--token-env", metavar="VAR", default="CSM_API_TOKEN",
                   help="environment variable holding the API token (default CSM_API_TOKEN)")

    parser = argparse.ArgumentParser(prog="csm-verify", epilog=EPILOG,
                                     description="Verify csm's journal offline: checkpoints, proofs, reports, "
                                                 "audit packages; or watch it as a witness.")
    parser.add_argument("--version", action="version", version=f"csm-verify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("checkpoint", parents=[keys, wit], epilog=EPILOG,
                       help="check a signed checkpoint against pinned keys (and witness cosignatures)")
    p.add_argument("file", metavar="FILE", help="the checkpoint (signed note); - reads standard input")
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("inclusion", parents=[keys, server], epilog=EPILOG,
                       help="check that a leaf is in the tree of a signed checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="the signed checkpoint")
    p.add_argument("--index", required=True, type=int, metavar="I",
                   help="0-based Merkle leaf index (journal leaf #1 is index 0)")
    p.add_argument("--leaf-hash", metavar="B64", help="the leaf hash, base64")
    p.add_argument("--entry", metavar="FILE", help="the leaf's exact bytes (GET .../entries/{index})")
    p.add_argument("--proof", metavar="FILE", help='JSON {"index", "size", "hashes"}')
    p.set_defaults(func=cmd_inclusion)

    p = sub.add_parser("consistency", parents=[keys, server], epilog=EPILOG,
                       help="check that a newer signed checkpoint extends an older one")
    p.add_argument("--old", required=True, metavar="FILE", help="the older signed checkpoint")
    p.add_argument("--new", required=True, metavar="FILE", help="the newer signed checkpoint")
    p.add_argument("--proof", metavar="FILE", help='JSON {"from", "to", "hashes"}')
    p.set_defaults(func=cmd_consistency)

    p = sub.add_parser("report", parents=[keys, wit], epilog=EPILOG,
                       help="check every record a report cites (report.json or the report PDF)")
    p.add_argument("file", metavar="REPORT", help="the report's JSON export or its PDF")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("package", parents=[keys, wit], epilog=EPILOG,
                       help="check an evidence audit package (tar.gz): files and journal proofs")
    p.add_argument("file", metavar="PACKAGE", help="audit-package.tar.gz")
    p.set_defaults(func=cmd_package)

    p = sub.add_parser("monitor", parents=[keys], epilog=EPILOG,
                       help="witness: check each org's newest checkpoint is consistent with the last one kept")
    p.add_argument("--state", required=True, metavar="DIR", help="directory keeping the last checkpoint per org")
    p.add_argument("--server", required=True, metavar="URL", help="csm base URL")
    p.add_argument("--org", required=True, action="append", help="org slug; repeatable")
    p.add_argument("--token-env", metavar="VAR", default="CSM_API_TOKEN",
                   help="environment variable holding the API token (default CSM_API_TOKEN)")
    p.add_argument("--cosign-key", metavar="FILE", help="witness key file: cosign each consistent checkpoint")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("witness-key", epilog=EPILOG, help="create a witness cosigning key")
    p.add_argument("--name", required=True, help="the witness's key name (no spaces or '+')")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the private key (mode 0600)")
    p.set_defaults(func=cmd_witness_key)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        return args.func(args)
    except VerificationFailed as exc:
        print(f"csm-verify: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (InputError, FetchError) as exc:
        print(f"csm-verify: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("csm-verify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
