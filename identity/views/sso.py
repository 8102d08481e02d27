"""SSO pages: sign-in by email domain or org, the IdP's callback, and the org's SSO settings
(``/o/<org>/settings/sso/``). identity/sso.py does the work and the auditing."""

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.lib.clientip import client_ip
from csm.web import add_service_error, org_view
from identity import signin, sso
from identity.models import GroupRoleMapping, OrgIdentitySettings, SsoDomain, SsoProvider
from tenants.choices import Role
from tenants.models import Org

ROLE_CHOICES = [(value, label) for value, label in Role.choices if value != Role.OWNER]


class ProviderForm(forms.Form):
    issuer = forms.URLField(label="Issuer URL", max_length=500, assume_scheme="https",
                            help_text="Your IdP's issuer, exactly as its /.well-known/openid-configuration says.")
    client_id = forms.CharField(label="Client ID", max_length=255)
    client_secret = forms.CharField(label="Client secret", required=False, max_length=2000,
                                    widget=forms.PasswordInput(render_value=False))
    default_role = forms.ChoiceField(label="Default role", choices=ROLE_CHOICES, initial=Role.MEMBER,
                                     help_text="The role of a new member no group mapping applies to.")
    groups_claim = forms.CharField(label="Groups claim", max_length=100, initial="groups")
    enabled = forms.BooleanField(label="Enabled", required=False)


class DomainForm(forms.Form):
    domain = forms.CharField(max_length=253)


class GroupRoleForm(forms.Form):
    group = forms.CharField(max_length=200)
    role = forms.ChoiceField(choices=Role.choices)


def _ctx(request) -> AuditContext:
    return AuditContext.from_request(request)


def _safe_next(request, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, require_https=request.is_secure()):
        return value
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _to_idp(request, url: str, org):
    """Send the browser to the IdP from a form submission. Not a redirect: csm's Content-Security-Policy
    (form-action 'self') stops a form's redirect chain at another origin, so this page continues there by a
    ``Refresh`` header (a new navigation), with a link for browsers that ignore it."""
    response = render(request, "identity/sso_redirect.html", {"url": url, "org": org,
                                                              "idp_host": urlsplit(url).netloc})
    response["Refresh"] = f"0;url={url}"
    return response


def _failed(request, failure: sso.SsoFailure):
    sso.record_failure(_ctx(request), failure)
    return render(request, "identity/sso_error.html", {"failure": failure}, status=failure.status)


# --- sign-in ----------------------------------------------------------------------------------------------

@require_GET
def sso_start(request):
    """``/sso/start/?email=…``: the org whose verified domain the address is in signs the person in."""
    email = request.GET.get("email", "").strip()
    org = sso.org_for_email(email)
    if org is None:
        error = ("Enter your work email address." if "@" not in email else
                 f"No organization signs in with SSO for {email.rsplit('@', 1)[1]}. Sign in with your password.")
        return render(request, "identity/sso_sign_in.html", {"email": email, "error": error,
                                                             "next": request.GET.get("next", "")}, status=400)
    return _start(request, org, login_hint=email, from_form=True)


@require_GET
def sso_sign_in(request):
    """``/sso/``: the "Sign in with SSO" form (email address)."""
    return render(request, "identity/sso_sign_in.html", {"next": request.GET.get("next", "")})


@require_GET
def sso_org_start(request, org_slug):
    """``/sso/<org>/start/``: sign in through the named org's IdP. Public (anyone may start a sign-in), so its
    URL kwarg is not ``org``, which marks the member-only pages tests/test_isolation.py checks."""
    org = Org.objects.filter(slug=org_slug).first()
    if org is None or not SsoProvider.objects.filter(org=org, enabled=True).exists():
        raise Http404("This organization does not sign in with SSO.")
    return _start(request, org)


