"""Registered sources (``sources``): a managed policy per source that lets a team's own role write only
under the prefix its source owns in the ingestion bucket (stack output ``source_writer_policies``).

The pipeline enforces the rest at run time (``functions/kendra_ingest/tenancy.py``): a manifest outside
its source's prefix fails, and so does any put or delete of another source's document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_document
from infra.naming import physical_name

#: IAM managed policy names are at most 128 characters.
MAX_POLICY_NAME_LENGTH = 128
#: What a writing team needs: upload objects (documents, metadata, deletes files, the manifest) and no more.
WRITE_OBJECTS = ("s3:PutObject",)


#: An upload to an SSE-KMS bucket generates a data key (and a multipart upload decrypts it).
UPLOAD_WITH_KEY = ("kms:GenerateDataKey", "kms:Decrypt")


@dataclass(frozen=True, kw_only=True)
class SourceWritersArgs:
    """``sources`` maps source → prefix (validated and normalised by the stack config); ``key_arn`` is the
    stack key of encryption=kms (an upload to an SSE-KMS bucket needs it), used only through S3 for the
    ingestion bucket."""

    sources: Mapping[str, str]
    ingestion_bucket: aws.s3.Bucket
    name_prefix: str
    region: pulumi.Input[str]
    key_arn: pulumi.Input[str] | None = None


def writer_statements(
    source: str,
    prefix: str,
    bucket_arn: pulumi.Input[str],
    *,
    key_arn: pulumi.Input[str] | None = None,
    region: pulumi.Input[str] = "",
) -> tuple[Statement, ...]:
    """``s3:PutObject`` under ``<prefix>/*`` of the ingestion bucket; with a stack key, the key too, but
    only as S3 uses it for that bucket (``kms:ViaService``; the bucket key's encryption context is the
    bucket ARN)."""
    resource = pulumi.Output.concat(bucket_arn, "/", prefix.strip("/"), "/*")
    sid = "Write" + "".join(part.capitalize() for part in _words(source)) + "Objects"
    statements = [Statement(sid=sid, actions=WRITE_OBJECTS, resources=(resource,))]
    if key_arn is not None:
        statements.append(Statement(
            sid="UploadWithStackKey",
            actions=UPLOAD_WITH_KEY,
            resources=(key_arn,),
            condition={"StringEquals": {
                "kms:ViaService": pulumi.Output.concat("s3.", region, ".amazonaws.com"),
                "kms:EncryptionContext:aws:s3:arn": bucket_arn,
            }},
        ))
    return tuple(statements)


def _words(source: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in source).split() if w]


class SourceWriters(pulumi.ComponentResource):
    """One ``aws.iam.Policy`` per registered source; ``policies`` maps source → policy."""

    policies: dict[str, aws.iam.Policy]

    def __init__(self, name: str, args: SourceWritersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:SourceWriters", name, None, opts)
        self.policies = {
            source: aws.iam.Policy(
                f"{name}-{source}",
                name=physical_name(args.name_prefix, f"{source}-writer", max_length=MAX_POLICY_NAME_LENGTH),
                description=f"kendra-ingestion: write documents and manifests of source {source} "
                f"under {prefix}/ of the ingestion bucket",
                policy=policy_document(writer_statements(
                    source, prefix, args.ingestion_bucket.arn, key_arn=args.key_arn, region=args.region
                )),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for source, prefix in sorted(args.sources.items())
        }
        self.register_outputs({source: policy.arn for source, policy in self.policies.items()})
