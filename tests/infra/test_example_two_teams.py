"""examples/two-teams: two KendraIngestion instances in one program, an index passed as an Output."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from infra import policies
from infra.testing import Deployment, deploy_with_mocks

from .test_names_and_tags import NAMES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-teams" / "__main__.py"


@pytest.fixture(scope="module")
def deployment(orchestrator_template: None) -> Deployment:
    spec = importlib.util.spec_from_file_location("two_teams_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines program(); __name__ is not __main__, so nothing runs yet
    return deploy_with_mocks({}, stack="dev", program=module.program, project="two-teams")


def test_two_instances_do_not_collide(deployment: Deployment) -> None:
    urns = Counter((r.type, r.name) for r in deployment.resources)
    assert [u for u, n in urns.items() if n > 1] == []
    physical = Counter(
        (r.type, r.inputs[NAMES[r.type][0]]) for r in deployment.resources
        if r.type in NAMES and not r.name.startswith("search")  # the example's own index role is autonamed
    )
    assert [p for p, n in physical.items() if n > 1] == []
    functions = deployment.of_type("aws:lambda/function:Function")
    assert {f.inputs["name"].split("-")[3] for f in functions} == {"hr", "legal"}
    assert all(f.inputs["name"].startswith("two-teams-dev-") for f in functions)


def test_children_are_named_after_their_component(deployment: Deployment) -> None:
    ours = [r for r in deployment.resources if r.type.startswith("aws:") and not r.name.startswith("search")]
    assert ours and all(r.name.startswith(("hr-", "legal-")) for r in ours)
    assert not any(r.options.get("aliases") for r in ours)  # no 0.1 names to keep


def test_the_index_output_reaches_both_pipelines(deployment: Deployment) -> None:
    index_id = deployment.outputs["kendra_index_id"]
    assert index_id
    roles = [r for r in deployment.of_type("aws:iam/rolePolicy:RolePolicy") if "KendraIndex" in r.inputs["policy"]]
    assert {r.name.split("-")[0] for r in roles} == {"hr", "legal"}
    assert all(f"index/{index_id}" in r.inputs["policy"] for r in roles)
    assert set(deployment.outputs["legal_source_writer_policies"]) == {"contracts", "cases"}


@pytest.mark.parametrize("team", ["hr", "legal"])
def test_each_pipeline_passes_the_security_rules(deployment: Deployment, team: str) -> None:
    ours = tuple(r for r in deployment.resources if r.name.startswith(f"{team}-"))
    assert policies.check(ours) == []


def test_everything_is_tagged_with_its_component(deployment: Deployment) -> None:
    tagged = [r for r in deployment.resources if "tags" in r.inputs]
    assert {r.inputs["tags"]["project"] for r in tagged} == {"two-teams"}
    assert {r.inputs["tags"]["component"] for r in tagged if r.name.startswith("search")} == {"stack"}
