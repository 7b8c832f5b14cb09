"""What each principal's code calls on AWS, scoped to the resource it calls it on (the "declared map").

``tests/infra/test_code_and_infra.py`` proves every entry is allowed by the deployed role. The entries
of both options match the calls recorded in real end-to-end runs (``tests/sandbox/test_iam_from_calls.py``,
which checks the roles against those calls directly; for option sqs that includes the calls Lambda's
event source mappings make with the consuming function's role).

Resources are symbols resolved against a deployment: ``ingestion_bucket`` (the bucket),
``ingestion_object`` (an object in it), ``reports_bucket``, ``reports_object``, ``lock_table``,
``documents_table``, ``documents_by_source`` (its ``bySource`` index), ``index``, ``data_source``,
``kendra_role``, ``topic``, ``put_queue``,
``delete_queue``, ``put_dlq``, ``delete_dlq``, ``summarizer``, ``functions`` (each function of the
option), ``state_machine``, ``child_execution``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    """``action`` on ``resource``; ``when`` limits it to documentMode ``s3``, a configured ``data_source`` or
    registered ``sources``."""

    action: str
    resource: str
    when: str | None = None


def calls(resource: str, *actions: str, when: str | None = None) -> tuple[Call, ...]:
    """Several actions on one resource."""
    return tuple(Call(action, resource, when) for action in actions)


LOCK_WRITE = ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem")
CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")

SFN: dict[str, tuple[Call, ...]] = {
    "load_manifest": (*calls("ingestion_bucket", "s3:ListBucket"), *calls("ingestion_object", "s3:GetObject")),
    "acquire_lock": calls("lock_table", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
    "list_batches": (
        *calls("ingestion_bucket", "s3:ListBucket"),
        *calls("ingestion_object", "s3:GetObject"),
        *calls("documents_table", "dynamodb:BatchGetItem"),
        *calls("documents_by_source", "dynamodb:Query"),
        *calls("reports_bucket", "s3:ListBucket"),
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("data_source", "kendra:StartDataSourceSyncJob", when="data_source"),
    ),
    "process_batch": (
        *calls("ingestion_object", "s3:GetObject"),
        *calls("reports_bucket", "s3:ListBucket"),  # a retried item: NoSuchKey for a part not done yet
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("index", "kendra:BatchPutDocument", "kendra:BatchDeleteDocument", "kendra:DescribeIndex",
               "kendra:BatchGetDocumentStatus"),  # status: the Catch settles unfinished parts
        *calls("lock_table", "dynamodb:GetItem", "dynamodb:PutItem"),  # a run that found the index full
        *calls("documents_table", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem"),  # owners; settling
        *calls("kendra_role", "iam:PassRole", when="s3"),
    ),
    "verify_indexing": (
        *calls("reports_bucket", "s3:ListBucket"),
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("index", "kendra:BatchGetDocumentStatus"),
        *calls("documents_table", "dynamodb:BatchWriteItem"),
    ),
    "aggregate_failures": (
        *calls("reports_bucket", "s3:ListBucket"),
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("ingestion_bucket", "s3:ListBucket"),  # NoSuchKey (not AccessDenied) for an archived manifest
        *calls("ingestion_object", "s3:GetObject", "s3:DeleteObject"),
        *calls("data_source", "kendra:StopDataSourceSyncJob", when="data_source"),
    ),
    "release_lock": calls("lock_table", "dynamodb:DeleteItem"),
    "finish_abandoned": (
        *calls("reports_bucket", "s3:ListBucket"),
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("ingestion_bucket", "s3:ListBucket"),
        *calls("ingestion_object", "s3:GetObject", "s3:DeleteObject"),
        *calls("lock_table", "dynamodb:GetItem", "dynamodb:DeleteItem"),
        *calls("topic", "sns:Publish"),
        *calls("data_source", "kendra:StopDataSourceSyncJob", when="data_source"),
    ),
    "state_machine": (
        *calls("functions", "lambda:InvokeFunction"),
        *calls("topic", "sns:Publish"),
        *calls("reports_object", "s3:GetObject"),
        *calls("state_machine", "states:StartExecution"),
        *calls("child_execution", "states:DescribeExecution", "states:StopExecution"),
    ),
    "manifest_rule": calls("state_machine", "states:StartExecution"),
}

SQS: dict[str, tuple[Call, ...]] = {
    "producer": (
        *calls("ingestion_bucket", "s3:ListBucket"),
        *calls("ingestion_object", "s3:GetObject"),
        *calls("lock_table", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
        *calls("documents_table", "dynamodb:BatchGetItem"),
        *calls("documents_by_source", "dynamodb:Query"),
        *calls("put_queue", "sqs:SendMessage"),
        *calls("delete_queue", "sqs:SendMessage"),
        *calls("reports_bucket", "s3:ListBucket"),
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("summarizer", "lambda:InvokeFunction"),
        *calls("data_source", "kendra:StartDataSourceSyncJob", when="data_source"),
    ),
    "put_worker": (
        *calls("ingestion_object", "s3:GetObject"),
        *calls("index", "kendra:BatchPutDocument", "kendra:DescribeIndex",
               "kendra:BatchGetDocumentStatus"),  # status: what a full index already holds
        *calls("lock_table", *LOCK_WRITE),
        *calls("documents_table", "dynamodb:BatchWriteItem"),
        *calls("documents_table", "dynamodb:BatchGetItem", when="sources"),  # owners, before sending
        *calls("reports_object", "s3:PutObject"),
        *calls("put_queue", *CONSUME),
        *calls("summarizer", "lambda:InvokeFunction"),
        *calls("kendra_role", "iam:PassRole", when="s3"),
    ),
    "del_worker": (
        *calls("index", "kendra:BatchDeleteDocument"),
        *calls("lock_table", *LOCK_WRITE),
        *calls("documents_table", "dynamodb:BatchWriteItem"),
        *calls("documents_table", "dynamodb:BatchGetItem", when="sources"),  # owners, before sending
        *calls("reports_object", "s3:PutObject"),
        *calls("delete_queue", *CONSUME),
        *calls("summarizer", "lambda:InvokeFunction"),
    ),
    "dead_letter": (
        *calls("put_dlq", *CONSUME),
        *calls("delete_dlq", *CONSUME),
        *calls("lock_table", *LOCK_WRITE),
        *calls("reports_object", "s3:PutObject"),
        *calls("summarizer", "lambda:InvokeFunction"),
    ),
    "summarizer": (
        *calls("reports_bucket", "s3:ListBucket"),
        *calls("reports_object", "s3:GetObject", "s3:PutObject"),
        *calls("ingestion_bucket", "s3:ListBucket"),
        *calls("ingestion_object", "s3:GetObject", "s3:DeleteObject"),
        *calls("lock_table", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
        *calls("topic", "sns:Publish"),
        *calls("index", "kendra:BatchGetDocumentStatus"),
        *calls("documents_table", "dynamodb:BatchWriteItem"),
        *calls("producer", "lambda:InvokeFunction"),
        *calls("data_source", "kendra:StopDataSourceSyncJob", when="data_source"),
    ),
    "watchdog": (
        *calls("lock_table", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:DeleteItem"),
        *calls("summarizer", "lambda:InvokeFunction"),
        *calls("producer", "lambda:InvokeFunction"),
    ),
}

#: Resources encrypted with the stack key when encryption=kms: using them needs the key too.
ENCRYPTED = {
    "ingestion_object": "kms:Decrypt",
    "reports_object": "kms:Decrypt",
    "lock_table": "kms:Decrypt",
    "documents_table": "kms:Decrypt",
    "topic": "kms:GenerateDataKey",
    "put_queue": "kms:GenerateDataKey",
    "delete_queue": "kms:GenerateDataKey",
    "put_dlq": "kms:Decrypt",
    "delete_dlq": "kms:Decrypt",
}

DECLARED = {"sfn": SFN, "sqs": SQS}
