"""A realistic demo university (演示数据) for ``manage.py seed_demo``.

Builds 同心大学 (code TX) as "一校三地": 中心校区 (济南), 南湖校区 (济南) and 威海校区,
fifteen college units (three colleges also teach in 威海 as their own unit, e.g.
法学院(威海)), four grades per college derived from today's date (a new grade
enrols every September), teaching classes of about thirty, single-gender dorm
buildings sized to each campus with rooms of 4 (older buildings: 6) beds, students
placed by college, grade and gender with classmates together, login accounts, every
staff role of :class:`campuses.models.Role` and a few key-attention tags.

Design choices worth knowing:

- Everything is generated in memory from ``random.Random(seed)`` (same seed, same
  university) and written with ``bulk_create`` in batches of
  ``settings.TONGXIN["BULK_BATCH_SIZE"]`` inside one transaction: the number of
  queries grows with the number of batches, never per student.
- ``bulk_create`` bypasses ``Student.save()``, so the denormalised columns (grade,
  college, campus, building) are filled here; it also bypasses django-simple-history,
  which is acceptable for seeding: the seeded rows are the initial state, and every
  later change is recorded as usual.
- Hashing one password per account would take minutes at 100,000 students, so the
  password is hashed once and the same encoded string (same salt) is given to every
  demo account.  That is a shortcut for demo data only; real accounts are created
  through the roster import with their own hashes.
- 学号 = college code (2 digits) + enrolment year (4) + class number (2) + sequence in
  the class (2), e.g. ``0720240315``.  Colleges 01–09 give numbers with a leading
  zero, the classic spreadsheet trap, so student numbers are text everywhere.
- ID numbers are 18 digits with a real county code from the student's hometown, a
  birthday consistent with the enrolment year, an odd/even sequence digit for the
  gender and the GB 11643-1999 check digit.

The ``campuses`` app does not import ``students`` at module level (dependencies point
``campuses`` ← ``students``); like :mod:`campuses.scoping`, this module imports the
student models inside the functions that need them.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation

from campuses.id_numbers import id_check_digit
from campuses.models import (
    Assignment,
    Building,
    Campus,
    College,
    Grade,
    Role,
    Room,
    SchoolClass,
    University,
)

#: The password of every demo account (also the superuser ``admin``).  Demo only.
DEMO_PASSWORD = "Tongxin@2026"
DEMO_UNIVERSITY_CODE = "TX"
DEMO_UNIVERSITY_NAME = "同心大学"
SUPERUSER_USERNAME = "admin"
#: Target class size (a teaching class of about thirty).
CLASS_SIZE = 30
#: 教育部 43 号令: one full-time counsellor per 200 students; two small grades share one.
COUNSELLOR_LOAD = 200
#: Share of students carrying a key-attention tag (重点人员).
TAGGED_SHARE = 0.02
#: How many plain student logins the accounts list shows (all staff are listed).
STUDENT_ACCOUNTS_LISTED = 10
#: Duty roster (值班) of every college: today and the next seven days.
DUTY_DAYS = 7


# ---------------------------------------------------------------------------
# The university's shape
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CampusSpec:
    code: str
    slug: str
    name: str
    #: Dorm areas as (name, code): buildings are named 东区1号楼, 西区1号楼, ...
    zones: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CollegeSpec:
    code: str  # two digits: the first part of the 学号
    slug: str  # readable part of staff usernames
    name: str
    major: str  # short name used in class names (计算机2024-3班)
    campus: str
    weight: float  # relative size
    male_share: float


CAMPUSES: tuple[CampusSpec, ...] = (
    CampusSpec("ZX", "zx", "中心校区", (("东区", "E"), ("西区", "W"), ("南区", "S"), ("北区", "N"))),
    CampusSpec("NH", "nh", "南湖校区", (("东苑", "E"), ("西苑", "W"), ("北苑", "N"))),
    CampusSpec("WH", "wh", "威海校区", (("海韵", "H"), ("听涛", "T"), ("观澜", "G"))),
)

COLLEGES: tuple[CollegeSpec, ...] = (
    CollegeSpec("01", "law", "法学院", "法学", "ZX", 1.0, 0.40),
    CollegeSpec("02", "econ", "经济学院", "经济", "ZX", 1.2, 0.45),
    CollegeSpec("03", "lit", "文学院", "汉语言", "ZX", 0.9, 0.25),
    CollegeSpec("04", "math", "数学学院", "数学", "ZX", 0.8, 0.60),
    CollegeSpec("05", "phys", "物理学院", "物理", "ZX", 0.7, 0.72),
    CollegeSpec("06", "mgmt", "管理学院", "工商", "ZX", 1.1, 0.40),
    CollegeSpec("07", "cs", "计算机科学与技术学院", "计算机", "NH", 1.5, 0.75),
    CollegeSpec("08", "me", "机械工程学院", "机械", "NH", 1.3, 0.85),
    CollegeSpec("09", "chem", "化学与化工学院", "化工", "NH", 1.0, 0.58),
    CollegeSpec("10", "med", "医学院", "临床", "NH", 1.4, 0.42),
    CollegeSpec("11", "fl", "外国语学院", "英语", "WH", 0.9, 0.20),
    CollegeSpec("12", "art", "艺术学院", "美术", "WH", 0.6, 0.35),
    CollegeSpec("31", "law", "法学院(威海)", "法学(威海)", "WH", 0.6, 0.40),
    CollegeSpec("32", "econ", "经济学院(威海)", "经济(威海)", "WH", 0.6, 0.45),
    CollegeSpec("37", "cs", "计算机科学与技术学院(威海)", "计算机(威海)", "WH", 0.8, 0.75),
)

#: Dorm buildings: six floors; 4-bed buildings have 20 rooms a floor, every fourth
#: (older) building has 16 rooms of 6 beds.
FLOORS = 6
ROOMS_PER_FLOOR = {4: 20, 6: 16}
#: One observation building (留观楼) per campus: single rooms for quarantine.
OBSERVATION_FLOORS = 2
OBSERVATION_ROOMS_PER_FLOOR = 10

# ---------------------------------------------------------------------------
# Name tables
# ---------------------------------------------------------------------------
#: Surnames with their approximate share in per mille (2020 census order).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71), ("李", 70), ("张", 67), ("刘", 54), ("陈", 46), ("杨", 31), ("黄", 24), ("赵", 23),
    ("吴", 21), ("周", 21), ("徐", 16), ("孙", 15), ("马", 14), ("朱", 13), ("胡", 13), ("郭", 11),
    ("何", 11), ("林", 10), ("高", 10), ("罗", 9), ("郑", 8), ("梁", 8), ("谢", 6), ("宋", 6),
    ("唐", 6), ("许", 5), ("韩", 5), ("冯", 5), ("邓", 5), ("曹", 5), ("彭", 5), ("曾", 5),
    ("肖", 4), ("田", 4), ("董", 4), ("袁", 4), ("潘", 4), ("于", 4), ("蒋", 4), ("蔡", 4),
    ("余", 4), ("杜", 4), ("叶", 4), ("程", 4), ("苏", 3), ("魏", 3), ("吕", 3), ("丁", 3),
    ("任", 3), ("沈", 3), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3),
    ("陆", 2), ("汪", 2), ("范", 2), ("金", 2), ("石", 2), ("廖", 2), ("贾", 2), ("夏", 2),
    ("韦", 2), ("付", 2), ("方", 2), ("白", 2), ("邹", 2), ("孟", 2), ("熊", 2), ("秦", 2),
    ("邱", 2), ("江", 2), ("尹", 2), ("薛", 2), ("闫", 2), ("段", 2), ("雷", 2), ("侯", 2),
    ("龙", 2), ("史", 2), ("陶", 1.5), ("黎", 1.5), ("贺", 1.5), ("顾", 1.5), ("毛", 1.5), ("郝", 1.5),
    ("龚", 1.5), ("邵", 1.5), ("万", 1.5), ("钱", 1.5), ("严", 1.2), ("覃", 1.2), ("武", 1.2), ("戴", 1.2),
    ("莫", 1), ("孔", 1), ("向", 1), ("汤", 1), ("常", 1), ("葛", 0.8), ("牛", 0.8), ("房", 0.6),
    ("欧阳", 0.3), ("司马", 0.05), ("诸葛", 0.05), ("上官", 0.05), ("慕容", 0.03),
)  # fmt: skip
_MALE_CHARS = "浩宇轩子博文杰俊明辰晨泽睿思然一鹏飞伟强磊洋勇军涛斌超健峰凯昊阳航帅毅哲瑞铭鑫鸿翔嘉诚锐康彬宁天佳家志"
_FEMALE_CHARS = "欣怡雨涵梓萱诗琪佳妍思悦婷雪静丽敏娜琳晶颖璐瑶媛月萌蕾露倩文欢楠钰可馨曼凡玉芳洁梦雅慧晴"
_FATHER_NAMES = (
    "建国", "建军", "国强", "志刚", "志强", "建华", "卫东", "海涛", "永刚", "立新",
    "红军", "新民", "德明", "玉林", "学军", "文斌", "俊峰", "宏伟", "庆华", "明亮",
)  # fmt: skip
_MOTHER_NAMES = (
    "秀英", "桂兰", "丽华", "海燕", "红梅", "玉兰", "淑珍", "秀兰", "春梅", "丽娟",
    "美玲", "晓红", "静", "燕", "敏", "霞", "芳", "丽", "娟", "艳",
)  # fmt: skip
_PHONE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180",
    "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip

# ---------------------------------------------------------------------------
# Hometowns (生源地): province, weight, cities with a few real county codes.  The
# university is in Shandong, so most students come from there.
# ---------------------------------------------------------------------------
PROVINCES: tuple[tuple[str, str, float, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("370000", "山东省", 45, (
        ("370100", ("370102", "370103", "370112", "370181")),
        ("370200", ("370202", "370203", "370211", "370281")),
        ("370300", ("370302", "370303")),
        ("370600", ("370602", "370613", "370681")),
        ("370700", ("370702", "370705", "370781")),
        ("370800", ("370811", "370881")),
        ("371000", ("371002", "371082")),
        ("371300", ("371302", "371311", "371321")),
        ("371700", ("371702", "371721")),
    )),
    ("110000", "北京市", 2, (("110100", ("110101", "110105", "110108")),)),
    ("120000", "天津市", 1.5, (("120100", ("120101", "120104")),)),
    ("130000", "河北省", 4, (("130100", ("130102", "130104")), ("130600", ("130602", "130606")))),
    ("140000", "山西省", 2, (("140100", ("140105", "140106")), ("140200", ("140213",)))),
    ("150000", "内蒙古自治区", 1, (("150100", ("150102", "150105")),)),
    ("210000", "辽宁省", 2, (("210100", ("210102", "210103")), ("210200", ("210202", "210203")))),
    ("220000", "吉林省", 1, (("220100", ("220102", "220104")),)),
    ("230000", "黑龙江省", 1.5, (("230100", ("230102", "230103")),)),
    ("310000", "上海市", 1, (("310100", ("310104", "310115")),)),
    ("320000", "江苏省", 3, (("320100", ("320102", "320106")), ("320300", ("320302",)), ("320500", ("320508",)))),
    ("330000", "浙江省", 2, (("330100", ("330106", "330108")), ("330300", ("330302",)))),
    ("340000", "安徽省", 3, (("340100", ("340104", "340111")), ("341200", ("341202", "341221")))),
    ("350000", "福建省", 1.5, (("350100", ("350102",)), ("350200", ("350203",)))),
    ("360000", "江西省", 2, (("360100", ("360102", "360111")),)),
    ("410000", "河南省", 6, (
        ("410100", ("410102", "410105")),
        ("410300", ("410302", "410305")),
        ("411300", ("411302", "411321")),
    )),
    ("420000", "湖北省", 2, (("420100", ("420102", "420106")),)),
    ("430000", "湖南省", 2, (("430100", ("430102", "430104")),)),
    ("440000", "广东省", 2, (("440100", ("440106", "440111")), ("440300", ("440304",)))),
    ("450000", "广西壮族自治区", 1.5, (("450100", ("450102", "450103")),)),
    ("460000", "海南省", 0.5, (("460100", ("460106",)),)),
    ("500000", "重庆市", 1.5, (("500100", ("500103", "500106")),)),
    ("510000", "四川省", 2.5, (("510100", ("510104", "510107")),)),
    ("520000", "贵州省", 1.5, (("520100", ("520102",)),)),
    ("530000", "云南省", 1.5, (("530100", ("530102",)),)),
    ("540000", "西藏自治区", 0.3, (("540100", ("540102",)),)),
    ("610000", "陕西省", 1.5, (("610100", ("610113", "610104")),)),
    ("620000", "甘肃省", 1.5, (("620100", ("620102",)),)),
    ("630000", "青海省", 0.5, (("630100", ("630102",)),)),
    ("640000", "宁夏回族自治区", 0.5, (("640100", ("640104",)),)),
    ("650000", "新疆维吾尔自治区", 1, (("650100", ("650102",)),)),
)  # fmt: skip

# ---------------------------------------------------------------------------
# Key-attention tags (重点人员): kind, weight, reasons, days until it ends (None:
# open-ended), follow-up interval in days.
# ---------------------------------------------------------------------------
TAG_KINDS: tuple[tuple[str, float, tuple[str, ...], int | None, int | None], ...] = (
    ("hardship", 35, (
        "家庭经济困难认定(特别困难)",
        "脱贫家庭学生, 已纳入资助台账",
        "父亲重病住院, 家庭收入骤减, 拟申请临时困难补助",
        "单亲家庭, 母亲务农, 生活费紧张",
    ), None, 30),
    ("psychological", 20, (
        "新生心理普查筛查预警, 需定期约谈",
        "学业压力大, 情绪低落, 已转介心理中心",
        "家庭变故后情绪波动, 心理中心跟踪",
        "失眠两周以上, 辅导员每周联系",
    ), None, 7),
    ("risk_region", 15, (
        "14天内有中风险地区旅居史, 返校后健康监测",
        "假期途经风险地区, 按要求报备",
    ), 14, 1),
    ("close_contact", 8, ("同航班有确诊病例, 判定为密接, 集中隔离", "密接的密接, 居家健康监测"), 14, 1),
    ("fever", 7, ("晨检体温37.6℃, 已到校医院就诊", "发热伴咳嗽, 校医院复诊中"), 7, 1),
    ("quarantine", 8, ("入境返校, 留观楼隔离观察", "共同居住者核酸异常, 留观楼单人间观察"), 14, 1),
    ("other", 7, (
        "学业预警: 本学期不及格学分超过15",
        "多次晚归未登记, 需关注",
        "少数民族预科转入, 适应困难, 结对帮扶",
    ), None, 14),
)  # fmt: skip


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
@dataclass
class DemoResult:
    """What :func:`demo_seed` created: counts per kind and the seconds it took."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def grade_years(today: dt.date) -> list[int]:
    """The four enrolment years in school on ``today``, newest first (a new grade
    enrols in September)."""
    newest = today.year if today.month >= 9 else today.year - 1
    return [newest - i for i in range(4)]


# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------
def demo_exists() -> bool:
    """Is there already a university in the database (demo or not)?"""
    return University.objects.exists()


@transaction.atomic
def demo_reset() -> None:
    """Delete the organisation tree, every student, assignment and key-attention tag
    with their history, and the login accounts of students and staff (users holding
    an assignment or linked to a student) and the demo superuser.  Meant for demo
    databases only: it wipes every university, not just 同心大学.

    Rows of other apps that hang off what is deleted go too (check-in slots, daily
    reports, depots, ledgers — even where their foreign key protects the unit in
    normal use), rows with a nullable ``SET_NULL`` key are kept and unlinked.  The
    deletes are set-based (see :func:`_wipe`): no signals, no history rows."""
    from students.models import KeyAttentionTag, Student

    user_model = get_user_model()
    demo_users = user_model._base_manager.filter(
        Q(pk__in=Student.objects.filter(user__isnull=False).values("user_id"))
        | Q(pk__in=Assignment.objects.values("user_id"))
        | Q(username=SUPERUSER_USERNAME)
    )
    # Users first, while students and assignments still say who they are; those two
    # links go with their own rows below (foreign keys are checked at commit).
    _wipe(demo_users, keep=(Student._meta.get_field("user"), Assignment._meta.get_field("user")))
    tree_bottom_up = (Room, Building, SchoolClass, Grade, College, Campus, University)
    for model in (KeyAttentionTag, Assignment, Student, *tree_bottom_up):
        _wipe(model._base_manager.all())
    for model in (KeyAttentionTag, Assignment, Student):
        model.history.model._base_manager.all()._raw_delete(model.history.model._base_manager.db)


