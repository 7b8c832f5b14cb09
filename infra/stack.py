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
from infra.naming import legacy_aliases_transform, physical_names_transform
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
    """What one :class:`KendraIngestion` deploys.

    - ``config``: the validated settings (:class:`infra.config.StackConfig`, e.g. from
      ``infra.config.load(pulumi.Config(), stack=pulumi.get_stack())`` or built in code);
    - ``kendra_index_id``: the target index, when it is not (or not only) a string of the config, e.g. the
      ``id`` of an ``aws.kendra.Index`` declared in the same program; it wins over ``config.kendra_index_id``;
    - ``name_prefix``: the start of every physical name; default ``<project>-<stack>`` for the instance named
      after the project, else ``<project>-<stack>-<instance name>`` (so two instances never collide);
    - ``legacy_aliases``: alias every child to the logical name it had before child names carried the
      component's name (stacks deployed with 0.1 by ``infra/program.py``).
    """

    config: StackConfig
    kendra_index_id: pulumi.Input[str] | None = None
    name_prefix: str | None = None
    legacy_aliases: bool = False


def default_name_prefix(name: str) -> str:
    """``<project>-<stack>``, plus ``-<name>`` unless the instance is named after the project."""
    base = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    return base if name == pulumi.get_project() else f"{base}-{name}"


class KendraIngestion(pulumi.ComponentResource):
    """The whole product: buckets, tables, topic, the option's pipeline, alarms and dashboard.
    ``outputs`` are the stack outputs by contract name (DESIGN section 4). Children are named
    ``<name>-<part>``, so several instances live in one program.

    Example (a program of your own; see ``examples/two-teams/__main__.py``)::

        import pulumi
        from infra import tagging
        from infra.config import StackConfig
        from infra.stack import KendraIngestion, KendraIngestionArgs

        tagging.register()
        index = aws.kendra.Index("search", ...)
        hr = KendraIngestion("hr", KendraIngestionArgs(config=StackConfig(option="sfn"), kendra_index_id=index.id))
        pulumi.export("hr_bucket", hr.outputs["ingestion_bucket"])
    """

    outputs: dict[str, pulumi.Input[object]]

    def __init__(
        self, name: str, args: KendraIngestionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        prefix = args.name_prefix or default_name_prefix(name)
        transforms: list[pulumi.ResourceTransform] = [physical_names_transform(prefix, name)]
        if args.legacy_aliases:
            transforms.append(legacy_aliases_transform(name))
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transforms=transforms))
        super().__init__("kendra-ingestion:index:KendraIngestion", name, None, opts)
        config = args.config
        index_id = args.kendra_index_id if args.kendra_index_id is not None else config.kendra_index_id
        if index_id is None:
            raise ValueError(
                f"KendraIngestion {name}: no Kendra index: give KendraIngestionArgs.kendra_index_id "
                "or config.kendra_index_id"
            )
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region

        key_arn = None
        if config.encryption == "kms":
            key_arn = StackKey(
                f"{name}-key", StackKeyArgs(account_id=account_id, alias=prefix), opts=child
            ).key.arn
        # CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key alias/aws/sns (its
        # key policy cannot grant cloudwatch.amazonaws.com), so the topic always gets a customer managed key:
        # the stack key with encryption=kms, else a key of its own.
        topic_key_arn = key_arn or StackKey(
            f"{name}-topic-key", StackKeyArgs(account_id=account_id, alias=f"{prefix}-topic"), opts=child
        ).key.arn
        storage = Storage(
            f"{name}-storage",
            StorageArgs(
                archive_expiration_days=config.archive_expiration_days,
                kms_key_arn=key_arn,
                protect=config.protect_data,
                access_logs=config.access_logs,
                account_id=account_id,
                name_prefix=prefix,
                region=region,
            ),
            opts=child,
        )
        state = State(f"{name}-state", StateArgs(kms_key_arn=key_arn, protect=config.protect_data), opts=child)
        notifications = Notifications(
            f"{name}-notifications",
            NotificationsArgs(
                emails=config.notification_emails, account_id=account_id, kms_key_arn=topic_key_arn
            ),
            opts=child,
        )
        kms = use_key(key_arn)
        kendra = KendraTarget(
            f"{name}-kendra",
            KendraTargetArgs(
                index_id=index_id,
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
            metrics_namespace=settings.metrics_namespace(prefix),
        )

        layer = aws.lambda_.LayerVersion(
            f"{name}-dependencies",
            layer_name=f"{prefix}-dependencies",
            code=dependencies_layer().archive(),
            compatible_runtimes=list(LAYER_RUNTIMES),
            compatible_architectures=["arm64"],
            description="kendra-ingestion runtime dependencies (requirements.lock, arm64)",
            opts=child,
        )
        pipeline_args = PipelineArgs(
            config=config,
            prefix=prefix,
            links=links,
            code=build_code_archive().archive(),
            layers=(layer.arn,),
            account_id=account_id,
            region=region,
        )
        pipeline: Pipeline = (SfnPipeline if config.option == "sfn" else SqsPipeline)(
            f"{name}-{config.option}", pipeline_args, opts=child
        )
        monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                topic_arn=notifications.topic.arn,
                watches=pipeline.watches,
                prefix=prefix,
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
            "kendra_index_id": index_id,
            "function_names": {handler: f.function.name for handler, f in pipeline.functions.items()},
            "dashboard_name": monitoring.dashboard.dashboard_name,
            **pipeline.outputs,
        }
        if config.sources:
            writers = SourceWriters(
                f"{name}-source-writers",
                SourceWritersArgs(
                    sources=config.sources,
                    ingestion_bucket=storage.ingestion,
                    name_prefix=prefix,
                    region=region,
                    key_arn=key_arn,
                ),
                opts=child,
            )
            self.outputs["source_writer_policies"] = {s: p.arn for s, p in writers.policies.items()}
        self.register_outputs(self.outputs)
