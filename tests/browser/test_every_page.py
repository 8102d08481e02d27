"""The every-page tour: with the demo org's two weeks of history (reports/demo.py) loaded, visit every web
page csm has, at desktop (1366 px) and phone (390 px) widths, in the light and the dark theme, and run
axe-core (WCAG 2.2 A/AA rules and axe's best practices) on each: no serious or critical violation. At
390 px the page must not scroll sideways and "Sign out" must be reachable through the menu.

The list of pages comes from the URL resolver: every pattern outside /api/, /admin/ and /scim/ is either visited
(``page_urls`` fills its arguments from the demo org) or named in ``NOT_PAGES`` with the reason, so a new
page cannot be forgotten. A full-page screenshot of each visit lands in test-artifacts/screenshots/.
"""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from alerts.models import Action
from audit.context import AuditContext
from evidence.models import Artifact, Attestation, CustomAttestationType, EvidenceFile, Repository, SbomComponent, Trail
from policies.models import Policy
from reports.demo import PROD, build_demo_history
from snapshots.models import Environment, Snapshot
from tenants.choices import Role
from tenants.models import ServiceAccount
from tenants.services import SIGN_UP_SALT, invite_member
from tests.evidence.conftest import evidence_root  # noqa: F401 (fixture: evidence files in tmp)
from vulns import ecosystems
from vulns.models import Advisory, AdvisoryAlias, ComponentPackage, VulnerabilityMatch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}
THEMES = ("light", "dark")
FAILING_IMPACTS = {"serious", "critical"}

# URL names that are not pages a person opens, each with the reason. Every other web URL is visited.
NOT_PAGES = {
    "healthz": "plain-text health check for load balancers",
    "ready": "plain-text readiness probe, what `kosli status` reads (tests/kosli/test_status.py)",
    "favicon": "redirect to the SVG icon (tests/test_web_look.py)",
    "metrics": "Prometheus text format for a scraper with a token or from an allowed address (tests/test_metrics.py)",
    "logout": "POST only: the Sign out button, checked on every page",
    "flow-manage": "POST only: the flow page's Archive / Unarchive / Rename buttons",
    "kosli-trail-link": "redirect of the kosli CLI's trail links to trail-detail (tests/kosli/test_web_links.py)",
    "kosli-snapshot-link": "redirect of the kosli CLI's snapshot links (tests/kosli/test_web_links.py)",
    "environment-rename": "POST only: the environment page's Rename form",
    "environment-change-windows": "POST only: the Change windows form of an environment's page",
    "environment-members": "POST only: a logical environment page's Join / Remove member buttons",
    "org-update": "POST only: the settings form",
    "org-retention": "POST only: the retention form of the settings page",
    "member-role": "POST only: the role selector of the members page",
    "member-remove": "POST only: the Remove button of the members page",
    "invitation-create": "POST only: the invite form of the members page",
    "invitation-revoke": "POST only: the Revoke button of the members page",
    "service-account-token-create": "POST only: the new-token form of a service account's page",
    "service-account-deactivate": "POST only: the Deactivate button of a service account's page",
    "service-account-token-rotate": "POST only: the Rotate button of a token row",
    "service-account-token-revoke": "POST only: the Revoke button of a token row",
    "personal-token-rotate": "POST only: the Rotate button of a token row",
    "personal-token-revoke": "POST only: the Revoke button of a token row",
    "evidence-download": "a file download, not a page",
    "control-archive": "POST only: the Archive button on the control page",
    "control-unarchive": "POST only: the Unarchive button on the control page",
    "policy-environment-attach": "POST only: the attach form of an environment's compliance page",
    "policy-allowlist": "POST only: the allowlist form of an environment's compliance page",
    "policy-allowlist-remove": "POST only: the Remove button of an allowlist entry",
    "policy-attach": "POST only: the attach form of a policy's page",
    "attestation-type-archive": "POST only: the Archive button of an attestation type's page",
    "policy-detach": "POST only: the Detach button of a policy's page",
    "policy-gate": "POST only: the flow gate form of a Rego policy's page",
    "policy-ungate": "POST only: the Stop gating button of a Rego policy's page",
    "action-test": "POST only: the test-alert button of an action's page",
    "action-enable": "POST only: the Enable button of an action's page",
    "action-disable": "POST only: the Disable button of an action's page",
    "action-delete": "POST only: the Delete button of an action's page",
    "delivery-redeliver": "POST only: the Redeliver button of a delivery",
    "environment-authorization": "POST only: the Authorization form of an environment's page",
    "tags-edit": "POST only: the tag forms (set, remove) of a flow's, environment's and repository's page",
    "environment-events": "an HTMX partial of the environment page (its events table); the page itself is toured "
                          "with an events filter",
    "report-row": "an HTMX partial of the reports page (one report's row), polled while the report is made; "
                  "the reports page is toured",
    "report-status": "a report's state as JSON, for scripts (tests/reports/test_web.py)",
    "report-pdf": "a file download (PDF)",
    "report-json": "a file download (JSON)",
    "scim-token-create": "POST only: the new-token form of the SCIM settings page",
    "scim-token-revoke": "POST only: the Revoke button of a SCIM token row",
    "scim-default-role": "POST only: the default-role form of the SCIM settings page",
    "two-factor-totp-remove": "POST only: the Remove form of the security page's authenticator app",
    "two-factor-passkey-options": "JSON for the browser's passkey request (identity/static/identity/webauthn.js)",
    "two-factor-passkey-add": "POST only: the Add a passkey form of the security page",
    "two-factor-passkey-remove": "POST only: the Remove form of a passkey on the security page",
    "two-factor-recovery-codes": "POST only: the Generate new recovery codes form of the security page",
    "two-factor-verify": "the sign-in's second step, only between the password and the second factor; axe runs "
                         "on it in tests/browser/test_passkeys.py",
    "two-factor-verify-passkey-options": "JSON for the browser's passkey request at the second step",
}
NOT_PAGES.update({  # identity: sessions
    "account-session-revoke": "POST only: the Revoke button of a row of the sessions page",
    "account-sessions-revoke-others": "POST only: the Revoke all other sessions button of the sessions page",
    "member-sessions-revoke": "POST only: the End sessions button of the members page",
})
# Pages for someone signed out (sign-in, sign-up, password reset, the emailed links).
ANONYMOUS = {"login", "signup", "signup-finish", "password-reset", "password-reset-done", "password-reset-confirm",
             "password-reset-complete", "invitation-accept"}
