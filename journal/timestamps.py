"""RFC 3161 timestamps on checkpoints, from the Time-Stamp Authority at ``CSM_JOURNAL_TSA_URL``.

A checkpoint signed by csm proves what the log held, but its time is csm's word. A TSA's token over the
signed note's SHA-256 proves to anyone who trusts that TSA that the note existed at the token's time:
a history rewritten later cannot come with tokens from before the rewrite.

csm asks for one token per new checkpoint (``TimeStampReq``: SHA-256 message imprint of the exact note
bytes csm signed, a random nonce, ``certReq`` so the token carries the TSA's certificate), checks the
answer (status granted, the same imprint and nonce) and keeps the DER ``TimeStampResp`` on the
checkpoint, settable once. Checking the TSA's signature and certificate chain is the verifier's part
(``openssl ts -verify``, docs/journal-witnesses.md): csm does not decide which TSAs a client trusts.

The request goes through the outbound HTTP guard (``csm.lib.outbound``): private, loopback and
link-local addresses are refused unless ``CSM_JOURNAL_TSA_ALLOW_PRIVATE`` is on.
"""

import hashlib
import http.client
import logging
import secrets
from datetime import timedelta

from asn1crypto import cms, tsp
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from csm.errors import ServiceError
from csm.lib import outbound
from journal.models import JournalCheckpoint
from journal.services import latest_checkpoint

log = logging.getLogger(__name__)

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
GRANTED = ("granted", "granted_with_mods")


class TimeStampResp(tsp.TimeStampResp):
    """RFC 3161 ``TimeStampResp``, whose ``timeStampToken`` is OPTIONAL (absent when the TSA refuses):
    asn1crypto 1.5 declares it required, so a refusal would read as a malformed answer."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


class TimestampError(Exception):
    """The TSA could not be asked, refused, or answered something that is not a token for our request."""


def note_digest(note: str) -> bytes:
    """What is timestamped: SHA-256 of the checkpoint's signed note exactly as csm signed it (without the
    witness cosignature lines served after it)."""
    return hashlib.sha256(note.encode()).digest()


def timestamp_request(digest: bytes, nonce: int) -> bytes:
    """A DER ``TimeStampReq`` for a SHA-256 ``digest``."""
    return tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": nonce,
        "cert_req": True,
    }).dump()


def check_response(der: bytes, digest: bytes, nonce: int | None = None) -> tsp.TSTInfo:
    """The ``TSTInfo`` of a ``TimeStampResp`` that grants a token over ``digest`` (and ``nonce`` when
    given); TimestampError otherwise."""
    try:
        response = TimeStampResp.load(der)
        status = response["status"]["status"].native
        if status not in GRANTED:
            text = response["status"]["status_string"].native if response["status"]["status_string"] else None
            raise TimestampError(f"the TSA answered {status}" + (f": {'; '.join(text)}" if text else ""))
        token = response["time_stamp_token"]
        if token["content_type"].native != "signed_data":
            raise TimestampError("the TSA's token is not CMS SignedData")
        encap = token["content"]["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampError("the TSA's token does not hold a TSTInfo")
        info = encap["content"].parsed
        imprint = info["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native != "sha256" or imprint["hashed_message"].native != digest:
            raise TimestampError("the TSA's token is over another message imprint")
        if nonce is not None and info["nonce"].native != nonce:
            raise TimestampError("the TSA's token carries another nonce")
        info["gen_time"].native  # noqa: B018 - parse it now: a token without a readable time is no token
        return info
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # asn1crypto's parse errors
        raise TimestampError(f"the TSA's answer is not a TimeStampResp: {exc}") from None


def request_token(note: str, url: str | None = None) -> bytes:
    """Ask the TSA for a token over ``note``; the checked DER ``TimeStampResp``."""
    url = url or settings.CSM_JOURNAL_TSA_URL
    digest = note_digest(note)
    nonce = secrets.randbits(63)
    try:
        answer = outbound.post(url, timestamp_request(digest, nonce), {"Content-Type": QUERY_TYPE,
                                                                       "User-Agent": "csm-journal/1"},
                               timeout=settings.CSM_JOURNAL_TSA_TIMEOUT_SECONDS,
                               private_setting="CSM_JOURNAL_TSA_ALLOW_PRIVATE")
    except outbound.OutboundRefused as exc:
        raise TimestampError(f"CSM_JOURNAL_TSA_URL refused: {exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TimestampError(f"the TSA could not be reached: {exc}") from None
    if answer.status != 200:
        raise TimestampError(f"the TSA answered HTTP {answer.status}")
    check_response(answer.body, digest, nonce)
    return answer.body


def timestamp_checkpoint(checkpoint_id: int) -> bool:
    """Get and keep a token for the checkpoint when a TSA is configured and it has none yet; True when
    the checkpoint has a token afterwards. Idempotent: the token is set once (a concurrent second token
    is dropped), never replaced."""
    checkpoint = JournalCheckpoint.objects.filter(pk=checkpoint_id).only("id", "note", "timestamp_token").first()
    if checkpoint is None:
        return False
    if checkpoint.timestamp_token is not None:
        return True
    if not settings.CSM_JOURNAL_TSA_URL:
        return False
    token = request_token(checkpoint.note)
    JournalCheckpoint.objects.filter(pk=checkpoint_id, timestamp_token__isnull=True).update(timestamp_token=token)
    return True


def untimestamped_latest(min_age_seconds: int = 60) -> list[int]:
    """Ids of the orgs' latest checkpoints still without a token ``min_age_seconds`` after they were made
    (a lost task, a TSA that was down; younger ones are left to their own task). Older checkpoints are
    not chased: the latest one vouches for everything before it."""
    latest = JournalCheckpoint.objects.values("org_id").annotate(last=Max("id")).values("last")
    before = timezone.now() - timedelta(seconds=min_age_seconds)
    return list(JournalCheckpoint.objects.filter(id__in=latest, timestamp_token__isnull=True, created_at__lte=before)
                .values_list("id", flat=True))


def timestamped_checkpoint(org, size: int | None = None) -> JournalCheckpoint:
    """The checkpoint whose token ``GET .../checkpoint/timestamp`` serves: the latest one, or the newest
    one of tree size ``size`` that has a token. Never an older one in place of the latest: a client pairs
    the token with the note it just fetched. not_found (404) when there is no such token (yet)."""
    if size is None:
        checkpoint = latest_checkpoint(org)
        if checkpoint is None:
            raise ServiceError("this journal has no checkpoint yet", code="not_found")
        if checkpoint.timestamp_token is None:
            raise ServiceError(f"the latest checkpoint (tree size {checkpoint.size}) has no timestamp"
                               + (" yet" if settings.CSM_JOURNAL_TSA_URL else ": no TSA is configured"),
                               code="not_found")
        return checkpoint
    checkpoint = (JournalCheckpoint.objects.filter(org=org, size=size, timestamp_token__isnull=False)
                  .order_by("-id").first())
    if checkpoint is None:
        raise ServiceError(f"no checkpoint of tree size {size} has a timestamp", field="size", code="not_found")
    return checkpoint
