"""A persona world for tests (after healthchecks' alice/bob/charlie).

Two campuses, A and B, each with one college, one grade, two classes, one dorm
building with two rooms, and three students per class.  On each campus: a campus
coordinator, a college admin, a counsellor (grade), a class monitor (class 1), a
logistics officer, a psychological counsellor, a student with a login, and a duty
counsellor whose roster ended yesterday.  Campus B's people are campus A's outsiders
and vice versa; ``uni_admin`` sees both; ``nobody`` is staff without duties.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.utils import timezone

from campuses.models import Assignment, Building, Campus, College, Grade, Role, Room, SchoolClass, University
from students.models import Gender, Student

PASSWORD = "Tongxin-test-2026"


@dataclass
class World:
    university: University
    campus: dict[str, SimpleNamespace] = field(default_factory=dict)
    uni_admin: object = None
    nobody: object = None

    def __getitem__(self, key: str) -> SimpleNamespace:
        return self.campus[key]


def _user(username: str, *, staff: bool = True):
    user_model = get_user_model()
    user = user_model(username=username, is_staff=staff)
    user.set_password(PASSWORD)
    user.save()
    return user


def build_world() -> World:
    university = University.objects.create(code="TX", name="同心大学")
    world = World(university=university)
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    seq = 0
    for key, campus_name in (("A", "中心校区"), ("B", "威海校区")):
        ns = SimpleNamespace(key=key)
        ns.campus = Campus.objects.create(university=university, code=key, name=campus_name)
        ns.college = College.objects.create(campus=ns.campus, code=f"{key}01", name=f"法学院({campus_name})")
        ns.grade = Grade.objects.create(college=ns.college, year=2024, name="2024级")
        ns.classes = [
            SchoolClass.objects.create(grade=ns.grade, code=f"{key}2024{n}", name=f"法学{key}2024-{n}班")
            for n in (1, 2)
        ]
        ns.building = Building.objects.create(campus=ns.campus, code=f"{key}B1", name=f"{campus_name}1号楼")
        ns.rooms = [Room.objects.create(building=ns.building, number=f"{n}01", beds=4) for n in (1, 2)]
        ns.students = []
        for class_index, klass in enumerate(ns.classes):
            for n in range(3):
                seq += 1
                ns.students.append(
                    Student.objects.create(
                        student_number=f"0{key}24{seq:05d}",
                        name=f"学生{key}{seq}",
                        gender=Gender.MALE if n % 2 else Gender.FEMALE,
                        school_class=klass,
                        room=ns.rooms[class_index],
                        bed=str(n + 1),
                        phone=f"138{seq:08d}",
                        id_number=f"11010120050101{seq:04d}",
                    )
                )
        ns.student_user = _user(f"stu_{key}", staff=False)
        ns.student = ns.students[0]
        ns.student.user = ns.student_user
        ns.student.save()
        ns.classmate = ns.students[1]
        ns.other_class_student = ns.students[3]

        def assign(username: str, role: str, *, ns=ns, **unit) -> object:
            user = _user(username)
            Assignment.objects.create(user=user, role=role, **unit)
            return user

        ns.coordinator = assign(f"coord_{key}", Role.CAMPUS_COORDINATOR, campus=ns.campus)
        ns.college_admin = assign(f"college_{key}", Role.COLLEGE_ADMIN, college=ns.college)
        ns.counsellor = assign(f"counsellor_{key}", Role.COUNSELLOR, grade=ns.grade)
        ns.monitor = assign(f"monitor_{key}", Role.CLASS_MONITOR, school_class=ns.classes[0])
        ns.logistics = assign(f"logistics_{key}", Role.LOGISTICS_OFFICER, campus=ns.campus)
        ns.psych = assign(f"psych_{key}", Role.PSYCHOLOGICAL_COUNSELLOR, campus=ns.campus)
        ns.expired_duty = _user(f"duty_{key}")
        Assignment.objects.create(
            user=ns.expired_duty,
            role=Role.DUTY_COUNSELLOR,
            college=ns.college,
            valid_from=yesterday - dt.timedelta(days=7),
            valid_to=yesterday,
        )
        world.campus[key] = ns
    world.uni_admin = _user("uni_admin")
    Assignment.objects.create(user=world.uni_admin, role=Role.UNIVERSITY_ADMIN, university=university)
    world.nobody = _user("nobody")
    return world


#: persona attribute → which students of its own campus it sees ("all" or "class1").
STAFF_PERSONAS = {
    "coordinator": "all",
    "college_admin": "all",
    "counsellor": "all",
    "monitor": "class1",
    "logistics": "all",
    "psych": "all",
}


def other(key: str) -> str:
    return "B" if key == "A" else "A"