@transaction.atomic
def demo_seed(
    *,
    students: int,
    seed: int = 2026,
    password: str = DEMO_PASSWORD,
    today: dt.date | None = None,
) -> DemoResult:
    """Create the demo university with ``students`` students (see the module
    docstring).  Precondition: no university exists (call :func:`demo_reset` first);
    the superuser ``admin`` is created unless a user of that name exists."""
    if students < 1:
        raise ValueError("students must be at least 1")
    if demo_exists():
        raise ValueError("a university already exists; reset first")
    started = time.perf_counter()
    builder = _Builder(
        rng=random.Random(seed),
        today=today or timezone.localdate(),
        password_hash=make_password(password),
        batch_size=settings.TONGXIN["BULK_BATCH_SIZE"],
    )
    builder.build(students)
    return DemoResult(counts=builder.counts, seconds=time.perf_counter() - started)


def demo_accounts(*, password: str = DEMO_PASSWORD) -> list[dict[str, str]]:
    """The demo logins for the accounts file: the superuser, one entry per staff
    assignment (a counsellor holding two grades appears twice, once per grade; a
    class monitor logs in with their 学号) and a handful of plain student accounts.
    Read from the database, so it also works when the demo was seeded earlier; the
    password is the one the demo was seeded with."""
    from students.models import Student

    user_model = get_user_model()
    accounts: list[dict[str, str]] = []
    with translation.override("zh-hans"):
        admin = user_model.objects.filter(username=SUPERUSER_USERNAME, is_superuser=True).first()
        if admin is not None and admin.check_password(password):  # not someone's own "admin"
            university = University.objects.first()
            accounts.append(_account(admin, password, "superuser", "超级管理员", university, "university"))
        assignments = (
            Assignment.objects.select_related(
                "user",
                "university",
                "campus__university",
                "college__campus__university",
                "grade__college__campus__university",
                "school_class__grade__college__campus__university",
                "building__campus__university",
                "room__building__campus__university",
            )
            .filter(user__is_active=True)
            .order_by("id")
        )
        for assignment in assignments:
            accounts.append(
                _account(
                    assignment.user,
                    password,
                    assignment.role,
                    str(Role(assignment.role).label),
                    assignment.unit,
                    assignment.unit_field,
                )
            )
        plain = Student.objects.exclude(user=None).exclude(user__assignments__isnull=False)
        numbers = list(plain.order_by("student_number").values_list("student_number", flat=True))
        step = max(1, len(numbers) // STUDENT_ACCOUNTS_LISTED)
        chosen = numbers[::step][:STUDENT_ACCOUNTS_LISTED]
        listed = plain.filter(student_number__in=chosen).select_related(
            "user", "school_class__grade__college__campus__university"
        )
        for student in listed.order_by("student_number"):
            accounts.append(_account(student.user, password, "student", "学生", student.school_class, "school_class"))
    return accounts


def demo_counts() -> dict[str, int]:
    """How many rows of each kind the database holds (for the command's summary)."""
    from students.models import KeyAttentionTag, Student

    return {
        "campuses": Campus.objects.count(),
        "colleges": College.objects.count(),
        "grades": Grade.objects.count(),
        "classes": SchoolClass.objects.count(),
        "buildings": Building.objects.count(),
        "rooms": Room.objects.count(),
        "students": Student.objects.count(),
        "staff_users": get_user_model().objects.filter(is_staff=True).count(),
        "assignments": Assignment.objects.count(),
        "tags": KeyAttentionTag.objects.count(),
    }


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _wipe(queryset: QuerySet, *, keep: Iterable[models.Field] = (), depth: int = 0) -> None:
    """Delete the rows of ``queryset`` and everything hanging off them, set-based:
    rows that refer to them through a nullable ``SET_NULL`` key are kept and set to
    null, ``DO_NOTHING`` keys are left alone, every other key (``CASCADE`` and, because
    a reset means the whole demo university, also ``PROTECT``: check-in slots,
    depots, reports) is followed recursively and its rows deleted.  The relations in
    ``keep`` are left to the caller.  Subqueries instead of Django's collector, which
    would load 100,000 students a batch of ids at a time; no signals are sent, and the
    django-simple-history rows of what is deleted are deleted with it."""
    if depth > 12:
        raise RuntimeError("cascade too deep while resetting demo data")
    model = queryset.model
    pks = queryset.values("pk")
    for relation in model._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)):
            continue
        fk = relation.field
        on_delete = fk.remote_field.on_delete
        if fk in keep or on_delete is models.DO_NOTHING:
            continue
        related = relation.related_model._base_manager.filter(**{f"{fk.name}__in": pks})
        if on_delete is models.SET_NULL:
            related.update(**{fk.name: None})
        else:
            _wipe(related, depth=depth + 1)
    manager = getattr(model._meta, "simple_history_manager_attribute", None)
    if manager:  # django-simple-history: the history of deleted demo rows goes too
        history = getattr(model, manager).model._base_manager
        history.filter(**{f"{model._meta.pk.attname}__in": pks})._raw_delete(history.db)
    queryset._raw_delete(queryset.db)


