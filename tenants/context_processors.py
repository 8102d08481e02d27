from tenants.models import Membership


def orgs(request):
    """The signed-in user's orgs (for the org switcher) and the current org, if a view resolved one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = list(Membership.objects.filter(user=user, suspended_at=None)
                       .select_related("org").order_by("org__slug"))
    current = getattr(request, "org", None)
    access = getattr(request, "org_access", None)
    return {"user_memberships": memberships, "current_org": current, "org_access": access}
