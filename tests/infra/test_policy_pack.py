"""policy/ (the CrossGuard pack) registers every rule of infra/policies.py and reports what the rule reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from infra import policies
from infra.testing import RecordedResource

from .conftest import Deploy
from .test_policies import BREAKS

#: Outputs the mocks compute (the rest of a mocked state echoes the inputs).
COMPUTED = ("arn", "url", "keyId", "bucket", "name", "id", "layerArn")
PACK_DIR = Path(__file__).resolve().parents[2] / "policy"


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kendra_ingestion_policy_pack", PACK_DIR / "__main__.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # not __main__: no PolicyPack (it would start a server)
    return module


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(resource.options.get("protect")), ignore_changes=[], delete_before_replace=None,
        aliases=[], custom_timeouts=None, additional_secret_outputs=[],  # type: ignore[arg-type]
    )


def _as_policy_resource(resource: RecordedResource) -> PolicyResource:
    # Inputs (what a broken case edits) plus the outputs CrossGuard would also show.
    computed = {k: v for k, v in resource.state.items() if k in COMPUTED and k not in resource.inputs}
    props = {**resource.inputs, **computed}
    return PolicyResource(resource.type, props, f"urn:{resource.name}", resource.name, _options(resource),
                          None, None, [], {})


def run(policy: Any, resources: tuple[RecordedResource, ...]) -> list[str]:
    """What ``policy`` reports over ``resources``, as CrossGuard would call it."""
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    if isinstance(policy, StackValidationPolicy):
        args = type("StackArgs", (), {"resources": [_as_policy_resource(r) for r in resources]})()
        policy.validate(args, report)
    else:
        for r in resources:
            item = _as_policy_resource(r)
            policy.validate(ResourceValidationArgs(item.resource_type, item.props, item.urn, item.name,
                                                   item.opts, None), report)
    return reported


def test_every_rule_is_registered_once(pack: ModuleType) -> None:
    names = [p.name for p in pack.POLICIES]
    assert names == [rule.__name__.replace("_", "-") for rule in policies.RULES]
    for policy, rule in zip(pack.POLICIES, policies.RULES, strict=True):
        expected = ResourceValidationPolicy if rule in policies.RESOURCE_RULES else StackValidationPolicy
        assert isinstance(policy, expected), policy.name
        assert policy.description


def test_the_pack_project_file_runs_python_in_the_project_venv() -> None:
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (PACK_DIR / project["runtime"]["options"]["virtualenv"] / "bin" / "python").exists()


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_the_stack_passes_the_pack(pack: ModuleType, deploy: Deploy, stack: str) -> None:
    resources = deploy(stack, encryption="kms").resources
    for policy in pack.POLICIES:
        assert run(policy, resources) == [], policy.name


@pytest.mark.parametrize("case", list(BREAKS))
def test_the_pack_reports_each_broken_stack(pack: ModuleType, deploy: Deploy, case: str) -> None:
    rule, breaking = BREAKS[case]
    if rule is policies.data_protected and "protected" in case:
        pytest.skip("CrossGuard shows protect but not retain_on_delete: covered by the next case")
    resources = deploy("sqs", encryption="kms", documentMode="s3", notificationEmails=["a@example.com"]).resources
    policy = next(p for p in pack.POLICIES if p.name == rule.__name__.replace("_", "-"))
    assert run(policy, breaking(resources)), case
