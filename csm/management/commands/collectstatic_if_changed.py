"""``collectstatic`` only when something it would collect changed: the quick start (scripts/start) runs it
on every start, and with DEBUG off (hashed names, gzip + brotli by WhiteNoise) a full run costs about a
minute of CPU. The stamp is a digest of every source file's path, size and mtime plus the storage backend
and STATIC_ROOT, kept in STATIC_ROOT; a missing manifest (or a different stamp) runs collectstatic again.
"""

import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command
from django.core.management.base import BaseCommand

STAMP = ".csm-collected"


def sources_digest() -> str:
    backend = settings.STORAGES["staticfiles"]["BACKEND"]
    digest = hashlib.sha256(f"{backend}\n{settings.STATIC_ROOT}\n".encode())
    found = set()
    for finder in get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            stat = os.stat(storage.path(path))
            found.add(f"{getattr(storage, 'prefix', '') or ''}/{path}\t{stat.st_size}\t{stat.st_mtime_ns}")
    for line in sorted(found):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


class Command(BaseCommand):
    help = "Run collectstatic unless the static sources, the storage and STATIC_ROOT are what the last run collected."

    def handle(self, *args, **options):
        root = Path(settings.STATIC_ROOT)
        stamp = root / STAMP
        digest = sources_digest()
        manifest_needed = "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]
        up_to_date = (stamp.exists() and stamp.read_text().strip() == digest
                      and (not manifest_needed or (root / "staticfiles.json").exists()))
        if up_to_date:
            self.stdout.write("static files: unchanged since the last collectstatic")
            return
        call_command("collectstatic", interactive=False, verbosity=0)
        stamp.write_text(digest + "\n")
        self.stdout.write(f"static files: collected into {root}")
