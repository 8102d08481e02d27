"""``manage.py rotate_journal_key [--name NAME]``: a new checkpoint-signing key, and every org's latest
checkpoint signed again with it.

The key is server-wide (every org's checkpoints are signed by it), so rotating it is not an org's event
and records no org audit event: it is logged (logger ``journal``) and published — the new public key
joins the key history (``GET /api/v2/journal/{org}/key``, newest first) while the old one stays there, so
checkpoints signed before the rotation keep verifying with the key that signed them.
"""

import logging

from django.core.management.base import BaseCommand, CommandError

from journal import signing
from journal.models import JournalCheckpoint
from journal.notes import NoteError
from journal.services import publish_checkpoint

log = logging.getLogger("journal")


class Command(BaseCommand):
    help = ("Replace the journal signing key (CSM_JOURNAL_KEY_FILE) with a new one and re-sign every org's "
            "latest checkpoint with it; old checkpoints keep verifying with the old public key.")

    def add_arguments(self, parser):
        parser.add_argument("--name", help="the new key's name (default: <server>/journal-key-<UTC time>); "
                                           "a name used before is refused")

    def handle(self, *args, name=None, **options):
        try:
            signer = signing.rotate(name)
        except NoteError as exc:
            raise CommandError(str(exc)) from None
        org_ids = sorted(set(JournalCheckpoint.objects.values_list("org_id", flat=True)))
        for org_id in org_ids:
            publish_checkpoint(org_id, resign=True)
        log.warning("journal signing key rotated to %s (server-wide: no org audit event); re-signed the latest "
                    "checkpoint of %d org(s)", signer.verifier, len(org_ids))
        self.stdout.write(f"new journal key: {signer.verifier}")
        self.stdout.write(f"re-signed the latest checkpoint of {len(org_ids)} org(s); publish the new verifier "
                          "key to clients that pin keys (the old one stays in the key history)")
