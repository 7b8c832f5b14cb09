"""Option sqs: a producer packs the job into messages on two FIFO queues (put, delete); workers with
bounded concurrency call Kendra; a dead-letter handler turns lost parts into failures; a summarizer
merges the part reports and notifies; a watchdog finishes jobs whose parts went quiet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.contract import settings
from infra.defaults import (
    DLQ_RETENTION_SECONDS,
    KMS_DATA_KEY_REUSE_SECONDS,
    MAX_FIFO_BATCH_SIZE,
    MAX_RECEIVE_COUNT,
    OLDEST_MESSAGE_AGE_ALARM_SECONDS,
    QUEUE_RETENTION_SECONDS,
    VISIBILITY_TIMEOUT_FACTOR,
)
from infra.events import lambda_target, manifest_rule
from infra.function import FunctionSpec, LambdaFunction
from infra.iam import policy_document, tls_only_statement
from infra.links import CONSUME_QUEUE, function, function_named, queue
from infra.monitoring import Graph, Line, Watch
from infra.naming import MAX_FUNCTION_NAME_LENGTH, MAX_QUEUE_NAME_LENGTH, physical_name
from infra.pipeline import Pipeline, PipelineArgs

FIFO_SUFFIX = ".fifo"
#: Worker timeouts drive their queue's visibility timeout, so they are named once here.
PUT_WORKER_TIMEOUT_S = 300
DEL_WORKER_TIMEOUT_S = 300
DEAD_LETTER_TIMEOUT_S = 60
#: Dead letters are rare; two concurrent handlers (the event source minimum) are plenty.
DEAD_LETTER_CONCURRENCY = 2
WATCHDOG_SCHEDULE = "rate(5 minutes)"

GET, PUT, DELETE, LIST = "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"
SEND = ("sqs:SendMessage",)
LOCK_WRITE = ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem")


@dataclass(frozen=True, kw_only=True)
class WorkQueue:
    """A FIFO work queue and its dead-letter queue."""

    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue


class SqsPipeline(Pipeline):
    """Queues, functions, event source mappings and the two EventBridge rules."""

    put: WorkQueue
    delete: WorkQueue

    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:SqsPipeline", name, args, opts)
        links, config = args.links, args.config
        self.put = self._work_queue("put", worker_timeout_s=PUT_WORKER_TIMEOUT_S)
        self.delete = self._work_queue("delete", worker_timeout_s=DEL_WORKER_TIMEOUT_S)
        kms = links.kms
        # The summarizer and the watchdog restart the producer of a job that waited for its source, and the
        # producer invokes the summarizer: the producer is named, not referenced, to break the cycle.
        start_producer = function_named(
            physical_name(args.prefix, "producer", max_length=MAX_FUNCTION_NAME_LENGTH),
            region=args.region, account_id=args.account_id, env="PRODUCER_FUNCTION", label="producer",
        )

        summarizer = self.add_function(
            FunctionSpec(
                handler="summarizer",
                memory_mb=1024,
                timeout_s=900,
                links=(
                    links.settings(),
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    # ListBucket: a retried summary finds the manifest already archived (NoSuchKey).
                    links.ingestion(bucket_actions=(LIST,), objects=(GET, DELETE)),
                    links.lock("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
                    links.notifications(),
                    # StopDataSourceSyncJob: ends the job's data-source sync job (kendraDataSourceId).
                    links.index("kendra:BatchGetDocumentStatus", sync=("kendra:StopDataSourceSyncJob",)),
                    links.documents("dynamodb:BatchWriteItem"),  # the ledger writes and deletes in batches
                    start_producer,
                ),
            )
        )
        summarize = function(summarizer.function, env="SUMMARIZER_FUNCTION", label="summarizer")

        producer = self.add_function(
            FunctionSpec(
                handler="producer",
                memory_mb=1024,
                timeout_s=900,
                links=(
                    links.settings(),
                    links.ingestion(bucket_actions=(LIST,), objects=(GET,)),
                    links.lock("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
                    links.documents("dynamodb:BatchGetItem"),
                    links.inventory(),  # mode "full": the source's documents absent from the job
                    queue(self.put.queue, env="PUT_QUEUE_URL", label="put", actions=SEND, kms=kms),
                    queue(self.delete.queue, env="DELETE_QUEUE_URL", label="delete", actions=SEND, kms=kms),
                    # A retried producer reads back its saved plan (job.json, parts.json); ListBucket makes a
                    # missing key NoSuchKey rather than AccessDenied.
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    # StartDataSourceSyncJob: wraps the job in a data-source sync job (kendraDataSourceId).
                    links.index(sync=("kendra:StartDataSourceSyncJob",)),
                    summarize,
                ),
            )
        )
        put_worker = self.add_function(
            FunctionSpec(
                handler="put_worker",
                memory_mb=1024,
                timeout_s=PUT_WORKER_TIMEOUT_S,
                links=(
                    links.settings(),
                    links.ingestion(objects=(GET,)),
                    # DescribeIndex: the index's DATE_VALUE fields, to type the documents' attributes.
                    # BatchGetDocumentStatus: which documents a full index already holds (a redelivered
                    # part re-puts those).
                    links.index("kendra:BatchPutDocument", "kendra:DescribeIndex", "kendra:BatchGetDocumentStatus",
                                pass_role=True),
                    links.lock(*LOCK_WRITE),
                    links.sender_documents(),
                    links.reports(objects=(PUT,)),
                    queue(self.put.queue, env=None, label="put", actions=CONSUME_QUEUE, kms=kms),
                    summarize,
                    links.quota(),
                ),
            )
        )
        del_worker = self.add_function(
            FunctionSpec(
                handler="del_worker",
                memory_mb=512,
                timeout_s=DEL_WORKER_TIMEOUT_S,
                links=(
                    links.settings(),
                    links.ingestion(),
                    links.index("kendra:BatchDeleteDocument"),
                    links.lock(*LOCK_WRITE),
                    links.sender_documents(),
                    links.reports(objects=(PUT,)),
                    queue(self.delete.queue, env=None, label="delete", actions=CONSUME_QUEUE, kms=kms),
                    summarize,
                    links.quota(),
                ),
            )
        )
        dead_letter = self.add_function(
            FunctionSpec(
                handler="dead_letter",
                memory_mb=256,
                timeout_s=DEAD_LETTER_TIMEOUT_S,
                links=(
                    links.settings(),
                    links.ingestion(),
                    links.reports(objects=(PUT,)),
                    links.lock(*LOCK_WRITE),
                    # A lost part is settled from what Kendra holds, and what it put is recorded.
                    links.index("kendra:BatchGetDocumentStatus"),
                    links.documents("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"),
                    queue(self.put.dlq, env=None, label="putDeadLetter", actions=CONSUME_QUEUE, kms=kms),
                    queue(
                        self.delete.dlq, env=None, label="deleteDeadLetter", actions=CONSUME_QUEUE, kms=kms
                    ),
                    summarize,
                ),
            )
        )
        watchdog = self.add_function(
            FunctionSpec(
                handler="watchdog",
                memory_mb=256,
                timeout_s=60,
                links=(
                    links.settings(),
                    links.ingestion(),
                    links.reports(),
                    # DeleteItem: releases a finished run's leftover source lock.
                    links.lock("dynamodb:Scan", "dynamodb:GetItem", "dynamodb:DeleteItem"),
                    summarize,
                    start_producer,
                ),
            )
        )

        self._consume("put", self.put.queue, put_worker, config.put_concurrency)
        self._consume("delete", self.delete.queue, del_worker, config.delete_concurrency)
        self._consume("put-dlq", self.put.dlq, dead_letter, DEAD_LETTER_CONCURRENCY)
        self._consume("delete-dlq", self.delete.dlq, dead_letter, DEAD_LETTER_CONCURRENCY)

        lambda_target(
            f"{name}-manifest",
            manifest_rule(f"{name}-manifest", links.ingestion_bucket, parent=self),
            producer.function,
            parent=self,
        )
        schedule = aws.cloudwatch.EventRule(
            f"{name}-watchdog",
            schedule_expression=WATCHDOG_SCHEDULE,
            description="Finish jobs whose parts went quiet",
            state="ENABLED",
            opts=pulumi.ResourceOptions(parent=self),
        )
        lambda_target(f"{name}-watchdog", schedule, watchdog.function, parent=self)

        for label, work in (("put", self.put), ("delete", self.delete)):
            self.watches += (
                Watch(
                    name=f"{label}-dlq-depth",
                    description=f"{label} dead letters waiting",
                    namespace="AWS/SQS",
                    metric_name="ApproximateNumberOfMessagesVisible",
                    dimensions={"QueueName": work.dlq.name},
                    statistic="Maximum",
                ),
                Watch(
                    name=f"{label}-oldest-message",
                    description=f"{label} queue: a message older than {OLDEST_MESSAGE_AGE_ALARM_SECONDS} s",
                    namespace="AWS/SQS",
                    metric_name="ApproximateAgeOfOldestMessage",
                    dimensions={"QueueName": work.queue.name},
                    statistic="Maximum",
                    threshold=float(OLDEST_MESSAGE_AGE_ALARM_SECONDS),
                ),
            )
        # A dead letter no job can be identified from is quarantined in the reports bucket and counted:
        # the DLQ-depth alarm cannot see it (it was acknowledged), so this metric must alarm instead.
        self.watches += (
            Watch(
                name="unreadable-dead-letters",
                description="a dead letter that names no known job was quarantined under _deadletters/",
                namespace=args.links.metrics_namespace,
                metric_name=settings.UNREADABLE_DEAD_LETTERS,
                dimensions={"service": settings.METRICS_SERVICE},
            ),
        )
        queues = {"put": self.put.queue, "delete": self.delete.queue}
        dlqs = {"put DLQ": self.put.dlq, "delete DLQ": self.delete.dlq}

        def lines(metric: str, targets: dict[str, aws.sqs.Queue]) -> tuple[Line, ...]:
            return tuple(Line(namespace="AWS/SQS", metric_name=metric, dimensions={"QueueName": q.name},
                              statistic="Maximum", label=label) for label, q in targets.items())

        self.graphs += (
            Graph(title="Queue depth (messages waiting)",
                  lines=lines("ApproximateNumberOfMessagesVisible", {**queues, **dlqs})),
            Graph(title="Messages in flight", lines=lines("ApproximateNumberOfMessagesNotVisible", queues)),
            Graph(title="Oldest message age (s)", lines=lines("ApproximateAgeOfOldestMessage", queues)),
        )
        self.outputs = {
            "put_queue_url": self.put.queue.url,
            "delete_queue_url": self.delete.queue.url,
            "put_dlq_url": self.put.dlq.url,
            "delete_dlq_url": self.delete.dlq.url,
        }
        self.register_outputs(self.outputs)

    def _fifo_queue(self, suffix: str, **settings: object) -> aws.sqs.Queue:
        args = self._args
        key = args.links.key_arn
        encryption: dict[str, object] = (
            {"kms_master_key_id": key, "kms_data_key_reuse_period_seconds": KMS_DATA_KEY_REUSE_SECONDS}
            if key is not None
            else {"sqs_managed_sse_enabled": True}
        )
        name = (
            physical_name(args.prefix, suffix, max_length=MAX_QUEUE_NAME_LENGTH - len(FIFO_SUFFIX))
            + FIFO_SUFFIX
        )
        created = aws.sqs.Queue(
            f"{self._name}-{suffix}",
            name=name,
            fifo_queue=True,
            # The producer sets MessageDeduplicationId (jobId + payload digest): content-based dedup off.
            content_based_deduplication=False,
            **encryption,
            **settings,  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.sqs.QueuePolicy(
            f"{self._name}-{suffix}-tls-only",
            queue_url=created.url,
            policy=policy_document([tls_only_statement(("sqs:*",), [created.arn])]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return created

    def _work_queue(self, label: str, *, worker_timeout_s: int) -> WorkQueue:
        dlq = self._fifo_queue(
            f"{label}-dlq",
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * DEAD_LETTER_TIMEOUT_S,
        )
        work = self._fifo_queue(
            label,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * worker_timeout_s,
            redrive_policy=dlq.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
            ),
        )
        return WorkQueue(queue=work, dlq=dlq)

    def _consume(self, label: str, source: aws.sqs.Queue, consumer: LambdaFunction, concurrency: int) -> None:
        aws.lambda_.EventSourceMapping(
            f"{self._name}-{label}-mapping",
            event_source_arn=source.arn,
            function_name=consumer.function.arn,
            batch_size=MAX_FIFO_BATCH_SIZE,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=concurrency),
            opts=pulumi.ResourceOptions(parent=self),
        )
