"""THE Pulumi mocks fixture of the infra tests: ``deploy(stack, **config)`` runs the real program under
``infra.testing.deploy_with_mocks`` (fresh event loop, ``reset_options``, ``set_mocks``,
``set_all_config``, every registration awaited) and returns the recorded resources and outputs.

Deployments are memoised per (stack, config) for the session: the program is deterministic under
mocks, and the suite stays fast. A config value of ``None`` removes that key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra import sfn_pipeline
from infra.testing import Deployment, deploy_with_mocks

INDEX_ID = "0f3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
BASE_CONFIG: dict[str, Any] = {"kendraIndexId": INDEX_ID}

#: Used only while infra/state_machines/orchestrator.asl.json does not exist yet: every placeholder the
#: component fills, in a minimal valid definition.
PLACEHOLDER_ASL = json.dumps(
    {
        "StartAt": "LoadManifest",
        "States": {
            **{
                state: {"Type": "Task", "Resource": f"${{{arn}}}", "Next": nxt}
                for state, arn, nxt in (
                    ("LoadManifest", "loadManifestArn", "AcquireLock"),
                    ("AcquireLock", "acquireLockArn", "ListBatches"),
                    ("ListBatches", "listBatchesArn", "ProcessParts"),
                    ("VerifyIndexing", "verifyIndexingArn", "AggregateFailures"),
                    ("AggregateFailures", "aggregateFailuresArn", "Notify"),
                )
            },
            "ProcessParts": {
                "Type": "Map",
                "MaxConcurrency": "${mapConcurrency}",
                "Next": "VerifyIndexing",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Parameters": {"Bucket": "${reportsBucket}", "Key.$": "$.plan.itemsKey"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "ProcessBatch",
                    "States": {"ProcessBatch": {"Type": "Task", "Resource": "${processBatchArn}", "End": True}},
                },
            },
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": "${topicArn}", "Message.$": "$"},
                "Next": "ReleaseLock",
            },
            "ReleaseLock": {"Type": "Task", "Resource": "${releaseLockArn}", "End": True},
        },
    },
    indent=2,
)

Deploy = Callable[..., Deployment]


def config_for(**overrides: Any) -> dict[str, Any]:
    """The base config with ``overrides`` applied (``None`` removes a key)."""
    config = {**BASE_CONFIG, **overrides}
    return {key: value for key, value in config.items() if value is not None}


@pytest.fixture(scope="session")
def orchestrator_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The lead's template when it exists, else :data:`PLACEHOLDER_ASL`."""
    if sfn_pipeline.ORCHESTRATOR_TEMPLATE.exists():
        yield
        return
    placeholder = tmp_path_factory.mktemp("asl") / "orchestrator.asl.json"
    placeholder.write_text(PLACEHOLDER_ASL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sfn_pipeline, "ORCHESTRATOR_TEMPLATE", placeholder)
        yield


@pytest.fixture(scope="session")
def deploy(orchestrator_template: None) -> Deploy:
    """``deploy(stack="sfn", **config_overrides) -> Deployment``; raises what the program raises."""
    cache: dict[tuple[str, str], Deployment] = {}

    def run(stack: str = "sfn", **overrides: Any) -> Deployment:
        config = config_for(**overrides)
        key = (stack, json.dumps(config, sort_keys=True))
        if key not in cache:
            cache[key] = deploy_with_mocks(config, stack)
        return cache[key]

    return run
