"""Web pages: sign-in/up, org switcher targets, org settings, members, invitations, service accounts
and tokens. Views stay thin: forms validate, tenants/services.py writes (and audits), and every org
page is guarded by ``@org_view("<permission>")`` (404 outside the org, 403 below the permission)."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.lib.clientip import client_ip
from csm.web import org_view
from tenants import forms, ratelimit, services
from tenants.choices import Role
from tenants.models import ApiToken, Invitation, Membership, ServiceAccount
from tenants.permissions import has_permission

_ONCE_KEY = "csm_show_once"


def _ctx(request) -> AuditContext:
    return AuditContext.from_request(request)


def _show_secret_once(request, label: str, value: str) -> None:
    """Keep a new secret (an API token) in the session for exactly one page view (the redirect target
    pops it), with the agent's environment variables ready to paste (csm-agent reads CSM_HOST, CSM_ORG
    and CSM_API_TOKEN)."""
    export = f"export CSM_HOST={settings.CSM_BASE_URL} CSM_ORG={request.org.slug} CSM_API_TOKEN={value}"
    request.session[_ONCE_KEY] = {"label": label, "value": value, "export": export}


def _pop_secret(request):
    return request.session.pop(_ONCE_KEY, None)


def _fail(request, error: ServiceError):
    if error.code == "not_found":
        raise Http404(error.message)
    messages.error(request, error.message)


# --- auth ---------------------------------------------------------------------------------------------

def admin_sign_in(request):
    """``/admin/login/``: the admin's own sign-in view, whose form (tenants.admin) is rate limited like
    ``/login/``; a refused attempt answers 429 here too."""
    response = admin.site.login(request)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if getattr(form, "rate_limited", False):
        response.status_code = 429
    return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request, rate limited (tenants.ratelimit): 429 over the per-IP limit; over the
    per-address limit the usual "sent" page, without another email."""

    template_name = "tenants/auth/password_reset_form.html"
    email_template_name = "tenants/email/password_reset.txt"
    subject_template_name = "tenants/email/password_reset_subject.txt"
    success_url = reverse_lazy("password-reset-done")

    def form_valid(self, form):
        limited, may_send = ratelimit.password_reset(form.cleaned_data["email"], client_ip(self.request))
        if limited is not None:
            form.add_error(None, f"Too many password-reset requests from your network address. "
                                 f"Try again in {limited.minutes}.")
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        if not may_send:
            return redirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "tenants/auth/password_reset_confirm.html"
    success_url = reverse_lazy("password-reset-complete")


def signup(request):
    """Create an account. Without an invitation: the address gets an email (a link to finish, or "you
    already have an account") and the answer is the same page either way, so sign-up never tells whether
    an address has an account; rate limited like password reset (429 over the per-IP limit).

    With ``?invitation=<secret>`` the invited address is fixed and the account is created and the
    invitation accepted right away (the person proved the address by opening the emailed link)."""
    secret = request.GET.get("invitation", "")
    invitation = services.find_invitation(secret)
    if invitation is not None and invitation.status != "pending":
        invitation = None
    if invitation is None:
        return _signup_request(request)
    form = forms.SignUpForm(request.POST or None, invited_email=invitation.email)
    if request.method == "POST" and form.is_valid():
        user = _create_account(request, form)
        if user is not None:
            try:
                membership = services.accept_invitation(_ctx(request), secret, user)
            except ServiceError as error:
                _fail(request, error)
            else:
                messages.success(request, f"Welcome to {membership.org.name}.")
                return redirect("org-home", membership.org.slug)
            return redirect("org-create")
    return render(request, "tenants/auth/signup.html", {"form": form, "invitation": invitation})


def _signup_request(request):
    form = forms.SignUpRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        limited, may_send = ratelimit.sign_up(email, client_ip(request))
        if limited is not None:
            form.add_error(None, f"Too many sign-up requests from your network address. Try again in "
                                 f"{limited.minutes}.")
            return render(request, "tenants/auth/signup_request.html", {"form": form}, status=429)
        if may_send:
            services.request_sign_up(email)
        return render(request, "tenants/auth/signup_sent.html", {"email": email.strip().lower()})
    return render(request, "tenants/auth/signup_request.html", {"form": form})


def _create_account(request, form):
    """Create the account from a valid SignUpForm and sign the person in; None (form error) if taken."""
    try:
        user = services.sign_up(form.cleaned_data["email"], form.cleaned_data["password1"])
    except ServiceError as error:
        form.add_error(error.field, error.message)
        return None
    login(request, user, backend="tenants.backends.EmailOrUsernameBackend")
    return user


