"""State changes of the daily check-in (晨午检): submit, proxy (代报), follow up, excuse,
log contacts.

Product rules (DESIGN.md, "Daily check-in"; issue 3):

- one report per (student, local date, slot); a retry of the same submission — the
  same client id, or the same answer for the same slot — returns the existing report;
- a student's edit before the slot closes replaces the answer (the earlier one stays in
  history); after the close it is refused with ``slot_closed``;
- a counsellor may report on a student's behalf at any time (代报, ``source=proxy``),
  which also writes a contact-log entry;
- fever (≥ 37.3 °C), any symptom, an unwell status or a risk exposure make a report
  abnormal; answers identical to the previous N days, or sent at the same second of
  the day N days running, mark it as a suspected bot; either puts it on the
  counsellor's follow-up list;
- an excused student is not expected.

Every function here is keyword-only, writes inside ``transaction.atomic`` and raises
:class:`django.core.exceptions.ValidationError` (with a code per field) for input the
rules refuse; :class:`CheckinRefused` (HTTP 409) for a well-formed request the state
of the world refuses.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campuses.bulk import history_insert_sql, per_vendor
from reports.models import (
    ABNORMAL_FLAGS,
    FEVER_AT,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    CheckinSlot,
    DailyReport,
    Excusal,
    ExcusalReason,
    FollowUp,
    HealthStatus,
    ReportFlag,
    ReportSource,
    SlotState,
    Symptom,
)
from reports.selectors import CHASE_ROLES, local_now, students_with_role
from students.models import ContactLog, Student, Whereabouts


class CheckinRefused(ValidationError):
    """A well-formed request that the current state refuses (slot closed, client id
    reused for another answer, nothing to follow up): answered with HTTP 409."""

    http_status = 409


def _error(field_name: str, message, code: str) -> ValidationError:
    return ValidationError({field_name: ValidationError(message, code=code)})


def _refused(field_name: str, message, code: str) -> CheckinRefused:
    return CheckinRefused({field_name: ValidationError(message, code=code)})


# ---------------------------------------------------------------------------
# The answer
# ---------------------------------------------------------------------------
_PROVINCE_CODE = re.compile(r"^[0-9]{2}0000$")
_CITY_CODE = re.compile(r"^[0-9]{4}00$")


@dataclass(frozen=True)
class ReportAnswer:
    """What a student answers in one check-in, normalised (symptoms sorted and unique,
    text stripped).  Build it with :meth:`clean`, which applies the rules that span
    fields."""

    temperature: Decimal | None
    symptoms: tuple[str, ...] = ()
    symptoms_other: str = ""
    health_status: str = HealthStatus.HEALTHY
    whereabouts: str = Whereabouts.ON_CAMPUS
    province_code: str = ""
    city_code: str = ""
    risk_area_14d: bool = False
    case_contact: bool = False
    note: str = ""

    FIELDS = (
        "temperature",
        "symptoms",
        "symptoms_other",
        "health_status",
        "whereabouts",
        "province_code",
        "city_code",
        "risk_area_14d",
        "case_contact",
        "note",
    )

    @classmethod
    def clean(cls, *, require_temperature: bool = True, **values) -> ReportAnswer:
        """Validate and normalise an answer; raise ValidationError with a code per field."""
        errors: dict[str, ValidationError] = {}
        temperature = values.get("temperature")
        if temperature is None:
            if require_temperature:
                errors["temperature"] = ValidationError(_("请填写体温。"), code="required")
        else:
            temperature = Decimal(str(temperature)).quantize(Decimal("0.1"))
            if not TEMPERATURE_MIN <= temperature <= TEMPERATURE_MAX:
                errors["temperature"] = ValidationError(
                    _("体温应在 %(min)s 至 %(max)s °C 之间。"),
                    code="out_of_range",
                    params={"min": TEMPERATURE_MIN, "max": TEMPERATURE_MAX},
                )
        symptoms = set(values.get("symptoms") or ())
        unknown = symptoms - set(Symptom.values)
        if unknown:
            errors["symptoms"] = ValidationError(_("未知的症状。"), code="invalid_choice")
        symptoms_other = (values.get("symptoms_other") or "").strip()
        if symptoms_other:
            symptoms.add(Symptom.OTHER)  # describing another symptom means having one
        elif Symptom.OTHER in symptoms:
            errors["symptoms_other"] = ValidationError(_("选择“其他”症状时请说明。"), code="required")
        whereabouts = values.get("whereabouts") or Whereabouts.ON_CAMPUS
        province = (values.get("province_code") or "").strip()
        city = (values.get("city_code") or "").strip()
        if province and not _PROVINCE_CODE.fullmatch(province):
            errors["province_code"] = ValidationError(_("省份代码应为6位行政区划代码，如 370000。"), code="invalid")
        if city and not (_CITY_CODE.fullmatch(city) and not city.endswith("0000")):
            errors["city_code"] = ValidationError(_("城市代码应为6位行政区划代码，如 370100。"), code="invalid")
        elif city and province and city[:2] != province[:2]:
            errors["city_code"] = ValidationError(_("城市不属于所选省份。"), code="city_not_in_province")
        if whereabouts != Whereabouts.ON_CAMPUS:
            if not province:
                errors.setdefault("province_code", ValidationError(_("不在校时请填写所在省份。"), code="required"))
            if not city:
                errors.setdefault("city_code", ValidationError(_("不在校时请填写所在城市。"), code="required"))
        if errors:
            raise ValidationError(errors)
        return cls(
            temperature=temperature,
            symptoms=tuple(sorted(symptoms)),
            symptoms_other=symptoms_other,
            health_status=values.get("health_status") or HealthStatus.HEALTHY,
            whereabouts=whereabouts,
            province_code=province,
            city_code=city,
            risk_area_14d=bool(values.get("risk_area_14d")),
            case_contact=bool(values.get("case_contact")),
            note=(values.get("note") or "").strip(),
        )

    def digest(self) -> str:
        """A stable digest of the answer: equal answers, equal digests."""
        payload = {name: getattr(self, name) for name in self.FIELDS}
        payload["temperature"] = None if self.temperature is None else str(self.temperature)
        payload["symptoms"] = list(self.symptoms)
        raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()

    def health_flags(self) -> list[str]:
        """The abnormal findings of this answer (fever, symptoms, unwell, exposure)."""
        flags = []
        if self.temperature is not None and self.temperature >= FEVER_AT:
            flags.append(ReportFlag.FEVER)
        if self.symptoms:
            flags.append(ReportFlag.SYMPTOMS)
        if self.health_status != HealthStatus.HEALTHY:
            flags.append(ReportFlag.UNWELL)
        if self.risk_area_14d:
            flags.append(ReportFlag.RISK_AREA)
        if self.case_contact:
            flags.append(ReportFlag.CASE_CONTACT)
        return flags


# ---------------------------------------------------------------------------
# Submitting
# ---------------------------------------------------------------------------
class SubmitOutcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class SubmitResult:
    report: DailyReport
    outcome: SubmitOutcome
    contact: ContactLog | None = field(default=None)


def _no_such_slot() -> ValidationError:
    return _error("slot", _("本校区没有这个打卡时段。"), "does_not_exist")


def slot_for(*, student: Student, slot_code: str) -> CheckinSlot:
    """The active slot ``slot_code`` of ``student``'s campus, or a ``slot`` error."""
    slot = CheckinSlot.objects.filter(campus_id=student.campus_id, code=slot_code, active=True).first()
    if slot is None:
        raise _no_such_slot()
    return slot


