"""Physical names carry project and stack within AWS limits, every taggable resource is tagged through the
stack transform, and renamed children keep aliases to their 0.1 logical names."""

from __future__ import annotations

import pytest

from infra import naming, tagging
from infra.config import ConfigError
from infra.testing import Deployment, deploy_with_mocks

from .conftest import BASE_CONFIG, Deploy

#: Where each type keeps its physical name, and the name's AWS limit.
NAMES = {
    "aws:s3/bucket:Bucket": ("bucket", naming.MAX_BUCKET_NAME_LENGTH),
    "aws:lambda/function:Function": ("name", naming.MAX_FUNCTION_NAME_LENGTH),
    "aws:sqs/queue:Queue": ("name", naming.MAX_QUEUE_NAME_LENGTH),
    "aws:sfn/stateMachine:StateMachine": ("name", naming.MAX_STATE_MACHINE_NAME_LENGTH),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName", naming.MAX_DASHBOARD_NAME_LENGTH),
    "aws:lambda/layerVersion:LayerVersion": ("layerName", 140),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:iam/policy:Policy": ("name", 128),
    "aws:kms/alias:Alias": ("name", 256),
    **{type_: ("name", limit) for type_, limit in naming.NAMED_BY_COMPONENT.items()},
}
VARIANTS = [("sfn", {}), ("sqs", {"encryption": "kms", "sources": {"hr": "teams/hr"}})]


@pytest.fixture(params=VARIANTS, ids=lambda v: v[0])
def deployment(request: pytest.FixtureRequest, deploy: Deploy) -> Deployment:
    stack, config = request.param
    return deploy(stack, **config)


def test_every_taggable_resource_has_project_stack_and_component(deployment: Deployment) -> None:
    taggable = [r for r in deployment.resources if r.custom and tagging.taggable(r.type)]
    assert len(taggable) > 40
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert tags.get("project") == "kendra-ingestion", resource.name
        assert tags.get("stack") == deployment.stack, resource.name
        assert tags.get("component") not in (None, "", tagging.ROOT_COMPONENT), resource.name
    components = {r.inputs["tags"]["component"] for r in taggable}
    assert {"storage", "state", "lambda-function", "monitoring", f"{deployment.stack}-pipeline"} <= components


def test_untaggable_resources_get_no_tags(deployment: Deployment) -> None:
    for resource in deployment.resources:
        if resource.custom and not tagging.taggable(resource.type):
            assert "tags" not in resource.inputs, resource.name


def test_physical_names_carry_project_and_stack_within_limits(deployment: Deployment) -> None:
    named = [r for r in deployment.resources if r.type in NAMES]
    assert {r.type for r in named} >= set(naming.NAMED_BY_COMPONENT)
    for resource in named:
        key, limit = NAMES[resource.type]
        name = resource.inputs.get(key)
        assert name, f"{resource.type} {resource.name} has no physical name"
        assert f"kendra-ingestion-{deployment.stack}" in name, name
        assert len(name) <= limit, name
    for bucket in deployment.of_type("aws:s3/bucket:Bucket"):
        assert bucket.inputs["bucket"] == bucket.inputs["bucket"].lower()


def test_renamed_children_keep_an_alias_to_their_old_logical_name(deployment: Deployment) -> None:
    children = [r for r in deployment.resources if r.name != "kendra-ingestion"]
    for resource in children:
        assert resource.name.startswith("kendra-ingestion-"), resource.name
        assert resource.name.removeprefix("kendra-ingestion-") in resource.options["aliases"], resource.name


def test_data_keeps_the_physical_name_an_existing_stack_has(deployment: Deployment) -> None:
    for type_, key in naming.KEEP_EXISTING_NAME.items():
        for resource in deployment.of_type(type_):
            assert key in resource.options["ignore_changes"], resource.name


def test_a_long_stack_name_still_fits() -> None:
    stack = "a-very-long-stack-name-for-a-team-that-likes-descriptive-names"
    deployment = deploy_with_mocks({**BASE_CONFIG, "option": "sqs"}, stack=stack)
    for resource in deployment.resources:
        if resource.type in NAMES:
            key, limit = NAMES[resource.type]
            assert len(resource.inputs[key]) <= limit, resource.inputs[key]


def test_a_renamed_project_reads_and_names_its_own_namespace() -> None:
    deployment = deploy_with_mocks(BASE_CONFIG, stack="sfn", project="search-ingest")
    buckets = [b.inputs["bucket"] for b in deployment.of_type("aws:s3/bucket:Bucket")]
    assert all(b.startswith("search-ingest-sfn-") for b in buckets)
    assert {r.inputs["tags"]["project"] for r in deployment.resources if "tags" in r.inputs} == {"search-ingest"}
    with pytest.raises(ConfigError, match=r"^search-ingest:mapConcurrency must be .*pulumi config set mapConcurrency"):
        deploy_with_mocks({**BASE_CONFIG, "mapConcurrency": 99}, stack="sfn", project="search-ingest")
    with pytest.raises(ConfigError, match=r"^search-ingest:kendraIndexId must be"):
        deploy_with_mocks({}, stack="sfn", project="search-ingest")


def test_physical_name_helpers() -> None:
    assert naming.bucket_name("Kendra-Ingestion-SFN", "reports", "123456789012", "eu-west-1") == (
        "kendra-ingestion-sfn-reports-123456789012-eu-west-1"
    )
    long = naming.bucket_name("x" * 80, "access-logs", "123456789012", "ap-southeast-2")
    assert len(long) <= naming.MAX_BUCKET_NAME_LENGTH and long.endswith("access-logs-123456789012-ap-southeast-2")
    assert tagging.component_name("kendra-ingestion:index:SfnPipeline") == "sfn-pipeline"
