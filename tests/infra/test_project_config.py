"""Pulumi.yaml declares every stack configuration key, with its type and default, so Pulumi itself rejects
a typo or a wrongly typed value; the declarations cannot drift from infra/config.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import KEYS, NAMESPACE, REQUIRED_KEYS, StackConfig, load

from .conftest import INDEX_ID

REPO = Path(__file__).resolve().parents[2]
DECLARED: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
#: Pulumi's project config types (project.json ``simpleConfigType``).
PULUMI_TYPES = {"string", "integer", "boolean", "array"}
#: Maps have no Pulumi project config type; infra/config.py validates them.
UNTYPED = {"sources"}
#: Required of a stack by load(); the model leaves them optional for programs reusing the component.
REQUIRED = set(REQUIRED_KEYS)


def field(key: str) -> Any:
    return next(f for f in StackConfig.model_fields.values() if f.alias == key)


def test_the_declared_keys_are_exactly_the_config_keys() -> None:
    assert set(DECLARED) == set(KEYS)
    assert all(":" not in key for key in DECLARED)  # the project's own namespace


@pytest.mark.parametrize("key", KEYS)
def test_each_key_has_a_pulumi_type_and_a_description(key: str) -> None:
    declaration = DECLARED[key]
    assert declaration.get("description")
    if key in UNTYPED:
        assert "type" not in declaration
        return
    assert declaration["type"] in PULUMI_TYPES
    if declaration["type"] == "array":
        assert declaration["items"] == {"type": "string"}


@pytest.mark.parametrize("key", KEYS)
def test_defaults_match_the_model_and_only_required_keys_have_none(key: str) -> None:
    """Pulumi requires a declared key without a default; an empty default means unset to the loader."""
    declaration, model = DECLARED[key], field(key)
    if key in REQUIRED:
        assert "default" not in declaration and model.default is None
        return
    if key == "option":  # the loader defaults it to the stack name (sfn or sqs)
        assert declaration["default"] == ""
        return
    default = declaration["default"]
    expected = model.default
    if expected is None:
        assert default in ("", {}), key
    elif isinstance(expected, tuple):
        assert default == list(expected)
    else:
        assert default == expected and type(default) is type(expected), key
    if declaration.get("type") == "integer":
        assert model.annotation in (int, int | None)


class FakeConfig:
    """What ``pulumi.Config`` returns after Pulumi applied the project defaults: strings, JSON for structures."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, list | dict) else str(value).lower() if isinstance(
            value, bool) else str(value)


@pytest.mark.parametrize("stack", ["sfn", "sqs", "dev"])
def test_the_declared_defaults_load_as_the_models_defaults(stack: str) -> None:
    defaults = {key: d["default"] for key, d in DECLARED.items() if "default" in d}
    given = {"kendraIndexId": INDEX_ID, **({"option": "sfn"} if stack == "dev" else {})}
    with_defaults = load(FakeConfig({**defaults, **given}), stack=stack)  # type: ignore[arg-type]
    without = load(FakeConfig(given), stack=stack)  # type: ignore[arg-type]
    assert with_defaults == without


def test_the_checked_in_stacks_set_only_declared_keys() -> None:
    for path in REPO.glob("Pulumi.*.yaml"):
        keys = yaml.safe_load(path.read_text()).get("config") or {}
        ours = {k.split(":", 1)[1] for k in keys if k.startswith(f"{NAMESPACE}:")}
        assert ours <= set(DECLARED), path.name
