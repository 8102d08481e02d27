"""Witness cosignatures of the org checkpoints (C2SP ``tlog-cosignature``, ``cosignature/v1``).

A witness is an independent party that keeps the last checkpoint it saw of an org's journal, checks
that each new one is consistent with it, and then cosigns the new checkpoint's body. A verifier that
requires cosignatures from k of n witnesses it trusts (:func:`quorum`) no longer has to trust csm
alone: to show two different histories, csm would have to fool k witnesses as well.

csm accepts cosignatures only from the keys the operator configured (``CSM_JOURNAL_WITNESS_KEYS``,
checked at startup by :func:`witness_verifiers`), verifies each against the body of one of the org's
checkpoints before storing it, and serves the stored lines after its own signature
(``journal.selectors.served_note``).
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from csm.errors import ServiceError
from journal import hooks
from journal.models import JournalCheckpoint, JournalCosignature, JournalKey
from journal.notes import (
    ALG_COSIGNATURE,
    DASH,
    NoteError,
    Signature,
    Verifier,
    parse_checkpoint,
    parse_verifier,
    split_note,
    verify_cosignature,
)

# What POST .../cosignature reads at most: a checkpoint and a few dozen signature lines fit easily.
MAX_COSIGNATURE_BYTES = 8 * 1024
# Bare cosignature lines are tried against this many of the org's newest checkpoints.
RECENT_CHECKPOINTS = 32


def parse_witness_keys(keys: Iterable[str]) -> dict[bytes, Verifier]:
    """``{key id: verifier}`` of witness verifier keys; ImproperlyConfigured naming the first bad one.
    Only cosignature keys (algorithm 0x04) are witness keys: an Ed25519 note key (0x01) signs notes,
    not ``cosignature/v1`` messages."""
    verifiers: dict[bytes, Verifier] = {}
    for text in keys:
        try:
            verifier = parse_verifier(text)
        except NoteError as exc:
            raise ImproperlyConfigured(f"CSM_JOURNAL_WITNESS_KEYS: {text!r}: {exc}") from None
        if verifier.alg != ALG_COSIGNATURE:
            raise ImproperlyConfigured(f"CSM_JOURNAL_WITNESS_KEYS: {text!r} is not a cosignature key "
                                       "(its base64 key must start with the byte 0x04)")
        if verifier.id in verifiers:
            raise ImproperlyConfigured(f"CSM_JOURNAL_WITNESS_KEYS: {text!r} repeats the key id {verifier.id_hex}")
        verifiers[verifier.id] = verifier
    return verifiers


def witness_verifiers() -> dict[bytes, Verifier]:
    """The configured witnesses (``CSM_JOURNAL_WITNESS_KEYS``), by key id."""
    return parse_witness_keys(settings.CSM_JOURNAL_WITNESS_KEYS)


def quorum(note: str, verifiers: Iterable[Verifier], k: int) -> list[str]:
    """The names of the witnesses among ``verifiers`` whose ``cosignature/v1`` on ``note`` verifies,
    when there are at least ``k`` of them; NoteError naming how many verified otherwise.

    Each witness key counts once however many lines it added; lines of keys not in ``verifiers`` (csm's
    own signature, witnesses the caller does not trust) are ignored, and an invalid line from a trusted
    witness simply does not count. This checks cosignatures only: the caller checks csm's signature
    (``journal.notes.verify_note``) and the consistency with what it saw before."""
    if k < 1:
        raise ValueError("a quorum needs k >= 1")
    body, signatures = split_note(note)
    trusted = {v.id: v for v in verifiers if v.alg == ALG_COSIGNATURE}
    if k > len(trusted):
        raise NoteError(f"a quorum of {k} needs at least {k} trusted witness keys, got {len(trusted)}")
    good: dict[bytes, str] = {}
    for signature in signatures:
        verifier = trusted.get(signature.id)
        if verifier is None or signature.id in good:
            continue
        try:
            verify_cosignature(body, signature, verifier)
        except NoteError:
            continue
        good[signature.id] = verifier.name
    if len(good) < k:
        raise NoteError(f"{len(good)} of the required {k} witness cosignature(s) verify")
    return sorted(good.values())


# --- accepting cosignatures ----------------------------------------------------------------------------

def _parse_line(line: str) -> Signature:
    """One ``— <name> <base64>`` line, through the note parser so both accept the same lines."""
    return split_note(f"x\n\n{line}\n")[1][0]


def _parse_submission(text: str) -> tuple[str | None, list[Signature]]:
    """(checkpoint body or None, signatures) of what a witness sent: a whole cosigned note, or only
    its signature lines."""
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise ServiceError("the body is empty: send cosignature lines or the cosigned checkpoint", field="body")
    if "\n\n" in text:
        try:
            body, signatures = split_note(text if text.endswith("\n") else text + "\n")
        except NoteError as exc:
            raise ServiceError(f"not a signed note: {exc}", field="body") from None
        return body, signatures
    signatures = []
    for number, line in enumerate(text.strip("\n").split("\n"), start=1):
        if not line.startswith(DASH + " "):
            raise ServiceError(f"line {number} is not a signature line ('{DASH} <name> <base64>')", field="body")
        try:
            signatures.append(_parse_line(line))
        except NoteError as exc:
            raise ServiceError(f"line {number}: {exc}", field="body") from None
    return None, signatures


def _candidates(org, body: str | None) -> list[JournalCheckpoint]:
    """The checkpoints a submission may cosign, newest first: for a whole note, the newest one of the org
    with its body (found by its tree size); for bare lines, the org's latest ``RECENT_CHECKPOINTS`` (a
    witness racing a busy log — one checkpoint a second — cosigned the latest it saw, not ours)."""
    if body is None:
        candidates = list(JournalCheckpoint.objects.filter(org=org).order_by("-id")[:RECENT_CHECKPOINTS])
        if not candidates:
            raise ServiceError("this journal has no checkpoint yet", field="body", code="not_found")
        return candidates
    try:
        size = parse_checkpoint(body).size
    except NoteError as exc:
        raise ServiceError(f"not a checkpoint: {exc}", field="body") from None
    for checkpoint in JournalCheckpoint.objects.filter(org=org, size=size).order_by("-id"):
        if split_note(checkpoint.note)[0] == body:
            return [checkpoint]
    raise ServiceError(f"this journal has no checkpoint with that body (tree size {size})", field="body",
                       code="not_found")


def _own_key_ids(candidates: list[JournalCheckpoint]) -> set[bytes]:
    """Ids of csm's own signing keys: those that signed the candidates and the published history."""
    ids = set(JournalKey.objects.values_list("key_id", flat=True)) | {c.key_id for c in candidates}
    return {bytes.fromhex(key_id) for key_id in ids}


