"""The engine-neutral part of the runner interface: run-time placeholders."""

from __future__ import annotations

import pytest

from dsl.errors import UsageError


def test_placeholders_are_found_anywhere_and_an_unfilled_one_stops_the_start():
    from dsl.engines.runner import fill_placeholders, placeholders

    body = {"Env": ["A=1", "DSL_AUTHORIZED_KEYS=${DSL_AUTHORIZED_KEYS}", "DSL_JUPYTER_TOKEN=${DSL_JUPYTER_TOKEN}"],
            "HostConfig": {"Mounts": [{"Source": "${DSL_HOST_KEY_FILE}", "Target": "/k"}]}, "Labels": {"x": "$y"}}
    assert placeholders(body) == {"DSL_AUTHORIZED_KEYS", "DSL_JUPYTER_TOKEN", "DSL_HOST_KEY_FILE"}
    with pytest.raises(UsageError, match=r"no value for \$\{DSL_JUPYTER_TOKEN\}") as caught:
        fill_placeholders(body, {"DSL_AUTHORIZED_KEYS": "ssh-ed25519 AAAA", "DSL_HOST_KEY_FILE": "/f"})
    assert "--jupyter-token" in caught.value.hint
    filled = fill_placeholders(body, {"DSL_AUTHORIZED_KEYS": "ssh-ed25519 AAAA", "DSL_HOST_KEY_FILE": "/f",
                                      "DSL_JUPYTER_TOKEN": "t"})
    assert filled["Env"][1:] == ["DSL_AUTHORIZED_KEYS=ssh-ed25519 AAAA", "DSL_JUPYTER_TOKEN=t"]
    assert filled["HostConfig"]["Mounts"][0]["Source"] == "/f" and filled["Labels"] == {"x": "$y"}
    assert "${" in body["Env"][1]  # the compiled body itself is left as it was