# identity: sso
NOT_PAGES |= {
    "sso-start": "the SSO email form's target: continues to the org's IdP (tests/identity/test_sso_sign_in.py)",
    "sso-org-start": "redirect to the org's IdP (tests/identity/test_sso_sign_in.py)",
    "sso-callback": "the IdP's redirect back, with a code (tests/identity/test_sso_sign_in.py)",
    "sso-domain-add": "POST only: the Add domain form of the SSO settings page",
    "sso-domain-remove": "POST only: the Remove button of an SSO domain",
    "sso-group-set": "POST only: the group mapping form of the SSO settings page",
    "sso-group-remove": "POST only: the Remove button of a group mapping",
    "sso-require": "POST only: the SSO required form of the SSO settings page",
    "sso-test": "POST only: the Test sign-in button (continues to the IdP; tests/browser/test_sso_sign_in.py)",
    "sso-link": "only between an IdP's sign-in and the account's password; axe runs on it in "
                "tests/browser/test_sso_account_linking.py",
}
ANONYMOUS |= {"sso-sign-in"}


def web_url_names() -> set[str]:
    """The names of every URL pattern outside /api/, /admin/ and /scim/ (unnamed patterns fail: they cannot be
    listed here)."""
    names = set()

    def walk(patterns, prefix):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if route.startswith(("api/", "admin/", "scim/")):  # scim/v2/: the SCIM API (tests/identity)
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                assert entry.name, f"the web URL {route!r} has no name: name it and add it to the tour"
                names.add(entry.name)

    walk(get_resolver().url_patterns, "")
    return names


