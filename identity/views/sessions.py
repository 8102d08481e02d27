"""Session pages (docs/identity.md, "Sessions"): ``/account/sessions/`` lists the signed-in person's sessions
and ends one or all others; ``/o/<org>/members/<id>/sessions/revoke/`` lets an org admin end a member's."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.web import org_view
from identity import sessions
from tenants.models import Membership


@login_required
def session_list(request):
    current = sessions.current_session(request)
    rows = list(sessions.live_sessions(request.user))
    others = [row for row in rows if current is None or row.pk != current.pk]
    return render(request, "identity/sessions.html", {
        "sessions": rows, "current": current, "others": others,
        "idle_days": settings.SESSION_COOKIE_AGE // 86400,
    })


@login_required
@require_POST
def session_revoke(request, session_id):
    try:
        row = sessions.revoke_session(AuditContext.from_request(request), request.user, session_id)
    except ServiceError as error:
        raise Http404(error.message) from None
    current = sessions.current_session(request)
    if current is not None and current.pk == row.pk:
        return redirect("login")  # this very session: the middleware signs it out on the next request
    messages.success(request, f"Ended the session on {row.device or 'an unknown device'}.")
    return redirect("account-sessions")


@login_required
@require_POST
def session_revoke_others(request):
    ended = sessions.revoke_other_sessions(AuditContext.from_request(request), request.user,
                                           sessions.current_session(request))
    messages.success(request, f"Ended {ended} other session{'' if ended == 1 else 's'}." if ended
                     else "There were no other sessions.")
    return redirect("account-sessions")


@org_view("members.manage")
@require_POST
def member_sessions_revoke(request, membership_id):
    membership = get_object_or_404(Membership.objects.for_org(request.org).select_related("user"), pk=membership_id)
    try:
        ended = sessions.revoke_member_sessions(AuditContext.from_request(request), membership,
                                                actor_role=request.org_access.role)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Ended {ended} session{'' if ended == 1 else 's'} of {membership.user.email}.")
    return redirect("member-list", request.org.slug)


urlpatterns = [
    path("account/sessions/", session_list, name="account-sessions"),
    path("account/sessions/<int:session_id>/revoke/", session_revoke, name="account-session-revoke"),
    path("account/sessions/revoke-others/", session_revoke_others, name="account-sessions-revoke-others"),
    path("o/<slug:org>/members/<int:membership_id>/sessions/revoke/", member_sessions_revoke,
         name="member-sessions-revoke"),
]