def unit_path(unit: models.Model | None) -> str:
    """The Chinese path of a unit from the university down, e.g.
    ``同心大学/中心校区/法学院/2024级``."""
    parts: list[str] = []
    node = unit
    while node is not None:
        parts.append(f"{node.number}室" if isinstance(node, Room) else node.name)
        node = _parent(node)
    return "/".join(reversed(parts))


def _parent(unit: models.Model) -> models.Model | None:
    if isinstance(unit, Campus):
        return unit.university
    if isinstance(unit, College | Building):
        return unit.campus
    if isinstance(unit, Grade):
        return unit.college
    if isinstance(unit, SchoolClass):
        return unit.grade
    if isinstance(unit, Room):
        return unit.building
    return None


def _account(user, password: str, role: str, role_display: str, unit, level: str) -> dict[str, str]:
    return {
        "username": user.username,
        "password": password,
        "role": role,
        "role_display": role_display,
        "unit": unit_path(unit),
        "unit_level": level,
        "name": f"{user.last_name}{user.first_name}",
    }


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights``."""
    whole = sum(weights)
    raw = [total * w / whole for w in weights]
    parts = [int(r) for r in raw]
    by_remainder = sorted(range(len(weights)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass
class _ClassPlan:
    obj: SchoolClass
    college: CollegeSpec
    campus: CampusSpec
    grade: Grade
    grade_index: int  # 0 = newest (大一)
    size: int = 0
    first_student: int = 0  # index into _Builder.students


@dataclass
class _BuildingPlan:
    obj: Building
    beds: int
    rooms: list[Room] = field(default_factory=list)


class _Builder:
    """Generates the whole university in memory and writes it in bulk."""

    def __init__(self, *, rng: random.Random, today: dt.date, password_hash: str, batch_size: int) -> None:
        self.rng = rng
        self.today = today
        self.password_hash = password_hash
        self.batch_size = batch_size
        self.counts: dict[str, int] = {}
        self._surnames = [s for s, _ in SURNAMES]
        self._surname_cum = list(accumulate(w for _, w in SURNAMES))
        self._provinces = PROVINCES
        self._province_cum = list(accumulate(p[2] for p in PROVINCES))
        self._tag_cum = list(accumulate(t[1] for t in TAG_KINDS))
        self._ids_seen: set[str] = set()
        self._phones_seen: set[str] = set()

    # -- writing -------------------------------------------------------------
    def _bulk(self, model: type[models.Model], objs: list, label: str) -> list:
        """Insert ``objs`` in batches; their primary keys come back (RETURNING)."""
        model._default_manager.bulk_create(objs, batch_size=self.batch_size)
        self.counts[label] = len(objs)
        return objs

    # -- the whole university ---------------------------------------------------
    def build(self, n_students: int) -> None:
        if not connection.features.can_return_rows_from_bulk_insert:
            raise RuntimeError("seeding needs a database that returns ids from bulk inserts (PostgreSQL, SQLite 3.35+)")
        from students.models import Student

        university = University.objects.create(code=DEMO_UNIVERSITY_CODE, name=DEMO_UNIVERSITY_NAME)
        campuses = {spec.code: Campus(university=university, code=spec.code, name=spec.name) for spec in CAMPUSES}
        self._bulk(Campus, list(campuses.values()), "campuses")
        colleges = [College(campus=campuses[spec.campus], code=spec.code, name=spec.name) for spec in COLLEGES]
        self._bulk(College, colleges, "colleges")
        years = grade_years(self.today)
        grades = [[Grade(college=college, year=year, name=f"{year}级") for year in years] for college in colleges]
        self._bulk(Grade, [g for row in grades for g in row], "grades")

        plans = self._plan_classes(n_students, grades)
        self._bulk(SchoolClass, [p.obj for p in plans], "classes")
        students = self._make_students(plans)
        buildings = self._place_in_dorms(plans, students, campuses)
        self._bulk(Building, [b.obj for b in buildings], "buildings")
        rooms = []
        for b in buildings:
            for room in b.rooms:
                room.building = b.obj  # re-assign now that the building has its id
                rooms.append(room)
        self._bulk(Room, rooms, "rooms")
        self.counts["beds"] = sum(room.beds for room in rooms)
        for student in students:
            if student._room is not None:
                student.room_id = student._room.pk
                student.building_id = student._room.building.pk

        staff = self._make_staff(university, campuses, colleges, grades, plans)
        self._make_users(plans, students, staff)
        self._bulk(Student, students, "students")
        self._make_assignments(staff, plans, students)
        self._make_tags(students)

    # -- classes ---------------------------------------------------------------
    def _plan_classes(self, n_students: int, grades: list[list[Grade]]) -> list[_ClassPlan]:
        """About thirty students a class; every college (and, from 60 classes on, every
        grade) gets a class before the rest go by college size; newer grades get the
        extra classes (enrolment grows)."""
        n_classes = max(1, round(n_students / CLASS_SIZE))
        weights = [spec.weight for spec in COLLEGES]
        # A floor per college first: a class in every grade when there are enough
        # classes for that, else at least one; the rest by the college's size.
        floor = 4 if n_classes >= 4 * len(COLLEGES) else 1 if n_classes >= len(COLLEGES) else 0
        rest = _largest_remainder(n_classes - floor * len(COLLEGES), weights)
        per_college = [floor + k for k in rest]
        campus_by_code = {spec.code: spec for spec in CAMPUSES}
        plans: list[_ClassPlan] = []
        for spec, college_grades, k in zip(COLLEGES, grades, per_college, strict=True):
            for grade_index, grade in enumerate(college_grades):
                in_grade = k // 4 + (1 if grade_index < k % 4 else 0)
                for number in range(1, in_grade + 1):
                    code = f"{spec.code}{grade.year}{number:02d}"
                    name = f"{spec.major}{grade.year}-{number}班"
                    plans.append(
                        _ClassPlan(
                            obj=SchoolClass(grade=grade, code=code, name=name),
                            college=spec,
                            campus=campus_by_code[spec.campus],
                            grade=grade,
                            grade_index=grade_index,
                        )
                    )
        # Sizes: spread evenly, then let real life move a few students between classes.
        base, extra = divmod(n_students, len(plans))
        sizes = [base + (1 if i < extra else 0) for i in range(len(plans))]
        low, high = max(1, base - 4), base + 4
        for _ in range(len(plans)):
            a, b, d = self.rng.randrange(len(plans)), self.rng.randrange(len(plans)), self.rng.randint(1, 3)
            if a != b and sizes[a] - d >= low and sizes[b] + d <= high:
                sizes[a] -= d
                sizes[b] += d
        for plan, size in zip(plans, sizes, strict=True):
            plan.size = size
        return plans

    # -- students --------------------------------------------------------------
    def _make_students(self, plans: list[_ClassPlan]) -> list:
        from students.models import EnrolmentStatus, Student, Whereabouts

        rng = self.rng
        n = sum(p.size for p in plans)
        surnames = rng.choices(self._surnames, cum_weights=self._surname_cum, k=n)
        hometowns = rng.choices(self._provinces, cum_weights=self._province_cum, k=n)
        students: list[Student] = []
        i = 0
        for plan in plans:
            plan.first_student = i
            grade = plan.grade
            # Denormalised like Student.fill_hierarchy() would (bulk_create skips save()).
            class_id, grade_id, college_id, campus_id = plan.obj.pk, grade.pk, grade.college.pk, grade.college.campus.pk
            # The oldest grade is partly out on internships; everybody else mostly on campus.
            if plan.grade_index == 3:
                places = ((0.78, Whereabouts.ON_CAMPUS), (0.90, Whereabouts.INTERNSHIP), (0.95, Whereabouts.HOME),
                          (0.98, Whereabouts.ELSEWHERE), (1.0, Whereabouts.ON_LEAVE))  # fmt: skip
            else:
                places = ((0.94, Whereabouts.ON_CAMPUS), (0.97, Whereabouts.HOME), (0.985, Whereabouts.ELSEWHERE),
                          (0.995, Whereabouts.ON_LEAVE), (1.0, Whereabouts.INTERNSHIP))  # fmt: skip
            for seq in range(1, plan.size + 1):
                male = rng.random() < plan.college.male_share
                surname = surnames[i]
                given = self._given_name(male)
                province = hometowns[i]
                city, counties = rng.choice(province[3])
                draw = rng.random()
                whereabouts = next(w for limit, w in places if draw < limit)
                status = EnrolmentStatus.ENROLLED
                if rng.random() < 0.003:  # 休学: at home, no bed
                    status, whereabouts = EnrolmentStatus.SUSPENDED, Whereabouts.HOME
                guardian_male = rng.random() < 0.65
                guardian_surname = (
                    surname if guardian_male else rng.choices(self._surnames, cum_weights=self._surname_cum)[0]
                )
                guardian = guardian_surname + rng.choice(_FATHER_NAMES if guardian_male else _MOTHER_NAMES)
                student = Student(
                    student_number=f"{plan.obj.code}{seq:02d}",
                    name=surname + given,
                    gender="M" if male else "F",
                    school_class_id=class_id,
                    grade_id=grade_id,
                    college_id=college_id,
                    campus_id=campus_id,
                    phone=self._phone(),
                    id_number=self._id_number(rng.choice(counties), grade.year, male),
                    hometown_province=province[0],
                    hometown_city=city,
                    whereabouts=whereabouts,
                    enrolment_status=status,
                    guardian_name=guardian,
                    guardian_phone=self._phone(),
                )
                student._surname, student._given, student._room = surname, given, None
                students.append(student)
                i += 1
        return students

    def _given_name(self, male: bool) -> str:
        chars = _MALE_CHARS if male else _FEMALE_CHARS
        if self.rng.random() < 0.18:
            return self.rng.choice(chars)
        first, second = self.rng.choice(chars), self.rng.choice(chars)
        while second == first:
            second = self.rng.choice(chars)
        return first + second

    def _person_name(self) -> tuple[str, str]:
        male = self.rng.random() < 0.45
        return self.rng.choices(self._surnames, cum_weights=self._surname_cum)[0], self._given_name(male)

    def _phone(self) -> str:
        while True:
            phone = f"{self.rng.choice(_PHONE_PREFIXES)}{self.rng.randrange(10**8):08d}"
            if phone not in self._phones_seen:
                self._phones_seen.add(phone)
                return phone

    def _id_number(self, county: str, year: int, male: bool) -> str:
        """Born 18-19 years before enrolment (most between September and August), a few
        a year older or younger; sequence digit odd for men, even for women."""
        start = dt.date(year - 19, 9, 1).toordinal()
        shift = self.rng.random()
        if shift < 0.08:
            start -= 365
        elif shift > 0.98:
            start += 365
        while True:
            born = dt.date.fromordinal(start + self.rng.randrange(365))
            digit = self.rng.randrange(1, 10, 2) if male else self.rng.randrange(0, 10, 2)
            body = f"{county}{born.year:04d}{born.month:02d}{born.day:02d}{self.rng.randrange(100):02d}{digit}"
            number = body + id_check_digit(body)
            if number not in self._ids_seen:
                self._ids_seen.add(number)
                return number

    # -- dorms -------------------------------------------------------------------
    def _place_in_dorms(self, plans: list[_ClassPlan], students: list, campuses: dict) -> list[_BuildingPlan]:
        """Single-gender buildings per campus; each (college, grade, gender) group starts
        a fresh room and fills rooms in class order, so roommates are classmates (and at
        a class boundary, students of the neighbouring class of the same major).  Rooms
        are created floor by floor as needed; suspended students get no bed."""
        from students.models import EnrolmentStatus

        buildings: list[_BuildingPlan] = []
        for campus_spec in CAMPUSES:
            campus = campuses[campus_spec.code]
            campus_buildings: list[_BuildingPlan] = []
            campus_plans = [p for p in plans if p.campus is campus_spec]
            for gender in ("F", "M"):
                current: _BuildingPlan | None = None
                room: Room | None = None
                used = 0
                last_group = None
                for plan in campus_plans:
                    group = (plan.college.code, plan.grade.year)
                    for student in students[plan.first_student : plan.first_student + plan.size]:
                        if student.gender != gender or student.enrolment_status != EnrolmentStatus.ENROLLED:
                            continue
                        if room is None or used == room.beds or group != last_group:
                            current, room = self._next_room(campus_spec, campus, campus_buildings, current)
                            used = 0
                            last_group = group
                        used += 1
                        student._room = room
                        student.bed = str(used)
                if current is None:  # nobody of this gender yet: keep one empty building ready
                    current, room = self._next_room(campus_spec, campus, campus_buildings, None)
            for b in campus_buildings:  # complete the last floor of every building
                per_floor = ROOMS_PER_FLOOR[b.beds]
                while len(b.rooms) % per_floor:
                    self._add_room(b)
            observation = _BuildingPlan(obj=Building(campus=campus, code="Q01", name="留观楼"), beds=1)
            for floor in range(1, OBSERVATION_FLOORS + 1):
                for number in range(1, OBSERVATION_ROOMS_PER_FLOOR + 1):
                    observation.rooms.append(Room(number=f"{floor}{number:02d}", beds=1))
            buildings.extend(campus_buildings)
            buildings.append(observation)
        return buildings

    def _next_room(
        self, spec: CampusSpec, campus: Campus, campus_buildings: list[_BuildingPlan], current: _BuildingPlan | None
    ) -> tuple[_BuildingPlan, Room]:
        if current is None or len(current.rooms) >= FLOORS * ROOMS_PER_FLOOR[current.beds]:
            index = len(campus_buildings)
            zone, zone_code = spec.zones[index % len(spec.zones)]
            number = index // len(spec.zones) + 1
            beds = 6 if index % 4 == 3 else 4
            current = _BuildingPlan(
                obj=Building(campus=campus, code=f"{zone_code}{number:02d}", name=f"{zone}{number}号楼"), beds=beds
            )
            campus_buildings.append(current)
        return current, self._add_room(current)

    @staticmethod
    def _add_room(building: _BuildingPlan) -> Room:
        per_floor = ROOMS_PER_FLOOR[building.beds]
        floor, index = divmod(len(building.rooms), per_floor)
        room = Room(number=f"{floor + 1}{index + 1:02d}", beds=building.beds)
        room.building = building.obj
        building.rooms.append(room)
        return room

    # -- staff and accounts ----------------------------------------------------
    def _make_staff(self, university, campuses, colleges, grades, plans) -> list[tuple]:
        """Staff as (user, [(role, unit_field, unit, valid_from, valid_to, note)]).  Class
        monitors are students; their assignments are added after the students exist."""
        user_model = get_user_model()
        staff: list[tuple] = []

        def person(username: str, *duties: tuple) -> None:
            last, first = self._person_name()
            user = user_model(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@tongxin.edu.cn",
                is_staff=True,
                password=self.password_hash,
            )
            staff.append((user, list(duties)))

        person("admin_univ", (Role.UNIVERSITY_ADMIN, "university", university, None, None, "学工部"))
        for spec in CAMPUSES:
            campus = campuses[spec.code]
            person(f"coord_{spec.slug}", (Role.CAMPUS_COORDINATOR, "campus", campus, None, None, ""))
            person(f"logistics_{spec.slug}", (Role.LOGISTICS_OFFICER, "campus", campus, None, None, ""))
            person(f"psych_{spec.slug}", (Role.PSYCHOLOGICAL_COUNSELLOR, "campus", campus, None, None, ""))
        size_by_grade: dict[int, int] = {}
        for plan in plans:
            size_by_grade[id(plan.grade)] = size_by_grade.get(id(plan.grade), 0) + plan.size
        duty_to = self.today + dt.timedelta(days=DUTY_DAYS)
        for index, (spec, college, college_grades) in enumerate(zip(COLLEGES, colleges, grades, strict=True)):
            campus_slug = next(c.slug for c in CAMPUSES if c.code == spec.campus)
            person(f"college_{spec.slug}_{campus_slug}", (Role.COLLEGE_ADMIN, "college", college, None, None, ""))
            person(
                f"duty_{spec.slug}_{campus_slug}",
                (Role.DUTY_COUNSELLOR, "college", college, self.today, duty_to, "学院值班"),
            )
            # The two oldest grades share a counsellor in every third college (seniors
            # are largely away) or whenever together they stay within the 1:200 load.
            newest, second, third, oldest = college_grades
            senior_load = size_by_grade.get(id(third), 0) + size_by_grade.get(id(oldest), 0)
            groups = [[newest], [second]]
            if index % 3 == 0 or senior_load <= COUNSELLOR_LOAD:
                groups.append([oldest, third])
            else:
                groups += [[third], [oldest]]
            for group in groups:
                years = "_".join(str(g.year) for g in group)
                person(
                    f"counsellor_{spec.slug}_{years}_{campus_slug}",
                    *((Role.COUNSELLOR, "grade", g, None, None, "") for g in group),
                )
        superuser = user_model(
            username=SUPERUSER_USERNAME,
            first_name="管理员",
            last_name="系统",
            email=f"{SUPERUSER_USERNAME}@tongxin.edu.cn",
            is_staff=True,
            is_superuser=True,
            password=self.password_hash,
        )
        if not user_model.objects.filter(username=SUPERUSER_USERNAME).exists():
            staff.append((superuser, []))
        return staff

    def _make_users(self, plans: list[_ClassPlan], students: list, staff: list[tuple]) -> None:
        """One login per student (username = 学号) and per staff member.  The class
        monitor (班长) of each class is one of its students, chosen at random; their
        own login is made staff so they can open their class's list."""
        user_model = get_user_model()
        self.monitors = {plan.first_student + self.rng.randrange(plan.size) for plan in plans}
        users = [user for user, _ in staff]
        for i, student in enumerate(students):
            users.append(
                user_model(
                    username=student.student_number,
                    first_name=student._given,
                    last_name=student._surname,
                    is_staff=i in self.monitors,
                    password=self.password_hash,
                )
            )
        self._bulk(user_model, users, "users")
        for student, user in zip(students, users[len(staff) :], strict=True):
            student.user_id = user.pk

    def _make_assignments(self, staff: list[tuple], plans: list[_ClassPlan], students: list) -> None:
        rows = []
        self.counsellor_of_grade: dict[int, int] = {}
        for user, duties in staff:
            for role, level, unit, valid_from, valid_to, note in duties:
                rows.append(
                    Assignment(
                        user_id=user.pk,
                        role=role,
                        valid_from=valid_from,
                        valid_to=valid_to,
                        note=note,
                        **{f"{level}_id": unit.pk},
                    )
                )
                if role == Role.COUNSELLOR:
                    self.counsellor_of_grade[unit.pk] = user.pk
        for plan in plans:
            for i in range(plan.first_student, plan.first_student + plan.size):
                if i in self.monitors:
                    rows.append(
                        Assignment(
                            user_id=students[i].user_id,
                            role=Role.CLASS_MONITOR,
                            school_class_id=plan.obj.pk,
                            note="班长",
                        )
                    )
        self._bulk(Assignment, rows, "assignments")

    def _make_tags(self, students: list) -> None:
        """About 2% of students carry a key-attention tag, logged by their counsellor."""
        from students.models import KeyAttentionTag

        rng = self.rng
        tagged = rng.sample(range(len(students)), max(1, round(len(students) * TAGGED_SHARE)))
        tags = []
        for i in sorted(tagged):
            student = students[i]
            kind, _, reasons, days, every = rng.choices(TAG_KINDS, cum_weights=self._tag_cum)[0]
            since = self.today - dt.timedelta(days=rng.randrange(0, 45 if days is None else days))
            tags.append(
                KeyAttentionTag(
                    student_id=student.pk,
                    tag=kind,
                    reason=rng.choice(reasons),
                    since=since,
                    until=None if days is None else since + dt.timedelta(days=days),
                    follow_up_every_days=every,
                    created_by_id=self.counsellor_of_grade.get(student.grade_id),
                )
            )
        self._bulk(KeyAttentionTag, tags, "tags")
