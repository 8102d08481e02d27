"""``manage.py check_witnesses --quorum K [--org SLUG]``: does each org's latest checkpoint, as served,
carry csm's valid signature and valid cosignatures of at least K configured witnesses?

What a verifier requiring k-of-n witnesses would conclude, run by the operator (e.g. from monitoring):
a failure means the witnesses stopped cosigning (down, or they saw something they refused to sign)."""

from django.core.management.base import BaseCommand, CommandError

from journal.models import JournalKey, JournalLeaf
from journal.notes import NoteError, parse_verifier, verify_note
from journal.selectors import served_note
from journal.services import latest_checkpoint
from journal.witness import quorum, witness_verifiers

Org = JournalLeaf._meta.get_field("org").related_model


class Command(BaseCommand):
    help = "Check that each org's latest checkpoint is signed by csm and cosigned by at least K witnesses."

    def add_arguments(self, parser):
        parser.add_argument("--quorum", dest="k", type=int, required=True,
                            help="witness cosignatures required (k of the n configured witnesses)")
        parser.add_argument("--org", help="org slug (default: every org with a checkpoint)")

    def handle(self, *args, k=None, org=None, **options):
        witnesses = list(witness_verifiers().values())
        if not 1 <= k <= len(witnesses):
            raise CommandError(f"--quorum must be between 1 and the {len(witnesses)} configured witness key(s)")
        orgs = Org.objects.filter(slug=org) if org else Org.objects.all()
        if org and not orgs.exists():
            raise CommandError(f"no org with the slug '{org}'")
        failed = False
        for row in orgs.order_by("slug"):
            checkpoint = latest_checkpoint(row)
            if checkpoint is None:
                if org:
                    failed = True
                    self.stderr.write(f"{row.slug}: FAILED: no checkpoint yet")
                continue
            note = served_note(checkpoint)
            try:
                key = JournalKey.objects.filter(key_id=checkpoint.key_id, name=checkpoint.key_name).first()
                if key is None:
                    raise NoteError(f"the key {checkpoint.key_name} is not in the published key history")
                verify_note(note, parse_verifier(key.verifier))
                names = quorum(note, witnesses, k)
            except NoteError as exc:
                failed = True
                self.stderr.write(f"{row.slug}: FAILED at tree size {checkpoint.size}: {exc}")
                continue
            self.stdout.write(f"{row.slug}: ok, tree size {checkpoint.size} cosigned by {', '.join(names)}")
        if failed:
            raise CommandError("witness check failed")

