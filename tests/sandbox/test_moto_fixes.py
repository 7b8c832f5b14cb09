"""The DynamoDB transaction fix: same outcome as moto's whole-table snapshot, without copying tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox.moto_fixes import cheap_transaction_snapshots


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    fake = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    with mock_aws(), cheap_transaction_snapshots():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        client.put_item(TableName="t", Item={"pk": {"S": "counter"}, "n": {"N": "1"}})
        client.put_item(TableName="t", Item={"pk": {"S": "gone"}, "v": {"S": "x"}})
        yield client


def items(client: Any) -> dict[str, dict[str, Any]]:
    return {i["pk"]["S"]: i for i in client.scan(TableName="t")["Items"]}


def transaction(marker: str) -> list[dict[str, Any]]:
    return [
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "counter"}}, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "gone"}}}},
        {"Put": {"TableName": "t", "Item": {"pk": {"S": marker}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
    ]


def test_a_failed_transaction_leaves_every_touched_item_as_it_was(table: Any) -> None:
    table.put_item(TableName="t", Item={"pk": {"S": "part-1"}})
    before = items(table)
    with pytest.raises(table.exceptions.TransactionCanceledException):
        table.transact_write_items(TransactItems=transaction("part-1"))  # the marker exists: cancelled
    assert items(table) == before


def test_a_successful_transaction_applies_every_write(table: Any) -> None:
    table.transact_write_items(TransactItems=transaction("part-2"))
    after = items(table)
    assert after["counter"]["n"] == {"N": "2"} and "gone" not in after and "part-2" in after


FAKE_ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}


def _logs_policy(resource: Any) -> str:
    import json

    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
         "Resource": ["arn:aws:s3:::my-logs-bucket", "arn:aws:s3:::my-logs-bucket/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": ["s3:PutObject"], "Resource": resource,
         "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::my-data-bucket"}}},
    ]})


@pytest.mark.parametrize("resource", [["arn:aws:s3:::my-logs-bucket/data/*"], "arn:aws:s3:::my-logs-bucket/data/*"])
def test_log_delivery_policies_with_a_tls_deny_and_resource_lists_are_accepted(
    monkeypatch: pytest.MonkeyPatch, resource: Any
) -> None:
    from sandbox.moto_fixes import log_delivery_policy_lists

    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws(), log_delivery_policy_lists():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name in ("my-logs-bucket", "my-data-bucket"):
            s3.create_bucket(Bucket=name)
        s3.put_bucket_policy(Bucket="my-logs-bucket", Policy=_logs_policy(resource))
        s3.put_bucket_logging(Bucket="my-data-bucket", BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "my-logs-bucket", "TargetPrefix": "data/"}})
        assert s3.get_bucket_logging(Bucket="my-data-bucket")["LoggingEnabled"]["TargetBucket"] == "my-logs-bucket"


def test_log_delivery_to_a_bucket_that_does_not_allow_it_still_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.moto_fixes import log_delivery_policy_lists

    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws(), log_delivery_policy_lists():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name in ("my-logs-bucket", "my-data-bucket"):
            s3.create_bucket(Bucket=name)
        s3.put_bucket_policy(Bucket="my-logs-bucket", Policy=_logs_policy(["arn:aws:s3:::my-logs-bucket/elsewhere/*"]))
        with pytest.raises(s3.exceptions.ClientError, match="InvalidTargetBucketForLogging"):
            s3.put_bucket_logging(Bucket="my-data-bucket", BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": "my-logs-bucket", "TargetPrefix": "data/"}})