def signup_finish(request, secret):
    """The emailed sign-up link: choose a password for the address it was sent to."""
    email = services.sign_up_link_email(secret)
    if email is None:
        raise Http404("This sign-up link is invalid or has expired; sign up again.")
    form = forms.SignUpForm(request.POST or None, invited_email=email,
                            fixed_email_help="The address this link was sent to.")
    if request.method == "POST" and form.is_valid() and _create_account(request, form) is not None:
        return redirect("org-create")
    return render(request, "tenants/auth/signup.html", {"form": form, "invitation": None})


def invitation_accept(request, secret):
    """The emailed link: shows the invitation; a signed-in invitee accepts it with one click."""
    invitation = services.find_invitation(secret)
    if invitation is None:
        raise Http404("No such invitation.")
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = services.accept_invitation(_ctx(request), secret, request.user)
        except ServiceError as error:
            _fail(request, error)
        else:
            messages.success(request, f"You joined {membership.org.name} as {membership.get_role_display()}.")
            return redirect("org-home", membership.org.slug)
    email_matches = request.user.is_authenticated and request.user.email.lower() == invitation.email.lower()
    return render(request, "tenants/invitation_accept.html", {
        "invitation": invitation, "secret": secret, "email_matches": email_matches,
    })


# --- orgs ---------------------------------------------------------------------------------------------

def _pending_invitations(org):
    return Invitation.objects.for_org(org).filter(accepted_at__isnull=True, revoked_at__isnull=True,
                                                  expires_at__gt=timezone.now())


@login_required
def home(request):
    """The start page: the org used last in this session, else the person's default org (account settings),
    else the first org, else 'create your first org'. Only orgs
    whose pages the user's role may see count: a snapshotter-only membership (a role for reporting
    agents) gets a page saying so instead of a 403."""
    memberships = list(Membership.objects.filter(user=request.user, suspended_at=None)
            .select_related("org").order_by("org__slug"))
    if not memberships:
        return redirect("org-create")
    viewable = [m for m in memberships if has_permission(m.role, "org.view")]
    if not viewable:
        return render(request, "tenants/no_pages.html", {"memberships": memberships})
    current = request.session.get("current_org")
    default = services.default_org(request.user)
    chosen = (next((m for m in viewable if m.org.slug == current), None)
              or next((m for m in viewable if default is not None and m.org_id == default.pk), None)
              or viewable[0])
    return redirect("org-home", chosen.org.slug)


@login_required
def account_settings(request):
    """The signed-in person's own settings, across their orgs: the org to open after sign-in (also
    ``kosli get/update default-org``)."""
    memberships = [m for m in Membership.objects.filter(user=request.user, suspended_at=None)
            .select_related("org").order_by("org__slug")
                   if has_permission(m.role, "org.view")]
    default = services.default_org(request.user)
    form = forms.DefaultOrgForm(request.POST or None, memberships=memberships,
                                initial={"default_org": default.slug if default else None})
    if request.method == "POST" and form.is_valid():
        org = next(m.org for m in memberships if m.org.slug == form.cleaned_data["default_org"])
        try:
            services.set_default_org(_ctx(request), request.user, org)
        except ServiceError as error:
            form.add_error("default_org", error.message)
        else:
            messages.success(request, f"{org.name} now opens after you sign in.")
            return redirect("account-settings")
    return render(request, "tenants/account_settings.html", {"form": form, "default": default,
                                                             "memberships": memberships})


@login_required
def org_create(request):
    form = forms.OrgCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.create_org(_ctx(request), form.cleaned_data["slug"], form.cleaned_data["name"],
                                      request.user)
        except ServiceError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, f"Created {org.name}. Invite your colleagues and create an agent token.")
            return redirect("org-home", org.slug)
    return render(request, "tenants/org_create.html", {"form": form})


@org_view("org.view")
def org_settings(request):
    return render(request, "tenants/org_settings.html", {
        "form": forms.OrgUpdateForm(initial={"name": request.org.name}),
        "retention_form": forms.OrgRetentionForm(initial={
            field: getattr(request.org, field) for field in services.RETENTION_FIELDS}),
        "retention_max_days": services.RETENTION_MAX_DAYS,
    })


