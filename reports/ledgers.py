"""The Excel ledgers (台账) and the export audit (导出记录).

Product rules (issue 5, "Excel ledgers"; DESIGN.md, "Interfaces"):

- 《留校学生情况统计表》: the enrolled students staying on campus, counted by college
  and by dorm building (total, male/female, key-attention groups, abnormal today),
  then listed one per row;
- the day's roll-up workbook: one sheet per level (学校, 校区, 学院, 年级, 班级), from
  the stored snapshots for past days and the live roll-up for today;
- the missing list (未报名单): with contact details for the roles that chase
  students, names only for a class monitor;
- the abnormal list (异常名单): the day's abnormal reports with their flags in
  Chinese, for roles that may see health data only.

Every workbook holds only what :func:`campuses.scoping.scope_for` lets the user see,
optionally narrowed to one unit (``level:id``) inside it; phones and ID numbers are
masked unless :meth:`Scope.annotate_pii` allows them in full; identifiers are text
cells and formulas are escaped (:mod:`students.xlsx`); big lists are streamed
(XlsxWriter's constant-memory mode) from a fixed number of queries.  Every export is
recorded in :class:`ExportRecord` by :func:`export_record`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, Value
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from campuses.models import Building, Campus, College, Grade, Role, Room, SchoolClass, University
from campuses.scoping import HEALTH_ROLES, STUDENT_PATHS, Scope, scope_for
from reports.export_models import ExportKind, ExportRecord
from reports.models import CheckinSlot, DailyReport, HealthStatus, ReportFlag, ReportSource, SlotCode, Symptom
from reports.rollup import rollup_compute
from reports.rollup_models import FIGURES, Level, RollupSnapshot
from reports.selectors import missing_details, report_missing
from students.masking import mask_id_number, mask_phone
from students.models import AttentionTag, ContactLog, EnrolmentStatus, Gender, KeyAttentionTag, Student, Whereabouts
from students.provinces import PROVINCE_BY_PREFIX
from students.xlsx import XlsxWorkbook

#: Who may export the on-campus ledger: every role with students to look after, and
#: logistics (supplies and meals go to the students staying); not a class monitor.
STAY_ROLES = HEALTH_ROLES | {Role.LOGISTICS_OFFICER}
#: Who may export the roll-up workbook and the abnormal list (health figures).
HEALTH_LEDGER_ROLES = HEALTH_ROLES

#: The unit levels a ``unit=<level>:<id>`` parameter may name, with their models.
UNIT_MODELS: dict[str, type] = {
    "university": University,
    "campus": Campus,
    "college": College,
    "grade": Grade,
    "school_class": SchoolClass,
    "building": Building,
    "room": Room,
}
#: The roll-up's levels, top-down, as the workbook's sheets.
ROLLUP_SHEETS: tuple[str, ...] = (Level.UNIVERSITY, Level.CAMPUS, Level.COLLEGE, Level.GRADE, Level.SCHOOL_CLASS)
_LEVEL_MODELS = {
    Level.UNIVERSITY: University,
    Level.CAMPUS: Campus,
    Level.COLLEGE: College,
    Level.GRADE: Grade,
    Level.SCHOOL_CLASS: SchoolClass,
}
#: Ancestor columns printed before a unit on each roll-up sheet.
_ANCESTORS = {
    Level.UNIVERSITY: (),
    Level.CAMPUS: (),
    Level.COLLEGE: (Level.CAMPUS,),
    Level.GRADE: (Level.CAMPUS, Level.COLLEGE),
    Level.SCHOOL_CLASS: (Level.CAMPUS, Level.COLLEGE, Level.GRADE),
}
_FILENAME_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')


#: The answer when a ``unit`` parameter names a unit the user does not see (or none).
NOT_IN_SCOPE = _("单位不存在或不在您的管理范围内")


class LedgerError(ValidationError):
    """A request for a ledger that cannot be answered as asked (HTTP 400)."""


@dataclass(frozen=True)
class UnitRef:
    """One unit of the tree named by a ``level:id`` parameter, checked to be in scope."""

    level: str
    unit_id: int
    name: str

    @property
    def param(self) -> str:
        return f"{self.level}:{self.unit_id}"

    def student_q(self, prefix: str = "") -> Q:
        return Q(**{f"{prefix}{STUDENT_PATHS[self.level]}": self.unit_id})


@dataclass
class Ledger:
    """A built workbook: bytes, the file names (Chinese and ASCII fallback), the number
    of data rows and the parameters it was built with."""

    kind: str
    data: bytes
    filename: str
    ascii_filename: str
    rows: int
    parameters: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Parameters, access, audit
# ---------------------------------------------------------------------------
def _refuse(message) -> PermissionDenied:
    return PermissionDenied(str(message))


def unit_resolve(*, user, value: str | None) -> UnitRef | None:
    """Read a ``level:id`` parameter.  Malformed → :class:`LedgerError`; a unit the user
    does not see (or that does not exist) → ``DoesNotExist``; empty → None."""
    if not value:
        return None
    level, _sep, raw_id = value.partition(":")
    if level not in UNIT_MODELS or not raw_id.isdigit():
        raise LedgerError({"unit": ValidationError(_("单位参数格式应为 层级:编号，例如 college:12。"), code="invalid")})
    model = UNIT_MODELS[level]
    qs = scope_for(user).units(model)
    if model is Room:
        qs = qs.select_related("building")
    unit = qs.get(pk=int(raw_id))
    name = f"{unit.building.name} {unit.number}" if model is Room else str(unit)
    return UnitRef(level=level, unit_id=unit.pk, name=name)


def ledger_date(value: str | None) -> dt.date:
    """The ``date`` parameter (ISO), today by default; never in the future."""
    today = timezone.localdate()
    if not value:
        return today
    try:
        on = dt.date.fromisoformat(value)
    except ValueError:
        raise LedgerError({"date": ValidationError(_("日期格式应为 YYYY-MM-DD。"), code="invalid")}) from None
    if on > today:
        raise LedgerError({"date": ValidationError(_("不能导出未来日期的台账。"), code="future")})
    return on


def ledger_slot(value: str | None, *, required: bool = True) -> str | None:
    """The ``slot`` parameter: a slot code, the morning slot by default (or None when
    not ``required``: every slot of the day)."""
    if not value:
        return SlotCode.MORNING if required else None
    if value not in SlotCode.values:
        raise LedgerError({"slot": ValidationError(_("未知的打卡时段。"), code="invalid")})
    return value


def export_record(*, user, kind: str, parameters: dict[str, Any], row_count: int, filename: str) -> ExportRecord:
    """Append one export to the audit (导出记录): who, what, parameters, rows, file.
    Called for every ledger and roster download."""
    return ExportRecord.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "username", "") or "",
        kind=kind,
        parameters=parameters,
        row_count=row_count,
        filename=filename[:255],
    )


def _filename(title: str, on: dt.date, *extra: str, unit: UnitRef | None = None) -> str:
    parts = [title]
    if unit is not None:
        parts.append(_FILENAME_UNSAFE.sub("_", unit.name).strip("_.")[:60])
    parts.append(on.strftime("%Y%m%d"))
    parts.extend(extra)
    return "_".join(p for p in parts if p) + ".xlsx"


def _chunk() -> int:
    return int(settings.TONGXIN.get("BULK_BATCH_SIZE", 2000))


def _labels(choices) -> dict[str, str]:
    return {value: str(label) for value, label in choices}


def _local(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _slot_label(code: str | None) -> str:
    return str(SlotCode(code).label) if code else "全天"


# ---------------------------------------------------------------------------
# 《留校学生情况统计表》
# ---------------------------------------------------------------------------
_TAGS: tuple[str, ...] = tuple(AttentionTag.values)


@dataclass
class _Counts:
    total: int = 0
    male: int = 0
    female: int = 0
    rooms: set[int] = field(default_factory=set)
    tags: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TAGS, 0))
    tagged: int = 0
    abnormal: int = 0

    def add(self, student, tags: set[str], health: bool) -> None:
        """Count ``student`` (a row with ``gender``, ``room_id`` and ``abnormal_today``)."""
        self.total += 1
        if student.gender == Gender.MALE:
            self.male += 1
        elif student.gender == Gender.FEMALE:
            self.female += 1
        if student.room_id:
            self.rooms.add(student.room_id)
        if health:
            for tag in tags:
                self.tags[tag] += 1
            self.tagged += bool(tags)
            self.abnormal += bool(student.abnormal_today)


def _flag(scope: Scope, roles: frozenset[str], prefix: str = "") -> ExpressionWrapper | Value:
    """Per student: does ``scope`` reach them through one of ``roles``?"""
    if scope.everything:
        return Value(True)
    if not scope.has_role(*roles):
        return Value(False)
    return ExpressionWrapper(scope.student_q(prefix=prefix, roles=roles), output_field=BooleanField())


_STAY_COLUMNS = (
    "id",
    "student_number",
    "name",
    "gender",
    "room_id",
    "bed",
    "phone",
    "id_number",
    "campus__name",
    "college__name",
    "grade__name",
    "school_class__name",
    "building__name",
    "room__number",
    "pii_phone",
    "pii_id",
    "health",
    "abnormal_today",
)


def stay_ledger(*, user, on: dt.date, unit: UnitRef | None = None) -> Ledger:
    """《留校学生情况统计表》 of ``on``: enrolled students whose whereabouts is on campus,
    in ``user``'s scope (and under ``unit``).

    Sheet 统计表: by college and by building — staying, male, female, (rooms in use),
    key-attention groups and abnormal reports of ``on``.  Sheet 留校学生名单: one row
    per student with college, class, building/room/bed, phone and ID number (masked
    unless the role may see them).  The health columns (groups, abnormal) appear only
    for roles that may see health data, and count only the students reached through
    such a role.  Three queries however many students."""
    scope = scope_for(user)
    if not (scope.everything or scope.has_role(*STAY_ROLES)):
        raise _refuse(_("您无权导出留校学生情况统计表。"))
    show_health = scope.everything or scope.has_role(*HEALTH_ROLES)
    staying = scope.students().filter(whereabouts=Whereabouts.ON_CAMPUS, enrolment_status=EnrolmentStatus.ENROLLED)
    if unit is not None:
        staying = staying.filter(unit.student_q())
    abnormal_today = DailyReport.objects.filter(student_id=OuterRef("pk"), date=on, abnormal=True)
    qs = (
        scope.annotate_pii(staying)
        .annotate(health=_flag(scope, HEALTH_ROLES), abnormal_today=Exists(abnormal_today))
        .order_by("campus__code", "college__code", "-grade__year", "school_class__code", "student_number")
        # Rows of values, not seven model instances a student (the student and six units).
        .values_list(*_STAY_COLUMNS, named=True)
    )
    tags_of: dict[int, set[str]] = defaultdict(set)
    if show_health:
        health_students = staying if scope.everything else staying.filter(scope.student_q(roles=HEALTH_ROLES))
        active_tags = KeyAttentionTag.objects.filter(
            Q(until__isnull=True) | Q(until__gte=on), since__lte=on, student_id__in=health_students.values("pk")
        )
        for student_id, tag in active_tags.values_list("student_id", "tag"):
            tags_of[student_id].add(tag)

    with translation.override("zh-hans"):
        tag_labels = _labels(AttentionTag.choices)
        genders = _labels(Gender.choices)
    workbook = XlsxWorkbook(title="留校学生情况统计表")
    summary = workbook.sheet("统计表", (14, 24, 10, 8, 8, 10, *([10] * (len(_TAGS) + 2))), freeze_header=False)
    listing = workbook.sheet("留校学生名单", (14, 10, 6, 12, 22, 10, 18, 16, 8, 6, 14, 21, 24, 10))
    list_headers = ["学号", "姓名", "性别", "校区", "学院", "年级", "班级", "楼宇", "宿舍", "床位", "手机", "身份证号"]
    if show_health:
        list_headers += ["重点人员", "当日异常"]
    listing.header(list_headers)

    by_college: dict[tuple[str, str], _Counts] = defaultdict(_Counts)
    by_building: dict[tuple[str, str], _Counts] = defaultdict(_Counts)
    total = _Counts()
    count = 0
    for s in qs.iterator(chunk_size=_chunk()):
        health = bool(s.health)
        tags = tags_of.get(s.id, set()) if health else set()
        for counts in (
            by_college[(s.campus__name, s.college__name)],
            by_building[(s.campus__name, s.building__name or "未登记宿舍")],
            total,
        ):
            counts.add(s, tags, health)
        row = [
            s.student_number,
            s.name,
            genders.get(s.gender, s.gender),
            s.campus__name,
            s.college__name,
            s.grade__name,
            s.school_class__name,
            s.building__name or "",
            s.room__number or "",
            s.bed,
            s.phone if s.pii_phone else mask_phone(s.phone),
            s.id_number if s.pii_id else mask_id_number(s.id_number),
        ]
        if show_health:
            row += [
                "、".join(tag_labels[t] for t in _TAGS if t in tags),
                ("是" if s.abnormal_today else "否") if health else "",
            ]
        listing.row(row)
        count += 1

    scope_name = unit.name if unit is not None else "本人管理范围"
    summary.header(["留校学生情况统计表"])
    summary.row([f"统计日期：{on.isoformat()}　统计范围：{scope_name}　导出时间：{_local(timezone.now())}"])
    summary.blank()
    health_headers = [*(tag_labels[t] for t in _TAGS), "重点人员合计", "当日异常"] if show_health else []

    def health_values(c: _Counts) -> list[int]:
        return [*(c.tags[t] for t in _TAGS), c.tagged, c.abnormal] if show_health else []

    summary.row(["一、按学院统计"])
    summary.header(["校区", "学院", "留校人数", "男", "女", *health_headers])
    for (campus, college), c in sorted(by_college.items()):
        summary.row([campus, college, c.total, c.male, c.female, *health_values(c)])
    summary.row(["合计", "", total.total, total.male, total.female, *health_values(total)])
    summary.blank()
    summary.row(["二、按楼宇统计"])
    summary.header(["校区", "楼宇", "留校人数", "男", "女", "入住宿舍数", *health_headers])
    for (campus, building), c in sorted(by_building.items()):
        summary.row([campus, building, c.total, c.male, c.female, len(c.rooms), *health_values(c)])
    summary.row(["合计", "", total.total, total.male, total.female, len(total.rooms), *health_values(total)])
    params = {"date": on.isoformat(), **({"unit": unit.param, "unit_name": unit.name} if unit else {})}
    return Ledger(
        kind=ExportKind.STAY,
        data=workbook.save(),
        filename=_filename("留校学生情况统计表", on, unit=unit),
        ascii_filename=f"stay_{on:%Y%m%d}.xlsx",
        rows=count,
        parameters=params,
    )


# ---------------------------------------------------------------------------
# The day's roll-up workbook
# ---------------------------------------------------------------------------
@dataclass
class _UnitRow:
    level: str
    unit_id: int
    name: str
    campus_id: int | None
    college_id: int | None
    grade_id: int | None
    counts: dict[str, int]
    tags: dict[str, int]

    @property
    def completion(self) -> float | None:
        expected = self.counts["expected"]
        return round(100 * self.counts["reported"] / expected, 1) if expected else None


def _in_subtree(row: _UnitRow, unit: UnitRef | None) -> bool:
    if unit is None or unit.level == Level.UNIVERSITY:
        return True
    if unit.level == Level.SCHOOL_CLASS:
        return row.level == Level.SCHOOL_CLASS and row.unit_id == unit.unit_id
    copy = {Level.CAMPUS: row.campus_id, Level.COLLEGE: row.college_id, Level.GRADE: row.grade_id}[unit.level]
    if copy != unit.unit_id:
        return False
    # The unit itself and what is below it, never the levels above.
    return ROLLUP_SHEETS.index(row.level) >= ROLLUP_SHEETS.index(unit.level)


def _rollup_rows(on: dt.date, slot_code: str, unit: UnitRef | None, compute_unit: UnitRef | None):
    """All units' rows of the day, from snapshots for a past day (when compiled) or
    the live roll-up; and whether they are live."""
    today = timezone.localdate()
    if on < today:
        snapshots = list(RollupSnapshot.objects.filter(date=on, slot_code=slot_code))
        if snapshots:
            rows = [
                _UnitRow(s.level, s.unit_id, s.unit_name, s.campus_id, s.college_id, s.grade_id, s.figures(), s.tags)
                for s in snapshots
            ]
            return rows, False
    live = rollup_compute(
        on=on,
        slot_code=slot_code,
        level=compute_unit.level if compute_unit else None,
        unit_id=compute_unit.unit_id if compute_unit else None,
    )
    rows = [
        _UnitRow(u.level, u.unit_id, u.name, u.campus_id, u.college_id, u.grade_id, dict(u.counts), dict(u.tags))
        for u in live.units.values()
    ]
    return rows, True


def rollup_ledger(*, user, on: dt.date, slot_code: str, unit: UnitRef | None = None) -> Ledger:
    """The day's roll-up workbook for ``slot_code``: one sheet per level (学校, 校区,
    学院, 年级, 班级) with the units ``user`` sees through a role allowed health data
    (under ``unit`` when given), Chinese headers and completion %.  Past days come
    from the stored snapshots, today from :func:`reports.rollup.rollup_compute`."""
    scope = scope_for(user).narrowed(HEALTH_LEDGER_ROLES)
    if not (scope.everything or scope.grants):
        raise _refuse(_("您无权导出每日汇总表。"))
    if unit is not None and unit.level not in _LEVEL_MODELS:
        raise LedgerError({"unit": ValidationError(_("每日汇总表只能按校区、学院、年级或班级导出。"), code="invalid")})
    visible: dict[str, set[int]] | None = None
    if not scope.everything:
        visible = {
            level: set(scope.units(model).values_list("id", flat=True)) for level, model in _LEVEL_MODELS.items()
        }
    compute_unit = unit
    if compute_unit is None and visible is not None:
        # A single teaching-tree duty: compute only its subtree (a counsellor's grade).
        teaching = [g for g in scope.grants if g.level in _LEVEL_MODELS and g.level != Level.UNIVERSITY]
        if len(teaching) == 1 and len(scope.grants) == 1:
            compute_unit = UnitRef(teaching[0].level, teaching[0].unit_id, "")
    rows, live = _rollup_rows(on, slot_code, unit, compute_unit)
    names = {(r.level, r.unit_id): r.name for r in rows}
    if live and compute_unit is not None:
        # A partial computation sums only the subtree into the units above it: drop them
        # (their names above still label the ancestor columns).
        rows = [r for r in rows if _in_subtree(r, compute_unit)]
    shown = [r for r in rows if _in_subtree(r, unit) and (visible is None or r.unit_id in visible.get(r.level, ()))]
    with translation.override("zh-hans"):
        level_labels = _labels(Level.choices)
        figure_labels = [str(RollupSnapshot._meta.get_field(name).verbose_name) for name in FIGURES]
        tag_labels = _labels(AttentionTag.choices)
    workbook = XlsxWorkbook()
    count = 0
    for level in ROLLUP_SHEETS:
        ancestors = _ANCESTORS[level]
        sheet = workbook.sheet(level_labels[level], (14,) * len(ancestors) + (22,) + (8,) * (len(FIGURES) + 1))
        headers = [level_labels[a] for a in ancestors] + [level_labels[level], *figure_labels, "完成率(%)"]
        headers += [f"重点人员-{tag_labels[t]}" for t in _TAGS]
        sheet.header(headers)
        at_level = sorted(
            (r for r in shown if r.level == level),
            key=lambda r: (
                [names.get((a, getattr(r, f"{a}_id")), "") for a in ancestors],
                r.name,
            ),
        )
        for r in at_level:
            values: list[Any] = [names.get((a, getattr(r, f"{a}_id")), "") for a in ancestors]
            values += [r.name, *(int(r.counts.get(n, 0)) for n in FIGURES), r.completion]
            values += [int(r.tags.get(t, 0)) for t in _TAGS]
            sheet.row(values)
            count += 1
    params = {
        "date": on.isoformat(),
        "slot": slot_code,
        "source": "live" if live else "snapshot",
        **({"unit": unit.param, "unit_name": unit.name} if unit else {}),
    }
    return Ledger(
        kind=ExportKind.ROLLUP,
        data=workbook.save(),
        filename=_filename("每日汇总表", on, _slot_label(slot_code), unit=unit),
        ascii_filename=f"rollup_{on:%Y%m%d}_{slot_code}.xlsx",
        rows=count,
        parameters=params,
    )


# ---------------------------------------------------------------------------
# The missing list
# ---------------------------------------------------------------------------
def _with_details(qs, *, on: dt.date) -> Iterator[Student]:
    """The rows of a detailed missing list, read a chunk at a time, each chunk with its
    counsellors and last contacts (:func:`reports.selectors.missing_details`)."""
    rows = qs.iterator(chunk_size=_chunk())
    while chunk := list(islice(rows, _chunk())):
        yield from missing_details(chunk, on=on)


def missing_ledger(*, user, on: dt.date, slot_code: str, unit: UnitRef | None = None) -> Ledger:
    """未报名单 of ``on``/``slot_code`` from :func:`reports.selectors.report_missing`:
    with college, phone (masked unless allowed), responsible counsellor and last
    contact for the roles that chase students; 学号, name and class only for a class
    monitor.  Anyone else is refused (PermissionDenied)."""
    students = Student.objects.filter(unit.student_q()) if unit is not None else None
    qs, detailed = report_missing(user=user, on=on, slot_code=slot_code, students=students)
    workbook = XlsxWorkbook()
    count = 0
    if detailed:
        sheet = workbook.sheet("未报名单", (14, 10, 22, 18, 14, 12, 17, 8, 10, 12))
        sheet.header(
            [
                "学号",
                "姓名",
                "学院",
                "班级",
                "手机",
                "负责辅导员",
                "最近联系时间",
                "联系方式",
                "联系结果",
                "联系人",
            ]
        )
        qs = qs.select_related("college").only(
            "id", "student_number", "name", "phone", "school_class__name", "college__name"
        )
        with translation.override("zh-hans"):
            channels = _labels(ContactLog.Channel.choices)
            outcomes = _labels(ContactLog.Outcome.choices)
        for s in _with_details(qs, on=on):
            row = [
                s.student_number,
                s.name,
                s.college.name,
                s.school_class.name,
                s.phone if s.pii_phone else mask_phone(s.phone),
                s.counsellor_name or "",
                _local(s.last_contact_at),
                channels.get(s.last_contact_channel or "", ""),
                outcomes.get(s.last_contact_outcome or "", ""),
                s.last_contact_by or "",
            ]
            sheet.row(row)
            count += 1
    else:
        sheet = workbook.sheet("未报名单", (14, 10, 18))
        sheet.header(["学号", "姓名", "班级"])
        for s in qs.iterator(chunk_size=_chunk()):
            sheet.row([s.student_number, s.name, s.school_class.name])
            count += 1
    params = {
        "date": on.isoformat(),
        "slot": slot_code,
        "detailed": detailed,
        **({"unit": unit.param, "unit_name": unit.name} if unit else {}),
    }
    return Ledger(
        kind=ExportKind.MISSING,
        data=workbook.save(),
        filename=_filename("未报名单", on, _slot_label(slot_code), unit=unit),
        ascii_filename=f"missing_{on:%Y%m%d}_{slot_code}.xlsx",
        rows=count,
        parameters=params,
    )


# ---------------------------------------------------------------------------
# The abnormal list
# ---------------------------------------------------------------------------
def _place(whereabouts: str, province: str, city: str, labels: dict[str, str]) -> str:
    text = labels.get(whereabouts, whereabouts)
    if province:
        found = PROVINCE_BY_PREFIX.get(province[:2])
        where = found.name if found else province
        text += f"（{where}{' ' + city if city else ''}）"
    return text


def abnormal_ledger(*, user, on: dt.date, slot_code: str | None = None, unit: UnitRef | None = None) -> Ledger:
    """异常名单 of ``on`` (one slot, or every slot): the abnormal reports of students
    ``user`` reaches through a role allowed health data, with temperature, symptoms,
    health status, exposures and the flags in Chinese; phone masked unless allowed.
    Other roles are refused (PermissionDenied).  One query."""
    scope = scope_for(user)
    if not (scope.everything or scope.has_role(*HEALTH_LEDGER_ROLES)):
        raise _refuse(_("只有可以查看健康信息的职务才能导出异常名单。"))
    qs = DailyReport.objects.filter(date=on, abnormal=True)
    if not scope.everything:
        qs = qs.filter(scope.student_q(prefix="student__", roles=HEALTH_ROLES))
    if slot_code:
        qs = qs.filter(slot__code=slot_code)
    if unit is not None:
        qs = qs.filter(unit.student_q(prefix="student__"))
    qs = (
        scope.annotate_pii(qs, prefix="student__")
        .select_related("student__building", "student__room", "slot", "college", "school_class")
        .order_by("college_id", "school_class_id", "student__student_number", "slot__opens_at")
    )
    with translation.override("zh-hans"):
        slots = _labels(SlotCode.choices)
        symptoms = _labels(Symptom.choices)
        statuses = _labels(HealthStatus.choices)
        places = _labels(Whereabouts.choices)
        flags = _labels(ReportFlag.choices)
        sources = _labels(ReportSource.choices)
        follow_ups = _labels(DailyReport._meta.get_field("follow_up").choices)
    workbook = XlsxWorkbook()
    sheet = workbook.sheet("异常名单", (11, 6, 14, 10, 22, 18, 16, 8, 14, 8, 20, 12, 20, 8, 8, 28, 10, 17, 10, 24))
    sheet.header(
        [
            "日期",
            "时段",
            "学号",
            "姓名",
            "学院",
            "班级",
            "楼宇",
            "宿舍",
            "手机",
            "体温(°C)",
            "症状",
            "健康状况",
            "所在地",
            "14天内到过风险地区",
            "接触过病例",
            "异常提示",
            "来源",
            "提交时间",
            "跟进状态",
            "备注",
        ]
    )
    count = 0
    for r in qs.iterator(chunk_size=_chunk()):
        s = r.student
        symptom_text = "、".join(symptoms.get(x, x) for x in r.symptoms or [])
        if r.symptoms_other:
            symptom_text = f"{symptom_text}（{r.symptoms_other}）" if symptom_text else r.symptoms_other
        row = [
            r.date.isoformat(),
            slots.get(r.slot.code, r.slot.code),
            s.student_number,
            s.name,
            r.college.name,
            r.school_class.name,
            s.building.name if s.building_id else "",
            s.room.number if s.room_id else "",
            s.phone if r.pii_phone else mask_phone(s.phone),
            float(r.temperature) if r.temperature is not None else None,
            symptom_text,
            statuses.get(r.health_status, r.health_status),
            _place(r.whereabouts, r.province_code, r.city_code, places),
            "是" if r.risk_area_14d else "否",
            "是" if r.case_contact else "否",
            "、".join(flags.get(f, f) for f in r.flags or []),
            sources.get(r.source, r.source),
            _local(r.submitted_at),
            follow_ups.get(r.follow_up, r.follow_up),
            r.note,
        ]
        sheet.row(row)
        count += 1
    params = {
        "date": on.isoformat(),
        "slot": slot_code or "",
        **({"unit": unit.param, "unit_name": unit.name} if unit else {}),
    }
    return Ledger(
        kind=ExportKind.ABNORMAL,
        data=workbook.save(),
        filename=_filename("异常名单", on, _slot_label(slot_code) if slot_code else "", unit=unit),
        ascii_filename=f"abnormal_{on:%Y%m%d}.xlsx",
        rows=count,
        parameters=params,
    )


# ---------------------------------------------------------------------------
# One entry point for the views and the admin
# ---------------------------------------------------------------------------
_BUILDERS: dict[str, Callable[..., Ledger]] = {
    ExportKind.STAY: lambda *, user, on, slot_code, unit: stay_ledger(user=user, on=on, unit=unit),
    ExportKind.ROLLUP: lambda *, user, on, slot_code, unit: rollup_ledger(
        user=user, on=on, slot_code=slot_code or SlotCode.MORNING, unit=unit
    ),
    ExportKind.MISSING: lambda *, user, on, slot_code, unit: missing_ledger(
        user=user, on=on, slot_code=slot_code or SlotCode.MORNING, unit=unit
    ),
    ExportKind.ABNORMAL: abnormal_ledger,
}
#: The ledgers, in the order pages list them.
LEDGER_KINDS: tuple[str, ...] = tuple(_BUILDERS)


@dataclass(frozen=True)
class LedgerRequest:
    """A ledger request whose parameters are checked: the kind, the day, the slot code
    (None: every slot, the abnormal list only) and the unit inside the user's scope."""

    kind: str
    on: dt.date
    slot_code: str | None
    unit: UnitRef | None

    @property
    def parameters(self) -> dict[str, str]:
        """As stored with a background job (JSON), and read back by :func:`ledger_request`."""
        return {"date": self.on.isoformat(), "slot": self.slot_code or "", "unit": self.unit.param if self.unit else ""}