def _lock_existing(*, student_id: int, slot_id: int, day: dt.date, client_id: uuid.UUID | None) -> list[DailyReport]:
    """The student's report for (day, slot) and the one carrying ``client_id``, locked."""
    # student_id inside each branch, so that each can use its unique index (student,
    # date, slot) / (student, client_id); that the planner does so for today rests on the
    # report date's statistics (reports/migrations/0005), not on this query's shape.
    where = Q(student_id=student_id, date=day, slot_id=slot_id)
    if client_id is not None:
        where |= Q(student_id=student_id, client_id=client_id)
    return list(DailyReport.objects.select_for_update().filter(where))


def _bot_flags_from(*, same_answer: int, same_second: int) -> list[str]:
    """Lazy-bot flags from the counts of the previous N days of the slot that carried
    the same answer / were sent at the same second of the day."""
    days = settings.TONGXIN["CHECKIN_LAZY_BOT_DAYS"]
    if days < 1:
        return []
    flags = []
    if same_answer >= days:
        flags.append(ReportFlag.IDENTICAL_ANSWERS)
    if same_second >= days:
        flags.append(ReportFlag.SAME_SECOND)
    return flags


def _second_of_day(local: dt.datetime) -> int:
    return local.hour * 3600 + local.minute * 60 + local.second


def _check_open_for_new(slot: CheckinSlot, day: dt.date, now: dt.datetime) -> None:
    """A student's first report of ``slot`` on ``day`` needs the slot open now."""
    state = slot.state(day, now)
    if state == SlotState.CLOSED:
        raise _refused("slot", _("本时段已关闭，不能再提交报告，请联系辅导员。"), "slot_closed")
    if state == SlotState.UPCOMING:
        raise _refused("slot", _("本时段尚未开始。"), "slot_not_open")


def _new_report(*, student: Student, slot: CheckinSlot, day: dt.date) -> DailyReport:
    """An unsaved report of ``student`` carrying copies of their units (see the model)."""
    return DailyReport(
        student=student,
        date=day,
        slot=slot,
        campus_id=student.campus_id,
        college_id=student.college_id,
        grade_id=student.grade_id,
        school_class_id=student.school_class_id,
    )


def _apply(report: DailyReport, **changes) -> None:
    """Write the answer and everything derived from it onto ``report`` (not saved):
    :func:`_apply_answer`, and whether it is late for the report's slot."""
    _apply_answer(report, **changes)
    report.late = report.slot.is_late(report.date, changes["now"])


