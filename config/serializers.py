"""A base for the API's flat serializers on hot paths.

DRF builds every serializer instance's fields with ``copy.deepcopy`` of the declared
ones, which re-runs each field's constructor with deep-copied arguments (DRF issues
#6328, #4587): for the check-in's input (15 fields) and output (28 fields) that was a
fifth of a submission's CPU.  A serializer of plain fields needs only its own copy of
each field to bind; the arguments, choices and validators behind them are never
changed after construction and can be shared.  And one that only *renders* an object
through plain value fields — whose ``to_representation`` reads nothing but the value
and the field's own settings — can share one bound set of fields per class.
"""

from __future__ import annotations

import copy

from rest_framework import serializers

#: Fields whose rendering depends on the value and their own arguments only (no parent,
#: context or request): safe to share between serializer instances and threads.
_PURE_FIELDS = (
    serializers.BooleanField,
    serializers.CharField,
    serializers.ChoiceField,
    serializers.DateField,
    serializers.DateTimeField,
    serializers.DecimalField,
    serializers.FloatField,
    serializers.IntegerField,
    serializers.TimeField,
    serializers.UUIDField,
)


def _pure(field: serializers.Field) -> bool:
    if isinstance(field, serializers.ListField):
        return _pure(field.child)
    return isinstance(field, _PURE_FIELDS)


class FlatSerializer(serializers.Serializer):
    """A ``Serializer`` whose declared fields are copied one level deep per instance,
    and — when every field is a plain value field — rendered through one set of bound
    fields per class.  Only plain fields: a nested serializer (or a list of them) is
    refused when the class is defined, since it would share its state between
    instances."""

    #: Set per class: may instances that only render share one set of bound fields?
    _shares_rendering = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name, field in cls._declared_fields.items():
            child = getattr(field, "child", None)
            if isinstance(field, serializers.BaseSerializer) or isinstance(child, serializers.BaseSerializer):
                raise TypeError(f"{cls.__name__}.{name}: a FlatSerializer cannot nest serializers")
        cls._shares_rendering = all(_pure(f) for f in cls._declared_fields.values())
        cls._rendering_fields = None

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    @property
    def _readable_fields(self):
        if not type(self)._shares_rendering or hasattr(self, "initial_data"):
            yield from super()._readable_fields
            return
        cls = type(self)
        shared = cls._rendering_fields
        if shared is None:  # bound once, to a prototype instance of this class
            shared = cls._rendering_fields = tuple(f for f in cls().fields.values() if not f.write_only)
        yield from shared
