import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.context import AuditContext
from csm.errors import ServiceError
from tenants.services import create_org, get_or_create_user


class Command(BaseCommand):
    help = "Create an org with an owner (creating the user if needed). Prints a one-time password for a new user."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--owner", required=True, help="owner's email address")
        parser.add_argument("--name", default="", help="display name (defaults to the slug)")

    def handle(self, *args, slug, owner, name, **options):
        with transaction.atomic():
            user, created = get_or_create_user(owner)
            password = None
            if created:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save(update_fields=["password"])
            try:
                org = create_org(AuditContext.system("manage.py create_org"), slug, name or slug, user)
            except ServiceError as error:
                raise CommandError(error.message) from None
        self.stdout.write(f"created org {org.slug} with owner {user.email}")
        if password:
            self.stdout.write("one-time password for the new user (change it after signing in):")
            self.stdout.write(password)
