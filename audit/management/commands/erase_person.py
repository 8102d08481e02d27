from django.core.management.base import BaseCommand, CommandError

from audit.context import AuditContext
from audit.erasure import erase_person
from csm.errors import ServiceError


class Command(BaseCommand):
    help = ("Erase a person (an email address): their name, email and addresses are removed from every page, "
            "export and audit event of every org, their account keeps only its number, and every journal still "
            "verifies (docs/operations.md, \"Erasure of a person\"). --dry-run shows what would change.")

    def add_arguments(self, parser):
        parser.add_argument("email", help="the person's email address")
        parser.add_argument("--dry-run", action="store_true", help="show what would be erased, change nothing")
        parser.add_argument("--reason", default="", help="the request it fulfils (recorded in the audit trail)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, email, dry_run=False, reason="", yes=False, **options):
        if not dry_run and not yes:
            answer = input(f"Erase {email} from every org? This cannot be undone. Type the address again: ")
            if answer.strip().lower() != email.strip().lower():
                raise CommandError("not confirmed; nothing was erased")
        label = f"manage.py erase_person{': ' + reason[:200] if reason else ''}"
        try:
            result = erase_person(email, ctx=AuditContext.system(label), dry_run=dry_run)
        except ServiceError as error:
            raise CommandError(str(error)) from error
        for line in result.lines():
            self.stdout.write(line)
        if not result.users and not result.orgs:
            self.stdout.write("nobody with that address is known; nothing to erase")
