"""``manage.py journal_checkpoint [--org SLUG]``: publish a signed checkpoint now (operators, demos),
without waiting for the batch window or the periodic sweep. Idempotent: nothing new since the latest
checkpoint answers that checkpoint again."""

import base64

from django.core.management.base import BaseCommand, CommandError

from journal.models import JournalLeaf
from journal.services import publish_checkpoint

# The org model, taken from the journal's own foreign key (the journal imports no app above it).
Org = JournalLeaf._meta.get_field("org").related_model


class Command(BaseCommand):
    help = "Integrate every committed journal leaf and publish a signed checkpoint, for one org or every org."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="org slug (default: every org)")

    def handle(self, *args, org=None, **options):
        orgs = Org.objects.filter(slug=org) if org else Org.objects.order_by("slug")
        if org and not orgs.exists():
            raise CommandError(f"no org with the slug '{org}'")
        for row in orgs:
            checkpoint = publish_checkpoint(row.pk)
            root = base64.b64encode(bytes.fromhex(checkpoint.root_hash)).decode()
            self.stdout.write(f"{row.slug}: checkpoint of {checkpoint.size} leaves, root {root}, "
                              f"signed by {checkpoint.key_name}")
