"""A person's own account pages: the login page, and changing their password.

The login page is Django's, with one addition: on the way to an authorization that a
remembered consent may answer (``oauth_app.consent``), the login form's POST ends in a redirect
to the client, which browsers check against the login page's CSP `form-action`; that page
names the client's redirect origin, as the consent page does.

Changing the password checks the current one through ``authenticate()``, not Django's bare
``check_password``: so django-axes counts a wrong one as a failed login (the same lockout as
the login form: someone at an unlocked screen cannot guess the password here instead), a
locked-out account gets the lockout page, and the auth event trail records the failure.
"""

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.urls import reverse_lazy
from django.views.decorators.debug import sensitive_variables

from oauth_app.views.authorize import login_form_action_source


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        source = login_form_action_source(self.get_redirect_url())
        if source is not None:
            response._csp_update = {"form-action": [source]}  # as @csp_update would, for this response
        return response


class GuardedPasswordChangeForm(PasswordChangeForm):
    """Django's form, with the current password checked the way a login checks it (see above)."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    @sensitive_variables("old_password")
    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        # A locked-out account makes axes refuse before the password is compared; its middleware
        # then answers with the lockout page whatever this form says.
        confirmed = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if confirmed is None or confirmed.pk != self.user.pk:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = GuardedPasswordChangeForm
    # Names of our own: Django's default names are also the admin's password pages, which keep their style.
    template_name = "registration/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_changed.html"
