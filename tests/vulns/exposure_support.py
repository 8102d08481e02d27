"""Builders for the exposure and API tests (h4): snapshot histories through the real snapshot services,
and advisories, SBOM components, matches and VEX statements through the vulnerability models (so these
tests depend on no importer or matcher, only on the shared data model)."""

import json
from datetime import UTC, datetime, timedelta

from audit.context import AuditContext
from evidence.choices import AttestationType
from evidence.models import Attestation, Flow, SbomComponent, Trail
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from vulns import ecosystems
from vulns.models import Advisory, AdvisoryAlias, ComponentPackage, VexStatement, VulnerabilityMatch

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def fp(n: int) -> str:
    """A deterministic fingerprint for artifact number n."""
    return f"{n:064x}"


class History:
    """Reports to the environments of one org, accepted at T0, T0 + 1 h, T0 + 2 h, ... (one clock for all
    environments, so times are comparable) and ingested in this process."""

    def __init__(self, org, capture):
        self.org = org
        self.capture = capture
        self.ctx = AuditContext.system("test")
        self.clock = T0
        self.envs = {}

    def env(self, name, env_type="server", include_scaling=True):
        if name not in self.envs:
            self.envs[name], _ = create_or_update_environment(self.ctx, self.org, name, env_type,
                                                              include_scaling=include_scaling)
        return self.envs[name]

    def report(self, env_name: str, *artifacts: tuple[str, str], replicas: dict | None = None) -> int:
        """Report (name, fingerprint) artifacts running in ``env_name`` (``replicas``: {name: count});
        returns the environment's latest snapshot index afterwards."""
        replicas = replicas or {}
        return self.send(env_name, {"artifacts": [{"digests": {name: fingerprint}, "creationTimestamp": 1_700_000_000}
                                                  for name, fingerprint in artifacts
                                                  for _ in range(replicas.get(name, 1))]})

    def send(self, env_name: str, body: dict, env_type: str = "server") -> int:
        """Report ``body`` (the agent's JSON) to ``env_name`` (created with ``env_type``)."""
        env = self.env(env_name, env_type)
        with self.capture(execute=False):
            report, _ = accept_report(self.ctx, env, env.type, json.dumps(body).encode(), received_at=self.clock)
        ingest_report(report.pk)
        self.clock += timedelta(hours=1)
        env.refresh_from_db()
        return env.last_snapshot_index


def advisory(osv_id, aliases=(), group_id=None, severity="high", cvss_score=None, summary="", withdrawn=None,
             affected=(("PyPI", "jinja2"),), **extra) -> Advisory:
    """An advisory with its alias rows and affected packages, as the importer stores them."""
    aliases = sorted(aliases)
    record = {"id": osv_id, "aliases": aliases, "modified": "2024-01-01T00:00:00Z", "summary": summary}
    item = Advisory.objects.create(
        osv_id=osv_id, group_id=group_id or osv_id, aliases=aliases, summary=summary, severity=severity,
        cvss_score=cvss_score, modified=T0 - timedelta(days=30), withdrawn=withdrawn, content_sha256="0" * 64,
        record=record, **extra)
    for alias in {osv_id, *aliases}:
        AdvisoryAlias.objects.create(advisory=item, alias=alias)
    for ecosystem, name in affected:
        package = ecosystems.from_osv(ecosystem, name)
        item.affected.create(ecosystem=ecosystem, name=name, purl_type=package.purl_type, package_key=package.key,
                             ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]}])
    return item


def _trail(org):
    flow, _ = Flow.objects.get_or_create(org=org, name="backend")
    trail, _ = Trail.objects.get_or_create(org=org, flow=flow, name="build-1")
    return flow, trail


