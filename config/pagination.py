"""The API's page-number pagination, without a ``COUNT(*)`` where the first page tells.

Most lists a phone or a counsellor opens fit on one page (a student's own reports, a
class's missing list).  DRF's paginator counts first, then reads the page: two queries,
the count as costly as the page where correlated subqueries are involved.  Here the
first page is read first; when it holds fewer rows than a page, that is the count.
Otherwise — or for any other page — the count is made as before.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination as DRFPageNumberPagination


class FirstPagePaginator(Paginator):
    """Django's ``Paginator``; ``page(1)`` reads the rows before counting, and counts
    only when the page is full."""

    def page(self, number):
        if str(number) != "1" or "count" in self.__dict__:
            return super().page(number)
        rows = list(self.object_list[: self.per_page])
        if len(rows) < self.per_page:
            if not rows and not self.allow_empty_first_page:
                return super().page(number)  # raises EmptyPage, as Django does
            self.count = len(rows)  # ``count`` is a cached property: this is its value
        else:
            self.validate_number(1)  # counts (one query), as Django does
        return self._get_page(rows, 1, self)


class PageNumberPagination(DRFPageNumberPagination):
    """DRF's ``PageNumberPagination`` (``?page=``, ``PAGE_SIZE``) on :class:`FirstPagePaginator`."""

    django_paginator_class = FirstPagePaginator
