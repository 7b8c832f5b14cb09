"""KendraIngestion: the top-level component wiring storage, state, notifications, the Kendra target,
the chosen orchestration option and its monitoring, and computing the stack outputs (README, "Stack outputs").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig
from infra.contract import settings
from infra.encryption import StackKey, StackKeyArgs
from infra.kendra import KendraTarget, KendraTargetArgs
from infra.links import StackLinks, use_key
from infra.monitoring import Monitoring, MonitoringArgs, function_graphs
from infra.notifications import Notifications, NotificationsArgs
from infra.packaging import build_code_archive, dependencies_layer
from infra.pipeline import Pipeline, PipelineArgs
from infra.sfn_pipeline import SfnPipeline
from infra.sqs_pipeline import SqsPipeline
from infra.state import State, StateArgs
from infra.storage import Storage, StorageArgs
from infra.tenancy import SourceWriters, SourceWritersArgs

#: Where a job's manifest goes, under any prefix P of the ingestion bucket.
MANIFEST_KEY_PATTERN = "<prefix>/_control/manifest.json"
LAYER_RUNTIMES = ("python3.13",)


@dataclass(frozen=True, kw_only=True)
class KendraIngestionArgs:
    """The validated configuration and the prefix of every physical name (``<project>-<stack>``)."""

    config: StackConfig
    prefix: str


class KendraIngestion(pulumi.ComponentResource):
    """The whole product for one stack; ``outputs`` are the stack outputs, by contract name."""

    outputs: dict[str, pulumi.Input[object]]

    def __init__(
        self, name: str, args: KendraIngestionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kendra-ingestion:index:KendraIngestion", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region

        key_arn = None
        if config.encryption == "kms":
            key_arn = StackKey(
                "key", StackKeyArgs(account_id=account_id, alias=args.prefix), opts=child
            ).key.arn
        # CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key alias/aws/sns (its
        # key policy cannot grant cloudwatch.amazonaws.com), so the topic always gets a customer managed key:
        # the stack key with encryption=kms, else a key of its own.
        topic_key_arn = key_arn or StackKey(
            "topic-key", StackKeyArgs(account_id=account_id, alias=f"{args.prefix}-topic"), opts=child
        ).key.arn
        storage = Storage(
            "storage",
            StorageArgs(
                archive_expiration_days=config.archive_expiration_days,
                kms_key_arn=key_arn,
                protect=config.protect_data,
                access_logs=config.access_logs,
                account_id=account_id,
            ),
            opts=child,
        )
        state = State("state", StateArgs(kms_key_arn=key_arn, protect=config.protect_data), opts=child)
        notifications = Notifications(
            "notifications",
            NotificationsArgs(
                emails=config.notification_emails, account_id=account_id, kms_key_arn=topic_key_arn
            ),
            opts=child,
        )
        kms = use_key(key_arn)
        kendra = KendraTarget(
            "kendra",
            KendraTargetArgs(
                index_id=config.kendra_index_id,
                document_mode=config.document_mode,
                data_source_id=config.kendra_data_source_id,
                account_id=account_id,
                region=region,
                ingestion_bucket=storage.ingestion,
                kms=kms,
            ),
            opts=child,
        )
        links = StackLinks(
            config=config,
            ingestion_bucket=storage.ingestion,
            reports_bucket=storage.reports,
            lock_table=state.lock_table,
            documents_table=state.documents_table,
            topic=notifications.topic,
            kendra=kendra,
            key_arn=key_arn,
            kms=kms,
            topic_kms=use_key(topic_key_arn),
            metrics_namespace=settings.metrics_namespace(args.prefix),
        )

        layer = aws.lambda_.LayerVersion(
            "dependencies",
            layer_name=f"{args.prefix}-dependencies",
            code=dependencies_layer().archive(),
            compatible_runtimes=list(LAYER_RUNTIMES),
            compatible_architectures=["arm64"],
            description="kendra-ingestion runtime dependencies (requirements.lock, arm64)",
            opts=child,
        )
        pipeline_args = PipelineArgs(
            config=config,
            prefix=args.prefix,
            links=links,
            code=build_code_archive().archive(),
            layers=(layer.arn,),
            account_id=account_id,
            region=region,
        )
        pipeline: Pipeline = (SfnPipeline if config.option == "sfn" else SqsPipeline)(
            config.option, pipeline_args, opts=child
        )
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(
                topic_arn=notifications.topic.arn,
                watches=pipeline.watches,
                prefix=args.prefix,
                region=region,
                graphs=(
                    *pipeline.graphs,
                    *function_graphs({h: f.function for h, f in pipeline.functions.items()}),
                ),
                metrics_namespace=links.metrics_namespace,
            ),
            opts=child,
        )

        self.outputs = {
            "option": config.option,
            "ingestion_bucket": storage.ingestion.bucket,
            "reports_bucket": storage.reports.bucket,
            "manifest_key_pattern": MANIFEST_KEY_PATTERN,
            "notification_topic_arn": notifications.topic.arn,
            "lock_table": state.lock_table.name,
            "documents_table": state.documents_table.name,
            "kendra_index_id": config.kendra_index_id,
            "function_names": {handler: f.function.name for handler, f in pipeline.functions.items()},
            "dashboard_name": monitoring.dashboard.dashboard_name,
            **pipeline.outputs,
        }
        if config.sources:
            writers = SourceWriters(
                "source-writers",
                SourceWritersArgs(
                    sources=config.sources,
                    ingestion_bucket=storage.ingestion,
                    name_prefix=args.prefix,
                    region=region,
                    key_arn=key_arn,
                ),
                opts=child,
            )
            self.outputs["source_writer_policies"] = {s: p.arn for s, p in writers.policies.items()}
        self.register_outputs(self.outputs)
