"""Server time of every web page with 10,000 artifacts in an environment and 1,000 snapshots, against the
same pages of a small org measured in the same run.

Data (its own database ``csm_bench_pages`` unless CSM_BENCH_DB says otherwise, and its own redis-server;
see bench/snapshots_common.py), everything through the real services, so the rows are what ingest and
evaluation leave:

* org ``big``: environment ``production`` (server) with a provenance policy attached and an alert action
  (email; created before the last 20 reports) — ``--snapshots`` reports of ``--artifacts`` artifacts each, ingested by
  ``ingest_report`` one after the other (the after-snapshot hooks evaluate compliance and raise alerts
  in-process), each report replacing ``--churn`` artifacts of the one before: entries with validity
  ranges, events, compliance decisions, deliveries; half of the artifacts have provenance (a flow's
  artifacts). A second, unpoliced environment ``staging`` (3 snapshots of 20 artifacts), a flow with
  trails, reported artifacts and attestations, a service account with a token, a personal token, and two
  reports (one generated, one pending).
* org ``small``: the same shape with 20 artifacts and 10 snapshots — the baseline.

Then every web page is timed: the list comes from the URL resolver (every route outside /api/, /admin/
and /healthz), its URL arguments filled from the data; a route whose arguments cannot be filled, that
answers 405 to GET (a form's POST target) or that is not HTML (a download) is listed as not measured,
with why. Each page is requested ``--runs`` times (after one warm-up) in-process through Django's test
client as the signed-in owner: the server time from the request entering the middleware to the response
rendered, no network. Printed: min / median / max per page on ``big``, the median on ``small``, the ratio,
the query count, and ``SLOW`` where the median on ``big`` is over the target (300 ms).

    .venv/bin/python bench/pages.py [--artifacts 10000] [--snapshots 1000] [--churn 10] [--runs 5] [--keep]
    .venv/bin/python bench/pages.py --keep --only environment,diff   # only pages whose name or URL has a word

``--keep`` reuses the data of an earlier run (building ``big`` takes a few minutes).
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_pages")

from snapshots_common import SERVER_ENV, ratio, setup  # noqa: E402  (the database name is read on import)

SERVER_ENV["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
TARGET_MS = 300
POLICY = "_schema: https://kosli.com/schemas/policy/environment/v1\nartifacts:\n  provenance:\n    required: true\n"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fingerprint(org: str, slot: int, version: int) -> str:
    import hashlib

    return hashlib.sha256(f"{org}/{slot}/{version}".encode()).hexdigest()


def report_body(running: list[str]) -> bytes:
    items = [{"digests": {f"service-{slot}": fp}, "creationTimestamp": 1_764_000_000 + slot}
             for slot, fp in enumerate(running)]
    return json.dumps({"artifacts": items}).encode()


def build_org(slug: str, artifacts: int, snapshots: int, churn: int) -> None:
    """One org of the shape described above, through the services."""
    from django.contrib.auth import get_user_model

    from alerts import services as alerts
    from audit.context import AuditContext
    from evidence import services as evidence
    from evidence.models import Artifact, Flow, Trail
    from policies import services as policies
    from reports.services import request_report
    from reports.tasks import generate_report
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report
    from tenants import services as tenants
    from tenants.choices import Role

    ctx = AuditContext.system("bench")
    owner = get_user_model().objects.create_user(username=f"{slug}@bench", email=f"{slug}@bench", password="bench")
    org = tenants.create_org(ctx, slug, slug.title(), owner)
    owner_ctx = AuditContext.for_user(owner)
    production, _ = create_or_update_environment(ctx, org, "production", "server", description="production cluster")
    staging, _ = create_or_update_environment(ctx, org, "staging", "server", description="unpoliced")
    policies.save_policy(ctx, org, "needs-provenance", POLICY, description="every artifact has provenance")
    policies.attach_policies(ctx, org, production, ["needs-provenance"])
    account = tenants.create_service_account(ctx, org, "k8s-agent", Role.SNAPSHOTTER)
    tenants.create_api_token(ctx, org, "agent", service_account=account)
    tenants.create_api_token(owner_ctx, org, "laptop", user=owner)

    running = [fingerprint(slug, slot, 0) for slot in range(artifacts)]
    # Provenance: a flow with trails, reported artifacts and attestations (services), and half of the
    # running artifacts built by it (bulk rows, as the policies benchmark does).
    flow, _ = evidence.upsert_flow(ctx, org, {"name": "backend", "description": "the API"})
    for release in range(5):
        fp = running[release]
        evidence.report_artifact(ctx, org, flow, {"fingerprint": fp, "filename": f"service-{release}",
                                                  "trail_name": f"release-{release}", "git_commit": COMMIT})
        evidence.create_attestation(ctx, org, flow, f"release-{release}", "generic",
                                    {"attestation_name": "code-review", "artifact_fingerprint": fp,
                                     "is_compliant": True})
    bulk = Flow.objects.create(org=org, name="platform")
    trail = Trail.objects.create(org=org, flow=bulk, name="build-1")
    Artifact.objects.bulk_create([Artifact(org=org, flow=bulk, trail=trail, fingerprint=fp, filename="service",
                                           template_name="service") for fp in running[5::2]], batch_size=2000)

    started = time.perf_counter()
    for index in range(1, snapshots + 1):
        if index > 1:
            for j in range(churn):
                slot = ((index - 2) * churn + j) % artifacts
                running[slot] = fingerprint(slug, slot, index)
        if index == max(snapshots - 20, 1):
            # An alert action for the last reports: a delivery for every unauthorized artifact (each
            # delivery costs a few rows and an audit event; thousands of them would only slow the set-up).
            alerts.create_action(ctx, org, "ops-mail", "email", email="ops@example.com",
                                 triggers=["ON_UNAUTHORIZED_ARTIFACT", "ON_NON_COMPLIANT_ENV", "ON_EXITED_ARTIFACT"])
        report, _ = accept_report(ctx, production, "server", report_body(running))
        ingest_report(report.pk)
        if index % 50 == 0 or index == 2:
            print(f"  {slug}: {index:,}/{snapshots:,} snapshots ingested ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    for index in range(3):
        report, _ = accept_report(ctx, staging, "server",
                                  report_body([fingerprint(slug + "-staging", slot, index) for slot in range(20)]))
        ingest_report(report.pk)
    span = {"from": "2000-01-01", "to": "2100-01-01"}
    done = request_report(owner_ctx, org, "environment", {"environment": "staging", **span}, role=Role.OWNER)
    generate_report.run(str(done.pk), owner_ctx.to_dict())
    request_report(owner_ctx, org, "org", span, role=Role.OWNER)  # stays pending: no worker here


def page_args(slug: str) -> dict:
    """URL kwargs filled from the org's data, by kwarg name (all strings)."""
    from alerts.models import Action, Delivery
    from evidence.models import Artifact, Attestation, EvidenceFile, Trail
    from policies.models import AllowlistEntry
    from reports.models import AuditReport
    from snapshots.models import Environment
    from tenants.models import ApiToken, Invitation, Membership, Org, ServiceAccount

    org = Org.objects.get(slug=slug)
    env = Environment.objects.get(org=org, name="production")
    args = {"org": slug, "env": "production", "index": str(max(env.last_snapshot_index // 2, 1)),
            "name": "needs-provenance", "flow": "backend", "trail": "release-0"}
    trail = Trail.objects.filter(org=org, flow__name="backend").order_by("name").first()
    optional = {
        "fingerprint": Artifact.objects.filter(org=org, flow__name="backend").values_list("fingerprint", flat=True),
        "sha256": EvidenceFile.objects.filter(org=org).values_list("sha256", flat=True),
        "action_id": Action.objects.filter(org=org).values_list("pk", flat=True),
        "delivery_id": Delivery.objects.filter(org=org).values_list("pk", flat=True),
        "report_id": AuditReport.objects.filter(org=org, status="done").values_list("pk", flat=True),
        "membership_id": Membership.objects.filter(org=org).values_list("pk", flat=True),
        "account_id": ServiceAccount.objects.filter(org=org).values_list("pk", flat=True),
        "token_id": ApiToken.objects.filter(org=org).values_list("pk", flat=True),
        "invitation_id": Invitation.objects.filter(org=org).values_list("pk", flat=True),
        "entry_id": AllowlistEntry.objects.filter(org=org).values_list("pk", flat=True),
        "attestation_id": Attestation.objects.filter(org=org).values_list("pk", flat=True),
    }
    for key, query in optional.items():
        value = query.first()
        if value is not None:
            args[key] = str(value)
    if trail is not None:
        args["trail"] = trail.name
    return args


# Pages whose interesting answer needs a query string, by URL name: (label suffix, query string).
QUERIES = {
    "snapshot-diff": [(" (#N-1 vs #N)", "?env1=production&at1={prev}&env2=production&at2={last}"),
                      (" (#N/2 vs #N)", "?env1=production&at1={half}&env2=production&at2={last}"),
                      (" (vs staging)", "?env1=production&at1={last}&env2=staging&at2=3")],
    "search": [("", "?q=service-1")],
    "environment-detail": [("", ""), (" (timeline p. 2)", "?page=2"), (" (artifacts p. 50)", "?artifacts_page=50")],
    "snapshot-detail": [("", ""), (" (latest)", "@last"), (" (artifacts p. 50)", "?artifacts_page=50")],
    "policy-snapshot": [("", ""), (" (latest)", "@last"), (" (artifacts p. 50)", "?artifacts_page=50")],
    "policy-detail": [("", "")],
}


def routes():
    """(route, name) of every web route: URL resolver order, /api/, /admin/ and /healthz left out."""
    from django.urls import URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern.name, pattern.default_args

    for route, name, defaults in walk(get_resolver().url_patterns):
        if route.startswith(("api/", "admin/")) or route == "healthz" or not name:
            continue
        yield route, name, defaults


def urls_for(slug: str):
    """[(label, url or None, why not)] for every web route, arguments filled for org ``slug``."""
    import re

    from django.urls import NoReverseMatch, reverse

    from snapshots.models import Environment

    args = page_args(slug)
    last = Environment.objects.get(org__slug=slug, name="production").last_snapshot_index
    fills = {"half": args["index"], "last": str(last), "prev": str(max(last - 1, 1))}
    out = []
    for route, name, _defaults in routes():
        wanted = re.findall(r"<(?:\w+:)?(\w+)>", route)
        missing = [key for key in wanted if key not in args]
        if missing:
            out.append((name, None, f"no {', '.join(missing)} in the data"))
            continue
        kwargs = {key: args[key] for key in wanted}
        for suffix, query in QUERIES.get(name, [("", "")]):
            these = dict(kwargs)
            if query == "@last":
                these["index"], query = str(last), ""
            try:
                url = reverse(name, kwargs=these)
            except NoReverseMatch as error:
                out.append((name + suffix, None, f"cannot reverse: {error}"))
                continue
            out.append((name + suffix, url + query.format(**fills), ""))
    return out


def measure(client, url: str, runs: int) -> tuple[int, str, list[float], int]:
    """(status, content type, server seconds per run, queries of one run)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up (and the status / type)
    status, ctype = response.status_code, response.get("Content-Type", "")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return status, ctype, times, len(queries)


def measure_org(slug: str, runs: int, only: str | None) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=f"{slug}@bench"))
    results = {}
    for label, url, why in urls_for(slug):
        if only and not any(word in label or (url and word in url) for word in only.split(",")):
            continue
        if url is None:
            results[label] = {"why": why}
            continue
        status, ctype, times, queries = measure(client, url, runs)
        if status == 405:
            results[label] = {"why": "not a page: GET answers 405 (a form's POST target)", "url": url}
        elif status in (301, 302, 303, 307, 308):
            results[label] = {"why": f"not a page: redirects ({status})", "url": url}
        elif status != 200:
            results[label] = {"why": f"GET answered {status}", "url": url}
        elif not ctype.startswith("text/html"):
            results[label] = {"why": f"not a page: a download ({ctype.split(';')[0]})", "url": url}
        else:
            results[label] = {"url": url, "times": times, "queries": queries}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=int, default=10_000)
    parser.add_argument("--snapshots", type=int, default=1_000)
    parser.add_argument("--churn", type=int, default=10, help="artifacts replaced by each report")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="measure only the pages whose name or URL contains one of these "
                                           "comma-separated words")
    parser.add_argument("--keep", action="store_true", help="reuse the data of a previous run")
    args = parser.parse_args()
    setup(fresh=not args.keep)
    from django.conf import settings
    from django.test.utils import override_settings

    from tenants.models import Org

    # Static URLs without a collectstatic manifest (the manifest lookup is a dict access either way).
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()

    if not Org.objects.filter(slug="big").exists():
        started = time.perf_counter()
        build_org("small", 20, 10, 1)
        build_org("big", args.artifacts, args.snapshots, args.churn)
        print(f"data built in {time.perf_counter() - started:.0f} s")
    from snapshots.models import Snapshot, SnapshotEntry

    where = {"environment__org__slug": "big", "environment__name": "production"}
    print(f"big/production: {Snapshot.objects.filter(**where).count():,} snapshots, "
          f"{SnapshotEntry.objects.filter(**where).count():,} entry rows")

    small = measure_org("small", args.runs, args.only)
    big = measure_org("big", args.runs, args.only)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.runs} runs per page after a "
          f"warm-up; server time in ms (Django test client, in-process)")
    print(f"\n{'page':<38} {'big min':>8} {'median':>8} {'max':>8} {'queries':>7} {'small':>8} {'ratio':>7}")
    slow, skipped = [], []
    for label, result in big.items():
        if "times" not in result:
            skipped.append((label, result["why"]))
            continue
        times = result["times"]
        median = statistics.median(times) * 1000
        base = small.get(label, {}).get("times")
        base_median = statistics.median(base) * 1000 if base else None
        flag = "  SLOW" if median > TARGET_MS else ""
        if flag:
            slow.append(label)
        print(f"{label:<38} {min(times) * 1000:>8.1f} {median:>8.1f} {max(times) * 1000:>8.1f} "
              f"{result['queries']:>7} {(f'{base_median:.1f}' if base_median else '-'):>8} "
              f"{(ratio(median, base_median) if base_median else '-'):>7}{flag}")
    if skipped:
        print("\nnot measured:")
        for label, why in skipped:
            print(f"  {label}: {why}")
    print(f"\n{len(big) - len(skipped)} pages measured; over {TARGET_MS} ms median: "
          f"{', '.join(slow) if slow else 'none'}")


if __name__ == "__main__":
    main()