def _apply_answer(
    report: DailyReport,
    *,
    answer: ReportAnswer,
    digest: str,
    source: str,
    by,
    now: dt.datetime,
    client_id: uuid.UUID | None,
    bot_flags: Sequence[str] = (),
) -> None:
    """Write the answer and everything derived from it but ``late`` onto ``report`` (not
    saved).  ``bot_flags``: a self-report's lazy-bot flags, read by :func:`_probe`."""
    for name in ReportAnswer.FIELDS:
        value = getattr(answer, name)
        setattr(report, name, list(value) if isinstance(value, tuple) else value)
    local = now.astimezone(timezone.get_default_timezone())
    report.answer_hash = digest
    report.source = source
    report.submitted_by = by
    report.submitted_at = now
    report.submitted_second = _second_of_day(local)
    if client_id is not None:
        report.client_id = client_id
    flags = answer.health_flags()
    if source == ReportSource.SELF:
        flags += bot_flags
    report.abnormal, report.suspected_bot, report.follow_up = _flag_fields(
        flags, previous_status=report.follow_up, previous_flags=set(report.flags or ())
    )
    report.flags = flags
    if report.follow_up == FollowUp.OPEN:
        report.follow_up_closed_at = report.follow_up_closed_by = None


def _flag_fields(
    flags: Sequence[str], *, previous_status: str = FollowUp.NONE, previous_flags: set[str] = frozenset()
) -> tuple[bool, bool, str]:
    """``abnormal``, ``suspected_bot`` and ``follow_up`` of a report now carrying
    ``flags`` whose follow-up was ``previous_status`` for ``previous_flags``."""
    abnormal = any(f in ABNORMAL_FLAGS for f in flags)
    suspected_bot = len(flags) > sum(f in ABNORMAL_FLAGS for f in flags)
    # A counsellor's follow-up stands until the answer brings something new.
    if not flags:
        follow_up = FollowUp.CLOSED if previous_status == FollowUp.CLOSED else FollowUp.NONE
    elif previous_status == FollowUp.CLOSED and set(flags) <= previous_flags:
        follow_up = FollowUp.CLOSED
    else:
        follow_up = FollowUp.OPEN
    return abnormal, suspected_bot, follow_up


def _submit(
    *,
    student: Student,
    slot: CheckinSlot,
    day: dt.date,
    day_given: bool,
    answer: ReportAnswer,
    client_id: uuid.UUID | None,
    source: str,
    by,
    now: dt.datetime,
    bot_flags: Sequence[str] = (),
) -> SubmitResult:
    digest = answer.digest()
    # What this submission writes, whether it edits the slot's report or makes a new one.
    changes = {
        "answer": answer,
        "digest": digest,
        "source": source,
        "by": by,
        "now": now,
        "client_id": client_id,
        "bot_flags": bot_flags,
    }
    for attempt in range(2):
        rows = _lock_existing(student_id=student.pk, slot_id=slot.pk, day=day, client_id=client_id)
        by_client = next((r for r in rows if client_id is not None and r.client_id == client_id), None)
        by_slot = next((r for r in rows if r.date == day and r.slot_id == slot.pk), None)
        if by_client is not None:
            same = by_client.slot_id == slot.pk and by_client.answer_hash == digest
            if same and (by_client.date == day or not day_given):
                by_client.slot = slot
                return SubmitResult(by_client, SubmitOutcome.UNCHANGED)
            raise _refused("client_id", _("这个客户端编号已用于另一份不同的报告。"), "client_id_conflict")
        if by_slot is not None:
            if by_slot.answer_hash == digest:
                by_slot.slot = slot
                return SubmitResult(by_slot, SubmitOutcome.UNCHANGED)
            if source == ReportSource.SELF:
                if slot.state(day, now) != SlotState.OPEN:
                    raise _refused("slot", _("本时段已关闭，不能再修改报告，请联系辅导员。"), "slot_closed")
                if client_id is not None and by_slot.history.filter(client_id=client_id).exists():
                    # A late retry of an earlier answer must not undo a later edit.
                    raise _refused("client_id", _("这个客户端编号已用于另一份不同的报告。"), "client_id_conflict")
            by_slot.slot = slot
            _apply(by_slot, **changes)
            by_slot._history_user = by
            by_slot.save()
            return SubmitResult(by_slot, SubmitOutcome.UPDATED)
        if source == ReportSource.SELF:
            _check_open_for_new(slot, day, now)
        report = _new_report(student=student, slot=slot, day=day)
        _apply(report, **changes)
        report._history_user = by
        try:
            with transaction.atomic():
                report.save()
        except IntegrityError:
            # A concurrent twin won the unique constraint: read what it wrote and decide again.
            if attempt:
                raise
            continue
        return SubmitResult(report, SubmitOutcome.CREATED)
    raise AssertionError("unreachable")