def _start(request, org, *, login_hint: str = "", from_form: bool = False):
    try:
        url = sso.start(request, org, redirect_to=_safe_next(request, request.GET.get("next", "")),
                        login_hint=login_hint)
    except sso.SsoFailure as failure:
        failure.org = failure.org or org
        return _failed(request, failure)
    return _to_idp(request, url, org) if from_form else redirect(url)


@require_GET
def sso_callback(request):
    """``/sso/callback/``: the IdP sends the browser back here with a code (or an error)."""
    try:
        purpose, org, claims, pending = sso.finish(request)
        if purpose == "test":
            if not request.user.is_authenticated or request.user.pk != pending.get("user"):
                raise sso.SsoFailure("not_allowed", "Finish the test sign-in in the browser that started it.", 403,
                                     org, claims["email"])
            domain = sso.verify_domain(_ctx(request), org, request.user, claims["email"])
            messages.success(request, f"Test sign-in as {claims['email']} succeeded: {domain.domain} is verified.")
            return redirect("sso-settings", org.slug)
        user = sso.provision(_ctx(request), org, claims)
    except sso.LinkRequired as link:  # an existing account of its own owner: confirm with its password
        sso.begin_link(request, link, pending.get("next") or "/")
        return redirect("sso-link")
    except sso.SsoFailure as failure:
        return _failed(request, failure)
    return signin.begin_sign_in(request, user, method="sso", redirect_to=pending.get("next") or "/")


class LinkForm(forms.Form):
    password = forms.CharField(label="csm password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password",
                                                                 "autofocus": True}))


@require_http_methods(["GET", "POST"])
def sso_link(request):
    """``/sso/link/``: an IdP signed someone in with the address of an existing csm account this org does not
    manage. Nothing is opened until the account's password confirms the link (identity/sso.py); "Cancel"
    drops it."""
    found = sso.pending_link(request)
    if found is None:
        return _failed(request, sso.SsoFailure(
            "no_pending_link", "No account link is waiting for confirmation in this browser (or it expired after "
                               "10 minutes). Sign in with SSO again."))
    pending, org, user = found
    form = LinkForm(request.POST or None)
    status = 200
    if request.method == "POST" and request.POST.get("cancel"):
        sso.cancel_link(request)
        messages.info(request, f"Nothing was linked; {pending['email']} was not signed in.")
        return redirect("login")
    if request.method == "POST" and form.is_valid():
        try:
            user, redirect_to = sso.link_account(_ctx(request), request, form.cleaned_data["password"],
                                                 client_ip(request))
        except sso.LinkPasswordError as error:
            form.add_error("password", error.message)
            status = 429 if error.limited else 400
            if not error.limited:  # a wrong password of the account, as on /login/ (its orgs, unusual activity)
                signin.sign_in_failed(request, user.email or user.get_username(), reason="sso_link_password")
        except sso.SsoFailure as failure:
            return _failed(request, failure)
        else:
            return signin.begin_sign_in(request, user, method="sso", redirect_to=_safe_next(request, redirect_to))
    elif request.method == "POST":
        status = 400
    return render(request, "identity/sso_link.html", {"form": form, "org": org, "email": pending["email"],
                                                      "account": user.email or user.get_username()}, status=status)


# --- settings ---------------------------------------------------------------------------------------------

@org_view({"GET": "org.manage", "POST": "org.manage"})
def sso_settings(request):
    """The org's SSO: IdP configuration, email domains, group→role mapping and "SSO required"."""
    org = request.org
    provider = SsoProvider.objects.for_org(org).first()
    initial = {"issuer": provider.issuer, "client_id": provider.client_id, "default_role": provider.default_role,
               "groups_claim": provider.groups_claim, "enabled": provider.enabled} if provider else None
    form = ProviderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sso.save_provider(_ctx(request), org, issuer=data["issuer"], client_id=data["client_id"],
                              client_secret=data["client_secret"], enabled=data["enabled"],
                              default_role=data["default_role"], groups_claim=data["groups_claim"])
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "SSO settings saved.")
            return redirect("sso-settings", org.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "identity/sso_settings.html", {
        "form": form, "provider": provider, "redirect_uri": sso.redirect_uri(),
        "domains": SsoDomain.objects.for_org(org), "mappings": GroupRoleMapping.objects.for_org(org),
        "role_choices": Role.choices, "identity_settings": OrgIdentitySettings.of(org),
        "sign_in_url": f"{settings.CSM_BASE_URL}/sso/{org.slug}/start/",
    }, status=status)


