from rest_framework.pagination import PageNumberPagination

from csm.lib.bounded import parse_page


class Pagination(PageNumberPagination):
    """``?page=N&per_page=M`` (max 500). Responses carry count, next, previous and results.

    ``page`` goes through csm.lib.bounded.parse_page (ASCII digits, at most MAX_PAGE: a 400 naming it); a page
    past the last is DRF's 404 JSON. ``last`` stays accepted, as DRF documents."""

    page_size_query_param = "per_page"
    max_page_size = 500
    invalid_page_message = "Invalid page: page {page_number} is past the last page ({message})."

    def get_page_number(self, request, paginator):
        number = request.query_params.get(self.page_query_param) or 1
        if number in self.last_page_strings:
            return number
        return parse_page(number, self.page_query_param)  # InputError → 400 (csm.api.errors)
