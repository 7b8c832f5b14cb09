"""IAM building blocks: statements, policy documents and service roles holding exactly their statements.

Resources may be Pulumi Outputs; documents are rendered with ``pulumi.Output.json_dumps`` so nothing is
stringified before it is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

POLICY_VERSION = "2012-10-17"

#: Statement ids whose ``Resource: "*"`` AWS requires (checked by ``infra/policies.py``).
XRAY_SID = "XRayTracing"
LOG_DELIVERY_SID = "LogDelivery"


@dataclass(frozen=True, kw_only=True)
class Statement:
    """One IAM statement. ``resources`` and ``condition`` values may be Outputs."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[pulumi.Input[str], ...]
    effect: str = "Allow"
    condition: Mapping[str, Any] = field(default_factory=dict)
    principal: Mapping[str, Any] | str | None = None

    def render(self) -> dict[str, Any]:
        """The statement as a policy-document dict (Outputs left in place)."""
        out: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principal is not None:
            out["Principal"] = self.principal
        out["Action"] = list(self.actions)
        out["Resource"] = list(self.resources)
        if self.condition:
            out["Condition"] = dict(self.condition)
        return out


def unique(statements: Iterable[Statement]) -> list[Statement]:
    """Statements in order, each object once (links share e.g. the one KMS statement of a stack)."""
    seen: set[int] = set()
    out = []
    for statement in statements:
        if id(statement) not in seen:
            seen.add(id(statement))
            out.append(statement)
    return out


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """A JSON policy document; statement ids are made unique by suffixing repeats."""
    rendered, counts = [], {}
    for statement in unique(statements):
        body = statement.render()
        counts[statement.sid] = counts.get(statement.sid, 0) + 1
        if counts[statement.sid] > 1:
            body["Sid"] = f"{statement.sid}{counts[statement.sid]}"
        rendered.append(body)
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": rendered})


def assume_role_policy(service: str, condition: Mapping[str, Any] | None = None) -> pulumi.Output[str]:
    """Trust policy letting ``service`` (e.g. ``lambda.amazonaws.com``) assume the role."""
    trust = Statement(
        sid="TrustService",
        actions=("sts:AssumeRole",),
        resources=(),
        principal={"Service": service},
        condition=condition or {},
    )
    body = trust.render()
    del body["Resource"]  # trust policies name no resource
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": [body]})


def tls_only_statement(actions: tuple[str, ...], resources: Sequence[pulumi.Input[str]]) -> Statement:
    """Deny ``actions`` on ``resources`` to every request that does not use TLS (resource policies)."""
    return Statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        principal="*",
        actions=actions,
        resources=tuple(resources),
        condition={"Bool": {"aws:SecureTransport": "false"}},
    )


#: Lambda and Step Functions tracing: X-Ray's write actions accept no resource but ``*``.
XRAY_STATEMENT = Statement(
    sid=XRAY_SID,
    actions=(
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    ),
    resources=("*",),
)


@dataclass(frozen=True, kw_only=True)
class ServiceRole:
    """A role and the one inline policy holding its statements."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy


def service_role(
    name: str,
    *,
    service: str,
    statements: Sequence[Statement],
    parent: pulumi.Resource,
    description: str,
    trust_condition: Mapping[str, Any] | None = None,
) -> ServiceRole:
    """A role trusted by ``service`` holding only ``statements`` (logical names ``<name>-role/-policy``)."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        description=description,
        assume_role_policy=assume_role_policy(service, trust_condition),
        opts=opts,
    )
    policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=opts)
    return ServiceRole(role=role, policy=policy)