def sbom(org, fingerprint: str, *purls: str) -> dict[str, ComponentPackage]:
    """An ``sbom`` attestation about ``fingerprint`` with one indexed component per purl."""
    flow, trail = _trail(org)
    attestation = Attestation.objects.create(org=org, flow=flow, trail=trail, artifact_fingerprint=fingerprint,
                                             name="sbom", type=AttestationType.SBOM, is_compliant=True)
    packages = {}
    for purl in purls:
        parsed = ecosystems.from_purl(purl)
        component = SbomComponent.objects.create(org=org, attestation=attestation, name=parsed.name,
                                                 version=parsed.version, purl=purl, kind="library")
        packages[purl] = ComponentPackage.objects.create(
            org=org, component=component, attestation=attestation, artifact_fingerprint=fingerprint, purl=purl,
            purl_type=parsed.purl_type, package_key=parsed.key, version=parsed.version, distro=parsed.release)
    return packages


def match(org, item: Advisory, package: ComponentPackage, fixed=("2.10.1",)) -> VulnerabilityMatch:
    return VulnerabilityMatch.objects.create(org=org, advisory=item, package=package,
                                             artifact_fingerprint=package.artifact_fingerprint,
                                             group_id=item.group_id, fixed=list(fixed))


def vex_statement(org, fingerprint: str, vulnerability_id: str, status="not_affected",
                  justification="vulnerable_code_not_in_execute_path") -> VexStatement:
    """A statement of a ``vex`` attestation about ``fingerprint``."""
    flow, trail = _trail(org)
    attestation = Attestation.objects.create(org=org, flow=flow, trail=trail, artifact_fingerprint=fingerprint,
                                             name="vex", type=AttestationType.VEX, is_compliant=True)
    return VexStatement.objects.create(org=org, attestation=attestation, artifact_fingerprint=fingerprint,
                                       vulnerability_id=vulnerability_id, status=status, justification=justification)


WEB, FIXED, LEGACY, DB = fp(1), fp(2), fp(5), fp(9)


def build_history(h: History) -> History:
    """prod:    #1 web+db, #2 web scaled to 2, #3 web exited, #4 web restarted (still running);
    staging: #1 web+legacy (legacy has no SBOM), #2 web upgraded to the fixed build."""
    h.report("prod", ("web", WEB), ("db", DB))                      # prod#1  T0
    h.report("prod", ("web", WEB), ("db", DB), replicas={"web": 2})  # prod#2  T0+1h (scaled)
    h.report("prod", ("db", DB))                                    # prod#3  T0+2h (web exited)
    h.report("prod", ("web", WEB), ("db", DB))                      # prod#4  T0+3h (restarted)
    h.report("staging", ("web", WEB), ("legacy", LEGACY))           # staging#1 T0+4h
    h.report("staging", ("web", FIXED), ("legacy", LEGACY))         # staging#2 T0+5h (upgraded)
    return h


def build_cve(org) -> str:
    """CVE-2019-10906 (Jinja2 sandbox escape) as GHSA and PYSEC records of one group, matching web's
    jinja2 2.10; the fixed build has 2.10.1, db a Debian package. Returns the group id."""
    ghsa = advisory("GHSA-462w-v97r-4m45", aliases=["CVE-2019-10906"], group_id="CVE-2019-10906",
                    severity="high", cvss_score=8.6, summary="Jinja2 sandbox escape via string formatting",
                    details="In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape.",
                    references=[{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2019-10906"}],
                    published=T0 - timedelta(days=2000))
    pysec = advisory("PYSEC-2019-217", aliases=["CVE-2019-10906", "GHSA-462w-v97r-4m45"], group_id="CVE-2019-10906",
                     severity="unknown",
                     references=[{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2019-10906"},
                                 {"type": "FIX", "url": "https://github.com/pallets/jinja/commit/a2a6c93"}])
    web = sbom(org, WEB, "pkg:pypi/jinja2@2.10", "pkg:pypi/flask@1.0")
    sbom(org, FIXED, "pkg:pypi/jinja2@2.10.1", "pkg:pypi/flask@1.0")
    sbom(org, DB, "pkg:deb/debian/postgresql-15@15.4?distro=debian-12")
    match(org, ghsa, web["pkg:pypi/jinja2@2.10"])
    match(org, pysec, web["pkg:pypi/jinja2@2.10"])
    return "CVE-2019-10906"
