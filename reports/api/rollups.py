"""The roll-up API: a unit's figures and its children's with their sign-off state, and
the sign-off / reopen transitions (DESIGN.md, "Interfaces": ``GET /api/v1/rollups/``).

Past days read the stored snapshots; today reads the live roll-up (the same code that
compiles the nightly snapshots).  The unit must be one the user may see
(:func:`campuses.scoping.scope_for`); its children are inside its subtree."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campuses.scoping import scope_for
from config.throttles import ScopedThrottle
from reports.rollup import UnitFigures, rollup_compute_slots, rollup_slot_codes
from reports.rollup_models import FIGURES, LEVEL_BELOW, Level, RollupSnapshot, SignOff
from reports.signoff import LEVEL_MODELS, SignOffError, signoff_amendments, signoff_confirm, signoff_reopen

_LEVELS = Level.values


def parse_unit(value: str) -> tuple[str, int]:
    """``"college:12"`` → ``("college", 12)``; a clear 400 otherwise."""
    level, _sep, raw_id = (value or "").partition(":")
    if level not in _LEVELS or not raw_id.isdigit() or len(raw_id) > 15:
        raise exceptions.ValidationError(
            {"unit": [exceptions.ErrorDetail(_("单位格式应为 层级:编号，如 college:12。"), code="invalid")]}
        )
    return level, int(raw_id)


def default_unit(user) -> tuple[str, int] | None:
    """The highest unit of the tree the user holds a duty at (the university for
    someone who sees everything)."""
    scope = scope_for(user)
    for level in reversed(_LEVELS):
        model = LEVEL_MODELS[level]
        first = scope.units(model).order_by("pk").values_list("pk", flat=True).first()
        if first is not None:
            return level, first
    return None


def visible_unit(user, level: str, unit_id: int):
    unit = scope_for(user).units(LEVEL_MODELS[level]).filter(pk=unit_id).first()
    if unit is None:
        raise Http404
    return unit


class FiguresSerializer(serializers.Serializer):
    expected = serializers.IntegerField()
    reported = serializers.IntegerField()
    missing = serializers.IntegerField()
    excused = serializers.IntegerField()
    late = serializers.IntegerField()
    proxy = serializers.IntegerField()
    abnormal = serializers.IntegerField()
    fever = serializers.IntegerField()
    quarantine = serializers.IntegerField()
    on_campus = serializers.IntegerField()
    home = serializers.IntegerField()
    elsewhere = serializers.IntegerField()
    completion = serializers.FloatField(allow_null=True, help_text="reported / expected, in %")
    tags = serializers.DictField(child=serializers.IntegerField(), help_text="students per key-attention tag")


class AmendmentSerializer(serializers.Serializer):
    slot = serializers.CharField(source="slot_code")
    changes = serializers.DictField(child=serializers.IntegerField(), help_text="now − confirmed, per figure")


class SignOffSerializer(serializers.Serializer):
    state = serializers.CharField()
    remarks = serializers.CharField()
    confirmed_by = serializers.CharField(source="confirmed_by.username", allow_null=True, default=None)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    reopened_by = serializers.CharField(source="reopened_by.username", allow_null=True, default=None)
    reopened_at = serializers.DateTimeField(allow_null=True)
    reopen_reason = serializers.CharField()
    amendments = AmendmentSerializer(many=True)


class UnitRollupSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=Level.choices)
    id = serializers.IntegerField()
    name = serializers.CharField()
    slots = serializers.DictField(child=FiguresSerializer(), help_text="figures per check-in slot code")
    signoff = SignOffSerializer(allow_null=True)


class RollupResponseSerializer(serializers.Serializer):
    date = serializers.DateField()
    live = serializers.BooleanField(help_text="true for today (live figures), false for stored snapshots")
    unit = UnitRollupSerializer()
    children = UnitRollupSerializer(many=True)


def _figures(source) -> dict:
    if isinstance(source, UnitFigures):
        counts, tags = source.counts, source.tags
    else:
        counts, tags = source.figures(), source.tags
    expected = counts["expected"]
    return {
        **{name: counts[name] for name in FIGURES},
        "completion": round(100 * counts["reported"] / expected, 1) if expected else None,
        "tags": tags,
    }


def unit_rollups(*, on: dt.date, level: str, unit_id: int, name: str) -> tuple[dict, list[dict], bool]:
    """The unit's and its children's figures per slot and sign-off: a fixed number of
    queries (snapshots: one read; today: one live roll-up of the subtree for every slot)."""
    live = on >= timezone.localdate()
    rows: dict[tuple[str, int], dict] = {}
    names: dict[tuple[str, int], str] = {(level, unit_id): name}
    child_level = LEVEL_BELOW.get(level)
    if live:
        codes = rollup_slot_codes(on)
        for code, rollup in rollup_compute_slots(on=on, slot_codes=codes, level=level, unit_id=unit_id).items():
            mine = rollup.get(level, unit_id)
            units = ([mine] if mine else []) + rollup.children(level, unit_id)
            for unit in units:
                rows.setdefault((unit.level, unit.unit_id), {})[code] = _figures(unit)
                names[(unit.level, unit.unit_id)] = unit.name
    else:
        snapshots = RollupSnapshot.objects.filter(date=on, level=level, unit_id=unit_id)
        if child_level:
            snapshots = snapshots | RollupSnapshot.objects.filter(date=on, level=child_level, parent_id=unit_id)
        for snap in snapshots.order_by("unit_name", "slot_code"):
            rows.setdefault((snap.level, snap.unit_id), {})[snap.slot_code] = _figures(snap)
            names[(snap.level, snap.unit_id)] = snap.unit_name
    signoffs = {
        (s.level, s.unit_id): s
        for s in SignOff.objects.filter(
            date=on, level__in=[level, child_level], unit_id__in=[k[1] for k in rows]
        ).select_related("confirmed_by", "reopened_by")
    }

    def entry(key: tuple[str, int]) -> dict:
        signoff = signoffs.get(key)
        return {
            "level": key[0],
            "id": key[1],
            "name": names.get(key, ""),
            "slots": rows.get(key, {}),
            "signoff": None
            if signoff is None
            else {
                **{
                    f: getattr(signoff, f) for f in ("state", "remarks", "confirmed_at", "reopened_at", "reopen_reason")
                },
                "confirmed_by": signoff.confirmed_by,
                "reopened_by": signoff.reopened_by,
                "amendments": signoff_amendments(signoff),
            },
        }

    children = sorted((k for k in rows if k[0] == child_level), key=lambda k: names.get(k, ""))
    return entry((level, unit_id)), [entry(k) for k in children], live


class RollupView(APIView):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "api"

    @extend_schema(
        summary="A unit's figures and its children's, with sign-off state",
        parameters=[
            OpenApiParameter("date", str, description="Local date (YYYY-MM-DD); default today."),
            OpenApiParameter("unit", str, description="`<level>:<id>`, e.g. `college:12`; default my top unit."),
        ],
        responses={200: RollupResponseSerializer},
    )
    def get(self, request):
        on = _date(request.query_params.get("date"))
        if request.query_params.get("unit"):
            level, unit_id = parse_unit(request.query_params["unit"])
        else:
            found = default_unit(request.user)
            if found is None:
                raise exceptions.PermissionDenied(_("您没有可查看的单位。"))
            level, unit_id = found
        unit = visible_unit(request.user, level, unit_id)
        mine, children, live = unit_rollups(on=on, level=level, unit_id=unit_id, name=str(unit))
        data = {"date": on, "live": live, "unit": mine, "children": children}
        return Response(RollupResponseSerializer(data).data)


def _date(raw: str | None) -> dt.date:
    if not raw:
        return timezone.localdate()
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise exceptions.ValidationError(
            {"date": [exceptions.ErrorDetail(_("日期格式应为 YYYY-MM-DD。"), code="invalid")]}
        ) from None


class SignOffInputSerializer(serializers.Serializer):
    date = serializers.DateField()
    unit = serializers.CharField(help_text="`<level>:<id>`: grade, college, campus or university")
    remarks = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ReopenInputSerializer(serializers.Serializer):
    date = serializers.DateField()
    unit = serializers.CharField(help_text="`<level>:<id>`")
    reason = serializers.CharField(max_length=500)


class _SignOffTransition(APIView):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "api"
    input_serializer: type[serializers.Serializer]

    def post(self, request):
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        level, unit_id = parse_unit(data.validated_data["unit"])
        visible_unit(request.user, level, unit_id)
        try:
            self.transition(request.user, data.validated_data, level, unit_id)
        except SignOffError as err:
            if err.code == "forbidden":
                raise exceptions.PermissionDenied(err.message, code=err.code) from None
            conflict = exceptions.APIException(err.message, code=err.code)
            conflict.status_code = status.HTTP_409_CONFLICT
            raise conflict from None
        unit = visible_unit(request.user, level, unit_id)
        mine, children, live = unit_rollups(
            on=data.validated_data["date"], level=level, unit_id=unit_id, name=str(unit)
        )
        return Response(
            RollupResponseSerializer(
                {"date": data.validated_data["date"], "live": live, "unit": mine, "children": children}
            ).data
        )


class SignOffView(_SignOffTransition):
    input_serializer = SignOffInputSerializer

    @extend_schema(
        summary="Confirm a unit's figures for a day (sign-off)",
        description="409 `children_pending` while a child unit is unconfirmed, `no_rollup` before the roll-up; "
        "403 `forbidden` without a confirming role for the unit.  Confirming again is a no-op.",
        request=SignOffInputSerializer,
        responses={200: RollupResponseSerializer},
    )
    def post(self, request):
        return super().post(request)

    def transition(self, user, data, level, unit_id):
        signoff_confirm(user=user, on=data["date"], level=level, unit_id=unit_id, remarks=data["remarks"])


class ReopenView(_SignOffTransition):
    input_serializer = ReopenInputSerializer

    @extend_schema(
        summary="Reopen a confirmed day (the level above, with a reason)",
        description="409 `not_confirmed` for a unit that is not confirmed; 403 `forbidden` unless a level above.",
        request=ReopenInputSerializer,
        responses={200: RollupResponseSerializer},
    )
    def post(self, request):
        return super().post(request)

    def transition(self, user, data, level, unit_id):
        signoff_reopen(user=user, on=data["date"], level=level, unit_id=unit_id, reason=data["reason"])
