"""The ingestion bucket (documents and manifests arrive here) and the reports bucket (reports and
archived manifests), both locked down the same way: no ACLs, no public access, TLS only, encrypted."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.defaults import ABORT_INCOMPLETE_UPLOAD_DAYS, ARCHIVE_PREFIX, NONCURRENT_VERSION_DAYS
from infra.iam import policy_document, tls_only_statement

Rule = aws.s3.BucketLifecycleConfigurationRuleArgs


@dataclass(frozen=True, kw_only=True)
class StorageArgs:
    """``kms_key_arn`` None means SSE-S3 (AES256)."""

    archive_expiration_days: int
    kms_key_arn: pulumi.Output[str] | None = None


def _everything(rule_id: str, **action: object) -> Rule:
    return Rule(
        id=rule_id,
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        **action,
    )  # type: ignore[arg-type]


#: Rules every bucket gets.
COMMON_RULES = (
    _everything(
        "abort-incomplete-multipart-uploads",
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS
        ),
    ),
    _everything(
        "expire-noncurrent-versions",
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=NONCURRENT_VERSION_DAYS
        ),
    ),
)


class Storage(pulumi.ComponentResource):
    """Two buckets; the ingestion bucket sends its events to EventBridge."""

    ingestion: aws.s3.Bucket
    reports: aws.s3.Bucket

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:Storage", name, None, opts)
        self._args = args
        self.ingestion = self._bucket(f"{name}-ingestion", COMMON_RULES, versioned=False)
        aws.s3.BucketNotification(
            f"{name}-ingestion-events",
            bucket=self.ingestion.id,
            eventbridge=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        archive_rule = Rule(
            id="expire-archived-manifests",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=ARCHIVE_PREFIX),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                days=args.archive_expiration_days
            ),
        )
        # Versioned: a report overwritten by a re-run stays recoverable for NONCURRENT_VERSION_DAYS.
        self.reports = self._bucket(f"{name}-reports", (archive_rule, *COMMON_RULES), versioned=True)
        self.register_outputs({"ingestion": self.ingestion.bucket, "reports": self.reports.bucket})

    def _bucket(self, name: str, rules: tuple[Rule, ...], *, versioned: bool) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(name, opts=child)
        aws.s3.BucketOwnershipControls(  # ACLs disabled: the bucket owner owns every object
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=policy_document(
                [tls_only_statement(("s3:*",), [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")])]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        key = self._args.kms_key_arn
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms" if key is not None else "AES256", kms_master_key_id=key
                    ),
                    bucket_key_enabled=key is not None,  # an S3 bucket key cuts KMS requests
                )
            ],
            opts=child,
        )
        depends_on: list[pulumi.Resource] = []
        if versioned:
            depends_on.append(
                aws.s3.BucketVersioning(
                    f"{name}-versioning",
                    bucket=bucket.id,
                    versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                        status="Enabled"
                    ),
                    opts=child,
                )
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=list(rules),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        return bucket
