"""Student records (学生信息), their key-attention tags (重点人员) and the history of
changes to both.

Student numbers, ID-card numbers and phone numbers are text everywhere: leading
zeros and 18-digit IDs must survive every import and export.  The place of a
student in the tree is denormalised (campus, college, grade from the class;
building from the room) so that :mod:`campuses.scoping` answers "may this user
see this student" with one indexed query however deep the assignment.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from campuses.models import Building, Campus, College, Grade, Room, SchoolClass
from config.jobs import BackgroundJob, JobStatus


class Gender(models.TextChoices):
    MALE = "M", _("男")
    FEMALE = "F", _("女")


class Whereabouts(models.TextChoices):
    """Where the student is now (当前所在地)."""

    ON_CAMPUS = "on_campus", _("在校")
    HOME = "home", _("在家")
    ELSEWHERE = "elsewhere", _("其他地方")
    INTERNSHIP = "internship", _("实习")
    ON_LEAVE = "on_leave", _("请假")


class EnrolmentStatus(models.TextChoices):
    ENROLLED = "enrolled", _("在读")
    SUSPENDED = "suspended", _("休学")
    GRADUATED = "graduated", _("已毕业")
    WITHDRAWN = "withdrawn", _("退学")


def _unit_copy(model, verbose_name, on_delete, **options) -> models.ForeignKey:
    """A student's unit copied from their class or room (see Student)."""
    return models.ForeignKey(
        model, on_delete, related_name="+", verbose_name=verbose_name, editable=False, db_constraint=False, **options
    )


