"""The embedded default's scheduler runs every periodic task (sweeper, agent-silent checks, retries)."""

import pytest
from django.conf import settings
from django.core.management import call_command

from csm.celery import app


@pytest.mark.django_db
def test_run_scheduler_once_runs_every_beat_task_without_error(caplog):
    assert settings.CELERY_BEAT_SCHEDULE, "no periodic tasks are scheduled"
    app.conf.task_always_eager = True
    try:
        call_command("run_scheduler", once=True)
    finally:
        app.conf.task_always_eager = False
    failures = [record for record in caplog.records if "periodic task" in record.getMessage()]
    assert failures == []
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
