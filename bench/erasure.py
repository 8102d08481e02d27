"""What erasable personal data costs (docs/operations.md, "Erasure of a person"): recording an audit event,
verifying the journal, and erasing a person — each against a baseline in the same run.

Its own database (``csm_bench_erasure`` unless CSM_BENCH_DB says otherwise) and redis-server
(bench/snapshots_common.py), in-process (server time only):

* ``record``: ``record_event`` as the report path calls it (a service account: nothing personal) and as a
  person's web action calls it (label, address and user agent committed as HMAC-SHA256), each with the
  detection of personal values on ("as shipped") and off (the format before it: values in clear), ``--runs``
  times interleaved; median per event and the ratio on/off;
* ``verify``: ``verify_journal`` over ``--events`` events of a person against the same number of a service
  account's, in two orgs of their own; time per 1,000 leaves and the ratio;
* ``erase``: ``erase_person`` of that person (their ``--events`` events and their removal from the org
  rewritten, keys destroyed); time per 1,000 events rewritten against the time ``verify`` took for them.

    .venv/bin/python bench/erasure.py [--runs 2000] [--events 5000]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_erasure")

from snapshots_common import make_org, ratio, setup  # noqa: E402  (the database name is read on import)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    setup()

    from django.contrib.auth import get_user_model
    from django.db import transaction

    import audit.services
    from audit.choices import AuditAction
    from audit.context import AuditContext
    from audit.erasure import erase_person
    from audit.services import record_event
    from journal.verify import verify_journal
    from tenants.models import Membership

    org, _ = make_org("bench")
    person = get_user_model().objects.create_user(username="alice@bench.example", email="alice@bench.example")
    Membership.objects.create(org=org, user=person, role="member")
    agent = AuditContext(actor_type="service_account", actor_label="agent (csm_ab…)", service_account_id=1,
                         token_id=1, request_id="r", ip="10.0.0.7", user_agent="kosli/2.11")
    human = AuditContext.for_user(person, request_id="r", ip="203.0.113.7", user_agent="Mozilla/5.0 (X11) Firefox")
    cases = {
        "service account (report path)": (agent, AuditAction.REPORT_RECEIVED, ("report", 1, "report 1 to prod"),
                                          {"environment": "prod", "type": "K8S", "sha256": "a" * 64, "size": 145000}),
        "person (web action)": (human, AuditAction.ENVIRONMENT_UPDATED, ("environment", 1, "prod"),
                                {"description": "the production cluster", "require_provenance": True}),
    }
    shipped = audit.services.personal_of

    def off(data, user_id, people):
        return {}

    timings = {(name, side): [] for name in cases for side in ("on", "off")}
    for run in range(args.runs + 50):
        for name, (ctx, action, target, after) in cases.items():
            for side in ("on", "off") if run % 2 else ("off", "on"):
                audit.services.personal_of = shipped if side == "on" else off
                start = time.perf_counter()
                with transaction.atomic():
                    record_event(ctx, org, action, target, after=after)
                if run >= 50:
                    timings[(name, side)].append(time.perf_counter() - start)
    audit.services.personal_of = shipped
    print(f"record_event, median of {args.runs} (ms per event):")
    for name in cases:
        on, base = (statistics.median(timings[(name, side)]) * 1000 for side in ("on", "off"))
        print(f"  {name:32} on {on:.3f}  off {base:.3f}  on/off {ratio(on, base)}")

    people_org, _ = make_org("people")
    agents_org, _ = make_org("agents")
    bob = get_user_model().objects.create_user(username="bob@bench.example", email="bob@bench.example")
    Membership.objects.create(org=people_org, user=bob, role="member")
    as_bob = AuditContext.for_user(bob, request_id="r", ip="203.0.113.8", user_agent="Mozilla/5.0 (X11) Firefox")
    for start in range(0, args.events, 500):
        with transaction.atomic():
            for index in range(start, min(start + 500, args.events)):
                _, action, target, after = cases["person (web action)"]
                record_event(as_bob, people_org, action, target, after={**after, "n": index})
                ctx, action, target, after = cases["service account (report path)"]
                record_event(ctx, agents_org, action, target, after={**after, "n": index})
    verify = {}
    for slug, each in (("agents", agents_org), ("people", people_org)):
        start = time.perf_counter()
        assert verify_journal(each) is None
        verify[slug] = time.perf_counter() - start
    per_k = {slug: seconds / args.events * 1000 for slug, seconds in verify.items()}
    print(f"verify_journal of {args.events} events (s per 1,000 leaves): service account {per_k['agents']:.3f}, "
          f"person {per_k['people']:.3f}, person/service account {ratio(per_k['people'], per_k['agents'])}")

    start = time.perf_counter()
    result = erase_person("bob@bench.example")
    erase = time.perf_counter() - start
    rewritten = result.counts["audit_event rows"]
    assert verify_journal(people_org) is None
    print(f"erase_person: {rewritten} audit events rewritten in {erase:.2f} s "
          f"({erase / max(rewritten, 1) * 1000:.3f} s per 1,000; verify of the same journal took "
          f"{verify['people']:.2f} s, erase/verify {ratio(erase, verify['people'])}); the journal verifies after")


if __name__ == "__main__":
    main()
