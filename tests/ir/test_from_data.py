"""An environment survives the trip through its image label: ``to_data`` → JSON → ``from_data``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dsl.cli._load import load_environment
from dsl.ir import Environment, IRDataError, environment_from_data

REPO = Path(__file__).resolve().parents[2]
TARGETS = [
    pytest.param(ex.parent.name, m[1], id=f"{ex.parent.name}:{m[1]}")
    for ex in sorted((REPO / "examples").glob("*/build.envd"))
    for m in re.finditer(r"^def (\w+)\(\):\n((?:[ \t]+.*\n|\n)*)", ex.read_text(), re.M) if "base(" in m[2]
]


@pytest.mark.parametrize("example, function", TARGETS)
def test_every_example_round_trips_with_the_same_content_hash(example, function):
    env = load_environment(str(REPO / "examples" / example), f":{function}")
    label = json.dumps(env.to_data(spans=False), sort_keys=True)  # what the image label holds
    back = environment_from_data(json.loads(label))
    assert isinstance(back, Environment)
    assert back.content_hash() == env.content_hash()
    assert back.to_data(spans=False) == env.to_data(spans=False)


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "runtime": {"nonsense": 1}}, "unknown field(s) nonsense for RuntimeSpec"),
    ({"name": "x", "build": {"steps": [{"kind": "Teleport"}]}}, "unknown kind 'Teleport'"),
    ({"name": "x", "runtime": {"ports": "8000"}}, "environment.runtime.ports: expected a list"),
    ([], "expected an object"),
])
def test_bad_data_is_an_error_naming_the_field(data, message):
    with pytest.raises(IRDataError, match=re.escape(message)):
        environment_from_data(data)
