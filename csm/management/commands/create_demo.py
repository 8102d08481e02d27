import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.context import AuditContext
from tenants.models import Org
from tenants.services import create_org

DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = "Create the demo org and its owner (once) and print how to sign in."

    def handle(self, *args, **options):
        if Org.objects.filter(slug="demo").exists():
            self.stdout.write(f"demo org exists; sign in as {DEMO_EMAIL} with the password printed on first start "
                              f"(reset it: .venv/bin/python manage.py changepassword {DEMO_EMAIL})")
            return
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            User = get_user_model()
            user = User.objects.filter(email=DEMO_EMAIL).first() or User(username=DEMO_EMAIL, email=DEMO_EMAIL)
            user.set_password(password)
            user.save()
            create_org(AuditContext.system("create_demo"), "demo", "Demo", user)
        self.stdout.write("created the demo org. Sign in with:")
        self.stdout.write(f"  email:    {DEMO_EMAIL}")
        self.stdout.write(f"  password: {password}")
