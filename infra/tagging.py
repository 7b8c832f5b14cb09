"""Tags on every resource, through one stack transform: ``project``, ``stack`` and ``component`` (the
kind of component that declared the resource, e.g. ``storage``, ``lambda-function``, ``sfn-pipeline``).

Register it once, first thing in a program (``infra/program.py`` does; a program reusing
:class:`infra.stack.KendraIngestion` calls it too)::

    import infra.tagging
    infra.tagging.register()

A resource's own tags win over these. Only AWS resources that take AWS's standard tags (their class has
``tags`` and ``tags_all``) get them: adding ``tags`` to any other resource would fail the provider's check.
"""

from __future__ import annotations

import functools
import inspect
import re

import pulumi
import pulumi_aws as aws

TAG_PROJECT, TAG_STACK, TAG_COMPONENT = "project", "stack", "component"
#: A tag value is at most 256 characters (AWS tagging limits).
MAX_TAG_VALUE_LENGTH = 256
#: The component value of a resource declared outside any component (at the stack's root).
ROOT_COMPONENT = "stack"

_CAMEL_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.cache
def taggable(type_: str) -> bool:
    """Whether an AWS type token (``aws:s3/bucket:Bucket``) names a resource with AWS's standard tags."""
    parts = type_.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return False
    module_name = parts[1].split("/")[0]
    module = getattr(aws, module_name, None) or getattr(aws, f"{module_name}_", None)
    cls = getattr(module, parts[2], None) if module is not None else None
    init = getattr(cls, "_internal_init", None)
    if init is None:
        return False
    parameters = inspect.signature(init).parameters
    return "tags" in parameters and "tags_all" in cls.__dict__  # tags_all: a computed output property


def component_name(type_: str) -> str:
    """``kendra-ingestion:index:SfnPipeline`` -> ``sfn-pipeline``."""
    return _CAMEL_WORD.sub("-", type_.rsplit(":", 1)[-1]).lower()


async def _parent_type(parent: pulumi.Resource | None) -> str | None:
    if parent is None:
        return None
    type_ = parent.pulumi_resource_type
    if type_:
        return type_
    # The engine hands transforms a reference to the parent (a URN): the type chain's last element.
    urn = await parent.urn.future()
    return urn.split("::")[2].split("$")[-1] if urn else None


def tags_transform(project: str, stack: str) -> pulumi.ResourceTransform:
    """A transform adding the three tags to every taggable AWS resource."""

    async def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not taggable(args.type_):
            return None
        parent_type = await _parent_type(args.opts.parent)
        ours = {
            TAG_PROJECT: project[:MAX_TAG_VALUE_LENGTH],
            TAG_STACK: stack[:MAX_TAG_VALUE_LENGTH],
            TAG_COMPONENT: component_name(parent_type) if parent_type else ROOT_COMPONENT,
        }
        props = dict(args.props)
        props["tags"] = {**ours, **(props.get("tags") or {})}
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def register(project: str | None = None, stack: str | None = None) -> None:
    """Tag every resource declared from now on in this stack (default: this project and stack)."""
    pulumi.runtime.register_resource_transform(
        tags_transform(project or pulumi.get_project(), stack or pulumi.get_stack())
    )
