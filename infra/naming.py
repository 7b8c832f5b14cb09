"""Physical names: readable, derived from project and stack, and always within AWS length limits."""

from __future__ import annotations

import hashlib
import re

import pulumi

#: Lambda function names (and so ``/aws/lambda/<name>`` log groups) are at most 64 characters.
MAX_FUNCTION_NAME_LENGTH = 64
#: SQS queue names, ``.fifo`` suffix included, are at most 80 characters.
MAX_QUEUE_NAME_LENGTH = 80
#: Step Functions state machine names are at most 80 characters.
MAX_STATE_MACHINE_NAME_LENGTH = 80
#: CloudWatch dashboard names are at most 255 characters (letters, digits, ``-``, ``_``).
MAX_DASHBOARD_NAME_LENGTH = 255
#: CloudWatch alarm names are at most 255 characters.
MAX_ALARM_NAME_LENGTH = 255

_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_DIGEST_LENGTH = 6


def physical_name(prefix: str, suffix: str, *, max_length: int) -> str:
    """``<prefix>-<suffix>`` with unsafe characters replaced by ``-``; a too long prefix is shortened
    and given a short digest of the full prefix, so names stay unique per stack.

    Example::

        physical_name("kendra-ingestion-sfn", "process-batch", max_length=64)
        # 'kendra-ingestion-sfn-process-batch'
    """
    clean_prefix = _UNSAFE.sub("-", prefix).strip("-")
    clean_suffix = _UNSAFE.sub("-", suffix).strip("-")
    name = f"{clean_prefix}-{clean_suffix}"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(clean_prefix.encode()).hexdigest()[:_DIGEST_LENGTH]
    room = max_length - len(clean_suffix) - len(digest) - 2
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for a prefix within {max_length} characters")
    return f"{clean_prefix[:room].rstrip('-')}-{digest}-{clean_suffix}"


#: S3 bucket names: 3-63 characters, lowercase letters, digits and ``-`` (globally unique).
MAX_BUCKET_NAME_LENGTH = 63
#: IAM role names and EventBridge rule names are at most 64 characters.
MAX_ROLE_NAME_LENGTH = 64
MAX_EVENT_RULE_NAME_LENGTH = 64
#: Alarm and table names are at most 255 characters; topic names 256.
MAX_ALARM_NAME_LENGTH = 255
MAX_TABLE_NAME_LENGTH = 255
MAX_TOPIC_NAME_LENGTH = 256

#: Resource types the component names itself (``name`` input, length limit) when a declaration gives no name:
#: without it the provider would autoname them from the logical name alone (no project, no stack).
NAMED_BY_COMPONENT: dict[str, int] = {
    "aws:iam/role:Role": MAX_ROLE_NAME_LENGTH,
    "aws:cloudwatch/eventRule:EventRule": MAX_EVENT_RULE_NAME_LENGTH,
    "aws:cloudwatch/metricAlarm:MetricAlarm": MAX_ALARM_NAME_LENGTH,
    "aws:dynamodb/table:Table": MAX_TABLE_NAME_LENGTH,
    "aws:sns/topic:Topic": MAX_TOPIC_NAME_LENGTH,
}
#: Where data lives: a new physical name would replace the resource (and protectData forbids that), so a
#: stack created before names carried project and stack keeps the name it has (``ignore_changes``).
KEEP_EXISTING_NAME: dict[str, str] = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:dynamodb/table:Table": "name",
    "aws:sns/topic:Topic": "name",
}


def bucket_name(prefix: str, label: str, account_id: str, region: str) -> str:
    """``<prefix>-<label>-<account>-<region>``, lowercase, within 63 characters: bucket names are global, so
    the account and region keep two deployments of one project and stack apart.

    Example::

        bucket_name("kendra-ingestion-sfn", "ingestion", "123456789012", "us-east-1")
        # 'kendra-ingestion-sfn-ingestion-123456789012-us-east-1'
    """
    return physical_name(prefix.lower(), f"{label}-{account_id}-{region}".lower(), max_length=MAX_BUCKET_NAME_LENGTH)


def child_suffix(instance: str, logical_name: str) -> str:
    """A child's logical name without its component's name (``kendra-ingestion-storage`` -> ``storage``)."""
    return logical_name.removeprefix(f"{instance}-")


def physical_names_transform(prefix: str, instance: str) -> pulumi.ResourceTransform:
    """Name every resource of :data:`NAMED_BY_COMPONENT` that has no name ``<prefix>-<logical suffix>``
    and keep an existing stack's data resources on the names they have (:data:`KEEP_EXISTING_NAME`)."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom:
            return None
        props, opts = args.props, args.opts
        limit = NAMED_BY_COMPONENT.get(args.type_)
        if limit is not None and not props.get("name"):
            props = {**props, "name": physical_name(prefix, child_suffix(instance, args.name), max_length=limit)}
        keep = KEEP_EXISTING_NAME.get(args.type_)
        if keep is not None:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=[keep]))
        if props is args.props and opts is args.opts:
            return None
        return pulumi.ResourceTransformResult(props=props, opts=opts)

    return transform


def legacy_aliases_transform(instance: str) -> pulumi.ResourceTransform:
    """Alias each child ``<instance>-<x>`` to ``x``, its logical name before child names carried the
    component's name (0.1), so a stack deployed then updates in place instead of replacing everything."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        old = child_suffix(instance, args.name)
        if old == args.name:
            return None
        alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old)])
        return pulumi.ResourceTransformResult(props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, alias))

    return transform
