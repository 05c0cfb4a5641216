"""Set-based writes for anything that touches every student (imports, seeding,
report history): ``COPY`` on PostgreSQL, one prepared statement run with
``executemany`` on SQLite; and the two helpers a hand-written hot-path read needs to
turn its rows into model instances exactly as the ORM would
(:func:`select_list`, :func:`instance_from_row`), and :func:`per_vendor`, which builds such
a statement's SQL once.

Why not ``bulk_create``/``bulk_update``: Django compiles a fresh SQL statement per
batch with a per-value Python cost that dominates at 100,000 rows (measured on a
20,000-row roster: 13.5 s of 16 s in the SQL compiler, 2 s in SQLite), and SQLite
batches are capped at ~40 rows.  These helpers prepare values the way Django stores
them, write them in one pass, and return nothing — callers that need the new ids read
them back by a natural key.  The history of rows just written is copied from the table
by the server (:func:`insert_history_of`), so no row goes over the wire twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

#: Rows per executemany call (memory bound, not a SQL limit).
CHUNK = 5000

T = TypeVar("T")


def per_vendor(build: Callable[[], T]) -> Callable[[], T]:
    """Decorate ``build`` — which writes a hand-written statement's SQL (and whatever
    goes with it) from the models' metadata for the default database — so that it runs
    once per database vendor: hot paths pay for their SQL's round trip, not for
    composing it."""
    built: dict[str, T] = {}

    @functools.wraps(build)
    def get() -> T:
        found = built.get(connection.vendor)
        if found is None:
            found = built[connection.vendor] = build()
        return found

    return get


def _sqlite_value(field: models.Field) -> Callable | None:
    """What Django's SQLite backend stores for ``field`` — UTC-naive text for aware
    datetimes (USE_TZ), ISO dates, JSON text, decimals as text — without the ORM's
    per-value overhead; None when the value goes as it is."""
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return lambda v: None if v is None else v.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    if kind == "DateField":
        return lambda v: None if v is None else v.isoformat()
    if kind == "TimeField":
        return lambda v: None if v is None else v.isoformat()
    if kind == "JSONField":
        return json.dumps
    if kind == "DecimalField":
        return lambda v: None if v is None else str(v)
    if kind == "UUIDField":
        return lambda v: None if v is None else v.hex
    return None


def _copy_value(field: models.Field) -> Callable | None:
    """PostgreSQL COPY: psycopg adapts Python values; JSON goes as its text."""
    return json.dumps if field.get_internal_type() == "JSONField" else None


def _converter(converters: Sequence[Callable | None]) -> Callable[[Sequence], Sequence]:
    """One row's conversion: only the columns that need one are touched (most values
    go as they are, and a per-value call for them costs more than the write)."""
    todo = [(i, c) for i, c in enumerate(converters) if c is not None]
    width = len(converters)

    def convert(row: Sequence) -> Sequence:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for {width} columns")
        if todo:
            row = list(row)
            for i, c in todo:
                row[i] = c(row[i])
        return row

    return convert


def insert_rows(model: type[models.Model], fields: Sequence[models.Field], rows: Iterable[Sequence]) -> int:
    """Insert ``rows`` (Python values in the order of ``fields``) into ``model``'s table.
    Returns the number of rows written.  Runs in the caller's transaction."""
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    written = 0
    if connection.vendor == "postgresql":
        convert = _converter([_copy_value(f) for f in fields])
        # psycopg's copy() is not wrapped by Django: map its errors (IntegrityError...) too.
        with (
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(convert(row))
                written += 1
        return written
    if connection.vendor == "sqlite":
        convert = _converter([_sqlite_value(f) for f in fields])
    else:
        convert = _converter([lambda v, f=f: f.get_db_prep_save(v, connection) for f in fields])
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    buffer: list[Sequence] = []
    with connection.cursor() as cursor:
        for row in rows:
            buffer.append(convert(row))
            if len(buffer) >= CHUNK:
                cursor.executemany(sql, buffer)
                written += len(buffer)
                buffer.clear()
        if buffer:
            cursor.executemany(sql, buffer)
            written += len(buffer)
    return written


def in_array_sql(placeholder: str = "%s") -> str:
    """SQL that tests the expression before it against a list passed as one parameter
    (:func:`array_param`), so a statement is the same whatever the number of values:
    ``= ANY(%s)`` on PostgreSQL, ``IN (SELECT value FROM json_each(%s))`` on SQLite;
    ``placeholder`` for a named parameter (``%(name)s``)."""
    if connection.vendor == "postgresql":
        return f"= ANY({placeholder})"
    return f"IN (SELECT value FROM json_each({placeholder}))"


def array_param(values: Iterable) -> object:
    """``values`` as the one parameter of :func:`in_array_sql`: an array on PostgreSQL,
    a JSON array on SQLite."""
    values = list(values)
    return values if connection.vendor == "postgresql" else json.dumps(values)


def one_of(model: type[models.Model], field_name: str, values: Sequence, *, chunk: int) -> Iterator:
    """Filters that together select the rows of ``model`` whose ``field_name`` is one of
    ``values``: on PostgreSQL one — the values as one array parameter (``= ANY(%s)``),
    where an ``__in`` of thousands of values is thousands of parameters to format and
    parse; elsewhere one ``__in`` per ``chunk`` values (the database's parameter
    limit).  Nothing for no values."""
    values = list(values)
    if not values:
        return
    if connection.vendor == "postgresql":
        qn = connection.ops.quote_name
        column = f"{qn(model._meta.db_table)}.{qn(model._meta.get_field(field_name).column)}"
        yield RawSQL(f"{column} {in_array_sql()}", (array_param(values),), output_field=BooleanField())
        return
    for start in range(0, len(values), chunk):
        yield Q(**{f"{field_name}__in": values[start : start + chunk]})


def select_list(
    model: type[models.Model], alias: str = "", names: Sequence[str] | None = None
) -> tuple[str, list[models.Field]]:
    """The SELECT list of the fields ``names`` of ``model`` (default: every concrete
    column), under table alias ``alias`` if one is given, and the fields in that order
    (for :func:`instance_from_row` and :func:`convert_row`)."""
    fields = list(model._meta.concrete_fields) if names is None else [model._meta.get_field(n) for n in names]
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{connection.ops.quote_name(f.column)}" for f in fields), fields


def quoted_columns(model: type[models.Model]) -> tuple[str, dict[str, str]]:
    """The quoted table of ``model`` and its quoted columns by field name, for a
    hand-written statement's SQL."""
    qn = connection.ops.quote_name
    return qn(model._meta.db_table), {f.name: qn(f.column) for f in model._meta.concrete_fields}


#: Per database connection (one per thread): the converters of a tuple of fields.
_CONVERTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _converters(conn, model: type[models.Model], fields: Sequence[models.Field]) -> list[tuple[list, object]]:
    cache = _CONVERTERS.setdefault(conn, {})
    key = (model, tuple(fields))
    found = cache.get(key)
    if found is None:
        found = []
        for f in fields:
            col = f.get_col(model._meta.db_table)
            found.append((conn.ops.get_db_converters(col) + col.get_db_converters(conn), col))
        cache[key] = found
    return found


def convert_row(model: type[models.Model], fields: Sequence[models.Field], values: Sequence) -> list:
    """Raw column values of ``fields`` converted as the ORM converts them (the
    backend's converters, then the field's ``from_db_value``): a date is a date on
    SQLite too, a JSON column a dict."""
    conn = connections[DEFAULT_DB_ALIAS]
    converted = []
    for (converters, col), value in zip(_converters(conn, model, fields), values, strict=True):
        for converter in converters:
            value = converter(value, col, conn)
        converted.append(value)
    return converted


def instance_from_row(model: type[models.Model], fields: Sequence[models.Field], values: Sequence) -> models.Model:
    """A ``model`` instance from raw column values (:func:`convert_row`): what a
    queryset would have built, without compiling one."""
    converted = convert_row(model, fields, values)
    return model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in fields], converted)


