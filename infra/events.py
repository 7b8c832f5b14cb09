"""EventBridge wiring both options share: the manifest rule and Lambda targets."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

#: The key every job ends with; its creation starts the job.
MANIFEST_KEY_WILDCARD = "*_control/manifest.json"
EVENTS_PRINCIPAL = "events.amazonaws.com"


def manifest_rule(name: str, bucket: aws.s3.Bucket, *, parent: pulumi.Resource) -> aws.cloudwatch.EventRule:
    """A rule matching ``Object Created`` of ``<prefix>/_control/manifest.json`` in ``bucket``."""
    pattern = pulumi.Output.json_dumps(
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {
                "bucket": {"name": [bucket.bucket]},
                "object": {"key": [{"wildcard": MANIFEST_KEY_WILDCARD}]},
            },
        }
    )
    return aws.cloudwatch.EventRule(
        name,
        description="A job's manifest was written: start the job",
        event_pattern=pattern,
        state="ENABLED",
        opts=pulumi.ResourceOptions(parent=parent),
    )


def lambda_target(
    name: str, rule: aws.cloudwatch.EventRule, function: aws.lambda_.Function, *, parent: pulumi.Resource
) -> aws.cloudwatch.EventTarget:
    """``rule`` invokes ``function`` with the event itself; the permission is scoped to the rule."""
    permission = aws.lambda_.Permission(
        f"{name}-permission",
        action="lambda:InvokeFunction",
        function=function.name,
        principal=EVENTS_PRINCIPAL,
        source_arn=rule.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return aws.cloudwatch.EventTarget(
        f"{name}-target",
        rule=rule.name,
        arn=function.arn,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[permission]),
    )
