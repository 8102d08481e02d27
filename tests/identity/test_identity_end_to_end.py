"""Issue 17's "done when", in one run with real parts: an org requires SSO (a real OpenID Connect provider,
oidc-provider under Node) and two-factor; its IdP provisions and deprovisions a person over SCIM with Okta's
published requests; its agent token is limited to its own environment; and a token used from a new network
and a change outside a change window show up as unusual activity in the audit log and as alerts delivered
by a real Celery worker to a local webhook receiver."""

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from alerts import services as alert_services
from audit.context import AuditContext
from audit.models import AuditEvent
from identity import sso, twofactor
from identity.activity import UnusualKind
from tenants.choices import Role
from tenants.models import Membership
from tenants.services import create_api_token, create_service_account
from tests.alerts.conftest import receiver  # noqa: F401 - the local webhook receiver fixture
from tests.identity.scim_support import ScimClient, fixtures, scim_token
from tests.identity.sso_support import configure_sso, idp_sign_in, idp_url, oidc_provider, sso_settings  # noqa: F401
from tests.identity.twofactor_support import enrol_totp, totp_code
from tests.identity.unusual_support import flags, fp, ingest_at, server_report
from tests.policies.helpers import make_env

CTX = AuditContext.system("test")
TRIGGER = "ON_UNUSUAL_ACTIVITY"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_sso_2fa_scim_scoped_tokens_and_unusual_activity(client, org, owner, oidc_provider, sso_settings,  # noqa: F811
                                                        api, receiver, celery_worker):  # noqa: F811
    # The org's security team: SSO through its IdP (admins from the IdP's group), SSO and two-factor required,
    # and unusual activity sent to their webhook.
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    sso.set_group_role(CTX, org, "csm-admins", Role.ADMIN)
    sso.set_require_sso(CTX, org, True)
    enrol_totp(owner)  # whoever switches two-factor on has a factor (or would lock themselves out)
    twofactor.set_require_two_factor(CTX, org, True, owner)
    alert_services.create_action(CTX, org, "security", "webhook", url=receiver.url, triggers=[TRIGGER])

    # The IdP provisions Alice over SCIM, with Okta's published create request.
    okta = ScimClient(scim_token(org, "Okta"))
    create = dict(fixtures("okta")["02_create_user"]["body"], userName="alice@acme.test", externalId="00u-alice",
                  emails=[{"primary": True, "value": "alice@acme.test", "type": "work"}])
    answer = okta.post("/Users", create)
    assert answer.status_code == 201, answer.content
    alice_id = answer.json()["id"]
    membership = Membership.objects.get(org=org, user__email="alice@acme.test")
    assert (membership.source, membership.suspended_at) == ("scim", None)

    # Alice signs in through the IdP (her groups make her an admin); the org's pages stay closed until she
    # enrols a second factor, then open.
    start = client.get("/sso/start/", {"email": "alice@acme.test"})
    callback = urlsplit(idp_sign_in(idp_url(start), "alice"))
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    blocked = client.get("/o/acme/")
    assert blocked.status_code == 302 and blocked["Location"].startswith("/account/security/")
    assert client.get("/account/security/totp/").status_code == 200
    device = twofactor.pending_totp_device(membership.user)
    assert client.post("/account/security/totp/", {"code": totp_code(device.key)}).status_code == 302
    assert client.get("/o/acme/").status_code == 200
    # A password sign-in of a member is refused while the org requires SSO.
    assert sso.sso_required_orgs(membership.user) == [(org, Role.ADMIN)]

    # The IdP deprovisions her (Okta's deactivation request): her session ends at once.
    deactivate = fixtures("okta")["12_deactivate_user"]["body"]
    assert okta.patch(f"/Users/{alice_id}", deactivate).status_code == 200
    membership.refresh_from_db()
    assert membership.suspended_at is not None
    after = client.get("/o/acme/")
    assert after.status_code == 302 and after["Location"].startswith("/login/")

    # The agent's token is limited to its own environment: another environment is a 403, audited.
    make_env(org, "prod-eu")
    make_env(org, "staging")
    account = create_service_account(CTX, org, "agent", Role.SNAPSHOTTER)
    _, agent = create_api_token(CTX, org, "prod-eu agent", service_account=account, scope_environments=["prod-eu"])
    refused = api(token=agent).put("/api/v2/environments/acme/staging/report/server",
                                   server_report({"web": fp(1)}), content_type="application/json",
                                   REMOTE_ADDR="10.1.2.3")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "token_scope"
    assert AuditEvent.objects.filter(org=org, action="token.scope_denied").exists()

    # The same token from a network it never used: unusual activity in the audit log and an alert.
    reported = api(token=agent).put("/api/v2/environments/acme/prod-eu/report/server",
                                    server_report({"web": fp(1)}), content_type="application/json",
                                    REMOTE_ADDR="192.168.7.1")
    assert reported.status_code in (200, 201), reported.content
    [network_flag] = flags(org, UnusualKind.NEW_NETWORK)
    assert network_flag.after["network"] == "192.168.7.0/24"

    # A change outside the production environment's change windows: flagged, and alerted too.
    prod = make_env(org, "prod", change_windows=[{"days": ["mon", "tue", "wed", "thu", "fri"],
                                                  "start": "09:00", "end": "17:00"}])
    snapshot = ingest_at(prod, {"web": fp(2)}, datetime(2026, 12, 5, 3, 0, tzinfo=UTC))  # Saturday, 03:00
    assert snapshot.outside_change_window
    [window_flag] = flags(org, UnusualKind.OUTSIDE_CHANGE_WINDOW)

    bodies = [json.loads(request["body"]) for request in receiver.wait_for(2)]
    assert {b["unusual_activity"]["kind"] for b in bodies} == {UnusualKind.NEW_NETWORK,
                                                               UnusualKind.OUTSIDE_CHANGE_WINDOW}
    assert {b["unusual_activity"]["audit_event"]["seq"] for b in bodies} == {network_flag.seq, window_flag.seq}
    # And the audit log page marks both.
    owner_client = client.__class__()
    owner_client.force_login(owner)
    session = owner_client.session
    twofactor.mark_session_passed(session)
    session.save()
    page = owner_client.get("/o/acme/audit/", {"unusual": "1"}).content.decode()
    assert page.count('data-testid="unusual-activity"') == 2
