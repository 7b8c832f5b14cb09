"""encryption=kms: one customer managed key for the stack's buckets, tables, queues and topic.

The key policy is the minimum that works:
- the account root may administer and use the key, which delegates use to IAM: each role's own
  policy then grants kms:Decrypt / kms:GenerateDataKey (see ``infra/links.py``). S3, SQS, SNS and
  DynamoDB use the key on behalf of those callers (DynamoDB through grants it creates as the table
  owner), so none of them needs its own statement;
- CloudWatch alarms publish to the encrypted topic as the ``cloudwatch.amazonaws.com`` service, with no
  IAM role of ours, so that principal is named, limited to this account's alarms.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.defaults import KMS_DELETION_WINDOW_DAYS
from infra.iam import Statement, policy_document

#: Key-policy statement ids; in a key policy ``Resource: "*"`` means "this key" (checked by policies.py).
ROOT_SID = "AccountAdministersKey"
ALARMS_SID = "CloudWatchAlarmsPublishToEncryptedTopic"


@dataclass(frozen=True, kw_only=True)
class StackKeyArgs:
    """Whose key it is and what its alias is."""

    account_id: pulumi.Input[str]
    alias: str


class StackKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly rotation, and its alias."""

    key: aws.kms.Key
    alias: aws.kms.Alias

    def __init__(self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:StackKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        statements = [
            Statement(
                sid=ROOT_SID,
                principal={"AWS": pulumi.Output.format("arn:aws:iam::{0}:root", args.account_id)},
                # kms:* for the root only: AWS's default; anything less can leave a key nobody manages.
                actions=("kms:*",),
                resources=("*",),
            ),
            Statement(
                sid=ALARMS_SID,
                principal={"Service": "cloudwatch.amazonaws.com"},
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                resources=("*",),
                condition={"StringEquals": {"aws:SourceAccount": args.account_id}},
            ),
        ]
        self.key = aws.kms.Key(
            name,
            description="kendra-ingestion: buckets, tables, queues and topic",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=policy_document(statements),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias", name=f"alias/{args.alias}", target_key_id=self.key.key_id, opts=child
        )
        self.register_outputs({"arn": self.key.arn})
