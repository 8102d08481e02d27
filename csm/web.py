"""Org scoping for web pages, the twin of ``csm/api/base.py`` for the API: one decorator resolves the org
from the URL and the signed-in membership (404 for another org) and checks the role (403 page)."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed

from tenants.access import require_permission, resolve_org
from tenants.permissions import MATRIX


def org_view(permission: str | dict[str, str] = "org.view"):
    """Decorator for web views taking an ``org`` URL kwarg: sign-in required, membership resolved
    (404 otherwise), permission checked (403 page otherwise). Sets ``request.org``,
    ``request.org_access`` and remembers the org as the user's current one.

    ``permission`` is one permission, or a dict by HTTP method for a page whose form posts need more
    than viewing it: ``@org_view({"GET": "actions.view", "POST": "actions.manage"})`` (a ``"default"``
    key covers the methods not named). tests/test_isolation.py reads it from ``view.csm_permission``."""
    by_method = {"default": permission} if isinstance(permission, str) else dict(permission)
    for name in by_method.values():
        if name not in MATRIX:
            raise KeyError(f"unknown permission {name!r}; add it to tenants/permissions.py")

    def required(request) -> str | None:
        method = "GET" if request.method == "HEAD" else request.method
        return by_method.get(method, by_method.get("default"))

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, org, *args, **kwargs):
            access = resolve_org(request, org)
            needed = required(request)
            if needed is None:
                return HttpResponseNotAllowed([m for m in by_method if m != "default"])
            require_permission(request, access, needed)
            request.org = access.org
            request.org_access = access
            request.session["current_org"] = access.org.slug
            return view(request, *args, **kwargs)

        wrapper.csm_permission = permission
        return wrapper

    return decorator


def add_service_error(form, error) -> None:
    """Show a refused write (``csm.errors.ServiceError``) next to the form field it names. Services name
    fields the way the API does (``payload.name``, ``triggers[1]``), so the prefix and the index are
    dropped; a field the form does not have puts the message at the top of the form."""
    field = (error.field or "").removeprefix("payload.").split("[", 1)[0]
    form.add_error(field if field in form.fields else None, error.message)


# --- sections a higher app adds to a lower app's page ------------------------------------------------------
# The artifact page (evidence) and the environment page (snapshots) show what apps above them know about
# the artifact or environment (vulns: its vulnerabilities), without importing them: the higher app
# registers a section function from its AppConfig.ready(), the page renders whatever is registered.
PAGE_SECTIONS = ("artifact", "environment")
_page_sections: dict[str, list] = {name: [] for name in PAGE_SECTIONS}


def page_section(page: str):
    """Decorator: ``@page_section("artifact")`` on ``fn(request, **subject) -> str`` (rendered, safe HTML;
    "" for nothing to show) adds a section to that page. The artifact page passes ``fingerprint=``, the
    environment page ``environment=`` (the Environment). A section reads only, scoped to ``request.org``."""
    if page not in _page_sections:
        raise KeyError(f"unknown page {page!r}; pages with sections: {', '.join(PAGE_SECTIONS)}")

    def register(fn):
        if fn not in _page_sections[page]:
            _page_sections[page].append(fn)
        return fn

    return register


def page_sections(request, page: str, **subject) -> list[str]:
    """The rendered sections registered for ``page``, in registration order, empty ones left out."""
    return [html for html in (fn(request, **subject) for fn in list(_page_sections[page])) if html]
