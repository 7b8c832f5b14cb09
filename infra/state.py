"""DynamoDB: the lock table (one job per source at a time, job and part records) and the documents
table (fingerprints and the inventory of what is indexed, per source)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: The TTL attribute both tables use (epoch seconds). TTL deletes late, so code checks expiry itself.
TTL_ATTRIBUTE = "expiresAt"
#: The documents table's index by source: what a source has in the index.
BY_SOURCE_INDEX = "bySource"


@dataclass(frozen=True, kw_only=True)
class StateArgs:
    """``kms_key_arn`` None means DynamoDB's default encryption at rest (AWS owned key)."""

    kms_key_arn: pulumi.Output[str] | None = None
    #: ``protectData``: tables are ``protect``ed, retained on delete and have deletion protection.
    protect: bool = False


class State(pulumi.ComponentResource):
    """Two on-demand tables with point-in-time recovery, TTL and encryption at rest; with ``protect``
    neither ``pulumi destroy`` nor a replacement deletes them (the ledger is the index's only inventory)."""

    lock_table: aws.dynamodb.Table
    documents_table: aws.dynamodb.Table

    def __init__(self, name: str, args: StateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:State", name, None, opts)
        self._args = args
        self.lock_table = self._table(f"{name}-lock", hash_key="pk", attributes={"pk": "S"})
        self.documents_table = self._table(
            f"{name}-documents",
            hash_key="documentId",
            attributes={"documentId": "S", "source": "S"},
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=BY_SOURCE_INDEX,
                    projection_type="ALL",
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name="source", key_type="HASH"
                        ),
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name="documentId", key_type="RANGE"
                        ),
                    ],
                )
            ],
        )
        self.register_outputs(
            {"lock_table": self.lock_table.name, "documents_table": self.documents_table.name}
        )

    def _table(
        self, name: str, *, hash_key: str, attributes: dict[str, str], **extra: object
    ) -> aws.dynamodb.Table:
        key = self._args.kms_key_arn
        return aws.dynamodb.Table(
            name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=hash_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=n, type=t) for n, t in attributes.items()],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=TTL_ATTRIBUTE, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=(
                aws.dynamodb.TableServerSideEncryptionArgs(enabled=True, kms_key_arn=key)
                if key is not None
                else None
            ),
            deletion_protection_enabled=self._args.protect,
            opts=pulumi.ResourceOptions(
                parent=self, protect=self._args.protect, retain_on_delete=self._args.protect
            ),
            **extra,  # type: ignore[arg-type]
        )
