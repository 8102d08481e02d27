"""Vulnerability matching: 10,000 running components against 200,000 advisories in the OSV shape.

Generates (seeded) 200,000 advisories as OSV records stored the way the importer stores them
(``Advisory`` + ``AffectedPackage``): a realistic ecosystem mix (npm, PyPI, Maven, Go, Debian, Alpine,
crates.io, RubyGems, NuGet), popular packages named by many advisories, 1–3 introduced/fixed intervals
per range, some ``last_affected``, open ranges, explicit ``versions[]``, distribution releases; then 20
artifacts' SBOM attestations of 500 components each (10,000 components, 60 % of them packages some
advisory names). Measured, in-process:

1. Full match: ``matching.index_sbom`` of every SBOM (index components → packages, judge every
   candidate pair with univers, write the matches). Baseline in the same run: the plain indexed lookup
   of the same keys without version checks (one join of the packages to the affected entries by
   ``package_key``, every candidate row read into Python) — what any matcher must at least read.
2. Incremental match of one new advisory naming a popular package: ``matching.rematch_advisories``.
   Baseline: the plain indexed lookup of the components with that key.
3. Peak memory (VmHWM, reset before each phase through /proc/self/clear_refs) against the resident
   memory before it: matching works in chunks of ``matching.CHUNK`` components, so the peak stays flat
   when the number of components grows (``--components 20000`` to see it).

    .venv/bin/python bench/vulns_match.py [--advisories 200000] [--components 10000] [--keep]

Uses its own database (``csm_bench_vulns`` unless CSM_BENCH_DB says otherwise) and redis-server (see
bench/snapshots_common.py); no web server or worker. ``--keep`` re-measures on the data of the last run.
"""

import argparse
import hashlib
import os
import random
import time
from pathlib import Path

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_vulns")

from snapshots_common import make_org, ratio, setup  # noqa: E402  (the database name is read on import)

# (OSV ecosystem, purl type, share of advisories, distinct vulnerable packages)
MIX = [("npm", "npm", 0.30, 12_000), ("PyPI", "pypi", 0.22, 8_000), ("Maven", "maven", 0.15, 7_000),
       ("Go", "golang", 0.10, 4_000), ("Debian:12", "deb", 0.07, 2_500), ("Debian:11", "deb", 0.03, 2_500),
       ("Alpine:v3.19", "apk", 0.04, 1_500), ("crates.io", "cargo", 0.04, 1_500),
       ("RubyGems", "gem", 0.03, 1_000), ("NuGet", "nuget", 0.02, 800)]
BATCH = 5000


def popular(rng: random.Random, n: int) -> int:
    """A package index skewed to the popular ones (a few packages carry many advisories)."""
    return int(n * rng.random() ** 2.5)


def version(rng: random.Random, purl_type: str, major=None) -> str:
    major = rng.randint(0, 6) if major is None else major
    base = f"{major}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"
    if purl_type == "deb":
        return f"{base}-{rng.randint(1, 5)}"
    if purl_type == "apk":
        return f"{base}-r{rng.randint(0, 4)}"
    return base


def package_name(osv_ecosystem: str, purl_type: str, index: int) -> str:
    if purl_type == "maven":
        return f"org.example{index % 97}:lib-{index}"
    if purl_type == "golang":
        return f"github.com/example{index % 97}/mod-{index}"
    return f"{purl_type}-pkg-{index}"


def purl_of(purl_type: str, name: str, ver: str) -> str:
    if purl_type == "maven":
        group, artifact = name.split(":")
        return f"pkg:maven/{group}/{artifact}@{ver}"
    if purl_type == "golang":
        return f"pkg:golang/{name}@v{ver}"
    if purl_type == "deb":
        return f"pkg:deb/debian/{name}@{ver}?arch=amd64&distro=debian-12"
    if purl_type == "apk":
        return f"pkg:apk/alpine/{name}@{ver}?arch=x86_64&distro=3.19.1"
    return f"pkg:{purl_type}/{name}@{ver}"


