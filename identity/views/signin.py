"""The password sign-in page (``/login/``): the first step of the sign-in pipeline (identity/signin.py)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from csm.lib.clientip import client_ip
from identity import signin
from tenants import forms


class SignInView(auth_views.LoginView):
    """Sign in with email and password; rate limited per account and per IP (429 when refused)."""

    form_class = forms.SignInForm
    template_name = "tenants/auth/login.html"
    redirect_authenticated_user = True

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["client_ip"] = client_ip(self.request)
        return kwargs

    def form_valid(self, form):
        user = form.get_user()
        refusal = signin.password_sign_in_refusal(user, self.request)
        if refusal is not None:
            signin.sign_in_failed(self.request, form.cleaned_data.get("username"), reason="sso_required")
            form.add_error(None, refusal)
            response = super().form_invalid(form)  # not ours: that would record a second, "bad_credentials" failure
            response.status_code = 403
            return response
        return signin.begin_sign_in(self.request, user, method="password", redirect_to=self.get_success_url())

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.rate_limited:
            response.status_code = 429
        elif self.request.method == "POST" and form.errors and response.status_code == 200:
            signin.sign_in_failed(self.request, form.data.get("username"), reason="bad_credentials")
        return response


urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
]
