from django.core.management.base import BaseCommand, CommandError

from journal.models import JournalHead, JournalLeaf
from journal.verify import verify_journal

# The org model the journal is keyed by, taken from the journal's own foreign key (no import of tenants/,
# which stands above audit/).
Org = JournalLeaf._meta.get_field("org").related_model


class Command(BaseCommand):
    help = "Recompute an org's journal hash chain; exit non-zero naming the first bad record."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="org slug (default: every org)")

    def handle(self, *args, org=None, **options):
        orgs = Org.objects.filter(slug=org) if org else Org.objects.all()
        if org and not orgs.exists():
            raise CommandError(f"no org with the slug '{org}'")
        failed = False
        for row in orgs:
            problem = verify_journal(row)
            if problem:
                failed = True
                self.stderr.write(f"{row.slug}: FAILED at {problem}")
            else:
                head = JournalHead.objects.filter(org=row).first()
                last = f"#{head.last_index} {head.last_hash}" if head else "empty"
                self.stdout.write(f"{row.slug}: ok, journal at {last}")
        if failed:
            raise CommandError("journal verification failed")