# The fast path of a student's first report of a slot (nearly every submission of the
# morning rush): one read, then one write, no transaction of our own.
#
# The read (_probe_sql) takes the student's active slot of that code, whether a report
# already exists for (day, slot) or carries the client id, and the lazy-bot counts of
# the previous N days.  When nothing exists, the write (_insert_new) is one
# INSERT … ON CONFLICT DO NOTHING — on PostgreSQL with its history row in the same
# statement, so it is atomic by itself.  Anything else — a retry, an edit, or a twin
# that inserted between the read and the write (the INSERT then writes nothing) —
# takes the general, locking path of _submit, which decides against what is stored.
#
# The student's reports of those days are read once (one scan of the (student, date,
# slot) index by a range of dates, where three lookups read it before).  Today's estimate,
# which decides whether the planner takes that index for every read of a student's day,
# is the statistics' business: reports/migrations/0005.
_REPORT, _SLOT = DailyReport._meta.db_table, CheckinSlot._meta.db_table


def _lazy_bot_sql(*, student: str, slot: str, vendor: str) -> tuple[str, str, str, str]:
    """The parts of the fast paths' reads, for a student and slot given as SQL
    (parameters or columns): ``mine`` (the CTE of the student's reports of the lazy-bot
    days), whether a report exists for the day and slot or carries the client id, and
    the two lazy-bot counts — same answer, same second — over the days before.

    On PostgreSQL the days are a list, not a range.  A range that ends today makes the
    planner look up the date's actual end in an index at every plan — today's rows are
    newer than the statistics — and walk past the dead entries there (edits and
    deletions leave them until a vacuum): at 100,000 students, after a day's rows had
    been written and removed, 4,300 buffers and 1.9 ms a plan, more than the rest of a
    check-in's server time; with live rows only, 0.1–0.2 ms (EXPLAIN (SUMMARY)).  Each
    day by equality plans in 0.05 ms."""
    days = "r.date = ANY(%(dates)s)" if vendor == "postgresql" else "r.date >= %(since)s AND r.date <= %(date)s"
    mine = f"""mine AS (
    SELECT r.date, r.slot_id, r.source, r.answer_hash, r.submitted_second FROM {_REPORT} r
    WHERE r.student_id = {student} AND {days}
)"""
    exists = (
        f"(EXISTS (SELECT 1 FROM mine m WHERE m.date = %(date)s AND m.slot_id = {slot}) "
        f"OR EXISTS (SELECT 1 FROM {_REPORT} r WHERE r.student_id = {student} AND r.client_id = %(client)s))"
    )
    same = (
        f"(SELECT COUNT(*) FROM mine m WHERE m.slot_id = {slot} AND m.date < %(date)s AND m.source = %(self)s "
        "AND m.{column} = %({param})s)"
    )
    return (
        mine,
        exists,
        same.format(column="answer_hash", param="hash"),
        same.format(column="submitted_second", param="second"),
    )


def _lazy_bot_params(*, day: dt.date, client_id: uuid.UUID | None, digest: str, second: int) -> dict:
    """The parameters of :func:`_lazy_bot_sql`'s parts."""
    conn = connections[DEFAULT_DB_ALIAS]
    days = max(settings.TONGXIN["CHECKIN_LAZY_BOT_DAYS"], 0)
    date_field, client_field = DailyReport._meta.get_field("date"), DailyReport._meta.get_field("client_id")
    if conn.vendor == "postgresql":
        span = {"dates": [date_field.get_db_prep_value(day - dt.timedelta(days=n), conn) for n in range(days + 1)]}
    else:
        span = {"since": date_field.get_db_prep_value(day - dt.timedelta(days=days), conn)}
    return {
        **span,
        "date": date_field.get_db_prep_value(day, conn),
        "client": client_field.get_db_prep_value(client_id, conn),
        "self": ReportSource.SELF.value,
        "hash": digest,
        "second": second,
    }


@per_vendor
def _probe_sql() -> str:
    """The SQL of :func:`_probe` for the default database's vendor."""
    mine, exists, same_answer, same_second = _lazy_bot_sql(
        student="%(student)s", slot="sl.id", vendor=connections[DEFAULT_DB_ALIAS].vendor
    )
    return f"""
WITH {mine}
SELECT sl.id, sl.opens_at, sl.due_at, sl.closes_at, {exists}, {same_answer}, {same_second}
FROM {_SLOT} sl
WHERE sl.campus_id = %(campus)s AND sl.code = %(code)s AND sl.active
"""


@dataclass(frozen=True)
class _Probe:
    slot: CheckinSlot
    exists: bool
    bot_flags: list[str]


def _time(value) -> dt.time:
    return dt.time.fromisoformat(value) if isinstance(value, str) else value


