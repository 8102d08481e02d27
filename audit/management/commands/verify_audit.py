from django.core.management.base import BaseCommand, CommandError

from journal.models import JournalCheckpoint, JournalHead, JournalLeaf, JournalTree
from journal.verify import verify_journal

# The org model the journal is keyed by, taken from the journal's own foreign key (no import of tenants/,
# which stands above audit/).
Org = JournalLeaf._meta.get_field("org").related_model


class Command(BaseCommand):
    help = ("Recompute an org's journal hash chain, Merkle tree and checkpoint roots and signatures; exit "
            "non-zero naming the first bad record.")

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
                tree = JournalTree.objects.filter(org=row).values_list("size", flat=True).first() or 0
                checkpoints = JournalCheckpoint.objects.filter(org=row).count()
                self.stdout.write(f"{row.slug}: ok, journal at {last}, Merkle tree of {tree} leaves, "
                                  f"{checkpoints} checkpoint(s) verified")
        if failed:
            raise CommandError("journal verification failed")
