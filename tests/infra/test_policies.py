"""Every security rule of infra/policies.py passes on the stack and fires on a broken resource list."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from infra import policies
from infra.testing import RecordedResource

from .conftest import Deploy

VARIANTS = {
    "sfn": ("sfn", {}),
    "sqs": ("sqs", {}),
    "sfn-kms-s3-datasource": ("sfn", {"encryption": "kms", "documentMode": "s3", "kendraDataSourceId": "ds-1"}),
    "sqs-kms-s3": ("sqs", {"encryption": "kms", "documentMode": "s3", "notificationEmails": ["a@example.com"]}),
}
Resources = tuple[RecordedResource, ...]


@pytest.fixture(params=list(VARIANTS))
def resources(request: pytest.FixtureRequest, deploy: Deploy) -> Resources:
    stack, config = VARIANTS[request.param]
    return deploy(stack, **config).resources


@pytest.fixture
def sqs_kms(deploy: Deploy) -> Resources:
    stack, config = VARIANTS["sqs-kms-s3"]
    return deploy(stack, **config).resources


@pytest.mark.parametrize("rule", policies.RULES, ids=lambda r: r.__name__)
def test_the_stack_passes_every_rule(resources: Resources, rule: policies.Rule) -> None:
    assert rule(resources) == []


def test_check_runs_every_rule(resources: Resources) -> None:
    assert policies.check(resources) == []


def edit(
    resources: Resources,
    type_: str,
    change: Callable[[dict[str, Any]], None],
    where: Callable[[RecordedResource], bool] = lambda r: True,
) -> Resources:
    """A copy of ``resources`` where the first matching resource's inputs went through ``change``."""
    target = next(r for r in resources if r.type == type_ and where(r))
    inputs = json.loads(json.dumps(dict(target.inputs), default=str))
    change(inputs)
    return tuple(dataclasses.replace(r, inputs=inputs) if r is target else r for r in resources)


def drop(resources: Resources, type_: str) -> Resources:
    """A copy without the first resource of ``type_``."""
    target = next(r for r in resources if r.type == type_)
    return tuple(r for r in resources if r is not target)