def _write(request, action, *args):
    try:
        action(_ctx(request), request.org, *args)
    except ServiceError as error:
        if error.code == "not_found":
            raise Http404(error.message) from None
        messages.error(request, error.message)
        return False
    return True


@org_view("org.manage")
@require_POST
def sso_domain_add(request):
    form = DomainForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a domain name (like example.com).")
    elif _write(request, sso.add_domain, form.cleaned_data["domain"]):
        messages.success(request, f"Added {form.cleaned_data['domain'].strip().lower()}; verify it with a test "
                                  f"sign-in.")
    return redirect("sso-settings", request.org.slug)


@org_view("org.manage")
@require_POST
def sso_domain_remove(request, domain_id):
    if _write(request, sso.remove_domain, domain_id):
        messages.success(request, "Domain removed.")
    return redirect("sso-settings", request.org.slug)


@org_view("org.manage")
@require_POST
def sso_group_set(request):
    form = GroupRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a group name and choose a role.")
    elif form.cleaned_data["role"] == Role.OWNER and not request.org_access.can("owners.manage"):
        messages.error(request, "Only owners can map a group to the owner role.")
    elif _write(request, sso.set_group_role, form.cleaned_data["group"], form.cleaned_data["role"]):
        messages.success(request, "Group mapping saved.")
    return redirect("sso-settings", request.org.slug)


@org_view("org.manage")
@require_POST
def sso_group_remove(request, mapping_id):
    if _write(request, sso.remove_group_role, mapping_id):
        messages.success(request, "Group mapping removed.")
    return redirect("sso-settings", request.org.slug)


@org_view("owners.manage")
@require_POST
def sso_require(request):
    """Owners only: "SSO required" changes how every member signs in."""
    required = request.POST.get("require_sso") == "on"
    if _write(request, sso.set_require_sso, required):
        messages.success(request, "SSO is now required for members." if required else "SSO is no longer required.")
    return redirect("sso-settings", request.org.slug)


@org_view("org.manage")
@require_POST
def sso_test(request):
    """Start a test sign-in at the IdP; coming back with a verified address verifies its domain."""
    try:
        url = sso.start(request, request.org, purpose="test")
    except sso.SsoFailure as failure:
        failure.org = request.org
        return _failed(request, failure)
    return _to_idp(request, url, request.org)


urlpatterns = [
    path("sso/", sso_sign_in, name="sso-sign-in"),
    path("sso/start/", sso_start, name="sso-start"),
    path("sso/callback/", sso_callback, name="sso-callback"),
    path("sso/link/", sso_link, name="sso-link"),
    path("sso/<slug:org_slug>/start/", sso_org_start, name="sso-org-start"),
    path("o/<slug:org>/settings/sso/", sso_settings, name="sso-settings"),
    path("o/<slug:org>/settings/sso/domains/", sso_domain_add, name="sso-domain-add"),
    path("o/<slug:org>/settings/sso/domains/<int:domain_id>/remove/", sso_domain_remove, name="sso-domain-remove"),
    path("o/<slug:org>/settings/sso/groups/", sso_group_set, name="sso-group-set"),
    path("o/<slug:org>/settings/sso/groups/<int:mapping_id>/remove/", sso_group_remove, name="sso-group-remove"),
    path("o/<slug:org>/settings/sso/require/", sso_require, name="sso-require"),
    path("o/<slug:org>/settings/sso/test/", sso_test, name="sso-test"),
]