def _cosigned(signature: Signature, verifier: Verifier, candidates: list[JournalCheckpoint]):
    """(checkpoint, timestamp) of the newest candidate whose body the cosignature verifies over."""
    problem = None
    for checkpoint in candidates:
        try:
            return checkpoint, verify_cosignature(split_note(checkpoint.note)[0], signature, verifier)
        except NoteError as exc:
            problem = exc
    if len(candidates) == 1:
        raise ServiceError(f"{problem} over the checkpoint of tree size {candidates[0].size}", field="body")
    raise ServiceError(f"{problem} over any of the org's latest {len(candidates)} checkpoints (for an older "
                       "one, send the whole cosigned checkpoint)", field="body")


@transaction.atomic
def add_cosignatures(org, text: str, actor=None) -> list[JournalCosignature]:
    """Store the witness cosignatures in ``text`` on the org's checkpoints they sign; returns one row per
    witness line (an already stored cosignature is returned as it is: sending it again is a no-op).

    ``text`` is one or more cosignature lines (each of one of the org's latest checkpoints, the newest
    it verifies over) or a whole cosigned note (of whichever checkpoint of the org has that body); csm's
    own signature lines in it are skipped. Every other line must be a configured witness's valid
    cosignature, else nothing is stored and a ServiceError (400) names the line's witness and the
    problem. ``actor`` (the API request, or None) goes to the ``journal.hooks.cosignature_added`` hooks:
    the audit trail records who added it."""
    body, signatures = _parse_submission(text)
    candidates = _candidates(org, body)
    witnesses = witness_verifiers()
    own = _own_key_ids(candidates)
    accepted = []
    for signature in signatures:
        if signature.id in own and signature.id not in witnesses:
            continue  # csm's own signature, as a whole note carries it
        verifier = witnesses.get(signature.id)
        if verifier is None or verifier.name != signature.name:
            raise ServiceError(f"{signature.name} ({signature.id.hex()}) is not a configured witness key",
                               field="body")
        checkpoint, timestamp = _cosigned(signature, verifier, candidates)
        accepted.append(_store(org, checkpoint, verifier, signature, timestamp, actor))
    if not accepted:
        raise ServiceError("the body carries no witness cosignature", field="body")
    return accepted


def _store(org, checkpoint, verifier: Verifier, signature: Signature, timestamp: int, actor) -> JournalCosignature:
    existing = JournalCosignature.objects.filter(checkpoint=checkpoint, witness=verifier.name,
                                                 key_id=verifier.id_hex).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            cosignature = JournalCosignature.objects.create(
                org=org, checkpoint=checkpoint, witness=verifier.name, key_id=verifier.id_hex,
                timestamp=timestamp, line=signature.line)
    except IntegrityError:  # the same witness's cosignature, stored concurrently
        return JournalCosignature.objects.get(checkpoint=checkpoint, witness=verifier.name, key_id=verifier.id_hex)
    hooks.run_cosignature_added(org, cosignature, actor)
    return cosignature

