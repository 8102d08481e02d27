"""Periodic tasks without a broker: the embedded default's stand-in for ``celery beat``.

Runs every entry of ``CELERY_BEAT_SCHEDULE`` (``schedule`` in seconds) in this process, forever.
With a broker configured, run ``celery -A csm worker -B`` (or a separate ``celery -A csm beat``) instead.
"""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from csm.celery import app

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the periodic tasks of CELERY_BEAT_SCHEDULE in-process (embedded default, no broker)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every task once and exit")

    def handle(self, *args, once=False, **options):
        # Register every app's tasks (a worker does this at start; this process is not a worker).
        app.loader.import_default_modules()
        schedule = settings.CELERY_BEAT_SCHEDULE
        next_run = {name: 0.0 for name in schedule}
        while True:
            now = time.monotonic()
            for name, entry in schedule.items():
                if once or now >= next_run[name]:
                    try:
                        app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
                    except Exception:
                        log.exception("periodic task %s failed", name)
                    next_run[name] = now + float(entry["schedule"])
            if once:
                return
            time.sleep(1)
