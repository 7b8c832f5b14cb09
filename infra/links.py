"""Links: one declaration gives a function both the environment value and the IAM statements it needs
to use a resource (a bucket, table, topic, queue, another function, the Kendra index).

Example::

    links = StackLinks(...)
    FunctionSpec(handler="load_manifest", memory_mb=256, timeout_s=60,
                 links=(links.settings(), links.ingestion(objects=("s3:GetObject",)), links.reports()))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig
from infra.contract import settings
from infra.iam import Statement
from infra.state import BY_SOURCE_INDEX

if TYPE_CHECKING:
    from infra.kendra import KendraTarget

#: What a consumer of an SQS queue (an event source mapping) needs on the queue: Lambda polls with the
#: function's role (the Lambda developer guide's list, as in AWSLambdaSQSQueueExecutionRole; it never
#: calls ChangeMessageVisibility: a returned message reappears when its visibility timeout ends).
CONSUME_QUEUE = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)
#: What a caller of a KMS-encrypted resource needs on the key (reads decrypt, writes generate data keys).
USE_KEY = ("kms:Decrypt", "kms:GenerateDataKey")


@dataclass(frozen=True, kw_only=True)
class Link:
    """Environment variables a function receives and the statements that let it use the resource."""

    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    statements: tuple[Statement, ...] = ()


def use_key(key_arn: pulumi.Output[str] | None) -> tuple[Statement, ...]:
    """The statement for using the stack key, or nothing without one. Make it once per stack and share
    the object: a role then holds it once, however many encrypted resources it links to."""
    if key_arn is None:
        return ()
    return (Statement(sid="UseStackKey", actions=USE_KEY, resources=(key_arn,)),)


def _sid(*parts: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


#: The only objects of the ingestion bucket the pipeline deletes: manifests, once archived.
DELETE_OBJECT = "s3:DeleteObject"
MANIFEST_OBJECT_PATTERN = "*/_control/manifest.json"


def bucket(
    target: aws.s3.Bucket,
    *,
    env: str,
    label: str,
    bucket_actions: tuple[str, ...] = (),
    object_actions: tuple[str, ...] = (),
    kms: tuple[Statement, ...] = (),
) -> Link:
    """A bucket: ``bucket_actions`` (e.g. s3:ListBucket) on the bucket, ``object_actions`` on its objects."""
    statements = []
    if bucket_actions:
        statements.append(
            Statement(sid=_sid(label, "Bucket"), actions=bucket_actions, resources=(target.arn,))
        )
    if object_actions:
        statements.append(
            Statement(
                sid=_sid(label, "Objects"),
                actions=object_actions,
                resources=(pulumi.Output.concat(target.arn, "/*"),),
            )
        )
    return Link(env={env: target.bucket}, statements=(*statements, *(kms if statements else ())))


def table(
    target: aws.dynamodb.Table,
    *,
    env: str,
    label: str,
    actions: tuple[str, ...] = (),
    kms: tuple[Statement, ...] = (),
) -> Link:
    """A DynamoDB table: ``actions`` on the table itself (no index access unless asked for)."""
    if not actions:
        return Link(env={env: target.name})
    return Link(
        env={env: target.name},
        statements=(Statement(sid=_sid(label, "Table"), actions=actions, resources=(target.arn,)), *kms),
    )


def topic(target: aws.sns.Topic, *, env: str, kms: tuple[Statement, ...] = ()) -> Link:
    """An SNS topic the function publishes to."""
    return Link(
        env={env: target.arn},
        statements=(
            Statement(sid="PublishNotifications", actions=("sns:Publish",), resources=(target.arn,)),
            *kms,
        ),
    )


def queue(
    target: aws.sqs.Queue,
    *,
    env: str | None,
    label: str,
    actions: tuple[str, ...],
    kms: tuple[Statement, ...] = (),
) -> Link:
    """An SQS queue: its URL in ``env`` (if any) and ``actions`` on it."""
    return Link(
        env={env: target.url} if env else {},
        statements=(Statement(sid=_sid(label, "Queue"), actions=actions, resources=(target.arn,)), *kms),
    )


def function(target: aws.lambda_.Function, *, env: str, label: str) -> Link:
    """Another Lambda function this one invokes by name."""
    return Link(
        env={env: target.name},
        statements=(
            Statement(sid=_sid("Invoke", label), actions=("lambda:InvokeFunction",), resources=(target.arn,)),
        ),
    )


def function_named(
    name: str, *, region: pulumi.Input[str], account_id: pulumi.Input[str], env: str, label: str
) -> Link:
    """Another Lambda function this one invokes, by its deterministic name.

    Breaks the cycle of two functions that invoke each other (the sqs producer and summarizer): neither
    has to exist before the other's environment and policy can name it.
    """
    arn = pulumi.Output.format("arn:aws:lambda:{0}:{1}:function:{2}", region, account_id, name)
    return Link(
        env={env: name},
        statements=(Statement(sid=_sid("Invoke", label), actions=("lambda:InvokeFunction",), resources=(arn,)),),
    )


@dataclass(frozen=True, kw_only=True)
class StackLinks:
    """Link factories bound to the resources every pipeline shares."""

    config: StackConfig
    ingestion_bucket: aws.s3.Bucket
    reports_bucket: aws.s3.Bucket
    lock_table: aws.dynamodb.Table
    documents_table: aws.dynamodb.Table
    topic: aws.sns.Topic
    kendra: KendraTarget
    key_arn: pulumi.Output[str] | None = None
    kms: tuple[Statement, ...] = ()  # ``use_key(key_arn)``, made once
    topic_kms: tuple[Statement, ...] = ()  # ``use_key`` of the topic's key (a key of its own unless kms)
    metrics_namespace: str = settings.DEFAULT_METRICS_NAMESPACE  # ``settings.metrics_namespace(prefix)``

    def settings(self) -> Link:
        """Values of the stack configuration (no resource, no statement)."""
        c = self.config
        return Link(
            env={
                "OPTION": c.option,
                "SKIP_UNCHANGED": str(c.skip_unchanged).lower(),
                "VERIFY_INDEXING": str(c.verify_indexing).lower(),
                "VERIFY_TIMEOUT_SECONDS": str(c.verify_timeout_seconds),
                "MAX_DOCUMENT_BYTES": str(c.max_document_bytes),
                "MAX_REQUEST_BYTES": str(c.max_request_bytes),
                # One message group per unit of worker concurrency: concurrency = min(groups, maximum).
                "PUT_SHARDS": str(c.put_concurrency),
                "DELETE_SHARDS": str(c.delete_concurrency),
                # Only when configured: the planners then record it on every document they plan.
                **({"DEFAULT_LANGUAGE_CODE": c.default_language_code} if c.default_language_code else {}),
                # Registered sources (tenancy): only where configured, so an unset key changes nothing.
                **({"SOURCES": json.dumps(c.sources, sort_keys=True)} if c.sources else {}),
            }
        )

    def metrics(self) -> Link:
        """The stack's metric namespace (``POWERTOOLS_METRICS_NAMESPACE``); every function gets it.

        No statement: ``cloudwatch:PutMetricData`` is not needed, Powertools writes metrics as EMF log lines.
        """
        return Link(env={"POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace})

    def ingestion(self, *, bucket_actions: tuple[str, ...] = (), objects: tuple[str, ...] = ()) -> Link:
        """The ingestion bucket (``INGESTION_BUCKET``). ``s3:DeleteObject`` is granted on manifests only
        (``*/_control/manifest.json``): archiving a manifest is the only delete the pipeline makes there."""
        link = bucket(
            self.ingestion_bucket,
            env="INGESTION_BUCKET",
            label="ingestion",
            bucket_actions=bucket_actions,
            object_actions=tuple(a for a in objects if a != DELETE_OBJECT),
            kms=self.kms,
        )
        if DELETE_OBJECT not in objects:
            return link
        archive = Statement(
            sid="ArchiveManifests",
            actions=(DELETE_OBJECT,),
            resources=(pulumi.Output.concat(self.ingestion_bucket.arn, "/", MANIFEST_OBJECT_PATTERN),),
        )
        return Link(env=link.env, statements=(archive, *link.statements, *(() if link.statements else self.kms)))

    def reports(self, *, bucket_actions: tuple[str, ...] = (), objects: tuple[str, ...] = ()) -> Link:
        """The reports bucket (``REPORTS_BUCKET``)."""
        return bucket(
            self.reports_bucket,
            env="REPORTS_BUCKET",
            label="reports",
            bucket_actions=bucket_actions,
            object_actions=objects,
            kms=self.kms,
        )

    def lock(self, *actions: str) -> Link:
        """The lock table (``LOCK_TABLE``)."""
        return table(self.lock_table, env="LOCK_TABLE", label="lock", actions=actions, kms=self.kms)

    def quota(self) -> Link:
        """Pacing Kendra writes to ``kendraTps``: the shared counters live in the lock table.

        Nothing (no variable, no statement) when the stack sets no quota.
        """
        if self.config.kendra_tps is None:
            return Link(env={}, statements=())
        lock = self.lock("dynamodb:UpdateItem")
        return Link(env={**lock.env, "KENDRA_TPS": str(self.config.kendra_tps)}, statements=lock.statements)

    def documents(self, *actions: str) -> Link:
        """The documents table (``DOCUMENTS_TABLE``)."""
        return table(
            self.documents_table, env="DOCUMENTS_TABLE", label="documents", actions=actions, kms=self.kms
        )

    def inventory(self) -> Link:
        """Listing a source's documents (the documents table's ``bySource`` index): a ``mode: "full"``
        job deletes the indexed documents its prefix no longer holds. Pair with :meth:`documents`."""
        index_arn = pulumi.Output.concat(self.documents_table.arn, "/index/", BY_SOURCE_INDEX)
        return Link(
            env={"DOCUMENTS_TABLE": self.documents_table.name},
            statements=(Statement(sid="DocumentsBySource", actions=("dynamodb:Query",), resources=(index_arn,)),),
        )
    def sender_documents(self) -> Link:
        """The documents table of a function that sends parts: it records outcomes (BatchWriteItem) and,
        with registered sources, reads the owners of a part's documents right before sending it."""
        owners = ("dynamodb:BatchGetItem",) if self.config.sources else ()
        return self.documents("dynamodb:BatchWriteItem", *owners)

    def notifications(self) -> Link:
        """Publishing to the notification topic (``TOPIC_ARN``)."""
        return topic(self.topic, env="TOPIC_ARN", kms=self.topic_kms)

    def index(self, *actions: str, pass_role: bool = False, sync: bool | tuple[str, ...] = False) -> Link:
        """The Kendra index: ``actions`` scoped to the index ARN; ``pass_role`` adds iam:PassRole on the
        access role (documentMode s3); ``sync`` adds the data-source sync calls (kendraDataSourceId)."""
        return self.kendra.link(actions, pass_role=pass_role, sync=sync)
