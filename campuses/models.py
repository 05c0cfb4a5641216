"""The organisation tree and who holds duties in it.

University → Campus → College → Grade → SchoolClass is the teaching tree;
Campus → Building → Room is the dorm tree ("一校三地": one university, several
campuses).  Staff hold :class:`Assignment` rows (user, role, one unit at any level,
optional date range for duty rosters); an assignment at a unit covers everything
below it.  Which students and units a user may see is decided in one place,
:mod:`campuses.scoping`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class University(models.Model):
    """The root of the tree: one row per deployment (学校)."""

    code = models.CharField(_("代码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=100, unique=True)

    class Meta:
        verbose_name = _("学校")
        verbose_name_plural = _("学校")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Campus(models.Model):
    """A campus (校区) of the university; check-in slots and logistics are per campus."""

    university = models.ForeignKey(University, models.PROTECT, related_name="campuses", verbose_name=_("学校"))
    code = models.CharField(_("代码"), max_length=20)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        verbose_name = _("校区")
        verbose_name_plural = _("校区")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["university", "code"], name="campus_code_unique_per_university"),
            models.UniqueConstraint(fields=["university", "name"], name="campus_name_unique_per_university"),
        ]

    def __str__(self) -> str:
        return self.name


class College(models.Model):
    """A college or school (学院); one college unit belongs to one campus, so a college
    teaching on two campuses is two units (e.g. 法学院(威海))."""

    campus = models.ForeignKey(Campus, models.PROTECT, related_name="colleges", verbose_name=_("校区"))
    code = models.CharField(_("代码"), max_length=20)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        verbose_name = _("学院")
        verbose_name_plural = _("学院")
        ordering = ["campus__code", "code"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "code"], name="college_code_unique_per_campus"),
            models.UniqueConstraint(fields=["campus", "name"], name="college_name_unique_per_campus"),
        ]

    def __str__(self) -> str:
        return self.name


class Grade(models.Model):
    """A cohort (年级, e.g. 2024级) inside one college; counsellors are usually assigned here."""

    college = models.ForeignKey(College, models.PROTECT, related_name="grades", verbose_name=_("学院"))
    year = models.PositiveSmallIntegerField(_("入学年份"))
    name = models.CharField(_("名称"), max_length=50)

    class Meta:
        verbose_name = _("年级")
        verbose_name_plural = _("年级")
        ordering = ["college_id", "-year"]
        constraints = [
            models.UniqueConstraint(fields=["college", "year"], name="grade_year_unique_per_college"),
            models.CheckConstraint(condition=Q(year__gte=1950) & Q(year__lte=2100), name="grade_year_plausible"),
        ]

    def __str__(self) -> str:
        return self.name


class SchoolClass(models.Model):
    """A teaching class (班级) of about thirty students inside a grade."""

    grade = models.ForeignKey(Grade, models.PROTECT, related_name="classes", verbose_name=_("年级"))
    code = models.CharField(_("代码"), max_length=30)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        verbose_name = _("班级")
        verbose_name_plural = _("班级")
        ordering = ["grade_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["grade", "code"], name="class_code_unique_per_grade"),
            models.UniqueConstraint(fields=["grade", "name"], name="class_name_unique_per_grade"),
        ]

    def __str__(self) -> str:
        return self.name


class Building(models.Model):
    """A dormitory building (楼宇) on a campus."""

    campus = models.ForeignKey(Campus, models.PROTECT, related_name="buildings", verbose_name=_("校区"))
    code = models.CharField(_("代码"), max_length=20)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        verbose_name = _("楼宇")
        verbose_name_plural = _("楼宇")
        ordering = ["campus__code", "code"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "code"], name="building_code_unique_per_campus"),
            models.UniqueConstraint(fields=["campus", "name"], name="building_name_unique_per_campus"),
        ]

    def __str__(self) -> str:
        return self.name


class Room(models.Model):
    """A dorm room (宿舍) in a building, with its number of beds."""

    building = models.ForeignKey(Building, models.PROTECT, related_name="rooms", verbose_name=_("楼宇"))
    number = models.CharField(_("房间号"), max_length=20)
    beds = models.PositiveSmallIntegerField(_("床位数"), default=4)

    class Meta:
        verbose_name = _("宿舍")
        verbose_name_plural = _("宿舍")
        ordering = ["building_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["building", "number"], name="room_number_unique_per_building"),
            models.CheckConstraint(condition=Q(beds__gte=1) & Q(beds__lte=20), name="room_beds_between_1_and_20"),
        ]

    def __str__(self) -> str:
        return self.number


class Role(models.TextChoices):
    """The duties a staff member can hold at a unit."""

    UNIVERSITY_ADMIN = "university_admin", _("学工部管理员")
    CAMPUS_COORDINATOR = "campus_coordinator", _("校区专班")
    COLLEGE_ADMIN = "college_admin", _("学院学工")
    COUNSELLOR = "counsellor", _("辅导员")
    DUTY_COUNSELLOR = "duty_counsellor", _("值班辅导员")
    CLASS_MONITOR = "class_monitor", _("班长/宿舍长")
    LOGISTICS_OFFICER = "logistics_officer", _("后勤保障组")
    PSYCHOLOGICAL_COUNSELLOR = "psychological_counsellor", _("心理中心")


#: The unit fields of an :class:`Assignment`, from the top of the tree down.  Exactly
#: one of them is set on every row.
UNIT_FIELDS: tuple[str, ...] = ("university", "campus", "college", "grade", "school_class", "building", "room")


def _exactly_one_unit() -> Q:
    condition = Q()
    for chosen in UNIT_FIELDS:
        term = Q(**{f"{chosen}__isnull": False})
        for other in UNIT_FIELDS:
            if other != chosen:
                term &= Q(**{f"{other}__isnull": True})
        condition |= term
    return condition


class Assignment(models.Model):
    """A duty (职务分工): a user holds a role at one unit of any level, optionally only
    between two dates (the duty roster of 值班辅导员).  It covers the unit and
    everything below it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="assignments", verbose_name=_("用户")
    )
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices)
    university = models.ForeignKey(University, models.CASCADE, null=True, blank=True, verbose_name=_("学校"))
    campus = models.ForeignKey(Campus, models.CASCADE, null=True, blank=True, verbose_name=_("校区"))
    college = models.ForeignKey(College, models.CASCADE, null=True, blank=True, verbose_name=_("学院"))
    grade = models.ForeignKey(Grade, models.CASCADE, null=True, blank=True, verbose_name=_("年级"))
    school_class = models.ForeignKey(SchoolClass, models.CASCADE, null=True, blank=True, verbose_name=_("班级"))
    building = models.ForeignKey(Building, models.CASCADE, null=True, blank=True, verbose_name=_("楼宇"))
    room = models.ForeignKey(Room, models.CASCADE, null=True, blank=True, verbose_name=_("宿舍"))
    valid_from = models.DateField(_("生效日期"), null=True, blank=True)
    valid_to = models.DateField(_("失效日期"), null=True, blank=True)
    note = models.CharField(_("备注"), max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("职务分工")
        verbose_name_plural = _("职务分工")
        ordering = ["user_id", "role"]
        constraints = [
            models.CheckConstraint(condition=_exactly_one_unit(), name="assignment_exactly_one_unit"),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_to__isnull=True)
                | Q(valid_to__gte=models.F("valid_from")),
                name="assignment_valid_range_ordered",
            ),
        ]
        indexes = [models.Index(fields=["user", "valid_from", "valid_to"], name="assignment_user_validity")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} @ {self.unit}"

    @property
    def unit_field(self) -> str:
        for name in UNIT_FIELDS:
            if getattr(self, f"{name}_id") is not None:
                return name
        raise ValueError("assignment without a unit")

    @property
    def unit(self) -> models.Model:
        return getattr(self, self.unit_field)
