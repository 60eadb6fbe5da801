"""A fast path for marshmallow loads of webhook JSON that is already in the schema's own form.

marshmallow spends most of the ingress's time per request walking fields. Most webhooks are
valid and need no conversion: their strings are strings, their booleans booleans. For those,
a checker compiled once from the same schema returns what ``schema.load`` would return, at a
fraction of the cost. Anything else (a missing required field, a value marshmallow would
convert or reject, a field kind or validator the compiler does not know) is handed to
marshmallow itself, so its results and error messages stay the only ones. The schema is
still the one definition of what is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import INCLUDE, Schema, fields, missing, validate

DECLINE = object()  # the checker's "ask marshmallow"

Check = Callable[[Any], Any]  # the loaded value, or DECLINE


class FastLoader:
    """``load`` like the schema's: the compiled check when it accepts, marshmallow otherwise."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._check = schema_check(schema)

    def load(self, data: Any) -> dict[str, Any]:
        if self._check is not None:
            loaded = self._check(data)
            if loaded is not DECLINE:
                return loaded
        return self.schema.load(data)


def schema_check(schema: Schema) -> Check | None:
    """A checker for ``schema``, or None when it uses anything the compiler does not model."""
    if schema.many or schema.unknown != INCLUDE or any(schema._hooks.values()):
        return None
    compiled = []
    for name, field in schema.load_fields.items():
        check = field_check(field)
        if check is None or field.data_key is not None or field.attribute is not None:
            return None
        compiled.append((name, check, field.required, field.load_default, field.allow_none))

    def check_schema(data: Any) -> Any:
        if type(data) is not dict:
            return DECLINE
        out = dict(data)  # unknown keys are included as they are
        for name, check, required, default, allow_none in compiled:
            value = data.get(name, missing)
            if value is missing:
                if required:
                    return DECLINE
                if default is not missing:
                    out[name] = default() if callable(default) else default
            elif value is None:
                if not allow_none:
                    return DECLINE
            else:
                loaded = check(value)
                if loaded is DECLINE:
                    return DECLINE
                out[name] = loaded
        return out

    return check_schema


def field_check(field: fields.Field) -> Check | None:
    """A checker for one field's non-null value, or None when the field is not modelled."""
    if field.pre_load or field.post_load:
        return None
    valid = _validators(field.validators)
    kind = _kind(field)
    if valid is None or kind is None:
        return None
    if not field.validators:
        return kind

    def check_validated(value: Any) -> Any:
        loaded = kind(value)
        return loaded if loaded is not DECLINE and valid(loaded) else DECLINE

    return check_validated


def _kind(field: fields.Field) -> Check | None:
    # Exact classes: a subclass (Email, Url, …) brings validation or conversion of its own.
    cls = type(field)
    if cls is fields.String:
        return _typed(str)
    if cls is fields.Boolean:
        return _typed(bool)
    if cls is fields.Integer:
        return _typed(int)  # bool is an int to Python, but marshmallow turns True into 1
    if cls is fields.Raw:
        return lambda value: value
    if cls is fields.List:
        return _list(field.inner)
    if cls is fields.Dict:
        return _dict(field.key_field, field.value_field)
    if cls is fields.Nested and not (field.many or field.only or field.exclude or field.unknown):
        return schema_check(field.schema)
    return None


def _typed(kind: type) -> Check:
    return lambda value: value if type(value) is kind else DECLINE


def _list(inner: fields.Field) -> Check | None:
    check = _non_null(inner)
    if check is None:
        return None

    def check_list(value: Any) -> Any:
        if type(value) is not list:
            return DECLINE
        loaded = [check(item) for item in value]
        return DECLINE if any(item is DECLINE for item in loaded) else loaded

    return check_list


def _dict(keys: fields.Field | None, values: fields.Field | None) -> Check | None:
    key_check = _non_null(keys) if keys is not None else None
    value_check = _non_null(values) if values is not None else None
    if (keys is not None and key_check is None) or (values is not None and value_check is None):
        return None

    def check_dict(value: Any) -> Any:
        if type(value) is not dict:
            return DECLINE
        if key_check is None and value_check is None:
            return dict(value)
        loaded = {}
        for k, v in value.items():
            k2 = key_check(k) if key_check else k
            v2 = value_check(v) if value_check else v
            if k2 is DECLINE or v2 is DECLINE:
                return DECLINE
            loaded[k2] = v2
        return loaded

    return check_dict


def _non_null(field: fields.Field) -> Check | None:
    """An inner field's checker (list items, dict keys and values), null handled as marshmallow does."""
    check = field_check(field)
    if check is None:
        return None
    if field.allow_none:
        return lambda value: None if value is None else check(value)
    return lambda value: DECLINE if value is None else check(value)


def _validators(validators: list[Any]) -> Callable[[Any], bool] | None:
    checks: list[Callable[[Any], bool]] = []
    for v in validators:
        if type(v) is validate.Length:
            checks.append(_length(v))
        elif type(v) is validate.OneOf:
            checks.append(lambda value, choices=v.choices: value in choices)
        elif type(v) is validate.Range:
            checks.append(_range(v))
        else:
            return None
    if len(checks) == 1:  # the usual case, and the hot one: no loop per value
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _range(v: validate.Range) -> Callable[[Any], bool]:
    def within(value: Any) -> bool:
        if v.min is not None and (value < v.min if v.min_inclusive else value <= v.min):
            return False
        return v.max is None or (value <= v.max if v.max_inclusive else value < v.max)

    return within


def _length(v: validate.Length) -> Callable[[Any], bool]:
    if v.equal is not None:
        return lambda value: len(value) == v.equal
    low = v.min if v.min is not None else 0
    high = v.max if v.max is not None else float("inf")
    return lambda value: low <= len(value) <= high
