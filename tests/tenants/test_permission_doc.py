"""docs/permissions.md carries exactly the matrix in tenants/permissions.py."""

from io import StringIO

from django.core.management import call_command

from tenants.management.commands.permission_matrix import doc_path, table_in_doc
from tenants.permissions import matrix_markdown


def test_command_prints_the_matrix():
    out = StringIO()
    call_command("permission_matrix", stdout=out)
    assert out.getvalue() == matrix_markdown()


def test_doc_contains_exactly_the_generated_table():
    table = table_in_doc(doc_path().read_text())
    assert table == matrix_markdown(), "run: python manage.py permission_matrix --write"
