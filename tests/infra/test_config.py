"""Stack configuration: the documented keys, defaults, and one-line errors before any resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import KEYS, ConfigError
from infra.testing import deploy_with_mocks

from .conftest import INDEX_ID, Deploy, config_for

REPO = Path(__file__).resolve().parents[2]

DOCUMENTED_KEYS = {
    "option",
    "kendraIndexId",
    "documentMode",
    "archiveExpirationDays",
    "mapConcurrency",
    "putConcurrency",
    "deleteConcurrency",
    "encryption",
    "notificationEmails",
    "logRetentionDays",
    "verifyIndexing",
    "skipUnchanged",
    "kendraDataSourceId",
    "defaultLanguageCode",
    "sources",
    "protectData",
    "accessLogs",
}
ADDED_KEYS = {"maxDocumentBytes", "maxRequestBytes", "lambdaMemoryMb", "kendraTps", "verifyTimeoutSeconds"}


def test_keys_are_the_design_keys_plus_the_added_ones() -> None:
    assert set(KEYS) == DOCUMENTED_KEYS | ADDED_KEYS


BAD = [
    ("dev", {"option": None}, "option", "sfn or sqs (got nothing; required because stack 'dev'"),
    ("sfn", {"option": "lambda"}, "option", "(got lambda)"),
    ("sfn", {"kendraIndexId": None}, "kendraIndexId", "(got nothing)"),
    ("sfn", {"kendraIndexId": "too-short"}, "kendraIndexId", "36-character"),
    ("sfn", {"kendraIndexId": "x" * 35 + "!"}, "kendraIndexId", "36-character"),
    ("sfn", {"documentMode": "blob"}, "documentMode", "inline or s3 (got blob)"),
    ("sfn", {"archiveExpirationDays": 0}, "archiveExpirationDays", "1-3650 (got 0)"),
    ("sfn", {"archiveExpirationDays": 3651}, "archiveExpirationDays", "1-3650 (got 3651)"),
    ("sfn", {"mapConcurrency": 0}, "mapConcurrency", "1-40 (got 0)"),
    ("sqs", {"putConcurrency": 1}, "putConcurrency", "(got 1)"),
    ("sqs", {"deleteConcurrency": "many"}, "deleteConcurrency", "(got many)"),
    ("sfn", {"encryption": "aes"}, "encryption", "s3 or kms (got aes)"),
    ("sfn", {"notificationEmails": ["ops@example.com", "not-an-email"]}, "notificationEmails", "email"),
    ("sfn", {"logRetentionDays": 2}, "logRetentionDays", "(got 2)"),
    ("sfn", {"verifyIndexing": "maybe"}, "verifyIndexing", "true or false (got maybe)"),
    ("sfn", {"kendraDataSourceId": "no spaces"}, "kendraDataSourceId", "(got no spaces)"),
    ("sfn", {"maxDocumentBytes": 60 * 1024 * 1024}, "maxDocumentBytes", "(got 62914560)"),
    ("sfn", {"maxRequestBytes": 1000}, "maxRequestBytes", "at least maxDocumentBytes (got 1000)"),
    ("sfn", {"lambdaMemoryMb": 64}, "lambdaMemoryMb", "128-10240, the MB of every function (got 64)"),
    ("sfn", {"defaultLanguageCode": "Japanese"}, "defaultLanguageCode", "a language code such as ja"),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "detail"), BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_a_bad_key_fails_in_one_line_naming_it_and_the_fix_before_any_resource(
    orchestrator_template: None, stack: str, overrides: dict[str, Any], key: str, detail: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        deploy_with_mocks(config_for(**overrides), stack)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"kendra-ingestion:{key} must be ")
    assert detail in message
    fix = f"--path '{key}[0]'" if key == "notificationEmails" else key
    assert f"; fix: pulumi config set {fix} " in message
    assert caught.value.deployment.resources == ()  # type: ignore[attr-defined]


def test_the_message_reads_exactly_as_documented(orchestrator_template: None) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^kendra-ingestion:mapConcurrency must be an integer 1-40 \(got 99\); "
        r"fix: pulumi config set mapConcurrency 4$",
    ):
        deploy_with_mocks(config_for(mapConcurrency=99), "sfn")


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_option_defaults_to_the_stack_name(deploy: Deploy, stack: str) -> None:
    assert deploy(stack).outputs["option"] == stack


def test_an_explicit_option_wins_over_the_stack_name(deploy: Deploy) -> None:
    assert deploy("sfn", option="sqs").outputs["option"] == "sqs"


def test_emails_accept_a_comma_separated_string(deploy: Deploy) -> None:
    deployment = deploy("sfn", notificationEmails="a@example.com, b@example.com")
    subscriptions = deployment.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize("stack", ["dev", "sfn", "sqs"])
def test_every_checked_in_stack_file_deploys(orchestrator_template: None, stack: str) -> None:
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {**values, "kendra-ingestion:kendraIndexId": INDEX_ID}
    deployment = deploy_with_mocks(config, stack)
    assert deployment.outputs["option"] in ("sfn", "sqs")


def test_pulumi_project_is_named_for_the_config_namespace() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "kendra-ingestion"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


def test_the_quota_derives_the_concurrency_keys_left_unset() -> None:
    from infra.config import StackConfig

    base = {"option": "sqs", "kendraIndexId": "a" * 36}
    derived = StackConfig.model_validate({**base, "kendraTps": 12.5})
    assert (derived.map_concurrency, derived.put_concurrency, derived.delete_concurrency) == (13, 13, 13)
    slow = StackConfig.model_validate({**base, "kendraTps": 0.5})
    assert (slow.map_concurrency, slow.put_concurrency, slow.delete_concurrency) == (4, 2, 4)  # the defaults
    chosen = StackConfig.model_validate({**base, "kendraTps": 100, "putConcurrency": 3})
    assert chosen.put_concurrency == 3 and chosen.map_concurrency == 40  # set keys win; limits hold
    assert StackConfig.model_validate(base).put_concurrency == 2
