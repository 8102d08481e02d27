"""Celery tasks of the alerts app. ``deliver`` is one attempt of one delivery (retries are scheduled by
the service with backoff and jitter, and re-published by the sweeper if a message is lost)."""

from celery import shared_task


@shared_task(name="alerts.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> str:
    from .services import attempt_delivery

    return attempt_delivery(delivery_id)


@shared_task(name="alerts.retry_due_deliveries")
def retry_due_deliveries() -> int:
    from .services import retry_due_deliveries as sweep

    return sweep()


@shared_task(name="alerts.check_agent_silence")
def check_agent_silence() -> int:
    from .services import check_agent_silence as check

    return check()
