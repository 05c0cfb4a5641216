"""Reads of the students app that sit on a hot path.

:func:`user_with_student` is what the API's bearer authentication runs on every
mobile request: the user and, for a student, their record, in one statement — so the
check-in's submit, ``me/`` and ``checkin/today/`` never ask for the student again.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections

from campuses.bulk import instance_from_row, per_vendor, select_list
from students.models import Student


@per_vendor
def _user_with_student_sql() -> tuple[str, list, list]:
    user_model = get_user_model()
    qn = connection.ops.quote_name
    user_columns, user_fields = select_list(user_model, "u")
    student_columns, student_fields = select_list(Student, "s")
    pk = qn(user_model._meta.pk.column)
    sql = (
        f"SELECT {user_columns}, {student_columns} FROM {qn(user_model._meta.db_table)} u "
        f"LEFT JOIN {qn(Student._meta.db_table)} s ON s.{qn(Student._meta.get_field('user').column)} = u.{pk} "
        f"WHERE u.{pk} = %s"
    )
    return sql, user_fields, student_fields


def user_with_student(user_id: int):
    """The user ``user_id`` with their student record (or None) attached as
    ``user.student`` (and the user as ``student.user``), read in one query; None when
    there is no such user.  Activity and permissions are the caller's to check."""
    conn = connections[DEFAULT_DB_ALIAS]
    sql, user_fields, student_fields = _user_with_student_sql()
    with conn.cursor() as cursor:
        cursor.execute(sql, [user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(user_fields)
    user = instance_from_row(get_user_model(), user_fields, row[:n])
    link = Student._meta.get_field("user")
    student = None
    if row[n] is not None:  # the student's primary key: the LEFT JOIN found one
        student = instance_from_row(Student, student_fields, row[n:])
        link.set_cached_value(student, user)
    link.remote_field.set_cached_value(user, student)
    return user