def page_urls(org, owner) -> dict[str, list[str]]:
    """name -> the URLs visited for it, arguments filled from the demo org."""
    o = f"/o/{org.slug}"
    prod = Environment.objects.for_org(org).get(name=PROD)
    snapshots = list(Snapshot.objects.filter(environment=prod).order_by("index").values_list("index", flat=True))
    trail = Trail.objects.for_org(org).select_related("flow").order_by("-pk").first()
    artifact = Artifact.objects.for_org(org).order_by("-pk").first()
    evidence = EvidenceFile.objects.for_org(org).order_by("pk").first()
    repository = Repository.objects.for_org(org).order_by("pk").first()
    policy = Policy.objects.for_org(org).order_by("pk").first()
    custom_type = CustomAttestationType.objects.for_org(org).order_by("pk").first()
    # One attestation page of each type the demo reports (JUnit with a failing test, SBOM, pull request, Jira,
    # Sonar).
    attestations = {}
    for att in Attestation.objects.for_org(org).select_related("flow", "trail").order_by("pk"):
        failing = att.type == "junit" and not att.is_compliant
        key = "junit-failing" if failing else att.type
        attestations.setdefault(key, f"{o}/flows/{att.flow.name}/trails/{att.trail.name}/attestations/{att.pk}/")
    action = Action.objects.for_org(org).filter(deleted_at=None).order_by("pk").first()
    account = ServiceAccount.objects.for_org(org).order_by("pk").first()
    _, invitation = invite_member(AuditContext.for_user(owner), org, "newcomer@example.com", Role.MEMBER,
                                  actor_role=Role.OWNER, invited_by=owner)
    uid = urlsafe_base64_encode(force_bytes(owner.pk))
    return {
        "home": ["/"],
        "login": ["/login/"],
        "signup": ["/signup/", f"/signup/?invitation={invitation}"],
        "signup-finish": [f"/signup/finish/{signing.dumps('someone@example.com', salt=SIGN_UP_SALT)}/"],
        "password-reset": ["/password-reset/"],
        "password-reset-done": ["/password-reset/sent/"],
        "password-reset-confirm": [f"/password-reset/{uid}/{default_token_generator.make_token(owner)}/"],
        "password-reset-complete": ["/password-reset/complete/"],
        "invitation-accept": [f"/invitations/{invitation}/"],
        "org-create": ["/orgs/new/"],
        "account-settings": ["/account/"],
        "account-sessions": ["/account/sessions/"],
        "account-security": ["/account/security/"],
        "two-factor-totp-setup": ["/account/security/totp/"],
        "org-two-factor": [f"{o}/settings/two-factor/"],
        "org-home": [f"{o}/"],
        "org-settings": [f"{o}/settings/"],
        "member-list": [f"{o}/members/"],
        "service-account-list": [f"{o}/service-accounts/"],
        "service-account-detail": [f"{o}/service-accounts/{account.pk}/"],
        "personal-tokens": [f"{o}/tokens/"],
        "audit-log": [f"{o}/audit/"],
        "environment-list": [f"{o}/environments/"],
        "environment-detail": [f"{o}/environments/{PROD}/", f"{o}/environments/{PROD}/?kind=started"],
        "snapshot-detail": [f"{o}/environments/{PROD}/snapshots/{snapshots[-1]}/"],
        "snapshot-diff": [f"{o}/diff/", f"{o}/diff/?env1={PROD}&at1={snapshots[0]}&env2={PROD}&at2={snapshots[-1]}"],
        "search": [f"{o}/search/", f"{o}/search/?q=miner"],
        "flow-list": [f"{o}/flows/"],
        "control-list": [f"{o}/controls/", f"{o}/controls/?archived=1"],
        "control-detail": [f"{o}/controls/RCTL-043/"],
        "flow-detail": [f"{o}/flows/{trail.flow.name}/"],
        "trail-detail": [f"{o}/flows/{trail.flow.name}/trails/{trail.name}/"],
        "artifact-detail": [f"{o}/artifacts/{artifact.fingerprint}/"],
        "attestation-detail": sorted(attestations.values()),
        "evidence-detail": [f"{o}/evidence/{evidence.sha256}/"],
        "attestation-type-list": [f"{o}/attestation-types/"],
        "attestation-type-new": [f"{o}/attestation-types/new/"],
        "attestation-type-detail": [f"{o}/attestation-types/{custom_type.name}/"],
        "repo-list": [f"{o}/repos/"],
        "repo-detail": [f"{o}/repos/{repository.pk}/"],
        "policy-list": [f"{o}/policies/"],
        "policy-new": [f"{o}/policies/new/"],
        "policy-environment": [f"{o}/policies/environments/{PROD}/"],
        "policy-snapshot": [f"{o}/policies/environments/{PROD}/snapshots/{snapshots[-1]}/"],
        "policy-detail": [f"{o}/policies/{policy.name}/"],
        "action-list": [f"{o}/alerts/"],
        "action-detail": [f"{o}/alerts/{action.pk}/"],
        "report-list": [f"{o}/reports/"],
        "journal": [f"{o}/journal/"],
        "vulnerability-list": [f"{o}/vulnerabilities/", f"{o}/vulnerabilities/?environment={PROD}&running=1"],
        "vulnerability-detail": [f"{o}/vulnerabilities/{_demo_vulnerability(org)}/"],
        "component-search": [f"{o}/components/", f"{o}/components/?q=pkg:npm/axios"],
        "scim-settings": [f"{o}/settings/scim/"],
        "sso-sign-in": ["/sso/"],
        "sso-settings": [f"{o}/settings/sso/"],
    }