class Student(models.Model):
    """One student (学生): identity, place in the teaching and dorm trees, contact data,
    where they are now and their login account.  Changes are kept in history."""

    student_number = models.CharField(_("学号"), max_length=20, unique=True)
    name = models.CharField(_("姓名"), max_length=50)
    gender = models.CharField(_("性别"), max_length=1, choices=Gender.choices)
    school_class = models.ForeignKey(SchoolClass, models.PROTECT, related_name="students", verbose_name=_("班级"))
    room = models.ForeignKey(
        Room, models.SET_NULL, null=True, blank=True, related_name="students", verbose_name=_("宿舍")
    )
    # Denormalised from school_class / room; kept in step by fill_hierarchy().
    # Indexed with the lists' order (Meta.indexes), not alone.
    #
    # They carry no foreign-key constraint of their own: the class's and the room's
    # constraints, and the units' own chain (class → grade → college → campus, room →
    # building), already keep a student's units in existence, while a constraint on the
    # copy costs every inserted student one lookup per column at commit — 100,000 new
    # students, 400,000 lookups: 2.5-4 s of a roster import's 12-18 s (bench/README.md).
    # Deleting a unit still goes through on_delete (PROTECT, SET_NULL) in Django.
    grade = _unit_copy(Grade, _("年级"), models.PROTECT, db_index=False)
    college = _unit_copy(College, _("学院"), models.PROTECT, db_index=False)
    campus = _unit_copy(Campus, _("校区"), models.PROTECT, db_index=False)
    building = _unit_copy(Building, _("楼宇"), models.SET_NULL, null=True, blank=True)
    bed = models.CharField(_("床位"), max_length=10, blank=True)
    phone = models.CharField(_("手机"), max_length=20, blank=True)
    id_number = models.CharField(_("身份证号"), max_length=18, blank=True)
    hometown_province = models.CharField(_("生源地省份代码"), max_length=6, blank=True)
    hometown_city = models.CharField(_("生源地城市代码"), max_length=6, blank=True)
    whereabouts = models.CharField(
        _("当前所在地"), max_length=16, choices=Whereabouts.choices, default=Whereabouts.ON_CAMPUS
    )
    enrolment_status = models.CharField(
        _("学籍状态"), max_length=16, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ENROLLED
    )
    guardian_name = models.CharField(_("监护人姓名"), max_length=50, blank=True)
    guardian_phone = models.CharField(_("监护人电话"), max_length=20, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="student",
        verbose_name=_("登录账号"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    # History rows are looked up by student (id or 学号) and date; indexes on the copied
    # unit and account columns would only slow every import's history insert down.  Who
    # made the change (history_user) is kept without a constraint, as the copied units
    # are: an import by a user writes one history row per student, each of which a
    # constraint would look the same user up for at commit; deleting a user still sets
    # it to NULL (on_delete, in Django).
    history = HistoricalRecords(
        excluded_fields=["updated_at"],
        no_db_index=["campus", "college", "grade", "school_class", "building", "room", "user"],
        user_db_constraint=False,
    )

    class Meta:
        verbose_name = _("学生")
        verbose_name_plural = _("学生")
        ordering = ["student_number"]
        constraints = [
            models.UniqueConstraint(fields=["room", "bed"], condition=~Q(bed=""), name="student_bed_unique_per_room"),
            models.CheckConstraint(condition=Q(gender__in=Gender.values), name="student_gender_valid"),
            models.CheckConstraint(condition=Q(whereabouts__in=Whereabouts.values), name="student_whereabouts_valid"),
            models.CheckConstraint(
                condition=Q(enrolment_status__in=EnrolmentStatus.values), name="student_enrolment_status_valid"
            ),
        ]
        # The missing lists (API, dashboards, admin) read a unit's students in class and
        # 学号 order and stop after a page: with the unit alone indexed, PostgreSQL walks
        # the class index and filters out every other unit's students on the way (39,532
        # rows for the second campus of the benchmark's university).  Each of these also
        # serves the unit's own lookups, in place of the foreign key's index.
        indexes = [
            models.Index(fields=["campus", "enrolment_status"], name="student_campus_status"),
            models.Index(fields=["campus", "school_class", "student_number"], name="student_campus_list"),
            models.Index(fields=["college", "school_class", "student_number"], name="student_college_list"),
            models.Index(fields=["grade", "school_class", "student_number"], name="student_grade_list"),
        ]

    def __str__(self) -> str:
        return f"{self.student_number} {self.name}"

    def save(self, *args, **kwargs) -> None:
        # The denormalised columns are integrity, not business rules: never let them drift.
        if self.school_class_id:
            self.fill_hierarchy()
        super().save(*args, **kwargs)

    def fill_hierarchy(self) -> None:
        """Copy campus/college/grade from the class and the building from the room."""
        klass = SchoolClass.objects.select_related("grade__college").get(pk=self.school_class_id)
        self.grade_id = klass.grade_id
        self.college_id = klass.grade.college_id
        self.campus_id = klass.grade.college.campus_id
        self.building_id = None
        if self.room_id:
            self.building_id = Room.objects.values_list("building_id", flat=True).get(pk=self.room_id)


class AttentionTag(models.TextChoices):
    """Key-attention groups (重点人员)."""

    RISK_REGION = "risk_region", _("来自风险地区")
    CLOSE_CONTACT = "close_contact", _("密切接触者")
    FEVER = "fever", _("发热")
    QUARANTINE = "quarantine", _("隔离观察")
    HARDSHIP = "hardship", _("家庭困难")
    PSYCHOLOGICAL = "psychological", _("心理关注")
    OTHER = "other", _("其他")


class KeyAttentionTag(models.Model):
    """A key-attention tag on a student (重点人员台账): why, since when, until when, and
    how often the counsellor must follow up."""

    student = models.ForeignKey(Student, models.CASCADE, related_name="tags", verbose_name=_("学生"))
    tag = models.CharField(_("类别"), max_length=20, choices=AttentionTag.choices)
    reason = models.CharField(_("原因"), max_length=200)
    since = models.DateField(_("开始日期"))
    until = models.DateField(_("结束日期"), null=True, blank=True)
    follow_up_every_days = models.PositiveSmallIntegerField(_("跟进间隔(天)"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("登记人")
    )
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("重点关注标记")
        verbose_name_plural = _("重点关注标记")
        ordering = ["-since"]
        constraints = [
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(until__gte=models.F("since")), name="tag_until_after_since"
            ),
            models.CheckConstraint(condition=Q(tag__in=AttentionTag.values), name="tag_kind_valid"),
        ]
        indexes = [models.Index(fields=["tag", "until"], name="tag_kind_until")]

    def __str__(self) -> str:
        return f"{self.get_tag_display()}: {self.reason}"


class ContactLog(models.Model):
    """One contact with a student (联系记录): a call, a message or a visit by a staff
    member, with its outcome.  Counsellors log each attempt while chasing the missing
    list; a proxy report (代报) writes one automatically.  The latest entry per student
    is read through the (student, contacted_at) index."""

    class Channel(models.TextChoices):
        PHONE = "phone", _("电话")
        MESSAGE = "message", _("消息")
        VISIT = "visit", _("走访")
        OTHER = "other", _("其他")

    class Outcome(models.TextChoices):
        REACHED = "reached", _("已联系上")
        NOT_REACHED = "not_reached", _("未联系上")
        PROXY_REPORTED = "proxy_reported", _("已代报")
        FOLLOWED_UP = "followed_up", _("已跟进")

    student = models.ForeignKey(Student, models.CASCADE, related_name="contacts", verbose_name=_("学生"))
    contacted_at = models.DateTimeField(_("联系时间"))
    channel = models.CharField(_("方式"), max_length=16, choices=Channel.choices, default=Channel.PHONE)
    outcome = models.CharField(_("结果"), max_length=16, choices=Outcome.choices, default=Outcome.REACHED)
    note = models.CharField(_("备注"), max_length=500, blank=True)
    contacted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("联系人")
    )
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("联系记录")
        verbose_name_plural = _("联系记录")
        ordering = ["-contacted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=["phone", "message", "visit", "other"]), name="contact_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=["reached", "not_reached", "proxy_reported", "followed_up"]),
                name="contact_outcome_valid",
            ),
        ]
        indexes = [models.Index(fields=["student", "-contacted_at"], name="contact_student_latest")]

    def __str__(self) -> str:
        return f"{self.student_id} {self.contacted_at:%Y-%m-%d %H:%M} {self.get_outcome_display()}"


class RosterJob(BackgroundJob):
    """A roster upload imported in the background (后台导入): a file over
    ``TONGXIN["ROSTER_SYNC_MAX_BYTES"]`` (a whole cohort or university: 100,000 rows take
    8–25 s to check and write) is kept here until the worker has imported it as the
    uploader (:mod:`students.roster_jobs`), then dropped; the result — counts and the
    first problems — stays for the uploader alone to read."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name=_("上传人"))
    filename = models.CharField(_("文件名"), max_length=255)
    size = models.PositiveIntegerField(_("文件大小"), default=0)
    #: The uploaded file until it is imported (it holds ID numbers and phones).
    data = models.BinaryField(null=True, editable=False)
    allow_partial = models.BooleanField(_("只导入没有问题的行"), default=False)
    dry_run = models.BooleanField(_("只校验，不保存"), default=False)
    #: The uploader's language: the problems are written in it.
    language = models.CharField(max_length=10, default=settings.LANGUAGE_CODE)
    result = models.JSONField(_("结果"), null=True, blank=True)
    created_at = models.DateTimeField(_("上传时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("后台导入")
        verbose_name_plural = _("后台导入")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="roster_job_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="roster_job_status_time")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"
