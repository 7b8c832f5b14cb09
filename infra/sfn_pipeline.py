"""Option sfn: a Step Functions state machine runs each job (LoadManifest -> AcquireLock -> ListBatches
-> Map(ProcessBatch) -> VerifyIndexing -> AggregateFailures -> Notify -> ReleaseLock).

The definition is the reviewable template ``infra/state_machines/orchestrator.asl.json``; its
``${...}`` placeholders are filled in at deploy time: ``${<handler>Arn}`` (camelCase) for every
function, ``${topicArn}``, ``${reportsBucket}``, ``"${mapConcurrency}"`` (a bare number) and, for
templates that branch on it, ``"${verifyIndexing}"`` (a bare boolean).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_aws as aws
from pydantic.alias_generators import to_camel

from infra.events import EVENTS_PRINCIPAL, lambda_target, manifest_rule
from infra.function import FunctionSpec
from infra.iam import LOG_DELIVERY_SID, XRAY_STATEMENT, Statement, service_role
from infra.monitoring import Graph, Line, Watch
from infra.naming import MAX_STATE_MACHINE_NAME_LENGTH, physical_name
from infra.pipeline import Pipeline, PipelineArgs

#: The state machine definition template (owned with the handlers it calls).
ORCHESTRATOR_TEMPLATE = Path(__file__).resolve().parent / "state_machines" / "orchestrator.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")
#: Placeholders whose value is a JSON number or boolean: the template writes them quoted, the definition bare.
BARE_PLACEHOLDERS = ("mapConcurrency", "verifyIndexing")
STATES_PRINCIPAL = "states.amazonaws.com"
#: Statuses after which a Catch never ran, so the lock is released by an "Execution Status Change" rule.
ABANDONED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
#: Writing execution logs to CloudWatch goes through log "deliveries", which accept only ``*``.
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)

GET, PUT, DELETE = "s3:GetObject", "s3:PutObject", "s3:DeleteObject"
LIST = "s3:ListBucket"


def load_template(path: Path | None = None) -> str:
    """The definition template (``ORCHESTRATOR_TEMPLATE`` unless given)."""
    return (path or ORCHESTRATOR_TEMPLATE).read_text()


def render_definition(template: str, values: Mapping[str, str | int | bool]) -> str:
    """Fill every ``${name}`` of ``template``; a quoted bare placeholder becomes a JSON number/boolean.

    Raises ``ValueError`` naming any placeholder without a value, or when the result is not JSON.
    """
    text = template
    for name in BARE_PLACEHOLDERS:
        if name in values:
            text = text.replace(f'"${{{name}}}"', json.dumps(values[name]))
    unknown = sorted({m.group(1) for m in PLACEHOLDER.finditer(text)} - values.keys())
    if unknown:
        raise ValueError(
            f"orchestrator template: no value for {', '.join('${' + u + '}' for u in unknown)}; "
            f"known: {', '.join(sorted(values))}"
        )
    text = PLACEHOLDER.sub(lambda m: _text(values[m.group(1)]), text)
    json.loads(text)  # a broken template fails the deploy, not the first execution
    return text


def _text(value: str | int | bool) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


class SfnPipeline(Pipeline):
    """Functions, state machine, its log group and roles, and the two EventBridge rules."""

    state_machine: aws.sfn.StateMachine

    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:SfnPipeline", name, args, opts)
        links, config = args.links, args.config
        template = load_template()  # read before declaring anything: a missing file fails early
        for spec in (
            FunctionSpec(
                handler="load_manifest",
                memory_mb=256,
                timeout_s=60,
                # ListBucket: a manifest already archived must read NoSuchKey (not AccessDenied), so a late
                # duplicate trigger is reported as such instead of crashing.
                links=(links.settings(), links.ingestion(bucket_actions=(LIST,), objects=(GET,)), links.reports()),
            ),
            FunctionSpec(
                handler="acquire_lock",
                memory_mb=256,
                timeout_s=30,
                links=(links.lock("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),),
            ),
            FunctionSpec(
                handler="list_batches",
                memory_mb=1024,
                timeout_s=900,
                links=(
                    links.settings(),
                    links.ingestion(bucket_actions=(LIST,), objects=(GET,)),
                    # GET + ListBucket: a retried step finds the sync job it already started (sync.json).
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    links.documents("dynamodb:BatchGetItem"),
                    links.inventory(),  # mode "full": the source's documents absent from the job
                    links.index(sync=("kendra:StartDataSourceSyncJob",)),
                ),
            ),
            FunctionSpec(
                handler="process_batch",
                memory_mb=1024,
                timeout_s=600,
                links=(
                    links.settings(),
                    links.ingestion(objects=(GET,)),
                    # GET + ListBucket: a retried item skips the parts whose result is saved (NoSuchKey if not).
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    # Whether an earlier part of the run found the Kendra index full, or records it.
                    links.lock("dynamodb:GetItem", "dynamodb:PutItem"),
                    # BatchGetItem: owners (sources) and, for an item the Map's Catch settles, which
                    # documents the ledger knew before.
                    links.documents("dynamodb:BatchWriteItem", "dynamodb:BatchGetItem"),
                    # DescribeIndex: the index's DATE_VALUE fields, to type the documents' attributes.
                    # BatchGetDocumentStatus: the Catch settles unfinished parts from what Kendra holds.
                    links.index(
                        "kendra:BatchPutDocument",
                        "kendra:BatchDeleteDocument",
                        "kendra:DescribeIndex",
                        "kendra:BatchGetDocumentStatus",
                        pass_role=True,
                    ),
                    links.quota(),
                ),
            ),
            FunctionSpec(
                handler="verify_indexing",
                memory_mb=512,
                timeout_s=300,
                links=(
                    links.settings(),
                    links.ingestion(),
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    links.documents("dynamodb:BatchWriteItem"),
                    links.index("kendra:BatchGetDocumentStatus"),
                ),
            ),
            FunctionSpec(
                handler="aggregate_failures",
                memory_mb=1024,
                timeout_s=300,
                links=(
                    links.settings(),
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    # ListBucket: archiving a manifest already moved by an earlier attempt must read
                    # NoSuchKey, which S3 answers only to callers that may list (else AccessDenied).
                    links.ingestion(bucket_actions=(LIST,), objects=(GET, DELETE)),
                    # Stops the job's data-source sync job, also after a crash.
                    links.index(sync=("kendra:StopDataSourceSyncJob",)),
                    # Forgets documents whose verification was cut short (IndexingUnconfirmed).
                    links.documents("dynamodb:BatchWriteItem"),
                ),
            ),
            FunctionSpec(
                handler="release_lock",
                memory_mb=256,
                timeout_s=30,
                links=(links.lock("dynamodb:DeleteItem"),),
            ),
            # Ends the job of an execution that died without its own ending (abort, timeout, failure):
            # the report (JobAborted rows for unfinished parts), the notification, the source lock.
            FunctionSpec(
                handler="finish_abandoned",
                memory_mb=1024,
                timeout_s=300,
                links=(
                    links.settings(),
                    links.reports(bucket_actions=(LIST,), objects=(GET, PUT)),
                    links.ingestion(bucket_actions=(LIST,), objects=(GET, DELETE)),
                    links.lock("dynamodb:GetItem", "dynamodb:DeleteItem"),
                    links.notifications(),
                    links.index(sync=("kendra:StopDataSourceSyncJob",)),
                    # Forgets documents whose verification was cut short (IndexingUnconfirmed).
                    links.documents("dynamodb:BatchWriteItem"),
                ),
            ),
        ):
            self.add_function(spec)

        child = pulumi.ResourceOptions(parent=self)
        machine_name = physical_name(args.prefix, "orchestrator", max_length=MAX_STATE_MACHINE_NAME_LENGTH)
        # Known before the machine exists, so its role can name it (Distributed Map starts child runs).
        machine_arn = pulumi.Output.format(
            "arn:aws:states:{0}:{1}:stateMachine:{2}", args.region, args.account_id, machine_name
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-orchestrator-logs",
            name=f"/aws/vendedlogs/states/{machine_name}",
            retention_in_days=config.log_retention_days,
            opts=child,
        )
        functions = [f.function for f in self.functions.values()]
        role = service_role(
            f"{name}-orchestrator",
            service=STATES_PRINCIPAL,
            parent=self,
            description=f"State machine {machine_name}: its functions, topic, reports and child runs",
            trust_condition={"StringEquals": {"aws:SourceAccount": args.account_id}},
            statements=(
                Statement(
                    sid="InvokeFunctions",
                    actions=("lambda:InvokeFunction",),
                    resources=tuple(f.arn for f in functions),
                ),
                *links.notifications().statements,
                # The Distributed Map's ItemReader reads parts.json; there is no ResultWriter.
                *links.reports(objects=(GET,)).statements,
                Statement(sid="StartChildExecutions", actions=("states:StartExecution",), resources=(machine_arn,)),
                Statement(
                    sid="ManageChildExecutions",
                    actions=("states:DescribeExecution", "states:StopExecution"),
                    resources=(
                        pulumi.Output.format(
                            "arn:aws:states:{0}:{1}:execution:{2}/*",
                            args.region,
                            args.account_id,
                            machine_name,
                        ),
                        pulumi.Output.format(
                            "arn:aws:states:{0}:{1}:execution:{2}:*",
                            args.region,
                            args.account_id,
                            machine_name,
                        ),
                    ),
                ),
                Statement(sid=LOG_DELIVERY_SID, actions=LOG_DELIVERY_ACTIONS, resources=("*",)),
                XRAY_STATEMENT,
            ),
        )
        placeholders = {f"{to_camel(handler)}Arn": f.function.arn for handler, f in self.functions.items()}
        definition = pulumi.Output.all(
            topicArn=links.topic.arn,
            reportsBucket=links.reports_bucket.bucket,
            **placeholders,
        ).apply(
            lambda values: render_definition(
                template,
                {**values, "mapConcurrency": config.map_concurrency, "verifyIndexing": config.verify_indexing},
            )
        )
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-orchestrator",
            name=machine_name,
            type="STANDARD",
            role_arn=role.role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL",
                include_execution_data=False,
                log_destination=pulumi.Output.concat(log_group.arn, ":*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role.policy]),
        )

        # The manifest starts an execution whose input is the S3 event itself.
        rule = manifest_rule(f"{name}-manifest", links.ingestion_bucket, parent=self)
        starter = service_role(
            f"{name}-manifest-start",
            service=EVENTS_PRINCIPAL,
            parent=self,
            description="EventBridge: start the orchestrator for a new manifest",
            # Only this account's rules may assume it (confused deputy).
            trust_condition={"StringEquals": {"aws:SourceAccount": args.account_id}},
            statements=(
                Statement(
                    sid="StartOrchestrator",
                    actions=("states:StartExecution",),
                    resources=(self.state_machine.arn,),
                ),
            ),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-manifest-target",
            rule=rule.name,
            arn=self.state_machine.arn,
            role_arn=starter.role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[starter.policy]),
        )

        # A Catch never runs on abort or timeout: end such a job from the status-change event.
        abandoned = aws.cloudwatch.EventRule(
            f"{name}-abandoned",
            description="An orchestrator execution failed, timed out or was aborted",
            state="ENABLED",
            opts=child,
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.states"],
                    "detail-type": ["Step Functions Execution Status Change"],
                    "detail": {
                        "status": list(ABANDONED_STATUSES),
                        "stateMachineArn": [self.state_machine.arn],
                    },
                }
            ),
        )
        lambda_target(f"{name}-abandoned", abandoned, self.functions["finish_abandoned"].function, parent=self)

        self.watches += tuple(
            Watch(
                name=f"orchestrator-{metric.lower()}",
                description=f"orchestrator: {metric} > 0 in 5 minutes",
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
            )
            for metric in ("ExecutionsFailed", "ExecutionsTimedOut")
        )
        machine = {"StateMachineArn": self.state_machine.arn}
        self.graphs += (
            Graph(title="Executions", lines=tuple(
                Line(namespace="AWS/States", metric_name=f"Executions{status}", dimensions=machine, label=status)
                for status in ("Started", "Succeeded", "Failed", "TimedOut", "Aborted"))),
            Graph(title="Execution time (ms)", lines=tuple(
                Line(namespace="AWS/States", metric_name="ExecutionTime", dimensions=machine, statistic=stat)
                for stat in ("Average", "Maximum"))),
        )
        self.outputs = {"state_machine_arn": self.state_machine.arn}
        self.register_outputs(self.outputs)