def _probe(
    *, student: Student, slot_code: str, day: dt.date, client_id: uuid.UUID | None, digest: str, second: int
) -> _Probe | None:
    """The one read of the fast path (see above); None when the student's campus has
    no active slot ``slot_code``."""
    conn = connections[DEFAULT_DB_ALIAS]
    params = {
        **_lazy_bot_params(day=day, client_id=client_id, digest=digest, second=second),
        "student": student.pk,
        "campus": student.campus_id,
        "code": slot_code,
    }
    with conn.cursor() as cursor:
        cursor.execute(_probe_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    slot_id, opens_at, due_at, closes_at, exists, same_answer, same_second = row
    slot = CheckinSlot(
        id=slot_id,
        campus_id=student.campus_id,
        code=slot_code,
        opens_at=_time(opens_at),
        due_at=_time(due_at),
        closes_at=_time(closes_at),
        active=True,
    )
    slot._state.adding, slot._state.db = False, conn.alias
    return _Probe(
        slot=slot,
        exists=bool(exists),
        bot_flags=_bot_flags_from(same_answer=same_answer or 0, same_second=same_second or 0),
    )


@dataclass(frozen=True)
class _InsertStatement:
    fields: list
    insert: str  # INSERT … ON CONFLICT DO NOTHING of a report
    history: str  # INSERT INTO the history table SELECT the report's columns (add FROM …)
    history_date: object  # the history_date field, to prepare its value


@per_vendor
def _insert_statement() -> _InsertStatement:
    """The SQL of :func:`_insert_new` for the default database's vendor."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    fields = [f for f in DailyReport._meta.concrete_fields if not f.primary_key]
    history_head, tracked = history_insert_sql(DailyReport, conn)
    return _InsertStatement(
        fields=fields,
        insert=(
            f"INSERT INTO {qn(DailyReport._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING"
        ),
        history=f"{history_head} SELECT {', '.join(tracked)}, %s, NULL, '+', %s",
        history_date=DailyReport.history.model._meta.get_field("history_date"),
    )


def _insert_new(report: DailyReport, *, by) -> bool:
    """Insert ``report`` and its history row (``+``, by ``by``, as django-simple-history
    writes it) unless a report of the same (student, date, slot) or (student, client
    id) exists; True if it was written (``report.pk`` is then set).  On PostgreSQL one
    statement; elsewhere two, in a transaction."""
    conn = connections[DEFAULT_DB_ALIAS]
    statement = _insert_statement()
    values = [f.get_db_prep_save(f.pre_save(report, True), conn) for f in statement.fields]
    history_values = [statement.history_date.get_db_prep_save(report.updated_at, conn), getattr(by, "pk", None)]
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(
                f"WITH ins AS ({statement.insert} RETURNING *), hist AS ({statement.history} FROM ins) "
                "SELECT id FROM ins",
                [*values, *history_values],
            )
            row = cursor.fetchone()
        else:
            with transaction.atomic(using=conn.alias):
                cursor.execute(f"{statement.insert} RETURNING id", values)
                row = cursor.fetchone()
                if row is not None:
                    table = conn.ops.quote_name(DailyReport._meta.db_table)
                    cursor.execute(f"{statement.history} FROM {table} WHERE id = %s", [*history_values, row[0]])
    if row is None:
        return False
    report.pk = row[0]
    report._state.adding, report._state.db = False, conn.alias
    return True


# ---------------------------------------------------------------------------
# A student's first report of a slot in one statement (PostgreSQL)
# ---------------------------------------------------------------------------
# Through the API the fast path above still cost three round trips: the authentication's
# read of the account, the probe and the insert — under the morning rush each one a
# wait in a web thread and a statement for the server to parse and plan.  For the plain
# case one statement does it all from the token's account id: the account (active
# only), its student, the campus's active slot of that code open at this minute, no
# report yet for the day and slot nor with this client id, the lazy-bot counts, the
# insert, its history row, and the student's number and name for the answer.  The rules
# stay here: Python computes the flag fields for each of the four lazy-bot outcomes and
# the statement picks one by the counts.  Anything not plain — no such account or
# student, no such slot or not open, a retry, an edit, a twin — inserts nothing, and the
# caller authenticates fully and calls report_submit, which decides and explains.
# Elsewhere than PostgreSQL (no INSERT in a WITH) the caller always does.

#: The report columns the statement takes from the account's row, and those it picks
#: among four values computed in Python (one per lazy-bot outcome).
_DIRECT_FROM_ROW = ("student", "slot", "campus", "college", "grade", "school_class", "late")
_DIRECT_BY_OUTCOME = ("flags", "suspected_bot", "follow_up")


@dataclass(frozen=True)
class _DirectStatement:
    sql: str
    fields: list  # the report fields given as parameters (f_<attname>)
    history_date: object


@per_vendor
def _direct_statement() -> _DirectStatement | None:
    """The SQL of :func:`report_submit_direct`; None where the vendor cannot run it."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        return None
    qn = conn.ops.quote_name
    user_model = Student._meta.get_field("user").related_model
    columns, values, fields = [], [], []
    for f in DailyReport._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(qn(f.column))
        if f.name in _DIRECT_FROM_ROW:
            values.append(f"new.{qn(f.column)}")
        elif f.name in _DIRECT_BY_OUTCOME:
            picks = " ".join(f"WHEN {k} THEN %({f.name}_{k})s" for k in range(3))
            values.append(f"CASE new.bot {picks} ELSE %({f.name}_3)s END")
        else:
            values.append(f"%(f_{f.attname})s")
            fields.append(f)
    mine, exists, same_answer, same_second = _lazy_bot_sql(
        student="(SELECT student_id FROM me)", slot="me.slot_id", vendor=conn.vendor
    )
    history_head, tracked = history_insert_sql(DailyReport, conn)
    sql = f"""
WITH me AS (
    SELECT s.id AS student_id, s.campus_id, s.college_id, s.grade_id, s.school_class_id,
           s.student_number, s.name, sl.id AS slot_id, sl.due_at < %(time)s AS late
    FROM {qn(Student._meta.db_table)} s
    JOIN {qn(user_model._meta.db_table)} u ON u.id = s.user_id
    JOIN {_SLOT} sl ON sl.campus_id = s.campus_id AND sl.code = %(code)s AND sl.active
    WHERE s.user_id = %(user)s AND u.is_active AND sl.opens_at <= %(time)s AND %(time)s < sl.closes_at
), {mine}, new AS (
    SELECT me.*, CASE WHEN {same_answer} >= %(days)s THEN 1 ELSE 0 END
                 + CASE WHEN {same_second} >= %(days)s THEN 2 ELSE 0 END AS bot
    FROM me WHERE NOT {exists}
), ins AS (
    INSERT INTO {_REPORT} ({", ".join(columns)}) SELECT {", ".join(values)} FROM new
    ON CONFLICT DO NOTHING RETURNING *
), hist AS (
    {history_head} SELECT {", ".join(tracked)}, %(history_date)s, NULL, '+', %(user)s FROM ins
)
SELECT ins.id, ins.student_id, ins.slot_id, ins.campus_id, ins.college_id, ins.grade_id, ins.school_class_id,
       ins.late, new.bot, new.student_number, new.name
FROM ins JOIN new ON new.student_id = ins.student_id
"""
    return _DirectStatement(
        # One line: psycopg caches the conversion of a statement up to 4 kB long.
        sql=" ".join(sql.split()),
        fields=fields,
        history_date=DailyReport.history.model._meta.get_field("history_date"),
    )


def report_submit_direct(
    *,
    user_id: int,
    slot_code: str,
    answer: ReportAnswer,
    client_id: uuid.UUID | None = None,
    on: dt.date | None = None,
    now: dt.datetime | None = None,
) -> SubmitResult | None:
    """A student's first report of a slot (本人填报) from their account's id alone, in
    one statement (see above): the CREATED result, with ``report.student`` carrying the
    student's id, number and name and ``report.slot`` its id and code — or None when it
    wrote nothing.  None is no answer: the caller then reads the account as the
    authentication does and calls :func:`report_submit`, whose rules this applies to the
    case it covers."""
    statement = _direct_statement()
    if statement is None:
        return None
    now = now or local_now()
    local = now.astimezone(timezone.get_default_timezone())
    day = local.date()
    if on is not None and on != day:
        return None  # another day's slot is not open: report_submit says so
    conn = connections[DEFAULT_DB_ALIAS]
    digest = answer.digest()
    report = DailyReport(date=day)
    _apply_answer(report, answer=answer, digest=digest, source=ReportSource.SELF, by=None, now=now, client_id=client_id)
    report.submitted_by_id = user_id
    days = settings.TONGXIN["CHECKIN_LAZY_BOT_DAYS"]
    params = {
        **_lazy_bot_params(day=day, client_id=client_id, digest=digest, second=report.submitted_second),
        "user": user_id,
        "code": slot_code,
        "time": local.time(),
        "days": max(days, 1),
        **{f"f_{f.attname}": f.get_db_prep_save(f.pre_save(report, True), conn) for f in statement.fields},
        "history_date": statement.history_date.get_db_prep_save(report.updated_at, conn),
    }
    outcomes = []
    for bot in range(4):  # bit 1: the same answer N days running; bit 2: the same second
        flags = report.flags + _bot_flags_from(same_answer=days * (bot & 1), same_second=days * (bot >> 1))
        _abnormal, suspected_bot, follow_up = _flag_fields(flags)
        outcomes.append({"flags": flags, "suspected_bot": suspected_bot, "follow_up": follow_up})
        for name, value in outcomes[-1].items():
            params[f"{name}_{bot}"] = DailyReport._meta.get_field(name).get_db_prep_save(value, conn)
    with conn.cursor() as cursor:
        cursor.execute(statement.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    report.pk, student_id, slot_id, campus_id, college_id, grade_id, class_id, report.late, bot, number, name = row
    for attname, value in outcomes[bot].items():
        setattr(report, attname, value)
    report.student = Student(
        id=student_id,
        student_number=number,
        name=name,
        campus_id=campus_id,
        college_id=college_id,
        grade_id=grade_id,
        school_class_id=class_id,
        user_id=user_id,
    )
    report.slot = CheckinSlot(id=slot_id, campus_id=campus_id, code=slot_code, active=True)
    for unit in ("campus_id", "college_id", "grade_id", "school_class_id"):
        setattr(report, unit, getattr(report.student, unit))
    for instance in (report, report.student, report.slot):
        instance._state.adding, instance._state.db = False, conn.alias
    return SubmitResult(report, SubmitOutcome.CREATED)


def report_submit(
    *,
    student: Student,
    slot_code: str,
    answer: ReportAnswer,
    client_id: uuid.UUID | None = None,
    on: dt.date | None = None,
    by=None,
    now: dt.datetime | None = None,
) -> SubmitResult:
    """A student reports for themself (本人填报).

    Preconditions: ``student`` is the acting student's own record.  ``on`` defaults to
    today (local); a past or future date falls outside the slot's window and is refused.
    Returns CREATED for a new report, UNCHANGED for an identical retry (same client id
    with the same answer, or the same answer for the same slot — whatever the time), and
    UPDATED for an edit while the slot is open.  Race-safe: two concurrent identical
    submissions produce one report, the loser reads the winner's row.  A first report
    costs one read and one write (the fast path above)."""
    now = now or local_now()
    local = now.astimezone(timezone.get_default_timezone())
    day = on or local.date()
    by = by if by is not None else student.user
    digest = answer.digest()
    probe = _probe(
        student=student, slot_code=slot_code, day=day, client_id=client_id, digest=digest, second=_second_of_day(local)
    )
    if probe is None:
        raise _no_such_slot()
    slot = probe.slot
    if not probe.exists:
        _check_open_for_new(slot, day, now)
        report = _new_report(student=student, slot=slot, day=day)
        _apply(
            report,
            answer=answer,
            digest=digest,
            source=ReportSource.SELF,
            by=by,
            now=now,
            client_id=client_id,
            bot_flags=probe.bot_flags,
        )
        if _insert_new(report, by=by):
            return SubmitResult(report, SubmitOutcome.CREATED)
        # A twin got in between the read and the write: decide against what it stored.
    with transaction.atomic():
        return _submit(
            student=student,
            slot=slot,
            day=day,
            day_given=on is not None,
            answer=answer,
            client_id=client_id,
            source=ReportSource.SELF,
            by=by,
            now=now,
            bot_flags=probe.bot_flags,
        )


def report_submit_proxy(
    *,
    actor,
    student_id: int,
    slot_code: str,
    answer: ReportAnswer,
    on: dt.date | None = None,
    client_id: uuid.UUID | None = None,
    channel: str = ContactLog.Channel.PHONE,
    note: str = "",
    now: dt.datetime | None = None,
) -> SubmitResult:
    """A counsellor reports on a student's behalf after a call (代报, ``source=proxy``).

    Preconditions: ``actor`` reaches the student as counsellor, duty counsellor or
    college admin (otherwise the student "does not exist").  Allowed after the slot
    closes and for past dates, never for the future.  A new or changed report also
    writes a contact-log entry (outcome ``proxy_reported``), in the same transaction;
    an identical retry writes nothing."""
    now = now or local_now()
    today = now.astimezone(timezone.get_default_timezone()).date()
    day = on or today
    if day > today:
        raise _error("date", _("不能为将来的日期代报。"), "date_in_future")
    student = students_with_role(actor, roles=CHASE_ROLES).filter(pk=student_id).first()
    if student is None:
        raise _error("student", _("学生不存在或不在您的管理范围内。"), "does_not_exist")
    slot = slot_for(student=student, slot_code=slot_code)
    with transaction.atomic():
        result = _submit(
            student=student,
            slot=slot,
            day=day,
            day_given=True,
            answer=answer,
            client_id=client_id,
            source=ReportSource.PROXY,
            by=actor,
            now=now,
        )
        if result.outcome != SubmitOutcome.UNCHANGED:
            result.contact = ContactLog.objects.create(
                student=student,
                contacted_at=now,
                channel=channel,
                outcome=ContactLog.Outcome.PROXY_REPORTED,
                note=note,
                contacted_by=actor,
            )
    return result


def report_follow_up_close(
    *,
    actor,
    report_id: int,
    channel: str = ContactLog.Channel.PHONE,
    outcome: str = ContactLog.Outcome.FOLLOWED_UP,
    note: str = "",
    now: dt.datetime | None = None,
) -> tuple[DailyReport, ContactLog]:
    """Close the follow-up of an abnormal or suspected-bot report after contacting the
    student; the contact is logged.  Preconditions: ``actor`` chases the student
    (counsellor, duty counsellor, college admin) and the follow-up is open."""
    now = now or local_now()
    scope_students = students_with_role(actor, roles=CHASE_ROLES)
    with transaction.atomic():
        report = (
            DailyReport.objects.select_for_update()
            .filter(pk=report_id, student__in=scope_students)
            .select_related("student")
            .first()
        )
        if report is None:
            raise _error("report", _("报告不存在或不在您的管理范围内。"), "does_not_exist")
        if report.follow_up != FollowUp.OPEN:
            raise _refused("follow_up", _("这份报告没有待跟进的事项。"), "not_open")
        report.follow_up = FollowUp.CLOSED
        report.follow_up_closed_at = now
        report.follow_up_closed_by = actor
        report._history_user = actor
        report.save(update_fields=["follow_up", "follow_up_closed_at", "follow_up_closed_by", "updated_at"])
        contact = ContactLog.objects.create(
            student=report.student, contacted_at=now, channel=channel, outcome=outcome, note=note, contacted_by=actor
        )
    return report, contact


# ---------------------------------------------------------------------------
# Excusals and the contact log
# ---------------------------------------------------------------------------
def excusal_create(
    *,
    actor,
    student_id: int,
    reason: str,
    starts_on: dt.date,
    ends_on: dt.date | None = None,
    note: str = "",
) -> Excusal:
    """Excuse a student from the check-in (免报) for a date range, recording who and why.
    Preconditions: ``actor`` chases the student; "other" needs a note."""
    note = (note or "").strip()
    errors = {}
    if reason == ExcusalReason.OTHER and not note:
        errors["note"] = ValidationError(_("原因为“其他”时请填写说明。"), code="required")
    if ends_on is not None and ends_on < starts_on:
        errors["ends_on"] = ValidationError(_("结束日期不能早于开始日期。"), code="before_start")
    if errors:
        raise ValidationError(errors)
    student = students_with_role(actor, roles=CHASE_ROLES).filter(pk=student_id).first()
    if student is None:
        raise _error("student", _("学生不存在或不在您的管理范围内。"), "does_not_exist")
    with transaction.atomic():
        return Excusal.objects.create(
            student=student, reason=reason, note=note, starts_on=starts_on, ends_on=ends_on, created_by=actor
        )


def excusal_delete(*, actor, excusal_id: int) -> None:
    """Withdraw an excusal (the deletion stays in its history).  Preconditions:
    ``actor`` chases the student."""
    with transaction.atomic():
        excusal = Excusal.objects.filter(
            pk=excusal_id, student__in=students_with_role(actor, roles=CHASE_ROLES)
        ).first()
        if excusal is None:
            raise _error("excusal", _("免报登记不存在或不在您的管理范围内。"), "does_not_exist")
        excusal._history_user = actor  # record who withdrew it, also outside a request
        excusal.delete()


def contact_log_create(
    *,
    actor,
    student_id: int,
    channel: str,
    outcome: str,
    note: str = "",
    contacted_at: dt.datetime | None = None,
) -> ContactLog:
    """Log one contact with a student.  Preconditions: ``actor`` chases the student;
    ``contacted_at`` (default now) is not in the future."""
    return contacts_mark(
        actor=actor, student_ids=[student_id], channel=channel, outcome=outcome, note=note, contacted_at=contacted_at
    )[0]


#: How far back a contact may be logged: the log records the chase of the current
#: term, not history (a year like 0627 is a typo, not a contact).
CONTACT_BACKDATE_DAYS = 366


def contact_time_check(contacted_at: dt.datetime | None) -> dt.datetime:
    """When a contact happened: now by default, never in the future (a few minutes of
    clock skew between a phone and the server are tolerated) and at most
    :data:`CONTACT_BACKDATE_DAYS` ago."""
    now = local_now()
    if contacted_at is None:
        return now
    if contacted_at > now + dt.timedelta(minutes=5):
        raise _error("contacted_at", _("联系时间不能晚于现在。"), "in_future")
    if contacted_at < now - dt.timedelta(days=CONTACT_BACKDATE_DAYS):
        raise _error("contacted_at", _("联系时间不能早于一年前。"), "too_old")
    return contacted_at


def contacts_mark(
    *,
    actor,
    student_ids: list[int],
    channel: str,
    outcome: str = ContactLog.Outcome.REACHED,
    note: str = "",
    contacted_at: dt.datetime | None = None,
) -> list[ContactLog]:
    """Mark students as contacted (bulk, e.g. from the missing list): one contact-log
    entry each, all or nothing.  Preconditions: ``actor`` chases every one of them; an
    unknown or foreign id refuses the whole batch."""
    contacted_at = contact_time_check(contacted_at)
    wanted = list(dict.fromkeys(student_ids))
    found = set(students_with_role(actor, roles=CHASE_ROLES).filter(pk__in=wanted).values_list("pk", flat=True))
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise _error(
            "students" if len(student_ids) > 1 else "student",
            _("学生不存在或不在您的管理范围内：%(ids)s") % {"ids": ", ".join(map(str, missing))},
            "does_not_exist",
        )
    entries = [
        ContactLog(
            student_id=pk, contacted_at=contacted_at, channel=channel, outcome=outcome, note=note, contacted_by=actor
        )
        for pk in wanted
    ]
    with transaction.atomic():
        return ContactLog.objects.bulk_create(entries)
