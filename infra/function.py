"""One Lambda function from one declaration.

A :class:`FunctionSpec` says which handler runs, with how much memory and time, and what it is linked
to. :class:`LambdaFunction` derives everything else: the role (only the statements its links bring,
plus writing its own logs and X-Ray traces), the log group with retention, and the function itself
(arm64, Python 3.13, X-Ray active) with exactly the environment ``functions/kendra_ingest/settings.py``
lists for the handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.contract import settings
from infra.iam import XRAY_STATEMENT, Statement, service_role
from infra.links import Link

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
#: Lambda's limits.
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240
MAX_TIMEOUT_S = 900
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"

#: Powertools reads these; every function gets them (and its stack's metric namespace, ``links.metrics()``).
POWERTOOLS_ENV: Mapping[str, str] = {
    "POWERTOOLS_SERVICE_NAME": settings.METRICS_SERVICE,
    "LOG_LEVEL": "INFO",
}


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """The one declaration of a Lambda: ``functions/<handler>.py`` exporting ``handler``.

    Example::

        FunctionSpec(handler="release_lock", memory_mb=256, timeout_s=30,
                     links=(links.lock("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),))
    """

    handler: str
    memory_mb: int
    timeout_s: int
    links: tuple[Link, ...] = ()

    def __post_init__(self) -> None:
        if self.handler not in settings.REQUIRED:
            raise ValueError(
                f"handler {self.handler!r} is not declared in functions/kendra_ingest/settings.py"
            )
        if not MIN_MEMORY_MB <= self.memory_mb <= MAX_MEMORY_MB:
            raise ValueError(
                f"{self.handler}: memory_mb {self.memory_mb} outside {MIN_MEMORY_MB}-{MAX_MEMORY_MB}"
            )
        if not 1 <= self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"{self.handler}: timeout_s {self.timeout_s} outside 1-{MAX_TIMEOUT_S}")

    @property
    def statements(self) -> tuple[Statement, ...]:
        """Every statement the links bring, in link order."""
        return tuple(statement for link in self.links for statement in link.statements)

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """The variables settings.py lists for the handler that the links provide, plus Powertools'.

        Raises ``ValueError`` when a variable the handler requires has no link: code and
        infrastructure disagree, and deploying would only fail later at run time.
        """
        available: dict[str, pulumi.Input[str]] = {}
        for link in self.links:
            available.update(link.env)
        missing = [name for name in settings.REQUIRED[self.handler] if name not in available]
        if missing:
            raise ValueError(
                f"{self.handler}: no link provides {', '.join(missing)} "
                "(required by functions/kendra_ingest/settings.py)"
            )
        env = {name: available[name] for name in settings.variables(self.handler) if name in available}
        return {**env, **POWERTOOLS_ENV}


@dataclass(frozen=True, kw_only=True)
class FunctionArgs:
    """A spec plus what every function of the stack shares."""

    spec: FunctionSpec
    function_name: str
    code: pulumi.Archive
    layers: tuple[pulumi.Input[str], ...]
    log_retention_days: int


class LambdaFunction(pulumi.ComponentResource):
    """Role, log group and function for one :class:`FunctionSpec`."""

    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:LambdaFunction", name, None, opts)
        spec = args.spec
        child = pulumi.ResourceOptions(parent=self)
        # Created before the function so Lambda never creates it without retention.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        write_logs = Statement(
            sid="WriteOwnLogs",
            actions=("logs:CreateLogStream", "logs:PutLogEvents"),
            resources=(pulumi.Output.concat(self.log_group.arn, ":*"),),
        )
        access = service_role(
            name,
            service=LAMBDA_PRINCIPAL,
            parent=self,
            statements=(write_logs, XRAY_STATEMENT, *spec.statements),
            description=f"Lambda {args.function_name}: only what its links need",
        )
        self.role = access.role
        self.function = aws.lambda_.Function(
            name,
            name=args.function_name,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=f"{spec.handler}.handler",
            code=args.code,
            layers=list(args.layers),
            memory_size=spec.memory_mb,
            timeout=spec.timeout_s,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=self.log_group.name
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=spec.environment()),
            # The policy first: an event source mapping checks the role when it is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access.policy, self.log_group]),
        )
        self.register_outputs({"name": self.function.name, "arn": self.function.arn})
