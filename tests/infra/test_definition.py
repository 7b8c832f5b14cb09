"""The state machine template and its deploy-time substitution."""

from __future__ import annotations

import json

import pytest
from pydantic.alias_generators import to_camel

from infra import sfn_pipeline
from infra.sfn_pipeline import render_definition

from .conftest import PLACEHOLDER_ASL

HANDLERS = (
    "load_manifest",
    "acquire_lock",
    "list_batches",
    "process_batch",
    "verify_indexing",
    "aggregate_failures",
    "release_lock",
)
VALUES = {
    **{f"{to_camel(h)}Arn": f"arn:aws:lambda:us-east-1:123456789012:function:{h}" for h in HANDLERS},
    "topicArn": "arn:aws:sns:us-east-1:123456789012:topic",
    "reportsBucket": "reports-bucket",
    "mapConcurrency": 6,
}


def templates() -> list[str]:
    found = [PLACEHOLDER_ASL]
    if sfn_pipeline.ORCHESTRATOR_TEMPLATE.exists():
        found.append(sfn_pipeline.load_template())
    return found


@pytest.mark.parametrize("template", templates(), ids=lambda t: "placeholder" if t == PLACEHOLDER_ASL else "lead")
def test_every_placeholder_is_filled_and_concurrency_is_a_number(template: str) -> None:
    definition = render_definition(template, VALUES)
    assert "${" not in definition
    assert '"MaxConcurrency": 6' in definition.replace('"MaxConcurrency":6', '"MaxConcurrency": 6')
    json.loads(definition)


def test_execution_context_paths_survive() -> None:
    template = '{"A": {"owner.$": "$$.Execution.Id", "Resource": "${loadManifestArn}"}}'
    assert json.loads(render_definition(template, VALUES))["A"] == {
        "owner.$": "$$.Execution.Id",
        "Resource": VALUES["loadManifestArn"],
    }


def test_verify_indexing_is_a_bare_boolean() -> None:
    template = '{"Choices": [{"Variable": "$.x", "BooleanEquals": "${verifyIndexing}"}]}'
    assert json.loads(render_definition(template, {**VALUES, "verifyIndexing": False}))["Choices"][0] == {
        "Variable": "$.x",
        "BooleanEquals": False,
    }


def test_an_unknown_placeholder_is_named() -> None:
    with pytest.raises(ValueError, match=r"no value for \$\{lockTableName\}"):
        render_definition('{"T": "${lockTableName}"}', VALUES)


def test_a_broken_template_fails_the_deploy() -> None:
    with pytest.raises(json.JSONDecodeError):
        render_definition('{"T": "${topicArn}",}', VALUES)
