"""An embedded AWS for the option sqs library and handlers: moto (S3, DynamoDB, SQS, SNS) + the Kendra emulator.

Lambda async invokes are captured (``World.invoked``) instead of run, so a test decides when the
summarizer or the producer runs; queue messages are turned into SQS Lambda events by :meth:`World.receive`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from kendra_ingest import aws, fanin
from kendra_ingest.lock import Lock
from kendra_ingest.settings import REQUIRED, Settings
from moto import mock_aws

from sandbox.kendra_emulator import KendraEmulator

REGION = "us-east-1"
INGESTION, REPORTS = "ingest-bucket", "reports-bucket"
LOCKS, DOCUMENTS = "locks", "documents"


@dataclass
class Context:
    """The Lambda context fields handlers and Powertools read."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "fn"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:fn"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class World:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, emulator: KendraEmulator) -> None:
        self.emulator = emulator
        self.invoked: list[tuple[str, dict[str, Any]]] = []
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        for bucket in (INGESTION, REPORTS):
            self.s3.create_bucket(Bucket=bucket)
        ddb.create_table(TableName=LOCKS, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        ddb.create_table(
            TableName=DOCUMENTS, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "documentId", "AttributeType": "S"},
                                  {"AttributeName": "source", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "documentId", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "bySource",
                "KeySchema": [{"AttributeName": "source", "KeyType": "HASH"},
                              {"AttributeName": "documentId", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        )
        fifo = {"FifoQueue": "true", "VisibilityTimeout": "0"}
        self.put_url = self.sqs.create_queue(QueueName="put.fifo", Attributes=fifo)["QueueUrl"]
        self.delete_url = self.sqs.create_queue(QueueName="delete.fifo", Attributes=fifo)["QueueUrl"]
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="notify")["TopicArn"]
        self.env = {
            "OPTION": "sqs", "INGESTION_BUCKET": INGESTION, "REPORTS_BUCKET": REPORTS, "LOCK_TABLE": LOCKS,
            "DOCUMENTS_TABLE": DOCUMENTS, "TOPIC_ARN": topic, "KENDRA_INDEX_ID": emulator.index_id,
            "DOCUMENT_MODE": "inline", "SKIP_UNCHANGED": "true", "VERIFY_INDEXING": "true",
            "VERIFY_TIMEOUT_SECONDS": "900",
            "PUT_QUEUE_URL": self.put_url, "DELETE_QUEUE_URL": self.delete_url, "PUT_SHARDS": "2",
            "DELETE_SHARDS": "4", "SUMMARIZER_FUNCTION": "summarizer-fn", "PRODUCER_FUNCTION": "producer-fn",
            "MAX_DOCUMENT_BYTES": str(5 * 1024 * 1024), "MAX_REQUEST_BYTES": str(50 * 1024 * 1024),
        }
        assert set().union(*(REQUIRED[h] for h in ("producer", "summarizer", "watchdog"))) <= set(self.env)
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(fanin, "invoke_async", lambda name, payload: self.invoked.append((name, payload)))
        self.lock = Lock(LOCKS)

    def settings(self, **overrides: str) -> Settings:
        return Settings.model_validate({**self.env, **overrides})

    # -- jobs -----------------------------------------------------------------------------------
    def upload(self, prefix: str, job_id: str, docs: dict[str, str], *, deletes: list[str] | None = None,
               manifest: bytes | None = None, **fields: Any) -> dict[str, Any]:
        """Documents (name -> text, with metadata) and the manifest; returns the EventBridge event."""
        for name, text in docs.items():
            key = f"{prefix}/batches/{name}.txt"
            self.s3.put_object(Bucket=INGESTION, Key=key, Body=text.encode())
            meta = {"Title": name, "ContentType": "PLAIN_TEXT"}
            self.s3.put_object(Bucket=INGESTION, Key=f"{key}.metadata.json", Body=json.dumps(meta).encode())
        body = {"schemaVersion": 1, "jobId": job_id, **fields}
        if deletes:
            body["deletes"] = deletes
        key = f"{prefix}/_control/manifest.json"
        put = self.s3.put_object(Bucket=INGESTION, Key=key, Body=manifest or json.dumps(body).encode())
        return {"id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
                "detail": {"bucket": {"name": INGESTION},
                           "object": {"key": key, "etag": put["ETag"].strip('"'), "sequencer": uuid.uuid4().hex}}}

    def report(self, job_id: str) -> tuple[dict[str, Any], bytes]:
        summary = json.loads(self.s3.get_object(Bucket=REPORTS, Key=f"_reports/{job_id}/summary.json")["Body"].read())
        failures = self.s3.get_object(Bucket=REPORTS, Key=f"_reports/{job_id}/failures.csv")["Body"].read()
        return summary, failures

    # -- queues ---------------------------------------------------------------------------------
    def receive(self, url: str, *, limit: int = 10) -> dict[str, Any]:
        """Up to ``limit`` messages as an SQS Lambda event (the visibility timeout is 0: they stay queued)."""
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=limit, AttributeNames=["All"])
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:q", "awsRegion": REGION,
        } for m in got.get("Messages", ())]}

    def acknowledge(self, url: str, event: dict[str, Any], response: dict[str, Any]) -> None:
        """What the event source mapping does: delete the records that did not fail."""
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", ())}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])

    def take_invokes(self, function: str) -> list[dict[str, Any]]:
        taken = [p for name, p in self.invoked if name == function]
        self.invoked[:] = [(n, p) for n, p in self.invoked if n != function]
        return taken


@dataclass
class Published:
    """A stand-in SNS client that records publishes (thread-safe enough: list.append)."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.messages.append(kwargs)
        return {"MessageId": str(len(self.messages))}


def make_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
                        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "test"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with ExitStack() as stack:
        stack.enter_context(mock_aws())
        emulator = stack.enter_context(KendraEmulator().installed())
        yield World(monkeypatch, emulator)
    aws.reset_clients()