def ledger_request(
    *, user, kind: str, date: str | None = None, slot: str | None = None, unit: str | None = None
) -> LedgerRequest:
    """Check the raw request parameters (``date`` ISO, ``slot`` code, ``unit``
    ``level:id``).  Raises LedgerError (bad parameters) or DoesNotExist (unit not in
    ``user``'s scope); the role is checked by the builder."""
    if kind not in _BUILDERS:
        raise LedgerError({"kind": ValidationError(_("未知的台账。"), code="invalid")})
    on = ledger_date(date)
    slot_code = ledger_slot(slot, required=kind != ExportKind.ABNORMAL)
    return LedgerRequest(kind=kind, on=on, slot_code=slot_code, unit=unit_resolve(user=user, value=unit))


def ledger_build(*, user, request: LedgerRequest) -> Ledger:
    """Build the ledger of a checked request as ``user`` sees it now, and record the
    export.  Raises PermissionDenied when the role may not export it."""
    ledger = _BUILDERS[request.kind](user=user, on=request.on, slot_code=request.slot_code, unit=request.unit)
    export_record(
        user=user, kind=ledger.kind, parameters=ledger.parameters, row_count=ledger.rows, filename=ledger.filename
    )
    return ledger


def ledger_export(
    *, user, kind: str, date: str | None = None, slot: str | None = None, unit: str | None = None
) -> Ledger:
    """Build the ledger ``kind`` from raw request parameters and record the export
    (:func:`ledger_request`, then :func:`ledger_build`).  Raises LedgerError (bad
    parameters), PermissionDenied (role) or DoesNotExist (unit not in scope)."""
    return ledger_build(user=user, request=ledger_request(user=user, kind=kind, date=date, slot=slot, unit=unit))


def may_export_ledger(scope: Scope, kind: str) -> bool:
    """Whether the holder of ``scope`` may export the ledger ``kind`` at all (the
    builders decide again, per student)."""
    if scope.everything:
        return True
    if kind == ExportKind.STAY:
        return scope.has_role(*STAY_ROLES)
    if kind == ExportKind.MISSING:
        return scope.has_role(*HEALTH_ROLES, Role.CLASS_MONITOR)
    return scope.has_role(*HEALTH_LEDGER_ROLES)


def checkin_slot_codes(*, user) -> list[str]:
    """The slot codes of the campuses ``user`` sees (for the download forms)."""
    campus_ids = scope_for(user).students().values("campus_id")
    return sorted(set(CheckinSlot.objects.filter(active=True, campus_id__in=campus_ids).values_list("code", flat=True)))