def ranges(rng: random.Random, purl_type: str) -> tuple[list, list]:
    """OSV ranges (1–3 intervals, some last_affected, some open) and sometimes explicit versions."""
    events, majors = [], sorted(rng.sample(range(0, 7), rng.choice((1, 1, 2, 3))))
    for i, major in enumerate(majors):
        events.append({"introduced": "0" if i == 0 and rng.random() < 0.6 else f"{major}.0.0"
                       if purl_type not in ("deb", "apk") else version(rng, purl_type, major)})
        roll = rng.random()
        if roll < 0.80:
            events.append({"fixed": version(rng, purl_type, major)})
        elif roll < 0.92:
            events.append({"last_affected": version(rng, purl_type, major)})
        elif i == len(majors) - 1:
            break  # open: no fix yet
        else:
            events.append({"fixed": version(rng, purl_type, major)})
    kind = "SEMVER" if purl_type in ("npm", "golang", "cargo") and rng.random() < 0.5 else "ECOSYSTEM"
    explicit = [version(rng, purl_type) for _ in range(5)] if rng.random() < 0.1 else []
    return [{"type": kind, "events": events}], explicit


def generate_advisories(total: int, seed: int = 16) -> None:
    from django.utils import timezone

    from vulns import ecosystems
    from vulns.models import Advisory, AffectedPackage

    rng = random.Random(seed)
    now = timezone.now()
    shares = [share for *_, share, _ in MIX]
    made = 0
    while made < total:
        batch = []
        for n in range(made, min(made + BATCH, total)):
            osv_eco, purl_type, _, names = rng.choices(MIX, shares)[0]
            entries = []
            for _ in range(1 if rng.random() < 0.9 else 2):
                name = package_name(osv_eco, purl_type, popular(rng, names))
                rngs, explicit = ranges(rng, purl_type)
                entries.append({"package": {"ecosystem": osv_eco, "name": name}, "ranges": rngs, "versions": explicit})
            osv_id = f"GHSA-bench-{n:07d}"
            record = {"id": osv_id, "modified": "2026-01-01T00:00:00Z", "aliases": [f"CVE-2026-{n:07d}"],
                      "affected": entries}
            batch.append((Advisory(osv_id=osv_id, group_id=f"CVE-2026-{n:07d}", aliases=record["aliases"],
                                   summary=f"generated advisory {n}", modified=now, imported_at=now, updated_at=now,
                                   content_sha256=hashlib.sha256(osv_id.encode()).hexdigest(), record=record),
                          entries))
        advisories = Advisory.objects.bulk_create([a for a, _ in batch], batch_size=BATCH)
        affected = []
        for advisory, (_, entries) in zip(advisories, batch, strict=True):
            for entry in entries:
                package = ecosystems.from_osv(entry["package"]["ecosystem"], entry["package"]["name"])
                affected.append(AffectedPackage(advisory=advisory, ecosystem=entry["package"]["ecosystem"],
                                                name=entry["package"]["name"], purl_type=package.purl_type,
                                                package_key=package.key, ranges=entry["ranges"],
                                                versions=entry["versions"]))
        AffectedPackage.objects.bulk_create(affected, batch_size=BATCH)
        made += len(batch)


