"""The notification topic: one message per job, and every alarm. Encrypted, TLS only, email subscribers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.defaults import SNS_MANAGED_KEY
from infra.iam import Statement, policy_document, tls_only_statement


@dataclass(frozen=True, kw_only=True)
class NotificationsArgs:
    """``kms_key_arn`` None means the AWS managed key ``alias/aws/sns``."""

    emails: tuple[str, ...]
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Output[str] | None = None


class Notifications(pulumi.ComponentResource):
    """Topic, its policy and one email subscription per address."""

    topic: aws.sns.Topic

    def __init__(
        self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kendra-ingestion:index:Notifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(name, kms_master_key_id=args.kms_key_arn or SNS_MANAGED_KEY, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=self.topic.arn,
            opts=child,
            policy=policy_document(
                [
                    tls_only_statement(("sns:Publish", "sns:Subscribe"), [self.topic.arn]),
                    # Replacing the default topic policy drops its grant to services: alarms need it back.
                    Statement(
                        sid="CloudWatchAlarmsPublish",
                        principal={"Service": "cloudwatch.amazonaws.com"},
                        actions=("sns:Publish",),
                        resources=(self.topic.arn,),
                        condition={"StringEquals": {"aws:SourceAccount": args.account_id}},
                    ),
                ]
            ),
        )
        for email in args.emails:
            # Named by a digest of the address: removing one address never replaces the others.
            digest = hashlib.sha256(email.lower().encode()).hexdigest()[:8]
            aws.sns.TopicSubscription(
                f"{name}-email-{digest}", topic=self.topic.arn, protocol="email", endpoint=email, opts=child
            )
        self.register_outputs({"arn": self.topic.arn})
