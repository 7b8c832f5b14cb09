"""Registered sources under mocks: the config rules, the writer policies and their output, the setting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import policies
from infra.config import ConfigError
from infra.testing import ACCOUNT_ID, REGION, deploy_with_mocks

from .access import function
from .conftest import Deploy, config_for

SOURCES = {"hr": "teams/hr", "fin": "/teams/fin/"}
POLICY = "aws:iam/policy:Policy"
FIX = "; fix: pulumi config set --path 'sources.<source>' <prefix>"


BAD = [
    ({"hr": "teams/hr", "hr2": "teams/hr/sub"}, "the prefixes of hr (teams/hr) and hr2 (teams/hr/sub) overlap"),
    ({"a": "x/y", "b": "x/y/"}, "the prefixes of a (x/y) and b (x/y) overlap"),
    ({"hr": "../up"}, "prefix '../up'"),
    ({"hr": "teams//hr"}, "prefix 'teams//hr'"),
    ({"hr": "teams/h r"}, "prefix 'teams/h r'"),
    ({"hr": ""}, "must not be empty"),
    ({"hr": "/"}, "must not be empty"),
    ({"h r": "teams/hr"}, "source name 'h r'"),
    ({"hr": 3}, '(got {"hr": 3})'),
    ("teams/hr", "(got teams/hr)"),
]


@pytest.mark.parametrize(("sources", "detail"), BAD)
def test_a_bad_sources_map_is_one_line_naming_the_key_and_the_fix(
    orchestrator_template: None, sources: Any, detail: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        deploy_with_mocks(config_for(sources=sources), "sfn")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("kendra-ingestion:sources must be a map of source name")
    assert detail in message
    assert FIX in message
    assert caught.value.deployment.resources == ()  # type: ignore[attr-defined]


def test_siblings_that_share_a_string_prefix_do_not_overlap(deploy: Deploy) -> None:
    outputs = deploy("sfn", sources={"hr": "teams/hr", "hrx": "teams/hrx"}).outputs
    assert set(outputs["source_writer_policies"]) == {"hr", "hrx"}


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_without_sources_there_is_no_policy_output_and_no_setting(deploy: Deploy, stack: str) -> None:
    deployment = deploy(stack)
    assert "source_writer_policies" not in deployment.outputs
    assert deployment.of_type(POLICY) == []
    assert deploy(stack, sources={}).outputs.keys() == deployment.outputs.keys()


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_each_source_gets_a_policy_writing_only_under_its_prefix(deploy: Deploy, stack: str) -> None:
    deployment = deploy(stack, sources=SOURCES)
    outputs = deployment.outputs
    bucket = f"arn:aws:s3:::{outputs['ingestion_bucket']}"
    by_arn = {p.state["arn"]: p for p in deployment.of_type(POLICY)}
    assert set(outputs["source_writer_policies"]) == {"hr", "fin"}
    for source, prefix in {"hr": "teams/hr", "fin": "teams/fin"}.items():
        arn = outputs["source_writer_policies"][source]
        assert arn.startswith(f"arn:aws:iam::{ACCOUNT_ID}:policy/")
        policy = by_arn[arn]
        assert source in policy.inputs["name"] and policy.inputs["name"].startswith(f"kendra-ingestion-{stack}")
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == ["s3:PutObject"]
        assert statement["Resource"] == [f"{bucket}/{prefix}/*"]
    assert policies.check(deployment.resources) == []


def test_with_kms_a_writer_may_use_the_stack_key_only_through_s3_for_the_ingestion_bucket(deploy: Deploy) -> None:
    deployment = deploy("sfn", sources=SOURCES, encryption="kms")
    key = next(k for k in deployment.of_type("aws:kms/key:Key") if "topic" not in k.name)
    bucket = f"arn:aws:s3:::{deployment.outputs['ingestion_bucket']}"
    for policy in deployment.of_type(POLICY):
        statements = json.loads(policy.inputs["policy"])["Statement"]
        assert [s["Action"] for s in statements] == [["s3:PutObject"], ["kms:GenerateDataKey", "kms:Decrypt"]]
        assert statements[1]["Resource"] == [key.state["arn"]]
        assert statements[1]["Condition"] == {"StringEquals": {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": bucket}}
    assert policies.check(deployment.resources) == []


@pytest.mark.parametrize(("stack", "handlers"), [("sfn", ("load_manifest", "list_batches")), ("sqs", ("producer",))])
def test_the_functions_that_load_and_plan_jobs_get_the_sources(deploy: Deploy, stack: str, handlers: tuple) -> None:
    deployment = deploy(stack, sources=SOURCES)
    for handler in handlers:
        env = function(deployment, handler).inputs["environment"]["variables"]
        assert json.loads(env["SOURCES"]) == {"fin": "teams/fin", "hr": "teams/hr"}
