from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """``?page=N&per_page=M`` (max 500). Responses carry count, next, previous and results."""

    page_size_query_param = "per_page"
    max_page_size = 500
