"""Shared fixtures: users, orgs, memberships, tokens, API clients and a real Celery worker.

Tests run against real PostgreSQL and Redis (csm/test_settings.py). ``celery_worker`` starts a real
worker (``celery.contrib.testing.worker``) consuming from Redis in this process; tests using it need
``transactional_db`` because the worker has its own database connection.
"""

import contextlib
import itertools
import time

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from audit.context import AuditContext
from tenants.choices import Role
from tenants.models import Membership
from tenants.services import create_api_token, create_org, create_service_account

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Start every session with an empty test broker, so no stale task from an earlier run is consumed."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).flushdb()
    yield


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def make_user(django_user_model):
    def make(email=None, password=PASSWORD, **extra):
        email = email or f"user{next(_counter)}@example.com"
        return django_user_model.objects.create_user(username=email, email=email, password=password, **extra)

    return make


@pytest.fixture
def make_org(make_user):
    def make(slug=None, owner=None, name=None):
        owner = owner or make_user()
        slug = slug or f"org{next(_counter)}"
        return create_org(AuditContext.for_user(owner), slug, name or slug.title(), owner)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com")


@pytest.fixture
def org(make_org, owner):
    return make_org("acme", owner, "Acme Corp")


@pytest.fixture
def other_org(make_org, make_user):
    return make_org("globex", make_user("globex-owner@example.com"), "Globex")


@pytest.fixture
def member_of(make_user):
    """member_of(org, role) -> a new user with that role in org."""

    def make(org, role=Role.MEMBER, email=None):
        user = make_user(email)
        Membership.objects.create(org=org, user=user, role=role)
        return user

    return make


@pytest.fixture
def token_for():
    """token_for(org, role) -> plaintext token of a new service account with that role."""

    def make(org, role=Role.SNAPSHOTTER, name=None):
        ctx = AuditContext.system("test")
        account = create_service_account(ctx, org, name or f"sa-{next(_counter)}", role)
        _, plaintext = create_api_token(ctx, org, "test", service_account=account)
        return plaintext

    return make


@pytest.fixture
def api():
    """api(token=None, user=None) -> an APIClient authenticated by bearer token or session."""

    def make(token=None, user=None):
        client = APIClient()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        if user:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def owner_api(api, org, owner):
    return api(user=owner)


@contextlib.contextmanager
def real_worker(queues=None):
    """A real Celery worker consuming ``queues`` (default: every queue in settings) from the Redis
    test broker, in a thread of this process. Celery records a worker's queue selection on the shared
    app, so it is reset to every queue afterwards (production workers are separate processes)."""
    from celery.contrib.testing.worker import start_worker

    from csm.celery import app

    everything = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING",
                          queues=queues or everything) as worker:
            yield worker
    finally:
        app.amqp.queues.select(everything)


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker consuming every queue (see ``real_worker``)."""
    with real_worker() as worker:
        yield worker


def wait_for(predicate, what: str = "condition", limit: float = 120):
    """Poll ``predicate`` until it returns something true (and return it): a bound on waiting for a real
    process, not a timing assertion."""
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def tamper(sql, params=()):
    """Change rows as the database owner would: with the append-only triggers switched off."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
