"""The "Vulnerabilities" sections of the artifact page (evidence) and the environment page (snapshots).
Those apps sit below this one and cannot import it: ``apps.py`` registers these functions in
``csm.web``'s page-section registry and the pages render what is registered."""

from django.template.loader import render_to_string

from csm.web import page_section

from . import pages
from .views import PERMISSION


def _allowed(request) -> bool:
    # The artifact page needs evidence.view; what runs where is environments.view (same roles today, but
    # each page states its own permission).
    return request.org_access.can(PERMISSION)


def artifact_vulnerabilities(request, fingerprint: str) -> str:
    if not _allowed(request):
        return ""
    return render_to_string("vulns/_artifact_section.html",
                            {"fingerprint": fingerprint, **pages.artifact_section(request.org, fingerprint)},
                            request=request)


def environment_vulnerabilities(request, environment) -> str:
    if not _allowed(request):
        return ""
    return render_to_string("vulns/_environment_section.html",
                            {"environment": environment, **pages.environment_section(request.org, environment)},
                            request=request)


def register() -> None:
    page_section("artifact")(artifact_vulnerabilities)
    page_section("environment")(environment_vulnerabilities)
