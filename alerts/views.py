"""Web pages of alerts: the actions of an org (targets, triggers, state) with a create form that
shows a new webhook's signing secret once, and one action's page (edit, enable/disable, test send,
delete, delivery log with every attempt, redeliver)."""

from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render

from audit.context import AuditContext
from csm.web import org_view
from snapshots.models import Environment

from . import services
from .choices import ActionType, Trigger
from .models import Action, Delivery, DeliveryAttempt

TRIGGERS = [(t.value, t.label) for t in Trigger if t != Trigger.ON_TEST]


def _form(request) -> dict:
    return {"name": request.POST.get("name", "").strip(), "type": request.POST.get("type", ""),
            "url": request.POST.get("url", "").strip(), "email": request.POST.get("email", "").strip(),
            "environments": request.POST.getlist("environments"), "triggers": request.POST.getlist("triggers")}


def _context(request, **extra) -> dict:
    environments = Environment.objects.for_org(request.org).exclude(type="logical").order_by("name")
    return {"triggers": TRIGGERS, "types": ActionType.choices, "environments": environments,
            "can_manage": request.org_access.can("actions.manage"), **extra}


@org_view({"GET": "actions.view", "POST": "actions.manage"})
def action_list(request):
    actions = Action.objects.for_org(request.org).filter(deleted_at=None).order_by("name")
    form = {"name": "", "type": ActionType.WEBHOOK, "url": "", "email": "", "environments": [], "triggers": []}
    secret = None
    created = None
    if request.method == "POST":
        form = _form(request)
        if not form["name"]:
            messages.error(request, "Give the action a name.")
        elif form["type"] not in ActionType.values:
            messages.error(request, "Choose a type.")
        else:
            try:
                created, secret = services.create_action(AuditContext.from_request(request), request.org, **form)
                messages.success(request, f"Action {created.name} created.")
            except services.ActionError as error:
                messages.error(request, f"{error.field + ': ' if error.field else ''}{error.message}")
    return render(request, "alerts/action_list.html", _context(
        request, actions=actions, form=form, secret=secret, created=created))


@org_view({"GET": "actions.view", "POST": "actions.manage"})
def action_detail(request, action_id):
    action = get_object_or_404(Action.objects.for_org(request.org), pk=action_id, deleted_at=None)
    if request.method == "POST":
        ctx = AuditContext.from_request(request)
        operation = request.POST.get("operation")
        try:
            if operation == "test":
                services.test_action(ctx, request.org, action)
                messages.success(request, "Test alert sent; its delivery appears below.")
            elif operation == "redeliver":
                delivery = get_object_or_404(Delivery.objects.for_org(request.org), action=action,
                                             pk=request.POST.get("delivery"))
                services.redeliver(ctx, request.org, delivery)
                messages.success(request, f"Delivery {delivery.event_id} queued again.")
            elif operation == "delete":
                services.delete_action(ctx, request.org, action)
                messages.success(request, f"Action {action.name} deleted.")
                return redirect("action-list", request.org.slug)
            elif operation in ("enable", "disable"):
                services.update_action(ctx, request.org, action, enabled=operation == "enable")
                messages.success(request, f"Action {operation}d.")
            elif operation == "update":
                form = _form(request)
                form.pop("type")
                services.update_action(ctx, request.org, action, **form)
                messages.success(request, "Action saved.")
        except services.ActionError as error:
            messages.error(request, f"{error.field + ': ' if error.field else ''}{error.message}")
        return redirect("action-detail", request.org.slug, action.pk)
    attempts = Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("number"))
    deliveries = Delivery.objects.for_org(request.org).filter(action=action).prefetch_related(attempts)[:50]
    return render(request, "alerts/action_detail.html", _context(request, action=action, deliveries=deliveries))
