"""The ingestion bucket (documents and manifests arrive here) and the reports bucket (reports and
archived manifests), both locked down the same way: no ACLs, no public access, TLS only, encrypted.

With ``accessLogs`` both send S3 server access logs to a third bucket, locked down the same way; S3's
logging service writes there through its bucket policy (``logging.s3.amazonaws.com``, limited to each
source bucket by ``aws:SourceArn`` and to the account by ``aws:SourceAccount``), so no ACL is needed.
The logs bucket is SSE-S3 even with encryption=kms: S3 cannot deliver access logs to an SSE-KMS bucket.
With ``protectData`` every bucket is ``protect``ed and retained on delete: ``pulumi destroy``, a rename
or a replacement never deletes documents, reports or logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.defaults import (
    ABORT_INCOMPLETE_UPLOAD_DAYS,
    ACCESS_LOG_EXPIRATION_DAYS,
    ARCHIVE_PREFIX,
    NONCURRENT_VERSION_DAYS,
    WORK_EXPIRATION_DAYS,
    WORK_PREFIX,
)
from infra.iam import Statement, policy_document, tls_only_statement
from infra.naming import bucket_name, child_suffix

#: The service principal that delivers S3 server access logs (bucket-policy based delivery).
LOG_DELIVERY_PRINCIPAL = "logging.s3.amazonaws.com"

Rule = aws.s3.BucketLifecycleConfigurationRuleArgs


@dataclass(frozen=True, kw_only=True)
class StorageArgs:
    """``kms_key_arn`` None means SSE-S3 (AES256)."""

    archive_expiration_days: int
    kms_key_arn: pulumi.Output[str] | None = None
    #: ``protectData``: buckets are ``protect``ed and retained on delete.
    protect: bool = False
    #: ``accessLogs``: server access logs of both buckets go to a logs bucket (needs ``account_id``).
    access_logs: bool = False
    account_id: pulumi.Input[str] | None = None
    #: Bucket names are ``<name_prefix>-<label>-<account>-<region>`` (``infra/naming.py``: bucket_name);
    #: without a prefix (or account and region) the provider autonames them.
    name_prefix: str | None = None
    region: pulumi.Input[str] | None = None


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


def log_delivery_statement(
    label: str, logs_arn: pulumi.Input[str], prefix: str, source: aws.s3.Bucket, account_id: pulumi.Input[str]
) -> Statement:
    """Let S3's logging service write ``source``'s access logs under ``prefix`` of the logs bucket, only."""
    return Statement(
        sid=f"S3ServerAccessLogs{label.capitalize()}",
        principal={"Service": LOG_DELIVERY_PRINCIPAL},
        actions=("s3:PutObject",),
        resources=(pulumi.Output.concat(logs_arn, "/", prefix, "*"),),
        condition={"ArnLike": {"aws:SourceArn": source.arn}, "StringEquals": {"aws:SourceAccount": account_id}},
    )


class Storage(pulumi.ComponentResource):
    """Two buckets (three with access logs); the ingestion bucket sends its events to EventBridge."""

    ingestion: aws.s3.Bucket
    reports: aws.s3.Bucket
    logs: aws.s3.Bucket | None

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:Storage", name, None, opts)
        self._name = name
        self._args = args
        self._policies: dict[aws.s3.Bucket, aws.s3.BucketPolicy] = {}
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
        work_rule = Rule(
            id="expire-work-files",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=WORK_PREFIX),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=WORK_EXPIRATION_DAYS),
        )
        # Versioned: a report overwritten by a re-run stays recoverable for NONCURRENT_VERSION_DAYS.
        self.reports = self._bucket(f"{name}-reports", (archive_rule, work_rule, *COMMON_RULES), versioned=True)
        self.logs = self._access_logs(name) if args.access_logs else None
        self.register_outputs({"ingestion": self.ingestion.bucket, "reports": self.reports.bucket})

    def _access_logs(self, name: str) -> aws.s3.Bucket:
        """The logs bucket and the logging configuration of the two others (``ingestion/``, ``reports/``)."""
        if self._args.account_id is None:
            raise ValueError("Storage: access_logs needs account_id (the log delivery policy names it)")
        sources = {"ingestion": self.ingestion, "reports": self.reports}
        expire = _everything(
            "expire-access-logs",
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=ACCESS_LOG_EXPIRATION_DAYS),
        )

        def delivery(logs: aws.s3.Bucket) -> list[Statement]:
            account = self._args.account_id
            assert account is not None
            return [log_delivery_statement(label, logs.arn, f"{label}/", source, account)
                    for label, source in sources.items()]

        logs = self._bucket(f"{name}-access-logs", (expire, *COMMON_RULES), versioned=False, kms=False,
                            extra_statements=delivery)
        for label, source in sources.items():
            aws.s3.BucketLogging(
                f"{name}-{label}-access-logging",
                bucket=source.id,
                target_bucket=logs.id,
                target_prefix=f"{label}/",
                # The policy first: S3 checks that the logging service may write to the target.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self._policies[logs]]),
            )
        return logs

    def _physical_name(self, label: str) -> pulumi.Output[str] | None:
        args = self._args
        if args.name_prefix is None or args.account_id is None or args.region is None:
            return None
        prefix = args.name_prefix
        return pulumi.Output.all(args.account_id, args.region).apply(
            lambda where: bucket_name(prefix, label, where[0], where[1])
        )

    def _bucket(
        self,
        name: str,
        rules: tuple[Rule, ...],
        *,
        versioned: bool,
        kms: bool = True,
        extra_statements: Callable[[aws.s3.Bucket], list[Statement]] | None = None,
    ) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        protect = self._args.protect
        bucket = aws.s3.Bucket(
            name,
            bucket=self._physical_name(child_suffix(self._name, name)),
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
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
        self._policies[bucket] = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=policy_document(
                [
                    tls_only_statement(("s3:*",), [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")]),
                    *(extra_statements(bucket) if extra_statements else ()),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        key = self._args.kms_key_arn if kms else None
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
