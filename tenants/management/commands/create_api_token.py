from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.context import AuditContext
from csm.errors import ServiceError
from tenants.choices import Role
from tenants.models import Org, ServiceAccount
from tenants.services import create_api_token, create_service_account


class Command(BaseCommand):
    help = "Create an API token for a service account (created if needed). Prints the token on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True)
        parser.add_argument("--service-account", required=True)
        parser.add_argument("--role", default=Role.SNAPSHOTTER,
                            choices=[r for r in Role.values if r != Role.OWNER])
        parser.add_argument("--name", default="", help="token name (defaults to the service account's)")

    def handle(self, *args, org, service_account, role, name, **options):
        org_row = Org.objects.filter(slug=org).first()
        if org_row is None:
            raise CommandError(f"no org with the slug '{org}'")
        ctx = AuditContext.system("manage.py create_api_token")
        try:
            with transaction.atomic():
                account = ServiceAccount.objects.filter(org=org_row, name=service_account).first()
                if account is None:
                    account = create_service_account(ctx, org_row, service_account, role)
                    self.stdout.write(f"created service account {account.name} with role {account.role}")
                elif account.role != role:
                    self.stderr.write(f"note: service account {account.name} keeps its role {account.role}")
                _, plaintext = create_api_token(ctx, org_row, name or service_account, service_account=account)
        except ServiceError as error:
            raise CommandError(error.message) from None
        self.stdout.write(plaintext)
