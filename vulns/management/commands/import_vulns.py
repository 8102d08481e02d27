"""``python manage.py import_vulns SOURCE...``: import OSV records from directories, ``.zip`` files (osv.dev's
per-ecosystem ``all.zip``) or http(s) URLs of such zips. Prints what each source did and every rejected
record (file and reason); exits non-zero when a source cannot be read at all or another import is running.
"""

from django.core.management.base import BaseCommand, CommandError

from vulns import osv


class Command(BaseCommand):
    # Django's system checks cost ~3 s at every start (they import every URL module and jsonschema's
    # format grammars) and check nothing an import depends on: an operator's cron or an alert-latency
    # path should not pay them (bench/alerts_latency.py --advisories).
    requires_system_checks: list = []
    help = ("Import OSV vulnerability records from directories (every *.json under them), .zip files of OSV "
            "JSON records, or http(s) URLs of such zips.")

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="+", metavar="SOURCE", help="a directory, a .zip or an http(s) URL")

    def handle(self, *args, sources, **options):
        try:
            result = osv.import_sources(sources)
        except osv.SyncBusy as exc:
            raise CommandError(str(exc)) from None
        for source in result.sources:
            self._report(source)
        if len(result.sources) > 1:
            self.stdout.write(f"Total: {self._counts(result)}")
        if result.failed:
            raise CommandError(f"{len(result.failed)} of {len(sources)} source(s) could not be read: "
                               + "; ".join(f"{location}: {reason}" for location, reason in result.failed))

    def _counts(self, result: osv.ImportResult) -> str:
        text = (f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
                f"{result.withdrawn} withdrawn, {result.rejected} rejected")
        if result.older:
            text += f", {result.older} older than stored (ignored)"
        return text

    def _report(self, result: osv.ImportResult) -> None:
        if result.failed:
            self.stderr.write(f"{result.location}: cannot be read: {result.failed[0][1]}")
        elif result.not_modified:
            self.stdout.write(f"{result.location}: not modified since the last import (nothing downloaded)")
        self.stdout.write(f"{result.location}: {self._counts(result)}")
        for _, file, reason in result.rejections:
            self.stderr.write(f"  rejected {file}: {reason}")
        if result.rejected > len(result.rejections):
            self.stderr.write(f"  … and {result.rejected - len(result.rejections)} more rejected")