@org_view("org.manage")
@require_POST
def org_update(request):
    form = forms.OrgUpdateForm(request.POST)
    if form.is_valid():
        try:
            services.update_org(_ctx(request), request.org, name=form.cleaned_data["name"])
            messages.success(request, "Saved.")
        except ServiceError as error:
            _fail(request, error)
    else:
        messages.error(request, "Enter a name of at most 200 characters.")
    return redirect("org-settings", request.org.slug)


@org_view("org.manage")
@require_POST
def org_retention(request):
    form = forms.OrgRetentionForm(request.POST)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        messages.error(request, f"{form.fields[field].label}: {errors[0]}")
        return redirect("org-settings", request.org.slug)
    try:
        services.set_retention(_ctx(request), request.org, **form.cleaned_data)
        messages.success(request, "Retention saved.")
    except ServiceError as error:
        label = form.fields[error.field].label if error.field in form.fields else error.field
        messages.error(request, f"{label}: {error.message}")
    return redirect("org-settings", request.org.slug)


# --- members and invitations --------------------------------------------------------------------------

@org_view("org.view")
def member_list(request):
    org, access = request.org, request.org_access
    can_manage = access.can("members.manage")
    owners_ok = access.can("owners.manage")
    memberships = list(Membership.objects.for_org(org).select_related("user").order_by("user__email"))
    return render(request, "tenants/members.html", {
        "memberships": memberships,
        # The last owner can be neither demoted nor removed (tenants.services refuses): the page offers neither.
        "owner_count": sum(1 for m in memberships if m.role == Role.OWNER),
        "invitations": _pending_invitations(org).select_related("invited_by") if can_manage else [],
        "can_manage": can_manage,
        "invite_form": forms.InviteForm(can_manage_owners=owners_ok),
        "role_choices": forms.role_choices(owners_ok),
        "owners_ok": owners_ok,
    })


@org_view("members.manage")
@require_POST
def member_role(request, membership_id):
    membership = get_object_or_404(Membership.objects.for_org(request.org), pk=membership_id)
    form = forms.RoleForm(request.POST)
    if form.is_valid():
        try:
            services.change_role(_ctx(request), membership, form.cleaned_data["role"],
                                 actor_role=request.org_access.role)
            messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
        except ServiceError as error:
            _fail(request, error)
    else:
        messages.error(request, "Choose a role.")
    return redirect("member-list", request.org.slug)


@org_view("members.manage")
@require_POST
def member_remove(request, membership_id):
    membership = get_object_or_404(Membership.objects.for_org(request.org), pk=membership_id)
    try:
        services.remove_member(_ctx(request), membership, actor_role=request.org_access.role)
        messages.success(request, f"Removed {membership.user.email}.")
    except ServiceError as error:
        _fail(request, error)
    if membership.user_id == request.user.pk and not Membership.objects.filter(pk=membership.pk).exists():
        return redirect("home")
    return redirect("member-list", request.org.slug)


@org_view("members.manage")
@require_POST
def invitation_create(request):
    form = forms.InviteForm(request.POST, can_manage_owners=request.org_access.can("owners.manage"))
    if form.is_valid():
        try:
            invitation, _ = services.invite_member(
                _ctx(request), request.org, form.cleaned_data["email"], form.cleaned_data["role"],
                actor_role=request.org_access.role, invited_by=request.user,
            )
            messages.success(request, f"Invitation sent to {invitation.email}.")
        except ServiceError as error:
            _fail(request, error)
    else:
        for problems in form.errors.values():
            messages.error(request, problems[0])
    return redirect("member-list", request.org.slug)


@org_view("members.manage")
@require_POST
def invitation_revoke(request, invitation_id):
    invitation = get_object_or_404(Invitation.objects.for_org(request.org), pk=invitation_id)
    try:
        services.revoke_invitation(_ctx(request), invitation)
        messages.success(request, f"Revoked the invitation of {invitation.email}.")
    except ServiceError as error:
        _fail(request, error)
    return redirect("member-list", request.org.slug)


# --- service accounts and their tokens ----------------------------------------------------------------

@org_view("tokens.manage")
def service_account_list(request):
    org = request.org
    form = forms.ServiceAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = services.create_service_account(
                _ctx(request), org, form.cleaned_data["name"], form.cleaned_data["role"],
                form.cleaned_data["description"], created_by=request.user,
            )
        except ServiceError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, f"Created {account.name}. Now create a token for it.")
            return redirect("service-account-detail", org.slug, account.pk)
    accounts = ServiceAccount.objects.for_org(org).prefetch_related("tokens").order_by("deactivated_at", "name")
    return render(request, "tenants/service_accounts.html", {"accounts": accounts, "form": form})


