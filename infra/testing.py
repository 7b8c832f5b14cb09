"""Run the Pulumi program under mocks: the unit tests use it with :class:`AwsMocks`; the sandbox passes
its own mocks (which create every resource in moto) to the same :func:`deploy_with_mocks`.

Example::

    deployment = deploy_with_mocks({"kendraIndexId": "0" * 36}, stack="sfn")
    deployment.outputs["state_machine_arn"]
    [r.name for r in deployment.of_type("aws:lambda/function:Function")]
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import NAMESPACE
from infra.packaging import LAYER_ENV

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

#: Where each resource type keeps its physical name, when it is not ``name``.
_NAME_PROPERTY = {"aws:s3/bucket:Bucket": "bucket", "aws:cloudwatch/dashboard:Dashboard": "dashboardName"}


@dataclass(frozen=True)
class RecordedResource:
    """One registered resource: type token, logical name, inputs (camelCase, numbers as floats) and
    the state the mocks returned (inputs plus computed ``arn``/``name``/``url``/``id``)."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    state: Mapping[str, Any]
    id: str | None = None
    custom: bool = True
    #: Resource options the program and its transforms set that matter to reviews (``protect``,
    #: ``retain_on_delete``, ``ignore_changes``, ``aliases``: the aliases' names).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """What a program run under mocks declared."""

    stack: str
    resources: tuple[RecordedResource, ...]
    outputs: Mapping[str, Any]

    def of_type(self, type_: str) -> list[RecordedResource]:
        """Every resource of one type token (e.g. ``aws:sqs/queue:Queue``)."""
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RecordedResource:
        """The resource with this logical name."""
        return next(r for r in self.resources if r.name == name)


class AwsMocks(Mocks):
    """Deterministic stand-ins for AWS: every resource gets a physical name (the given one, else
    ``<logical>-<digest>``), an ``arn`` in the shape AWS uses, queues a ``url``; the two invokes the
    program makes are answered and any other raises, so an unmocked call cannot pass silently."""

    def __init__(self, account_id: str = ACCOUNT_ID, region: str = REGION) -> None:
        self.account_id = account_id
        self.region = region

    def call(self, args: MockCallArgs) -> dict:
        """Answer getCallerIdentity and getRegion."""
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/test",
                "id": self.account_id,
                "userId": "AIDATEST",
            }
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "region": self.region,
                "id": self.region,
                "description": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
            }
        raise NotImplementedError(f"AwsMocks does not answer {args.token}")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        """Inputs merged with computed identifiers."""
        if not args.custom:
            return None, {}
        digest = hashlib.sha256(args.name.encode()).hexdigest()[:7]
        name_property = _NAME_PROPERTY.get(args.typ, "name")
        physical = args.inputs.get(name_property) or f"{args.name}-{digest}"
        state = {**args.inputs, name_property: physical, "arn": self._arn(args.typ, physical, digest)}
        resource_id = physical
        if args.typ == "aws:sqs/queue:Queue":
            state["url"] = resource_id = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{physical}"
        elif args.typ == "aws:kms/key:Key":
            state["keyId"] = resource_id = f"{digest}-0000-4000-8000-000000000000"
            state["arn"] = f"arn:aws:kms:{self.region}:{self.account_id}:key/{resource_id}"
        elif args.typ == "aws:kendra/index:Index":  # a 36-character index id, as Kendra gives
            state["id"] = resource_id = f"{digest}0-0000-4000-8000-000000000000"
        elif args.typ == "aws:lambda/layerVersion:LayerVersion":
            state["layerArn"] = state["arn"].rsplit(":", 1)[0]
        return resource_id, state

    def _arn(self, typ: str, physical: str, digest: str) -> str:
        region, account = self.region, self.account_id
        service = typ.split(":")[1].split("/")[0]
        shapes = {
            "aws:s3/bucket:Bucket": f"arn:aws:s3:::{physical}",
            "aws:iam/role:Role": f"arn:aws:iam::{account}:role/{physical}",
            "aws:iam/policy:Policy": f"arn:aws:iam::{account}:policy/{physical}",
            "aws:dynamodb/table:Table": f"arn:aws:dynamodb:{region}:{account}:table/{physical}",
            "aws:lambda/function:Function": f"arn:aws:lambda:{region}:{account}:function:{physical}",
            "aws:lambda/layerVersion:LayerVersion": f"arn:aws:lambda:{region}:{account}:layer:{physical}:1",
            "aws:sfn/stateMachine:StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{physical}",
            "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{physical}",
            "aws:cloudwatch/eventRule:EventRule": f"arn:aws:events:{region}:{account}:rule/{physical}",
            "aws:cloudwatch/metricAlarm:MetricAlarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:{physical}",
            "aws:kms/alias:Alias": f"arn:aws:kms:{region}:{account}:{physical}",
        }
        return shapes.get(typ, f"arn:aws:{service}:{region}:{account}:{physical}")


