"""Fixtures shared by the vulnerability tests."""

import pytest

from tenants.choices import Role
from tests.evidence.conftest import begin_trail, make_flow
from tests.vulns.exposure_support import History, build_history


@pytest.fixture
def reporter(org, token_for, api):
    """A member's API client with flow ``backend`` and trail ``build-1`` begun (what a CI pipeline has)."""
    client = api(token=token_for(org, Role.MEMBER))
    make_flow(client)
    begin_trail(client)
    return client


@pytest.fixture
def history(org, django_capture_on_commit_callbacks):
    """The reference snapshot history of ``exposure_support.build_history``."""
    return build_history(History(org, django_capture_on_commit_callbacks))
