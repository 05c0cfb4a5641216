"""A base for the API's flat serializers on hot paths.

DRF builds every serializer instance's fields with ``copy.deepcopy`` of the declared
ones, which re-runs each field's constructor with deep-copied arguments (DRF issues
#6328, #4587): for the check-in's input (15 fields) and output (28 fields) that was a
fifth of a submission's CPU.  A serializer of plain fields needs only its own copy of
each field to bind; the arguments, choices and validators behind them are never
changed after construction and can be shared.
"""

from __future__ import annotations

import copy

from rest_framework import serializers


class FlatSerializer(serializers.Serializer):
    """A ``Serializer`` whose declared fields are copied one level deep per instance.
    Only plain fields: a nested serializer (or a list of them) is refused when the class
    is defined, since it would share its state between instances."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name, field in cls._declared_fields.items():
            child = getattr(field, "child", None)
            if isinstance(field, serializers.BaseSerializer) or isinstance(child, serializers.BaseSerializer):
                raise TypeError(f"{cls.__name__}.{name}: a FlatSerializer cannot nest serializers")

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}
