"""What identity (issue 17) costs each request: token scopes, the new-network check, the session and
two-factor middleware — against the same requests with them switched off, in the same run.

In-process through Django's test client (no network: server time only), its own database
(``csm_bench_identity`` unless CSM_BENCH_DB says otherwise) and redis-server (bench/snapshots_common.py).
Three requests, each ``--runs`` times after a warm-up, interleaved so machine noise hits both sides alike:

* ``report``: ``PUT /api/v2/environments/{org}/prod-eu/report/server`` (a 50-artifact report, accepted and
  stored durably; not ingested) — the agent's hot path;
* ``read``: ``GET /api/v2/environments/{org}`` — an API read;
* ``page``: ``GET /o/{org}/`` as a signed-in member — a web page.

"on" = as shipped, with an agent token (a member service account) limited to ``prod-eu`` and to
``10.0.0.0/8`` (scope checks, network check, the new-network detector's cache lookup) and a member whose
session passes the session and two-factor middleware; "off" = an unlimited token of the same account,
identity's token hook unregistered and its two middlewares removed.
Printed: median server time per request on each side and the ratio on/off.

    .venv/bin/python bench/identity_overhead.py [--runs 400]
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_identity")

from snapshots_common import SERVER_ENV, make_org, ratio, setup  # noqa: E402  (the database name is read on import)

SERVER_ENV["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
IDENTITY_MIDDLEWARE = ("identity.middleware.SessionActivityMiddleware",
                       "identity.twofactor_middleware.RequireTwoFactorMiddleware")


def report_body(version: int) -> bytes:
    items = [{"digests": {f"service-{slot}": f"{(version * 1000 + slot):064x}"}, "creationTimestamp": 1_764_000_000}
             for slot in range(50)]
    return json.dumps({"artifacts": items}).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    setup()

    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from audit.context import AuditContext
    from identity.twofactor import mark_session_passed
    from snapshots.services.environments import create_or_update_environment
    from tenants import hooks
    from tenants.services import create_api_token, create_service_account

    # Static URLs without a collectstatic manifest (the manifest lookup is a dict access either way).
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
    org, _ = make_org("bench")
    ctx = AuditContext.system("bench")
    create_or_update_environment(ctx, org, "prod-eu", "server")
    account = create_service_account(ctx, org, "agent", "member")
    _, scoped = create_api_token(ctx, org, "agent", service_account=account, scope_environments=["prod-eu"],
                                 allowed_networks=["10.0.0.0/8"])
    _, unlimited = create_api_token(ctx, org, "agent, unlimited", service_account=account)
    member = org.memberships.get(role="owner").user

    def session_client():
        client = Client()
        client.force_login(member)
        session = client.session
        mark_session_passed(session)
        session.save()
        return client

    without_identity = [m for m in settings.MIDDLEWARE if m not in IDENTITY_MIDDLEWARE]
    saved_hooks = list(hooks.token_used)
    counter = iter(range(1, 10_000_000))

    def requests_for(token, client):
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="10.1.2.3")
        return {
            "report": lambda: api.put(f"/api/v2/environments/{org.slug}/prod-eu/report/server",
                                      report_body(next(counter)), content_type="application/json"),
            "read": lambda: api.get(f"/api/v2/environments/{org.slug}"),
            "page": lambda: client.get(f"/o/{org.slug}/"),
        }

    timings = {(side, name): [] for side in ("on", "off") for name in ("report", "read", "page")}

    def run(side, name, request):
        started = time.perf_counter()
        response = request()
        elapsed = time.perf_counter() - started
        assert response.status_code in (200, 201), (side, name, response.status_code, response.content[:300])
        timings[(side, name)].append(elapsed)

    on = requests_for(scoped, session_client())
    with override_settings(MIDDLEWARE=without_identity):
        off_client = session_client()
    off = requests_for(unlimited, off_client)
    for index in range(args.runs + 1):
        for name in ("report", "read", "page"):
            hooks.token_used[:] = saved_hooks
            run("on", name, on[name])
            hooks.token_used[:] = []
            with override_settings(MIDDLEWARE=without_identity):
                run("off", name, off[name])
        if index == 0:  # the warm-up round is not counted
            for values in timings.values():
                values.clear()
    hooks.token_used[:] = saved_hooks

    print(f"identity overhead, {args.runs} requests each, median server time (in-process)")
    print(f"{'request':<8} {'off (ms)':>9} {'on (ms)':>9}  on/off")
    for name in ("report", "read", "page"):
        off_ms = statistics.median(timings[("off", name)]) * 1000
        on_ms = statistics.median(timings[("on", name)]) * 1000
        print(f"{name:<8} {off_ms:9.2f} {on_ms:9.2f}  {ratio(on_ms, off_ms)}")


if __name__ == "__main__":
    main()