def _account(request, account_id) -> ServiceAccount:
    return get_object_or_404(ServiceAccount.objects.for_org(request.org), pk=account_id)


def _account_page(request, account, token_form=None, status=200):
    return render(request, "tenants/service_account_detail.html", {
        "account": account,
        "tokens": account.tokens.select_related("rotated_to").order_by("-created_at"),
        "token_form": token_form or forms.TokenForm(),
        "rotate_form": forms.RotateForm(),
        "new_secret": _pop_secret(request),
    }, status=status)


@org_view("tokens.manage")
def service_account_detail(request, account_id):
    return _account_page(request, _account(request, account_id))


@org_view("tokens.manage")
@require_POST
def service_account_token_create(request, account_id):
    account = _account(request, account_id)
    form = forms.TokenForm(request.POST)
    if form.is_valid():
        try:
            token, plaintext = services.create_api_token(
                _ctx(request), request.org, form.cleaned_data["name"], service_account=account,
                expires_at=form.expires_at(), created_by=request.user, **form.scope(),
            )
        except ServiceError as error:
            if error.code == "not_found" or error.field not in form.fields:
                _fail(request, error)
                return redirect("service-account-detail", request.org.slug, account.pk)
            form.add_error(error.field, error.message)
        else:
            _show_secret_once(request, f"New token “{token.name}” for {account.name}", plaintext)
            return redirect("service-account-detail", request.org.slug, account.pk)
    return _account_page(request, account, form, status=400)


@org_view("tokens.manage")
@require_POST
def service_account_deactivate(request, account_id):
    account = _account(request, account_id)
    services.deactivate_service_account(_ctx(request), account)
    messages.success(request, f"Deactivated {account.name}; its tokens no longer work.")
    return redirect("service-account-list", request.org.slug)


def _rotate(request, token, back):
    form = forms.RotateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a grace period.")
        return back
    try:
        new, plaintext = services.rotate_api_token(_ctx(request), token, form.cleaned_data["grace_seconds"],
                                                   created_by=request.user)
        _show_secret_once(request, f"New token {new.name} (replaces {token.prefix}…)", plaintext)
    except ServiceError as error:
        _fail(request, error)
    return back


@org_view("tokens.manage")
@require_POST
def service_account_token_rotate(request, account_id, token_id):
    account = _account(request, account_id)
    token = get_object_or_404(ApiToken.objects.for_org(request.org), service_account=account, pk=token_id)
    return _rotate(request, token, redirect("service-account-detail", request.org.slug, account.pk))


@org_view("tokens.manage")
@require_POST
def service_account_token_revoke(request, account_id, token_id):
    account = _account(request, account_id)
    token = get_object_or_404(ApiToken.objects.for_org(request.org), service_account=account, pk=token_id)
    services.revoke_api_token(_ctx(request), token)
    messages.success(request, f"Revoked {token.prefix}….")
    return redirect("service-account-detail", request.org.slug, account.pk)


# --- personal tokens ----------------------------------------------------------------------------------

def _my_tokens(request):
    return ApiToken.objects.for_org(request.org).filter(user=request.user)


@org_view("tokens.personal")
def personal_tokens(request):
    form = forms.TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, plaintext = services.create_api_token(
                _ctx(request), request.org, form.cleaned_data["name"], user=request.user,
                expires_at=form.expires_at(), created_by=request.user, **form.scope(),
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            _show_secret_once(request, f"New personal token “{token.name}”", plaintext)
            return redirect("personal-tokens", request.org.slug)
    return render(request, "tenants/personal_tokens.html", {
        "tokens": _my_tokens(request).select_related("rotated_to"),
        "form": form,
        "rotate_form": forms.RotateForm(),
        "new_secret": _pop_secret(request),
    })


@org_view("tokens.personal")
@require_POST
def personal_token_rotate(request, token_id):
    token = get_object_or_404(_my_tokens(request), pk=token_id)
    return _rotate(request, token, redirect("personal-tokens", request.org.slug))


@org_view("tokens.personal")
@require_POST
def personal_token_revoke(request, token_id):
    token = get_object_or_404(_my_tokens(request), pk=token_id)
    services.revoke_api_token(_ctx(request), token)
    messages.success(request, f"Revoked {token.prefix}….")
    return redirect(reverse("personal-tokens", args=[request.org.slug]))
