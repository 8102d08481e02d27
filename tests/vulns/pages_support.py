"""A populated org for the vulnerability page tests (h6): a snapshot history built with the real snapshot
services (tests/vulns/exposure_support.History) and real advisories (ids, aliases, packages and severities as the
public databases publish them) stored through the models, with SBOM components and matches.

prod:    #1 web + api + worker + old (T0)  →  #2 web + api + worker (old exited, T0+1h)
staging: #1 web (T0+2h)

- web (jinja2 2.10) is affected by CVE-2019-10906 (high, GHSA-462w-v97r-4m45, PYSEC-2019-217) and by
  PYSEC-2021-66 (severity unknown); it runs in prod and staging.
- api (log4j-core 2.14.1) is affected by CVE-2021-44228 (critical, Log4Shell); it runs in prod.
- old (lodash 4.17.20) is affected by CVE-2021-23337 (high); it ran in prod only until #2.
- worker has no SBOM: its coverage is unknown.
"""

from dataclasses import dataclass

from tests.vulns.exposure_support import History, advisory, fp, match, sbom

WEB, API, WORKER, OLD = fp(0xA1), fp(0xA2), fp(0xA3), fp(0xA4)


@dataclass
class Populated:
    history: History
    web: str = WEB
    api: str = API
    worker: str = WORKER
    old: str = OLD


def populate(org, capture) -> Populated:
    h = History(org, capture)
    h.report("prod", ("web", WEB), ("api", API), ("worker", WORKER), ("old", OLD))
    h.report("prod", ("web", WEB), ("api", API), ("worker", WORKER))
    h.report("staging", ("web", WEB))
    web = sbom(org, WEB, "pkg:pypi/jinja2@2.10", "pkg:pypi/markupsafe@1.1.1")
    api = sbom(org, API, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")
    old = sbom(org, OLD, "pkg:npm/lodash@4.17.20")
    jinja = advisory(
        "GHSA-462w-v97r-4m45", aliases=["CVE-2019-10906"], group_id="CVE-2019-10906", severity="high",
        cvss_score=8.6, summary="Jinja2 sandbox escape via string formatting",
        references=[{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2019-10906"},
                    {"type": "WEB", "url": "javascript:alert(1)"}])
    pysec = advisory("PYSEC-2019-217", aliases=["CVE-2019-10906", "GHSA-462w-v97r-4m45"],
                     group_id="CVE-2019-10906", severity="unknown")
    unknown = advisory("PYSEC-2021-66", aliases=["CVE-2020-28493"], group_id="CVE-2020-28493", severity="unknown",
                       summary="ReDoS in Jinja2's urlize filter")
    log4shell = advisory("GHSA-jfh8-c2jp-5v3q", aliases=["CVE-2021-44228"], group_id="CVE-2021-44228",
                         severity="critical", cvss_score=10.0, summary="Remote code injection in Log4j",
                         affected=(("Maven", "org.apache.logging.log4j:log4j-core"),))
    lodash = advisory("GHSA-35jh-r3h4-6jhm", aliases=["CVE-2021-23337"], group_id="CVE-2021-23337",
                      severity="high", cvss_score=7.2, summary="Command Injection in lodash",
                      affected=(("npm", "lodash"),))
    match(org, jinja, web["pkg:pypi/jinja2@2.10"])
    match(org, pysec, web["pkg:pypi/jinja2@2.10"])
    match(org, unknown, web["pkg:pypi/jinja2@2.10"], fixed=("2.11.3",))
    match(org, log4shell, api["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"], fixed=("2.15.0",))
    match(org, lodash, old["pkg:npm/lodash@4.17.20"], fixed=("4.17.21",))
    return Populated(h)
