"""Measurement 5's reference: the roster imported with django-import-export, tuned as its
documentation advises for large imports (``use_bulk`` with a ``batch_size``,
``skip_diff``, ``force_init_instance`` since every row is new, cached foreign-key
widgets instead of one query per row, and the missing rooms created up front in one
bulk insert).  It does less than the product's import: no scope check, no per-cell
validation beyond the widgets', and no history rows (its bulk mode bypasses
django-simple-history).  Only importable where django-import-export is installed
(the benchmark's own virtualenv, ``.venv-bench``).
"""

from __future__ import annotations

from import_export import fields, resources, widgets

from campuses.models import Building, Room, SchoolClass
from students.models import Student

_GENDERS = {"男": "M", "女": "F"}
_WHEREABOUTS = {"在校": "on_campus", "回家": "home", "实习": "internship", "其他": "elsewhere"}
_STATUS = {"在读": "enrolled", "休学": "suspended"}


class MappedWidget(widgets.Widget):
    """A Chinese label → stored value."""

    def __init__(self, mapping: dict[str, str], **kwargs) -> None:
        self.mapping = mapping
        super().__init__(**kwargs)

    def clean(self, value, row=None, **kwargs):
        return self.mapping.get(value, value)


class ClassWidget(widgets.CachedForeignKeyWidget):
    def get_queryset(self, value, row, *args, **kwargs):
        return SchoolClass.objects.select_related("grade__college")


class RoomWidget(widgets.ForeignKeyWidget):
    """(楼宇, 宿舍) → Room, from a dictionary filled once per import."""

    def __init__(self, **kwargs) -> None:
        super().__init__(Room, "number", **kwargs)
        self.rooms: dict[tuple[str, str], Room] = {}

    def clean(self, value, row=None, **kwargs):
        if not value:
            return None
        return self.rooms[(row["楼宇"], value)]


class StudentResource(resources.ModelResource):
    student_number = fields.Field(attribute="student_number", column_name="学号")
    name = fields.Field(attribute="name", column_name="姓名")
    gender = fields.Field(attribute="gender", column_name="性别", widget=MappedWidget(_GENDERS))
    school_class = fields.Field(attribute="school_class", column_name="班级", widget=ClassWidget(SchoolClass, "name"))
    room = fields.Field(attribute="room", column_name="宿舍", widget=RoomWidget())
    bed = fields.Field(attribute="bed", column_name="床位")
    phone = fields.Field(attribute="phone", column_name="手机")
    id_number = fields.Field(attribute="id_number", column_name="身份证号")
    hometown_province = fields.Field(attribute="hometown_province", column_name="hometown_province")
    hometown_city = fields.Field(attribute="hometown_city", column_name="hometown_city")
    whereabouts = fields.Field(attribute="whereabouts", column_name="当前所在地", widget=MappedWidget(_WHEREABOUTS))
    enrolment_status = fields.Field(attribute="enrolment_status", column_name="学籍状态", widget=MappedWidget(_STATUS))
    guardian_name = fields.Field(attribute="guardian_name", column_name="监护人")
    guardian_phone = fields.Field(attribute="guardian_phone", column_name="监护人电话")

    class Meta:
        model = Student
        import_id_fields = ("student_number",)
        fields = (
            "student_number",
            "name",
            "gender",
            "school_class",
            "room",
            "bed",
            "phone",
            "id_number",
            "hometown_province",
            "hometown_city",
            "whereabouts",
            "enrolment_status",
            "guardian_name",
            "guardian_phone",
        )
        use_bulk = True
        batch_size = 1000
        skip_diff = True
        skip_html_diff = True
        force_init_instance = True
        use_transactions = True
        clean_model_instances = False

    def before_import(self, dataset, **kwargs):
        """Create the rooms the file names and that do not exist yet, in one bulk insert."""
        buildings = {(b.campus.name, b.name): b for b in Building.objects.select_related("campus")}
        wanted = {(row["校区"], row["楼宇"], row["宿舍"]) for row in dataset.dict if row["宿舍"]}
        by_building = {(b.name, r.number): r for r in Room.objects.select_related("building") for b in [r.building]}
        new = [
            Room(building=buildings[(campus, building)], number=number, beds=4)
            for campus, building, number in sorted(wanted)
            if (building, number) not in by_building
        ]
        Room.objects.bulk_create(new, batch_size=1000)
        for room in new:
            by_building[(room.building.name, room.number)] = room
        self.fields["room"].widget.rooms = by_building

    def before_import_row(self, row, **kwargs):
        county = row.get("生源地") or ""
        row["hometown_province"] = f"{county[:2]}0000" if county else ""
        row["hometown_city"] = f"{county[:4]}00" if county else ""

    def before_save_instance(self, instance, row, **kwargs):
        # bulk_create skips Student.save(), which fills the denormalised columns.
        klass = instance.school_class
        instance.grade_id = klass.grade_id
        instance.college_id = klass.grade.college_id
        instance.campus_id = klass.grade.college.campus_id
        instance.building_id = instance.room.building_id if instance.room_id else None
