"""Web pages of alerts: the actions of an org (targets, triggers, state) with a create form that
shows a new webhook's signing secret once, and one action's page (edit form, delivery log with every
attempt). Each other operation — test send, enable, disable, delete, redeliver — is its own POST-only
view and URL. Forms (alerts/forms.py) validate; alerts/services.py writes."""

from django.conf import settings
from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.web import add_service_error, org_view

from . import services
from .choices import ActionType
from .forms import ActionForm
from .models import Action, Delivery, DeliveryAttempt

# Django's e-mail backends that send nothing (the default console one, and locmem of the tests): an email
# action on them shows "delivered" for a message only printed to the server console, so its page says so.
EMAIL_BACKENDS_NOT_SENDING = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
}


def _action(request, action_id) -> Action:
    return get_object_or_404(Action.objects.for_org(request.org), pk=action_id, deleted_at=None)


def _fail(request, error: ServiceError) -> None:
    if error.code == "not_found":
        raise Http404(error.message)
    messages.error(request, error.message)


@org_view({"GET": "actions.view", "POST": "actions.manage"})
def action_list(request):
    """GET: the actions and the create form. POST: create one; a webhook's signing secret is shown in
    this answer only (never stored in the session), so the page is rendered rather than redirected."""
    form = ActionForm(request.POST or None, org=request.org)
    secret = created = None
    if request.method == "POST" and form.is_valid():
        try:
            created, secret = services.create_action(AuditContext.from_request(request), request.org,
                                                     **form.changes())
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Action {created.name} created.")
            form = ActionForm(org=request.org)
    actions = Action.objects.for_org(request.org).filter(deleted_at=None).order_by("name")
    return render(request, "alerts/action_list.html", {
        "actions": actions, "form": form, "secret": secret, "created": created,
        "can_manage": request.org_access.can("actions.manage")})


@org_view({"GET": "actions.view", "POST": "actions.manage"})
def action_detail(request, action_id):
    """GET: the action, its edit form and its delivery log. POST: save the edit form."""
    action = _action(request, action_id)
    form = ActionForm(request.POST or None, org=request.org, action=action)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_action(AuditContext.from_request(request), request.org, action, **form.changes())
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Action saved.")
            return redirect("action-detail", request.org.slug, action.pk)
    attempts = Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("number"))
    deliveries = Delivery.objects.for_org(request.org).filter(action=action).prefetch_related(attempts)[:50]
    return render(request, "alerts/action_detail.html", {
        "action": action, "form": form, "deliveries": deliveries,
        "can_manage": request.org_access.can("actions.manage"),
        "emails_not_sent": action.type == ActionType.EMAIL and settings.EMAIL_BACKEND in EMAIL_BACKENDS_NOT_SENDING})


@org_view("actions.manage")
@require_POST
def action_test(request, action_id):
    action = _action(request, action_id)
    services.test_action(AuditContext.from_request(request), request.org, action)
    messages.success(request, "Test alert sent; its delivery appears below.")
    return redirect("action-detail", request.org.slug, action.pk)


def _set_enabled(request, action_id, enabled: bool):
    action = _action(request, action_id)
    try:
        services.update_action(AuditContext.from_request(request), request.org, action, enabled=enabled)
    except ServiceError as error:
        _fail(request, error)
    else:
        messages.success(request, "Action enabled." if enabled else "Action disabled.")
    return redirect("action-detail", request.org.slug, action.pk)


@org_view("actions.manage")
@require_POST
def action_enable(request, action_id):
    return _set_enabled(request, action_id, True)


@org_view("actions.manage")
@require_POST
def action_disable(request, action_id):
    return _set_enabled(request, action_id, False)


@org_view("actions.manage")
@require_POST
def action_delete(request, action_id):
    action = _action(request, action_id)
    services.delete_action(AuditContext.from_request(request), request.org, action)
    messages.success(request, f"Action {action.name} deleted.")
    return redirect("action-list", request.org.slug)


@org_view("actions.manage")
@require_POST
def delivery_redeliver(request, action_id, delivery_id):
    action = _action(request, action_id)
    delivery = get_object_or_404(Delivery.objects.for_org(request.org), action=action, pk=delivery_id)
    try:
        services.redeliver(AuditContext.from_request(request), request.org, delivery)
    except ServiceError as error:
        _fail(request, error)
    else:
        messages.success(request, f"Delivery {delivery.event_id} queued again.")
    return redirect("action-detail", request.org.slug, action.pk)
