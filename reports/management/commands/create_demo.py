import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.context import AuditContext
from reports.demo import DEMO_NAME, DEMO_SLUG, build_demo_history
from tenants.models import Org
from tenants.services import create_org

DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = ("Create the demo org (sample data, marked as such) and its owner once, fill it with two weeks of "
            "history (reports/demo.py) unless --empty, and print how to sign in.")

    def add_arguments(self, parser):
        parser.add_argument("--empty", action="store_true", help="create the demo org without its sample history")

    def handle(self, *args, empty=False, **options):
        if Org.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write(f"demo org exists; sign in as {DEMO_EMAIL} with the password printed on first start "
                              f"(reset it: .venv/bin/python manage.py changepassword {DEMO_EMAIL})")
            return
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            User = get_user_model()
            user = User.objects.filter(email=DEMO_EMAIL).first() or User(username=DEMO_EMAIL, email=DEMO_EMAIL)
            user.set_password(password)
            user.save()
            org = create_org(AuditContext.system("create_demo"), DEMO_SLUG, DEMO_NAME, user, is_demo=True)
        self.stdout.write("created the demo org. Sign in with:")
        self.stdout.write(f"  email:    {DEMO_EMAIL}")
        self.stdout.write(f"  password: {password}")
        if not empty:
            self.stdout.write("filling it with two weeks of sample history (takes a little while)...")
            build_demo_history(org, user)
            self.stdout.write("done: environments prod-k8s, staging-ecs, build-server; flows web, api")
