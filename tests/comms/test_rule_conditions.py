"""Routing-rule conditions read event data as data: a dotted name is a key, never a Python attribute."""

from __future__ import annotations

import pytest

from comms.router.rules import condition_eval

CONTEXT = {"payload": {"items": [1, 2], "values": {"a": 1}, "name": "Ada", "count": 3}, "actor": {}, "event": {}}


@pytest.mark.parametrize(("expression", "passed"), [
    ("len(payload.items) == 2", True),        # was dict.items: TypeError, "not met"
    ("payload.values.a == 1", True),          # was dict.values
    ("payload.count > 2", True),
    ("payload['items'][1] == 2", True),
    ("payload.name == 'Ada'", True),
])
def test_keys_named_like_dict_methods_are_the_keys(expression, passed):
    assert condition_eval(expression, CONTEXT).passed is passed


@pytest.mark.parametrize("expression", ["payload.name.upper", "str(payload.name.upper) != ''", "payload.get",
                                        "payload.keys", "str(payload.copy)"])
def test_python_attributes_are_missing_fields(expression):
    result = condition_eval(expression, CONTEXT)
    assert result.passed is False and ("missing" in result.reason or "could not be evaluated" in result.reason)
    assert "built-in" not in result.reason and "bound" not in result.reason
