"""The Kendra index this stack writes to: its ARN, the optional CUSTOM data source and, for
documentMode s3, the access role Kendra assumes to read documents from the ingestion bucket.

Every Kendra permission the stack grants is scoped to ``arn:aws:kendra:<region>:<account>:index/<id>``
(and the data source under it); no statement names another index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, service_role
from infra.links import Link, bucket

KENDRA_PRINCIPAL = "kendra.amazonaws.com"
SYNC_ACTIONS = ("kendra:StartDataSourceSyncJob", "kendra:StopDataSourceSyncJob")


@dataclass(frozen=True, kw_only=True)
class KendraTargetArgs:
    """Where the index is and how documents reach it."""

    index_id: pulumi.Input[str]
    document_mode: str
    data_source_id: str | None
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    ingestion_bucket: aws.s3.Bucket
    kms: tuple[Statement, ...] = ()


class KendraTarget(pulumi.ComponentResource):
    """The index ARN, data source ARN and (documentMode s3) the Kendra access role."""

    index_arn: pulumi.Output[str]
    data_source_arn: pulumi.Output[str] | None
    access_role: aws.iam.Role | None

    def __init__(self, name: str, args: KendraTargetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:KendraTarget", name, None, opts)
        self._args = args
        self.index_arn = pulumi.Output.format(
            "arn:aws:kendra:{0}:{1}:index/{2}", args.region, args.account_id, args.index_id
        )
        self.data_source_arn = (
            pulumi.Output.concat(self.index_arn, "/data-source/", args.data_source_id)
            if args.data_source_id
            else None
        )
        self.access_role = None
        if args.document_mode == "s3":
            # Kendra fetches S3Path documents itself, with this role (an S3Path document needs a RoleArn).
            read = bucket(
                args.ingestion_bucket,
                env="INGESTION_BUCKET",
                label="ingestion",
                object_actions=("s3:GetObject",),
                kms=args.kms,
            )
            self.access_role = service_role(
                f"{name}-access",
                service=KENDRA_PRINCIPAL,
                statements=read.statements,
                parent=self,
                description="Lets Kendra read S3Path documents from the ingestion bucket",
                trust_condition={"StringEquals": {"aws:SourceAccount": args.account_id}},
            ).role
        self.register_outputs({"index_arn": self.index_arn})

    def link(
        self, actions: Sequence[str], *, pass_role: bool = False, sync: bool | Sequence[str] = False
    ) -> Link:
        """The index for one function: identity and mode in the environment, ``actions`` on the index.

        ``sync``: True for both data-source sync calls, or the ones the function makes (e.g. only
        ``kendra:StartDataSourceSyncJob``); granted only when a data source is configured."""
        args = self._args
        env: dict[str, pulumi.Input[str]] = {
            "KENDRA_INDEX_ID": args.index_id,
            "DOCUMENT_MODE": args.document_mode,
        }
        statements = []
        if actions:
            statements.append(
                Statement(sid="KendraIndex", actions=tuple(actions), resources=(self.index_arn,))
            )
        if self.access_role is not None:
            env["KENDRA_ROLE_ARN"] = self.access_role.arn
            if pass_role:
                statements.append(
                    Statement(
                        sid="PassKendraAccessRole",
                        actions=("iam:PassRole",),
                        resources=(self.access_role.arn,),
                        condition={"StringEquals": {"iam:PassedToService": KENDRA_PRINCIPAL}},
                    )
                )
        if self.data_source_arn is not None:
            env["KENDRA_DATA_SOURCE_ID"] = args.data_source_id  # type: ignore[assignment]
            if sync:
                statements.append(
                    Statement(
                        sid="KendraDataSourceSync",
                        actions=SYNC_ACTIONS if sync is True else tuple(sync),
                        resources=(self.index_arn, self.data_source_arn),
                    )
                )
        return Link(env=env, statements=tuple(statements))