def generate_sboms(org, components: int, per_artifact: int = 500, seed: int = 17) -> list[int]:
    """SBOM attestations of ``components / per_artifact`` artifacts; returns their ids."""
    from evidence.models import Attestation, Flow, SbomComponent, Trail

    rng = random.Random(seed)
    flow = Flow.objects.create(org=org, name="bench-services")
    trail = Trail.objects.create(org=org, flow=flow, name="release")
    shares = [share for *_, share, _ in MIX]
    ids = []
    for artifact in range(components // per_artifact):
        attestation = Attestation.objects.create(org=org, flow=flow, trail=trail, name=f"sbom-{artifact}",
                                                 type="sbom", is_compliant=True,
                                                 artifact_fingerprint=hashlib.sha256(b"%d" % artifact).hexdigest())
        rows = []
        for i in range(per_artifact):
            osv_eco, purl_type, _, names = rng.choices(MIX, shares)[0]
            index = popular(rng, names) if rng.random() < 0.6 else names + i + artifact * per_artifact
            name = package_name(osv_eco, purl_type, index)
            ver = version(rng, purl_type)
            rows.append(SbomComponent(org=org, attestation=attestation, name=name, version=ver,
                                      purl=purl_of(purl_type, name, ver), kind="library"))
        SbomComponent.objects.bulk_create(rows, batch_size=BATCH)
        ids.append(attestation.pk)
    return ids


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def lookup_all_candidates(package_filter: str, params: list) -> int:
    """The baseline: the indexed lookup of packages' keys in the affected entries, no version checks."""
    from django.db import connection

    rows = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT p.id, p.version, a.advisory_id, a.ranges, a.versions FROM vulns_componentpackage p "
                       "JOIN vulns_affectedpackage a ON a.package_key = p.package_key "
                       "JOIN vulns_advisory v ON v.id = a.advisory_id AND v.withdrawn IS NULL "
                       f"WHERE {package_filter}", params)
        while batch := cursor.fetchmany(5000):
            rows += len(batch)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--advisories", type=int, default=200_000)
    parser.add_argument("--components", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="measure again on the data of the last run")
    args = parser.parse_args()

    setup(fresh=not args.keep)
    from django.db import connection

    from evidence.models import Attestation
    from tenants.models import Org
    from vulns import matching
    from vulns.models import Advisory, AffectedPackage, ComponentPackage, VulnerabilityMatch

    if args.keep:
        org = Org.objects.get(slug="bench")
        with connection.cursor() as cursor:  # matches and packages are derived: start from none
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("DELETE FROM vulns_vulnerabilitymatch")
            cursor.execute("DELETE FROM vulns_componentpackage")
            cursor.execute("DELETE FROM vulns_advisory WHERE osv_id = 'GHSA-bench-new'")
            cursor.execute("SET session_replication_role = DEFAULT")
        sboms = list(Attestation.objects.for_org(org).filter(type="sbom").order_by("pk").values_list("pk", flat=True))
    else:
        started = time.perf_counter()
        generate_advisories(args.advisories)
        org, _ = make_org("bench")
        sboms = generate_sboms(org, args.components)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"generated {Advisory.objects.count():,} advisories ({AffectedPackage.objects.count():,} affected "
              f"entries) and {len(sboms)} SBOMs in {time.perf_counter() - started:.0f} s")

    # 1. full match
    reset_peak()
    before = rss_mib("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    half_peak = 0.0
    for n, attestation_id in enumerate(sboms, 1):
        matching.index_sbom(attestation_id)
        if n == len(sboms) // 2:
            half_peak = rss_mib("VmHWM")
    full, full_cpu = time.perf_counter() - started, time.process_time() - cpu
    full_peak = rss_mib("VmHWM")
    packages, matches = ComponentPackage.objects.count(), VulnerabilityMatch.objects.count()
    started = time.perf_counter()
    candidates = lookup_all_candidates("p.org_id = %s", [org.pk])
    lookup = time.perf_counter() - started

    # 2. incremental: one new advisory naming the most popular npm package
    from vulns import ecosystems

    name = package_name("npm", "npm", 0)
    advisory = Advisory.objects.create(osv_id="GHSA-bench-new", group_id="CVE-2026-9999999", modified=Advisory.objects
                                       .first().modified, content_sha256="0" * 64,
                                       record={"id": "GHSA-bench-new"})
    key = ecosystems.from_osv("npm", name).key
    AffectedPackage.objects.create(advisory=advisory, ecosystem="npm", name=name, purl_type="npm", package_key=key,
                                   ranges=[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.0.0"}]}])
    named = ComponentPackage.objects.filter(package_key=key).count()
    reset_peak()
    before_incremental = rss_mib("VmRSS")
    started = time.perf_counter()
    result = matching.rematch_advisories([advisory.pk])
    incremental = time.perf_counter() - started
    incremental_peak = rss_mib("VmHWM")
    started = time.perf_counter()
    lookup_one = lookup_all_candidates("p.package_key = %s AND a.advisory_id = %s", [key, advisory.pk])
    lookup_incremental = time.perf_counter() - started
    assert lookup_one == named, (lookup_one, named)

    print(f"\n{Advisory.objects.count():,} advisories, {packages:,} component packages "
          f"({len(sboms)} SBOMs), {candidates:,} candidate (component, affected entry) pairs, {matches:,} matches\n")
    print("| phase | matching | baseline (indexed lookup, no version checks) | ratio | RSS before → peak |")
    print("|---|---:|---:|---:|---:|")
    print(f"| full match, {packages:,} components | {full:.2f} s ({packages / full:,.0f} components/s) | "
          f"{lookup:.2f} s | {ratio(full, lookup)} | {before:.0f} → {full_peak:.0f} MiB |")
    print(f"| one new advisory, {named} components named | {incremental * 1000:.0f} ms "
          f"({sum(map(len, result.values()))} new matches) | {lookup_incremental * 1000:.1f} ms | "
          f"{ratio(incremental, lookup_incremental)} | {before_incremental:.0f} → {incremental_peak:.0f} MiB |")
    print(f"\nincremental / full match: {incremental / full:.4f} ({ratio(full, incremental)} faster)")
    print(f"peak memory of the full match after half the components: {half_peak:.0f} MiB, "
          f"after all: {full_peak:.0f} MiB")
    print(f"full match: {full_cpu:.1f} s of CPU in the matching process (the rest: PostgreSQL and waiting for a core)")


if __name__ == "__main__":
    main()
