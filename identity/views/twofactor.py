"""Two-factor pages (docs/identity.md, "Two-factor"): the person's own security page ``/account/security/``
(authenticator app, passkeys, recovery codes), the second step of a sign-in ``/login/two-factor/``, and the
org switch ``/o/<org>/settings/two-factor/``. The writes are in identity/twofactor.py."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from csm.errors import ServiceError
from csm.web import org_view
from identity import signin, twofactor
from identity.models import OrgIdentitySettings


class ConfirmForm(forms.Form):
    confirm = forms.CharField(max_length=200, strip=False, widget=forms.PasswordInput(render_value=False))


class TotpConfirmForm(forms.Form):
    code = forms.CharField(label="Code from the app", max_length=20, widget=forms.TextInput(attrs={
        "inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}))


class PasskeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, widget=forms.TextInput(attrs={
        "placeholder": "e.g. Work laptop", "autocomplete": "off"}))
    credential = forms.CharField(required=False, widget=forms.HiddenInput)


class VerifyForm(forms.Form):
    code = forms.CharField(label="Code", max_length=40, required=False, widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "autofocus": True, "autocapitalize": "off", "spellcheck": "false"}))
    credential = forms.CharField(required=False, widget=forms.HiddenInput)


class RequireForm(forms.Form):
    require_two_factor = forms.BooleanField(required=False, label="Require two-factor for every member")


def _ctx(request):
    return twofactor.context_for(request, request.user)


def _confirm_label(user) -> str:
    return "Your password" if user.has_usable_password() else "A code from your authenticator app"


# --- the person's own security page ------------------------------------------------------------------------

@login_required
def security(request):
    user = request.user
    return render(request, "identity/security.html", {
        "totp": twofactor.totp_device(user),
        "passkeys": twofactor.passkeys(user),
        "has_factor": twofactor.has_confirmed_factor(user),
        "recovery_left": twofactor.unused_recovery_codes(user),
        "new_codes": twofactor.pop_codes(request.session),
        "requiring": twofactor.orgs_requiring_two_factor(user),
        "passkey_form": PasskeyForm(),
        "confirm_label": _confirm_label(user),
    })


@login_required
def totp_setup(request):
    """Show a new secret (QR code and text); a code from the app confirms it."""
    if twofactor.totp_device(request.user) is not None:
        messages.info(request, "You already have an authenticator app. Remove it first to set up another.")
        return redirect("account-security")
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = twofactor.confirm_totp(_ctx(request), request.user, form.cleaned_data["code"])
        except ServiceError as error:
            form.add_error("code", error.message)
        else:
            twofactor.show_codes_once(request.session, codes)
            twofactor.mark_session_passed(request.session)  # it has just proved the factor
            messages.success(request, "Authenticator app added. You will be asked for a code when you sign in.")
            return redirect("account-security")
    device = twofactor.pending_totp_device(request.user)
    return render(request, "identity/totp_setup.html", {
        "form": form, "qr": twofactor.totp_qr_svg(device), "secret": twofactor.totp_secret(device),
    }, status=400 if form.errors else 200)


def _remove(request, remove, what: str):
    form = ConfirmForm(request.POST)
    try:
        remove(form.data.get("confirm", ""))
    except ServiceError as error:
        if error.code == "not_found":
            raise Http404(error.message) from None
        messages.error(request, error.message)
    else:
        messages.success(request, f"{what} removed.")
    return redirect("account-security")


@login_required
@require_POST
def totp_remove(request):
    return _remove(request, lambda confirm: twofactor.remove_totp(_ctx(request), request.user, confirm),
                   "Authenticator app")


@login_required
@require_POST
def passkey_options(request):
    """JSON options for ``navigator.credentials.create`` (identity/static/identity/webauthn.js)."""
    return _json(twofactor.registration_options(request.session, request.user))


def _json(options_json: str):
    return HttpResponse(options_json, content_type="application/json")


@login_required
@require_POST
def passkey_add(request):
    form = PasskeyForm(request.POST)
    if form.is_valid():
        try:
            passkey, codes = twofactor.register_passkey(_ctx(request), request.session, request.user,
                                                        form.cleaned_data["name"], form.cleaned_data["credential"])
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            twofactor.show_codes_once(request.session, codes)
            twofactor.mark_session_passed(request.session)
            messages.success(request, f"Passkey {passkey.name!r} added.")
    else:
        messages.error(request, "Name the passkey (at most 100 characters).")
    return redirect("account-security")


@login_required
@require_POST
def passkey_remove(request, passkey_id):
    return _remove(request, lambda confirm: twofactor.remove_passkey(_ctx(request), request.user, passkey_id, confirm),
                   "Passkey")


@login_required
@require_POST
def recovery_codes(request):
    """A new set of recovery codes (the old ones stop working), shown once on the security page."""
    try:
        codes = twofactor.regenerate_recovery_codes(_ctx(request), request.user, request.POST.get("confirm", ""))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        twofactor.show_codes_once(request.session, codes)
    return redirect("account-security")


# --- the second step of a sign-in ----------------------------------------------------------------------------

def verify(request):
    """``/login/two-factor/``: a code from the authenticator app, a passkey or a recovery code, for the sign-in
    begun with the password (identity.signin.begin_sign_in). Without one pending: back to the sign-in page."""
    pending = twofactor.pending_sign_in(request)
    if pending is None:
        messages.info(request, "Sign in again: the two-factor step expired or was not started.")
        return redirect("login")
    form = VerifyForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            kind = twofactor.verify_second_factor(request, pending, code=form.cleaned_data["code"],
                                                  credential=form.cleaned_data["credential"])
        except twofactor.TooManyAttempts as refused:
            return render(request, "identity/two_factor_verify.html", {"limited": refused.limited.message},
                          status=429)
        if kind is not None:
            twofactor.clear_pending(request)
            signin.complete_sign_in(request, pending.user, method=f"{pending.method}+{kind}",
                                    backend=pending.backend, amr=pending.amr)
            if kind == twofactor.RECOVERY_CODE:
                left = twofactor.unused_recovery_codes(pending.user)
                messages.warning(request, f"You signed in with a recovery code; {left} left. Generate new ones on "
                                          f"your account's security page if you are running out.")
            return redirect(pending.redirect_to)
        # a failed second factor is a failed sign-in too (counted by the repeated-failures detector)
        signin.sign_in_failed(request, pending.user.email or pending.user.get_username(), reason="second_factor")
        form.add_error(None, "That did not work. Check the code (or try your passkey again) and retry.")
        status = 400
    if form.errors:
        status = 400
    return render(request, "identity/two_factor_verify.html", {
        "form": form, "has_totp": twofactor.totp_device(pending.user) is not None,
        "has_passkeys": twofactor.passkeys(pending.user).exists(),
    }, status=status)


@require_POST
def verify_passkey_options(request):
    """JSON options for ``navigator.credentials.get`` for the pending sign-in (404 without one)."""
    options = twofactor.passkey_options_for_pending(request)
    if options is None:
        return JsonResponse({"error": {"code": "not_found", "message": "No sign-in is waiting for a passkey."}},
                            status=404)
    return _json(options)


# --- the org switch ------------------------------------------------------------------------------------------

@org_view("org.manage")
def org_two_factor(request):
    """``/o/<org>/settings/two-factor/``: switch "require two-factor", see who has not enrolled yet."""
    current = OrgIdentitySettings.of(request.org)
    form = RequireForm(request.POST if request.method == "POST" else None,
                       initial={"require_two_factor": current.require_two_factor})
    if request.method == "POST" and form.is_valid():
        required = form.cleaned_data["require_two_factor"]
        try:
            twofactor.set_require_two_factor(_ctx(request), request.org, required, request.user)
        except ServiceError as error:
            form.add_error("require_two_factor", error.message)
        else:
            messages.success(request, "Two-factor is now required." if required else "Two-factor is now optional.")
            return redirect("org-two-factor", request.org.slug)
    return render(request, "identity/org_two_factor.html", {
        "form": form, "required": current.require_two_factor,
        "without": twofactor.members_without_factor(request.org),
    }, status=400 if form.errors else 200)


urlpatterns = [
    path("account/security/", security, name="account-security"),
    path("account/security/totp/", totp_setup, name="two-factor-totp-setup"),
    path("account/security/totp/remove/", totp_remove, name="two-factor-totp-remove"),
    path("account/security/passkeys/options/", passkey_options, name="two-factor-passkey-options"),
    path("account/security/passkeys/", passkey_add, name="two-factor-passkey-add"),
    path("account/security/passkeys/<int:passkey_id>/remove/", passkey_remove, name="two-factor-passkey-remove"),
    path("account/security/recovery-codes/", recovery_codes, name="two-factor-recovery-codes"),
    path("login/two-factor/", verify, name="two-factor-verify"),
    path("login/two-factor/passkey-options/", verify_passkey_options, name="two-factor-verify-passkey-options"),
    path("o/<slug:org>/settings/two-factor/", org_two_factor, name="org-two-factor"),
]
