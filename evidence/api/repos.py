"""Repositories (kosli ``get repo`` / ``list repos``, cmd/kosli/getRepo.go and listRepos.go).

``GET /api/v2/repos/{org}``: kosli's paginated object ``{repos, page, per_page, total_pages, total_count}``
(``page`` / ``per_page``, at most 50 a page, and the filters of ``evidence.repos.filter_repos``).
``GET /api/v2/repos/{org}/{name}``: one repository; the name holds slashes (``acme/payments``) and is the
rest of the path; ``?provider=`` narrows it, ``?id=`` (``--repo-id``) names csm's id and the path is then
ignored, as kosli's server does."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from csm.api.base import OrgScopedAPIView
from csm.api.errors import input_error
from csm.lib.bounded import InputError, parse_int, parse_page
from evidence import repos
from evidence.models import Repository

LIST_PARAMETERS = [OpenApiParameter(name, str) for name in
                   ("page", "per_page", "name", "search", "provider", "repo_id", "tag", "sort_direction")]


class RepositoriesView(OrgScopedAPIView):
    permission = "evidence.view"

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=LIST_PARAMETERS)
    def get(self, request, org):
        params = request.query_params
        try:
            page = parse_page(params.get("page"), "page")
            per_page = parse_int(params.get("per_page") or 15, "per_page", minimum=1, maximum=repos.MAX_PER_PAGE)
            queryset = repos.filter_repos(Repository.objects.for_org(self.org), params)
        except InputError as error:
            raise input_error(error) from None
        total = queryset.count()
        rows = [repos.repo_dict(repo) for repo in queryset[(page - 1) * per_page: page * per_page]]
        return Response({"repos": rows, "page": page, "per_page": per_page,
                         "total_pages": -(-total // per_page), "total_count": total})


class RepositoryView(OrgScopedAPIView):
    permission = "evidence.view"

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[OpenApiParameter("provider", str),
                                                              OpenApiParameter("id", str)])
    def get(self, request, org, name):
        params = request.query_params
        repo = repos.find_repo(self.org, name, params.get("provider") or "", params.get("id") or "")
        return Response(repos.repo_dict(repo))