class _Recorder(Mocks):
    """Wraps any Mocks and records every registration (registrations arrive on several threads).

    The mock monitor runs no transforms (the engine does), so the recorder runs them as the engine
    would before handing a registration on: the resource's own ``transforms``, then its ancestors', then
    the stack transforms, each over the props the previous one returned.
    """

    def __init__(self, inner: Mocks) -> None:
        self.inner = inner
        self.records: list[RecordedResource] = []
        self.options = {}
        self.stack_transforms: list[pulumi.ResourceTransform] = []
        #: (type, logical name) -> (parent, own transforms), and the same by resource object id.
        self._declared: dict[tuple[str, str], tuple[Any, list[Any], pulumi.ResourceOptions]] = {}
        self._by_resource: dict[int, tuple[Any, list[Any]]] = {}  # ancestors: (parent, own transforms)
        self._lock = threading.Lock()

    def register_transform(self, transform: pulumi.ResourceTransform) -> None:
        self.stack_transforms.append(transform)

    def _transforms_for(self, key: tuple[str, str]) -> tuple[pulumi.ResourceOptions, list[Any]]:
        parent, own, declared_opts = self._declared.get(key, (None, [], pulumi.ResourceOptions()))
        chain = list(own)
        ancestor = parent
        while ancestor is not None and id(ancestor) in self._by_resource:
            ancestor_parent, ancestor_own = self._by_resource[id(ancestor)]
            chain.extend(ancestor_own)
            ancestor = ancestor_parent
        return copy.copy(declared_opts), chain + self.stack_transforms

    def _transform(self, args: MockResourceArgs) -> tuple[dict[str, Any], dict[str, Any]]:
        """The inputs after every transform, and the options the transforms set that reviews read."""
        with self._lock:
            opts, chain = self._transforms_for((args.typ, args.name))
        props: dict[str, Any] = dict(args.inputs)
        for transform in chain:
            outcome = transform(pulumi.ResourceTransformArgs(bool(args.custom), args.typ, args.name, props, opts))
            if inspect.isawaitable(outcome):
                outcome = asyncio.run(outcome)  # type: ignore[arg-type]
            if outcome is not None:
                props, opts = dict(outcome.props), outcome.opts
        names = [a if isinstance(a, str) else getattr(a, "name", None) for a in opts.aliases or []]
        extra = {"aliases": [n for n in names if isinstance(n, str)],
                 "ignore_changes": list(opts.ignore_changes or [])}
        return props, extra

    def call(self, args: MockCallArgs) -> Any:
        return self.inner.call(args)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        props, extra = self._transform(args)
        args = MockResourceArgs(args.typ, args.name, props, args.provider, args.resource_id, args.custom)
        resource_id, state = self.inner.new_resource(args)
        with self._lock:
            options = {**self.options.get((args.typ, args.name), {}), **extra}
            self.records.append(
                RecordedResource(args.typ, args.name, args.inputs, state, resource_id, bool(args.custom), options)
            )
        return resource_id, state

    #: (type, logical name) -> recorded options, filled by :meth:`transformation` as resources are declared.
    options: dict[tuple[str, str], dict[str, Any]]

    def transformation(self, args: pulumi.ResourceTransformationArgs) -> None:
        """A stack transformation that changes nothing and records the options the mocks never see."""
        opts = args.opts
        with self._lock:
            self.options[(args.type_, args.name)] = {
                "protect": bool(opts.protect), "retain_on_delete": bool(opts.retain_on_delete),
                "ignore_changes": list(opts.ignore_changes or []),
            }
            self._declared[(args.type_, args.name)] = (opts.parent, list(opts.transforms or []), opts)
            self._by_resource[id(args.resource)] = (opts.parent, list(opts.transforms or []))


def config_values(config: Mapping[str, Any], namespace: str = NAMESPACE) -> dict[str, str]:
    """Config as Pulumi holds it: namespaced keys, string values (lists and objects as JSON)."""
    values = {}
    for key, value in config.items():
        full = key if ":" in key else f"{namespace}:{key}"
        if isinstance(value, bool):
            values[full] = str(value).lower()
        elif isinstance(value, list | tuple | dict):
            values[full] = json.dumps(list(value) if isinstance(value, tuple) else value)
        else:
            values[full] = str(value)
    return values


def deploy_with_mocks(
    config: Mapping[str, Any],
    stack: str,
    mocks: Mocks | None = None,
    program: Callable[[], None] | None = None,
    project: str = NAMESPACE,
) -> Deployment:
    """Run ``program`` (default: :func:`infra.program.program`) as ``pulumi up`` would, under ``mocks``
    (default :class:`AwsMocks`), and return every resource registered and the resolved stack outputs.

    Each call starts from a fresh event loop and fresh Pulumi settings, so calls never leak into each
    other. An exception of the program (e.g. a ``ConfigError``) propagates; the resources registered
    before it stay visible on the exception as ``exc.deployment``.
    """
    if program is None:
        from infra.program import program as default_program

        program = default_program
    recorder = _Recorder(mocks or AwsMocks())
    outputs: dict[str, Any] = {}

    def run() -> None:
        pulumi.runtime.register_stack_transformation(recorder.transformation)
        program()
        root = pulumi.runtime.settings.get_root_resource()
        outputs.update(_sync_await(pulumi.Output.from_input(dict(root.outputs)).future()) or {})

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.settings.reset_options()
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(config_values(config, project))
    # Nothing reads archives under mocks: reference the dependencies layer without building it.
    with mock.patch.dict(os.environ, {LAYER_ENV: "skip"}):
        try:
            _sync_await(run_pulumi_func(run))
        except BaseException as exc:
            exc.deployment = Deployment(stack, tuple(recorder.records), {})  # type: ignore[attr-defined]
            raise
    return Deployment(stack, tuple(recorder.records), outputs)
