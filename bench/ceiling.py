"""The ceiling of measurement 1: the least a Django view can do to store the same
check-in — verify the same bearer token (HS256, no database), read the same JSON body
and run one raw-SQL upsert of the report row (the student's unit columns are taken in
the same statement).  Served by the same gunicorn, through the same middleware, next
to the real endpoint (``bench/urls.py``); never part of the product.

``?offset=N`` writes the row for today + N days, so the ceiling run and the product
run both insert fresh rows for the same students.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

import jwt
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from reports.models import DailyReport

_UPSERT = """
INSERT INTO reports_dailyreport (
    student_id, date, slot_id, campus_id, college_id, grade_id, school_class_id,
    temperature, symptoms, symptoms_other, health_status, whereabouts, province_code, city_code,
    risk_area_14d, case_contact, note, client_id, source, submitted_by_id, submitted_at,
    submitted_second, late, answer_hash, flags, abnormal, suspected_bot, follow_up, created_at, updated_at)
SELECT s.id, %(date)s, sl.id, s.campus_id, s.college_id, s.grade_id, s.school_class_id,
       %(temperature)s, '[]', '', 'healthy', %(whereabouts)s, '', '',
       FALSE, FALSE, '', %(client_id)s, 'self', s.user_id, %(now)s,
       %(second)s, FALSE, %(hash)s, '[]', FALSE, FALSE, 'none', %(now)s, %(now)s
FROM students_student s
JOIN reports_checkinslot sl ON sl.campus_id = s.campus_id AND sl.code = %(slot)s AND sl.active
WHERE s.user_id = %(user)s
ON CONFLICT (student_id, date, slot_id) DO UPDATE SET
    temperature = EXCLUDED.temperature, whereabouts = EXCLUDED.whereabouts, client_id = EXCLUDED.client_id,
    submitted_at = EXCLUDED.submitted_at, submitted_second = EXCLUDED.submitted_second,
    answer_hash = EXCLUDED.answer_hash, updated_at = EXCLUDED.updated_at
RETURNING id
"""


def _error(status: int, code: str) -> JsonResponse:
    return JsonResponse({"errors": {"detail": [{"code": code, "message": code}]}}, status=status)


def _prep(name: str, value):
    return DailyReport._meta.get_field(name).get_db_prep_value(value, connection)


@csrf_exempt
@require_POST
def ceiling_view(request: HttpRequest) -> JsonResponse:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _error(401, "not_authenticated")
    try:
        claims = jwt.decode(header[7:], jwt_settings.SIGNING_KEY, algorithms=[jwt_settings.ALGORITHM])
        body = json.loads(request.body)
        temperature = Decimal(str(body["temperature"])).quantize(Decimal("0.1"))
        client_id = uuid.UUID(body["client_id"]) if body.get("client_id") else None
    except jwt.InvalidTokenError:
        return _error(401, "token_not_valid")
    except (ValueError, KeyError, ArithmeticError):
        return _error(400, "invalid")
    now = timezone.now()
    local = timezone.localtime(now)
    day = local.date() + dt.timedelta(days=int(request.GET.get("offset", "0")))
    params = {
        "date": _prep("date", day),
        "temperature": _prep("temperature", temperature),
        "whereabouts": body.get("whereabouts") or "on_campus",
        "client_id": _prep("client_id", client_id),
        "now": _prep("submitted_at", now),
        "second": local.hour * 3600 + local.minute * 60 + local.second,
        "hash": hashlib.blake2b(request.body, digest_size=16).hexdigest(),
        "slot": body.get("slot", ""),
        "user": int(claims[jwt_settings.USER_ID_CLAIM]),
    }
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, params)
        row = cursor.fetchone()
    if row is None:
        return _error(404, "not_found")
    return JsonResponse({"id": row[0]}, status=201)
