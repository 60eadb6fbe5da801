import json
from decimal import Decimal

import pytest

from chathooks.json_codec import dumps


@pytest.mark.parametrize("value", [
    {"b": 1, "a": [1.5, None, True, "Grüße ✓"], "c": {"z": 0, "y": -2 ** 63}},
    [2 ** 70, {"k": 1}],  # beyond 64 bits: only json takes it
    {1: "an int key", "2": "a str key"},  # not a string: only json takes it
], ids=["plain", "integer beyond 64 bits", "non-string key"])
def test_what_it_writes_reads_back_as_json_writes_it(value):
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_keys_are_sorted_when_asked_and_what_json_cannot_hold_becomes_a_string_through_default():
    assert dumps({"b": Decimal("1.5"), "a": 1}, sort_keys=True, default=str) == b'{"a":1,"b":"1.5"}'
    assert dumps({"b": 2 ** 70, "a": Decimal("1.5")}, sort_keys=True, default=str) == \
        b'{"a":"1.5","b":1180591620717411303424}'


def test_without_a_default_what_json_cannot_hold_is_refused():
    with pytest.raises(TypeError):
        dumps({"a": Decimal("1.5")})