def _demo_vulnerability(org) -> str:
    """A real advisory (axios SSRF, CVE-2025-27152: affected < 1.8.2) matched to the demo's axios 1.7.7
    components, stored through the models (the demo loads no advisories)."""
    record = {"id": "GHSA-jr5f-v2jv-69x6", "aliases": ["CVE-2025-27152"], "modified": "2025-03-07T00:00:00Z",
              "summary": "axios Requests Vulnerable To Possible SSRF and Credential Leakage via Absolute URL"}
    advisory, created = Advisory.objects.get_or_create(osv_id=record["id"], defaults={
        "group_id": "CVE-2025-27152", "aliases": record["aliases"], "summary": record["summary"], "severity": "high",
        "modified": datetime(2025, 3, 7, tzinfo=UTC), "content_sha256": "0" * 64, "record": record,
        "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2025-27152"}]})
    if created:
        for alias in ("GHSA-jr5f-v2jv-69x6", "CVE-2025-27152"):
            AdvisoryAlias.objects.create(advisory=advisory, alias=alias)
        advisory.affected.create(ecosystem="npm", name="axios", purl_type="npm", package_key="npm/axios", ranges=[
            {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.8.2"}]}])
    for component in SbomComponent.objects.for_org(org).filter(purl="pkg:npm/axios@1.7.7").select_related(
            "attestation"):
        package = ecosystems.from_purl(component.purl)
        row, _ = ComponentPackage.objects.get_or_create(component=component, defaults={
            "org": org, "attestation": component.attestation,
            "artifact_fingerprint": component.attestation.artifact_fingerprint, "purl": component.purl,
            "purl_type": package.purl_type, "package_key": package.key, "version": package.version})
        VulnerabilityMatch.objects.get_or_create(advisory=advisory, package=row, defaults={
            "org": org, "artifact_fingerprint": row.artifact_fingerprint, "group_id": advisory.group_id,
            "fixed": ["1.8.2"]})
    return advisory.group_id


def test_every_web_url_is_toured_or_has_a_reason():
    names = web_url_names()
    listed = set(NOT_PAGES) | PAGES
    assert names - listed == set(), f"web pages missing from the tour (add them to page_urls): {names - listed}"
    assert listed - names == set(), f"the tour names URLs that no longer exist: {listed - names}"


# The names page_urls fills (test_every_page asserts that page_urls fills exactly these).
PAGES = {"home", "login", "signup", "signup-finish", "password-reset", "password-reset-done",
         "password-reset-confirm", "password-reset-complete", "invitation-accept", "org-create", "org-home",
         "org-settings", "member-list", "service-account-list", "service-account-detail", "personal-tokens",
         "audit-log", "environment-list", "environment-detail", "snapshot-detail", "snapshot-diff", "search",
         "flow-list", "flow-detail", "trail-detail", "artifact-detail", "attestation-detail", "evidence-detail",
         "attestation-type-list", "attestation-type-new", "attestation-type-detail",
         "repo-list", "repo-detail",
         "policy-list", "policy-new", "policy-environment", "policy-snapshot", "policy-detail", "action-list",
         "action-detail", "report-list", "journal", "account-settings"}
PAGES |= {"control-list", "control-detail"}
PAGES |= {"vulnerability-list", "vulnerability-detail", "component-search"}
PAGES |= {"scim-settings"}
PAGES |= {"account-sessions"}
PAGES |= {"sso-sign-in", "sso-settings"}
PAGES |= {"account-security", "two-factor-totp-setup", "org-two-factor"}


@pytest.fixture
def demo_org(make_org, owner):  # evidence files go to tmp (the imported autouse evidence_root)
    org = make_org("demo", owner, "Demo (sample data)")
    org.is_demo = True
    org.save(update_fields=["is_demo"])
    assert build_demo_history(org, owner)
    return org


def _violations(axe, page) -> list[str]:
    results = axe.run(page, options={"resultTypes": ["violations"], "runOnly": {
        "type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in FAILING_IMPACTS:
            targets = "; ".join(" ".join(node["target"]) if isinstance(node["target"][0], str) else str(node["target"])
                                for node in violation["nodes"][:3])
            found.append(f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} nodes: {targets})")
    return found


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", THEMES)
def test_every_page(browser, warm_app, live_server, demo_org, owner, sign_in, theme, width):
    from axe_playwright_python.sync_playwright import Axe

    urls = page_urls(demo_org, owner)
    assert set(urls) == PAGES
    viewport_w, viewport_h = WIDTHS[width]
    folder = SCREENSHOTS / f"{width}-{theme}"
    folder.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    problems = []
    # One browser context signed out, one signed in; the password reset pages are visited signed out.
    for signed_in in (False, True):
        context = browser.new_context(viewport={"width": viewport_w, "height": viewport_h}, color_scheme=theme)
        context.set_default_timeout(30000)
        page = context.new_page()
        if signed_in:
            sign_in(page, owner.email)
        for name, paths in sorted(urls.items()):
            if (name in ANONYMOUS) == signed_in:
                continue
            for n, path in enumerate(paths):
                answer = page.goto(live_server.url + path)
                where = f"{path} [{width} {theme}]"
                if answer.status != 200:
                    problems.append(f"{where}: HTTP {answer.status}")
                    continue
                problems += _check(page, axe, where, folder / f"{name}{'-' + str(n) if n else ''}.png", width,
                                   viewport_w, signed_in)
        if signed_in:
            # The error page a mistyped or foreign URL shows, with the whole layout around it.
            answer = page.goto(live_server.url + f"/o/{demo_org.slug}/no-such-page/")
            assert answer.status == 404
            problems += _check(page, axe, f"404 page [{width} {theme}]", folder / "404.png", width, viewport_w, True)
        context.close()
    assert problems == [], "\n".join(problems)


def _check(page, axe, where, screenshot, width, viewport_w, signed_in) -> list[str]:
    page.screenshot(path=str(screenshot), full_page=True)
    problems = [f"{where}: {v}" for v in _violations(axe, page)]
    unwrapped = page.evaluate("document.querySelectorAll('table:not(.table-wrap > table)').length")
    if unwrapped:
        problems.append(f"{where}: {unwrapped} table(s) outside a .table-wrap (they overflow small screens)")
    if width == "phone":
        problems += _phone_checks(page, where, viewport_w, signed_in)
    return problems


def _phone_checks(page, where, viewport_w, signed_in) -> list[str]:
    problems = []
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > viewport_w:
        wide = page.evaluate("""(limit) => [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > limit + 1 && !el.closest('.table-wrap, pre'))
            .slice(0, 3).map((el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))""",
                             viewport_w)
        problems.append(f"{where}: the page scrolls sideways ({scroll_width} px > {viewport_w} px): {wide}")
    if signed_in:
        sign_out = page.get_by_role("button", name="Sign out")
        menu = page.get_by_role("button", name="Menu")
        if not sign_out.is_visible():
            menu.click()
        if not sign_out.is_visible():
            problems.append(f"{where}: Sign out is not reachable")
        else:
            box = sign_out.bounding_box()
            if box["x"] < 0 or box["x"] + box["width"] > viewport_w:
                problems.append(f"{where}: Sign out is off-screen ({box})")
        if menu.is_visible() and menu.get_attribute("aria-expanded") == "true":
            menu.click()
    return problems