def update_objects(model: type[models.Model], objs: Sequence[models.Model], field_names: Sequence[str]) -> int:
    """``UPDATE … SET the fields WHERE pk = …`` for each instance, as one prepared
    statement run over all of them."""
    fields = [model._meta.get_field(name) for name in field_names]
    table = connection.ops.quote_name(model._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    pk = connection.ops.quote_name(model._meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"
    if connection.vendor == "sqlite":
        convert = _converter([_sqlite_value(f) for f in fields])
    else:
        convert = _converter([lambda v, f=f: f.get_db_prep_save(v, connection) for f in fields])
    params = [[*convert([f.pre_save(obj, False) for f in fields]), obj.pk] for obj in objs]
    with connection.cursor() as cursor:
        for start in range(0, len(params), CHUNK):
            cursor.executemany(sql, params[start : start + CHUNK])
    return len(params)


def history_insert_sql(model: type[models.Model], conn) -> tuple[str, list[str]]:
    """The head of a statement that copies rows of ``model`` into its
    django-simple-history table — ``INSERT INTO <history> (the tracked columns,
    history_date, history_change_reason, history_type, history_user_id)`` — and the
    tracked columns (quoted; the same names in both tables) its ``SELECT`` starts with;
    the four history columns follow them."""
    history = model.history.model
    qn = conn.ops.quote_name
    tracked = [qn(f.column) for f in history.tracked_fields]
    extra = [qn(c) for c in ("history_date", "history_change_reason", "history_type", "history_user_id")]
    return f"INSERT INTO {qn(history._meta.db_table)} ({', '.join(tracked + extra)})", tracked


def insert_history_of(
    model: type[models.Model],
    *,
    column: str,
    values: Sequence,
    history_type: str,
    user=None,
    reason: str = "",
    date: dt.datetime,
) -> int:
    """The django-simple-history rows of the stored rows of ``model`` whose field
    ``column`` (a unique one: the primary key or a natural key) is one of ``values``:
    copied from the table by the server (``INSERT INTO history … SELECT … FROM table``,
    the rows selected by :func:`one_of`), what ``bulk_create_with_history`` /
    ``bulk_update_with_history`` add, without sending the rows back or building an
    instance per row.  The rows must already hold what the history records.
    ``history_type``: ``"+"`` created, ``"~"`` changed.  Returns the number of history
    rows written.  Runs in the caller's transaction."""
    history = model.history.model
    head, _tracked = history_insert_sql(model, connection)
    date_field = history._meta.get_field("history_date")
    constants = [date_field.get_db_prep_save(date, connection), reason, history_type, getattr(user, "pk", None)]
    names = [f.attname for f in history.tracked_fields]
    # Where values go as parameters (not PostgreSQL), a statement carries the constants too.
    chunk = max(1, min(CHUNK, (connection.features.max_query_params or CHUNK) - len(constants)))
    written = 0
    with connection.cursor() as cursor:
        for where in one_of(model, column, values, chunk=chunk):
            rows = model._base_manager.filter(where).order_by().values_list(*names)
            sql, params = rows.query.sql_with_params()
            cursor.execute(f"{head} SELECT q.*, %s, %s, %s, %s FROM ({sql}) q", [*constants, *params])
            written += cursor.rowcount
    return written
