"""The API's shared plumbing on the hot path: flat serializers (fields copied one level
deep, not deep-copied), the Redis cache backend that reuses its client, and the
pagination that counts only when the first page does not tell."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import override_settings
from rest_framework import serializers

from config.serializers import FlatSerializer
from reports.api.serializers import DailyReportSerializer, ReportInputSerializer
from reports.models import SlotCode


class _Deep(serializers.Serializer):
    slot = serializers.ChoiceField(choices=SlotCode.choices)
    temperature = serializers.DecimalField(max_digits=4, decimal_places=1, min_value=34, max_value=42)
    tags = serializers.ListField(child=serializers.ChoiceField(choices=["a", "b"]), required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5)


class _Flat(FlatSerializer, _Deep):
    pass


@pytest.mark.parametrize(
    "data",
    [
        {"slot": "morning", "temperature": "36.5", "tags": ["a"], "note": "ok"},
        {"slot": "dawn", "temperature": "50", "tags": ["c"], "note": "too long"},
        {"temperature": "x", "tags": "a"},
    ],
)
def test_flat_serializer_validates_and_renders_as_drf_does(data):
    deep, flat = _Deep(data=data), _Flat(data=data)
    assert deep.is_valid() == flat.is_valid()
    assert deep.errors == flat.errors  # ErrorDetail equality compares the codes too
    if deep.is_valid():
        assert _Deep(deep.validated_data).data == _Flat(flat.validated_data).data


def test_flat_serializer_instances_bind_their_own_fields():
    one, two = _Flat(data={}), _Flat(data={})
    assert one.fields["slot"] is not two.fields["slot"]
    assert one.fields["slot"].parent is one
    assert two.fields["slot"].parent is two
    # The declared field stays unbound: the next instance starts from the class's.
    assert _Flat._declared_fields["slot"].parent is None


def test_flat_serializer_refuses_nested_serializers():
    with pytest.raises(TypeError, match="cannot nest"):

        class _Nested(FlatSerializer):
            inner = _Deep()

    with pytest.raises(TypeError, match="cannot nest"):

        class _NestedList(FlatSerializer):
            inner = serializers.ListField(child=_Deep())


def test_the_check_in_serializers_are_flat():
    assert issubclass(ReportInputSerializer, FlatSerializer)
    assert issubclass(DailyReportSerializer, FlatSerializer)


@override_settings(CACHES={"reuse": {"BACKEND": "config.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}})
def test_redis_cache_reuses_one_client_per_server():
    backend = caches.create_connection("reuse")
    first = backend._cache.get_client("k")
    assert backend._cache.get_client("other") is first
    assert backend._cache.get_client("k", write=True) is first  # one server: reads and writes share it


class _WithMethod(FlatSerializer):
    name = serializers.CharField()
    shout = serializers.SerializerMethodField()

    def get_shout(self, obj) -> str:
        return f"{obj['name']}{self.context.get('mark', '!')}"


def test_rendering_shares_one_set_of_bound_fields_only_for_plain_fields():
    assert _Flat._shares_rendering
    assert DailyReportSerializer._shares_rendering
    assert not _WithMethod._shares_rendering
    data = {"slot": "morning", "temperature": "36.5", "tags": ["a"], "note": "ok"}
    assert _Flat(data).data == _Deep(data).data
    assert next(iter(_Flat(data)._readable_fields)) is next(iter(_Flat(data)._readable_fields))
    # A field that reads its serializer (here its context) keeps per-instance fields.
    assert _WithMethod({"name": "x"}, context={"mark": "?"}).data == {"name": "x", "shout": "x?"}
    assert _WithMethod({"name": "y"}).data == {"name": "y", "shout": "y!"}
    # Validating input always binds the instance's own fields.
    validating = _Flat(data=data)
    assert validating.is_valid()
    assert all(f.parent is validating for f in validating._readable_fields)


# ---------------------------------------------------------------------------
# Pagination: the first page counts itself when it is not full
# ---------------------------------------------------------------------------
def _users(n: int):
    from django.contrib.auth import get_user_model

    model = get_user_model()
    model.objects.bulk_create(model(username=f"page{i:03d}") for i in range(n))
    return model.objects.filter(username__startswith="page").order_by("username")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "number", "queries", "count", "on_page"),
    [
        (0, 1, 1, 0, 0),  # empty: the read says so
        (3, "1", 1, 3, 3),  # fewer than a page: no COUNT(*)
        (5, 1, 2, 5, 5),  # a full first page: it counts, as Django does
        (12, 1, 2, 12, 5),
        (12, 3, 2, 12, 2),  # any other page: Django's way
    ],
)
def test_first_page_paginator_counts_only_when_the_page_does_not_tell(rows, number, queries, count, on_page):
    from django.core.paginator import Paginator
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from config.pagination import FirstPagePaginator

    qs = _users(rows)
    with CaptureQueriesContext(connection) as captured:
        page = FirstPagePaginator(qs, 5).page(number)
        names = [u.username for u in page]
    assert len(captured.captured_queries) == queries
    django_page = Paginator(qs, 5).page(number)
    assert (page.paginator.count, page.paginator.num_pages, page.has_next(), page.has_previous()) == (
        django_page.paginator.count,
        django_page.paginator.num_pages,
        django_page.has_next(),
        django_page.has_previous(),
    )
    assert page.paginator.count == count and len(names) == on_page
    assert names == [u.username for u in django_page]


@pytest.mark.django_db
def test_first_page_paginator_refuses_what_django_refuses():
    from django.core.paginator import EmptyPage, PageNotAnInteger

    from config.pagination import FirstPagePaginator

    qs = _users(3)
    with pytest.raises(EmptyPage):
        FirstPagePaginator(qs.none(), 5, allow_empty_first_page=False).page(1)
    with pytest.raises(EmptyPage):
        FirstPagePaginator(qs, 5).page(2)
    with pytest.raises(PageNotAnInteger):
        FirstPagePaginator(qs, 5).page("x")


def test_the_api_paginates_with_the_first_page_paginator():
    from rest_framework.settings import api_settings

    from config.pagination import FirstPagePaginator

    assert api_settings.DEFAULT_PAGINATION_CLASS.django_paginator_class is FirstPagePaginator
