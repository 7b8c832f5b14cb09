"""protectData and accessLogs under mocks: resource options, deletion protection, the logs bucket."""

from __future__ import annotations

import json

import pytest

from infra import policies
from infra.testing import ACCOUNT_ID, Deployment

from .conftest import Deploy

BUCKET = "aws:s3/bucket:Bucket"
TABLE = "aws:dynamodb/table:Table"
LOGGING = "aws:s3/bucketLogging:BucketLogging"


def data(deployment: Deployment) -> list:
    return [*deployment.of_type(BUCKET), *deployment.of_type(TABLE)]


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_by_default_buckets_and_tables_are_protected_and_retained(deploy: Deploy, stack: str) -> None:
    deployment = deploy(stack)
    assert len(data(deployment)) == 5  # ingestion, reports, access logs; lock and documents tables
    for resource in data(deployment):
        assert (resource.options["protect"], resource.options["retain_on_delete"]) == (True, True), resource.name
    assert all(t.inputs["deletionProtectionEnabled"] is True for t in deployment.of_type(TABLE))
    # Only data is protected: functions, queues and the rest stay replaceable.
    others = [r for r in deployment.resources if r.custom and r.type not in (BUCKET, TABLE)]
    assert others and not any(r.options.get("protect") or r.options.get("retain_on_delete") for r in others)


def test_protect_data_false_protects_nothing(deploy: Deploy) -> None:
    deployment = deploy("sfn", protectData=False)
    for resource in data(deployment):
        assert (resource.options["protect"], resource.options["retain_on_delete"]) == (False, False), resource.name
    assert all(t.inputs["deletionProtectionEnabled"] is False for t in deployment.of_type(TABLE))
    assert policies.data_protected(deployment.resources)  # the rule reports the opt-out


@pytest.mark.parametrize("encryption", ["s3", "kms"])
def test_access_logs_of_both_buckets_go_to_a_locked_down_logs_bucket(deploy: Deploy, encryption: str) -> None:
    deployment = deploy("sqs", encryption=encryption)
    outputs = deployment.outputs
    (logs,) = [b for b in deployment.of_type(BUCKET) if "access-logs" in b.name]
    name, arn = logs.state["bucket"], logs.state["arn"]
    logging = {r.inputs["bucket"]: r.inputs for r in deployment.of_type(LOGGING)}
    assert logging == {
        outputs["ingestion_bucket"]: {"bucket": outputs["ingestion_bucket"], "targetBucket": name,
                                      "targetPrefix": "ingestion/"},
        outputs["reports_bucket"]: {"bucket": outputs["reports_bucket"], "targetBucket": name,
                                    "targetPrefix": "reports/"},
    }
    (policy,) = [p for p in deployment.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.inputs["bucket"] == name]
    deny, *delivery = json.loads(policy.inputs["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    sources = {outputs["ingestion_bucket"]: "ingestion/", outputs["reports_bucket"]: "reports/"}
    assert len(delivery) == 2
    for statement in delivery:
        assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert statement["Action"] == ["s3:PutObject"]
        source = statement["Condition"]["ArnLike"]["aws:SourceArn"].removeprefix("arn:aws:s3:::")
        assert statement["Resource"] == [f"{arn}/{sources[source]}*"]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    (sse,) = [c for c in deployment.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        if c.inputs["bucket"] == name]
    # S3 delivers access logs only to SSE-S3 buckets, whatever the stack's encryption.
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert policies.check(deployment.resources) == []  # public access block, no ACLs, TLS only, ...


def test_access_logs_false_declares_no_logs_bucket(deploy: Deploy) -> None:
    deployment = deploy("sfn", accessLogs=False)
    assert len(deployment.of_type(BUCKET)) == 2 and deployment.of_type(LOGGING) == []
    assert policies.access_logged(deployment.resources)  # the rule reports the opt-out