def edit_policy(
    resources: Resources,
    type_: str,
    change: Callable[[list[dict[str, Any]]], None],
    where: Callable[[RecordedResource], bool] = lambda r: True,
) -> Resources:
    """Edit the statements of the first matching policy-bearing resource."""

    def apply(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        change(document["Statement"])
        inputs["policy"] = json.dumps(document)

    return edit(resources, type_, apply, where)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: inputs.__setitem__(key, value)


def _pop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: inputs.pop(key, None)


def _first_role_policy(r: RecordedResource) -> bool:
    return "KendraIndex" in r.inputs.get("policy", "")


BREAKS: dict[str, tuple[policies.Rule, Callable[[Resources], Resources]]] = {
    "public access block off": (
        policies.bucket_public_access_blocked,
        lambda rs: edit(
            rs, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", _set("restrictPublicBuckets", False)
        ),
    ),
    "public access block missing": (
        policies.bucket_public_access_blocked,
        lambda rs: drop(rs, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"),
    ),
    "bucket policy allows http": (
        policies.buckets_tls_only,
        lambda rs: edit_policy(rs, "aws:s3/bucketPolicy:BucketPolicy", lambda s: s[0].update(Condition={})),
    ),
    "bucket policy only on the bucket, not objects": (
        policies.buckets_tls_only,
        lambda rs: edit_policy(
            rs, "aws:s3/bucketPolicy:BucketPolicy", lambda s: s[0].update(Resource=s[0]["Resource"][:1])
        ),
    ),
    "queue policy missing": (policies.queues_tls_only, lambda rs: drop(rs, "aws:sqs/queuePolicy:QueuePolicy")),
    "topic policy allows http subscribe": (
        policies.topics_tls_only,
        lambda rs: edit_policy(rs, "aws:sns/topicPolicy:TopicPolicy", lambda s: s[0].update(Action=["sns:Publish"])),
    ),
    "bucket without default encryption": (
        policies.encrypted_at_rest,
        lambda rs: drop(rs, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    ),
    "queue without encryption": (
        policies.encrypted_at_rest,
        lambda rs: edit(
            rs, "aws:sqs/queue:Queue", lambda i: [i.pop("kmsMasterKeyId", None), i.pop("sqsManagedSseEnabled", None)]
        ),
    ),
    "topic without the stack key": (
        policies.encrypted_at_rest,
        lambda rs: edit(rs, "aws:sns/topic:Topic", _set("kmsMasterKeyId", "alias/aws/sns")),
    ),
    "table without the stack key": (
        policies.encrypted_at_rest,
        lambda rs: edit(rs, "aws:dynamodb/table:Table", _pop("serverSideEncryption")),
    ),
    "bucket with an ACL": (policies.no_acls, lambda rs: edit(rs, "aws:s3/bucket:Bucket", _set("acl", "private"))),
    "ACLs not disabled": (
        policies.no_acls,
        lambda rs: edit(
            rs,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            _set("rule", {"objectOwnership": "ObjectWriter"}),
        ),
    ),
    "bucket without access logs": (
        policies.access_logged, lambda rs: drop(rs, "aws:s3/bucketLogging:BucketLogging"),
    ),
    "log delivery for any source bucket": (
        policies.access_logged,
        lambda rs: edit_policy(
            rs, "aws:s3/bucketPolicy:BucketPolicy", lambda s: [st.pop("Condition") for st in s[1:]],
            lambda r: "logging.s3.amazonaws.com" in r.inputs["policy"],
        ),
    ),
    "access-log bucket with the stack key": (
        policies.encrypted_at_rest,
        lambda rs: edit(
            rs, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            _set("rules", [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]),
            lambda r: "access-logs" in r.name,
        ),
    ),
    "bucket not protected": (
        policies.data_protected,
        lambda rs: tuple(dataclasses.replace(r, options={}) if r.type == "aws:s3/bucket:Bucket" else r for r in rs),
    ),
    "table without deletion protection": (
        policies.data_protected,
        lambda rs: edit(rs, "aws:dynamodb/table:Table", _set("deletionProtectionEnabled", False)),
    ),
    "table without PITR": (
        policies.tables_have_pitr,
        lambda rs: edit(rs, "aws:dynamodb/table:Table", _set("pointInTimeRecovery", {"enabled": False})),
    ),
    "wildcard action": (
        policies.no_wildcard_actions,
        lambda rs: edit_policy(
            rs, "aws:iam/rolePolicy:RolePolicy", lambda s: s[-1].update(Action=["s3:*"]), _first_role_policy
        ),
    ),
    "partial wildcard action": (
        policies.no_wildcard_actions,
        lambda rs: edit_policy(rs, "aws:iam/rolePolicy:RolePolicy", lambda s: s[-1].update(Action=["dynamodb:Get*"])),
    ),
    "wildcard resource": (
        policies.wildcard_resources_allowlisted,
        lambda rs: edit_policy(rs, "aws:iam/rolePolicy:RolePolicy", lambda s: s[-1].update(Resource=["*"])),
    ),
    "kendra on every index": (
        policies.kendra_scoped_to_index,
        lambda rs: edit_policy(
            rs,
            "aws:iam/rolePolicy:RolePolicy",
            lambda s: next(x for x in s if x["Sid"] == "KendraIndex").update(Resource=["*"]),
            _first_role_policy,
        ),
    ),
    "kendra on another index": (
        policies.kendra_scoped_to_index,
        lambda rs: edit_policy(
            rs,
            "aws:iam/rolePolicy:RolePolicy",
            lambda s: next(x for x in s if x["Sid"] == "KendraIndex").update(
                Resource=["arn:aws:kendra:us-east-1:123456789012:index/" + "f" * 36]
            ),
            _first_role_policy,
        ),
    ),
    "x86_64": (
        policies.lambda_runtime,
        lambda rs: edit(rs, "aws:lambda/function:Function", _set("architectures", ["x86_64"])),
    ),
    "old runtime": (
        policies.lambda_runtime,
        lambda rs: edit(rs, "aws:lambda/function:Function", _set("runtime", "python3.9")),
    ),
    "default timeout": (policies.lambda_runtime, lambda rs: edit(rs, "aws:lambda/function:Function", _pop("timeout"))),
    "no tracing": (
        policies.lambda_runtime,
        lambda rs: edit(rs, "aws:lambda/function:Function", _set("tracingConfig", {"mode": "PassThrough"})),
    ),
    "log group kept forever": (
        policies.log_retention,
        lambda rs: edit(rs, "aws:cloudwatch/logGroup:LogGroup", _pop("retentionInDays")),
    ),
    "function logs to an unmanaged group": (
        policies.log_retention,
        lambda rs: edit(
            rs, "aws:lambda/function:Function", _set("loggingConfig", {"logFormat": "Text", "logGroup": "/elsewhere"})
        ),
    ),
    "redrive after 1 receive": (
        policies.dead_letter_queues,
        lambda rs: edit(
            rs,
            "aws:sqs/queue:Queue",
            lambda i: i.update(redrivePolicy=json.dumps({**json.loads(i["redrivePolicy"]), "maxReceiveCount": 1})),
            lambda r: "redrivePolicy" in r.inputs,
        ),
    ),
    "dead letters kept 4 days": (
        policies.dead_letter_queues,
        lambda rs: edit(rs, "aws:sqs/queue:Queue", _set("messageRetentionSeconds", 345600), lambda r: "dlq" in r.name),
    ),
    "work queue keeps messages 4 days (they would expire unreported)": (
        policies.dead_letter_queues,
        lambda rs: edit(rs, "aws:sqs/queue:Queue", _set("messageRetentionSeconds", 345600),
                        lambda r: "redrivePolicy" in r.inputs),
    ),
    "consumed queue without a DLQ": (
        policies.dead_letter_queues,
        lambda rs: edit(rs, "aws:sqs/queue:Queue", _pop("redrivePolicy"), lambda r: "redrivePolicy" in r.inputs),
    ),
    "visibility below 6x timeout": (
        policies.visibility_covers_timeout,
        lambda rs: edit(
            rs, "aws:sqs/queue:Queue", _set("visibilityTimeoutSeconds", 300), lambda r: "redrivePolicy" in r.inputs
        ),
    ),
    "delete anything in the ingestion bucket": (
        policies.deletes_only_manifests,
        lambda rs: edit_policy(
            rs, "aws:iam/rolePolicy:RolePolicy",
            lambda s: [x.update(Resource=[r.replace("*/_control/manifest.json", "*") for r in x["Resource"]])
                       for x in s if x["Sid"] == "ArchiveManifests"],
            lambda r: "ArchiveManifests" in r.inputs.get("policy", ""),
        ),
    ),
}

#: Cases that need option sfn's resources (a state machine).
SFN_BREAKS: dict[str, tuple[policies.Rule, Callable[[Resources], Resources]]] = {
    "the whole state mailed": (
        policies.notifications_quote_no_state,
        lambda rs: edit(
            rs, "aws:sfn/stateMachine:StateMachine",
            lambda i: i.update(definition=i["definition"].replace(
                '"Message.$": "States.Format(', '"Message.$": "States.JsonToString($)", "Comment": "(')),
        ),
    ),
}


@pytest.mark.parametrize("case", list(SFN_BREAKS))
def test_each_sfn_rule_fires_on_a_broken_stack(deploy: Deploy, case: str) -> None:
    resources = deploy("sfn", encryption="kms").resources
    rule, breaking = SFN_BREAKS[case]
    assert rule(resources) == []
    assert rule(breaking(resources)), f"{rule.__name__} did not notice: {case}"


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_rule_fires_on_a_broken_stack(sqs_kms: Resources, case: str) -> None:
    rule, breaking = BREAKS[case]
    assert rule(sqs_kms) == []
    assert rule(breaking(sqs_kms)), f"{rule.__name__} did not notice: {case}"


def test_every_rule_has_a_breaking_case() -> None:
    assert {rule for rule, _ in (*BREAKS.values(), *SFN_BREAKS.values())} == set(policies.RULES)


def test_the_state_machine_logging_is_checked(deploy: Deploy) -> None:
    resources = deploy("sfn").resources
    broken = edit(
        resources,
        "aws:sfn/stateMachine:StateMachine",
        _set("loggingConfiguration", {"level": "ALL", "logDestination": "arn:aws:logs:elsewhere:*"}),
    )
    assert policies.log_retention(broken)
