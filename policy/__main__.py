"""The CrossGuard policy pack: every rule of ``infra/policies.py``, enforced (mandatory) on preview and up.

Rules that judge one resource at a time (:data:`infra.policies.RESOURCE_RULES`) are resource policies;
the others compare resources (a bucket and its policy, a queue and its consumer) and are stack policies.
Each calls the very function the unit tests run under mocks::

    pulumi preview --policy-pack policy

A PolicyPack starts a server, so tests import this module and read :data:`POLICIES` instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The checkout's infra/ (the pack runs from policy/, beside it).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import policies

PACK_NAME = "kendra-ingestion-security"


@dataclass(frozen=True)
class PackResource:
    """A resource as CrossGuard shows it, in the shape the rules read (:class:`infra.policies.Declared`).

    CrossGuard gives one property bag (inputs and, once known, outputs), so ``inputs`` and ``state`` are it.
    It shows no ``retain_on_delete``; ``data_protected`` then judges ``protect`` alone.
    """

    type: str
    name: str
    inputs: Mapping[str, Any]
    state: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)


def as_declared(resource: Any) -> PackResource:
    """A ``PolicyResource`` or ``ResourceValidationArgs`` as a :class:`PackResource`."""
    opts = resource.opts
    props = dict(resource.props)
    options = {
        "protect": bool(getattr(opts, "protect", False)),
        "ignore_changes": list(getattr(opts, "ignore_changes", None) or []),
        "aliases": list(getattr(opts, "aliases", None) or []),
    }
    return PackResource(type=resource.resource_type, name=resource.name, inputs=props, state=props, options=options)


def _summary(rule: policies.Rule) -> str:
    return (rule.__doc__ or rule.__name__).strip().splitlines()[0]


def policy_name(rule: policies.Rule) -> str:
    """``bucket_public_access_blocked`` -> ``bucket-public-access-blocked``."""
    return rule.__name__.replace("_", "-")


def resource_policy(rule: policies.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for violation in rule([as_declared(args)]):
            report_violation(violation, None)

    return ResourceValidationPolicy(name=policy_name(rule), description=_summary(rule), validate=validate)


def stack_policy(rule: policies.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in rule([as_declared(r) for r in args.resources]):
            report_violation(violation, None)

    return StackValidationPolicy(name=policy_name(rule), description=_summary(rule), validate=validate)


#: One policy per rule, in the order of ``infra.policies.RULES``.
POLICIES: list[Policy] = [
    resource_policy(rule) if rule in policies.RESOURCE_RULES else stack_policy(rule) for rule in policies.RULES
]

if __name__ == "__main__":  # the Pulumi CLI runs the pack as __main__
    PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
