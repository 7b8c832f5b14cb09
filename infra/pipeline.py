"""What both orchestration options share: their inputs, and turning specs into functions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi

from infra.config import StackConfig
from infra.function import FunctionArgs, FunctionSpec, LambdaFunction
from infra.links import StackLinks
from infra.monitoring import Graph, Watch, function_watches
from infra.naming import MAX_FUNCTION_NAME_LENGTH, physical_name


@dataclass(frozen=True, kw_only=True)
class PipelineArgs:
    """Everything an option needs from the rest of the stack."""

    config: StackConfig
    prefix: str
    links: StackLinks
    code: pulumi.Archive
    layers: tuple[pulumi.Input[str], ...]
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]


class Pipeline(pulumi.ComponentResource):
    """Base of the two options: holds the functions (by handler), the extra watches, the option's
    dashboard graphs and the outputs."""

    functions: dict[str, LambdaFunction]
    watches: tuple[Watch, ...]
    graphs: tuple[Graph, ...]
    outputs: dict[str, pulumi.Input[str]]

    def __init__(
        self, type_: str, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None
    ) -> None:
        super().__init__(type_, name, None, opts)
        self._name = name
        self._args = args
        self.functions = {}
        self.watches = ()
        self.graphs = ()
        self.outputs = {}

    def add_function(self, spec: FunctionSpec) -> LambdaFunction:
        """Deploy ``spec`` (``lambdaMemoryMb``, when configured, overrides every function's memory); every
        function also gets the stack's metric namespace."""
        args = self._args
        spec = dataclasses.replace(spec, links=(*spec.links, args.links.metrics()))
        if args.config.lambda_memory_mb is not None:
            spec = dataclasses.replace(spec, memory_mb=args.config.lambda_memory_mb)
        function = LambdaFunction(
            f"{self._name}-{spec.handler.replace('_', '-')}",
            FunctionArgs(
                spec=spec,
                code=args.code,
                layers=args.layers,
                log_retention_days=args.config.log_retention_days,
                function_name=physical_name(args.prefix, spec.handler, max_length=MAX_FUNCTION_NAME_LENGTH),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.functions[spec.handler] = function
        self.watches += function_watches(spec.handler, function.function)
        return function
