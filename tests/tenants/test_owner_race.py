"""The one-owner rule holds under concurrency: two owners demoting each other at the same moment
leave exactly one owner (membership changes of an org are serialised on the org row)."""

import threading

import pytest
from django.db import connection

from audit.context import AuditContext
from csm.errors import ServiceError
from tenants.choices import Role
from tenants.models import Membership
from tenants.services import change_role, remove_member


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", ["demote", "remove"])
def test_concurrent_owner_changes_keep_one_owner(org, owner, member_of, operation):
    second = member_of(org, Role.OWNER)
    targets = [Membership.objects.get(org=org, user=owner), Membership.objects.get(org=org, user=second)]
    barrier = threading.Barrier(2)
    outcomes = []

    def act(membership):
        try:
            barrier.wait()
            if operation == "demote":
                change_role(AuditContext.system(), membership, Role.ADMIN, actor_role=Role.OWNER)
            else:
                remove_member(AuditContext.system(), membership, actor_role=Role.OWNER)
            outcomes.append("done")
        except ServiceError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=act, args=(m,)) for m in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "done"]
    assert Membership.objects.filter(org=org, role=Role.OWNER).count() == 1
