import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tenants.permissions import matrix_markdown

START, END = "<!-- permission-matrix:start -->", "<!-- permission-matrix:end -->"


def doc_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "permissions.md"


def table_in_doc(text: str) -> str | None:
    """The table between the markers of docs/permissions.md, or None when the markers are missing."""
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, re.S)
    return match.group(1) if match else None


class Command(BaseCommand):
    help = ("Print the permission matrix as a Markdown table; with --write, replace the table in "
            "docs/permissions.md (between its markers) with it.")

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true", help="update docs/permissions.md in place")

    def handle(self, *args, write=False, **options):
        table = matrix_markdown()
        if not write:
            self.stdout.write(table, ending="")
            return
        path = doc_path()
        text = path.read_text()
        if table_in_doc(text) is None:
            raise CommandError(f"{path} lacks the markers {START} / {END}")
        start, end = text.index(START) + len(START) + 1, text.index(END)
        path.write_text(text[:start] + table + text[end:])
        self.stdout.write(f"updated {path}")
