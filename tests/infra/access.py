"""Just enough IAM evaluation for tests: does a role's policy allow an action on a resource?
(Allow statements only, wildcards as IAM matches them, conditions ignored; nothing in the stack
uses Deny in identity policies.)"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from infra.testing import Deployment, RecordedResource

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def allows(document: dict[str, Any], action: str, resource: str) -> bool:
    """True when some Allow statement of ``document`` matches ``action`` on ``resource``."""
    return any(
        statement.get("Effect") == "Allow"
        and any(fnmatchcase(action.lower(), pattern.lower()) for pattern in _list(statement.get("Action", [])))
        and any(fnmatchcase(resource, pattern) for pattern in _list(statement.get("Resource", [])))
        for statement in _list(document.get("Statement", []))
    )


def role_policy(deployment: Deployment, role_arn: str) -> dict[str, Any]:
    """The inline policy of the role with this ARN (every role of the stack has exactly one)."""
    role = next(r for r in deployment.of_type("aws:iam/role:Role") if r.state["arn"] == role_arn)
    policies = [p for p in deployment.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]
    assert len(policies) == 1, f"role {role.name} has {len(policies)} inline policies"
    return json.loads(policies[0].inputs["policy"])


def function(deployment: Deployment, handler: str) -> RecordedResource:
    """The Lambda function of ``handler``."""
    name = deployment.outputs["function_names"][handler]
    return next(f for f in deployment.of_type("aws:lambda/function:Function") if f.state["name"] == name)
