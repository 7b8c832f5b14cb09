"""The stack's CloudWatch dashboard under mocks: one per stack, named in the outputs, showing what the
operators need for each option, every alarm's state and the pipeline's metrics in the stack's namespace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.contract import settings
from infra.testing import REGION, Deployment

from .conftest import Deploy

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
PIPELINE_METRICS = {"DocumentsPut", "DocumentsFailed", "DocumentsSkipped", "DocumentsDeleted",
                    "JobDurationSeconds", "JobsFailed", "KendraThrottles", "KendraCallLatency"}


def body(deployment: Deployment) -> dict[str, Any]:
    (dashboard,) = deployment.of_type(DASHBOARD)
    assert dashboard.inputs["dashboardName"] == deployment.outputs["dashboard_name"]
    return json.loads(dashboard.inputs["dashboardBody"])


def metrics(widgets: list[dict[str, Any]]) -> list[list[Any]]:
    return [m for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]]


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_one_dashboard_per_stack_named_for_project_and_stack(deploy: Deploy, stack: str) -> None:
    assert deploy(stack).outputs["dashboard_name"] == f"kendra-ingestion-{stack}-dashboard"


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_the_pipeline_metrics_are_in_the_stacks_namespace(deploy: Deploy, stack: str) -> None:
    namespace = settings.metrics_namespace(f"kendra-ingestion-{stack}")
    own = [m for m in metrics(body(deploy(stack))["widgets"]) if m[0] == namespace]
    assert {m[1] for m in own} == PIPELINE_METRICS
    assert all(m[2:4] == ["service", settings.METRICS_SERVICE] for m in own)


@pytest.mark.parametrize(("stack", "option_metrics"), [
    ("sfn", {("AWS/States", "ExecutionsStarted"), ("AWS/States", "ExecutionsFailed"), ("AWS/States", "ExecutionTime")}),
    ("sqs", {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage")}),
])
def test_each_option_shows_its_own_and_every_functions_errors(
    deploy: Deploy, stack: str, option_metrics: set[tuple[str, str]]
) -> None:
    deployment = deploy(stack)
    shown = metrics(body(deployment)["widgets"])
    assert option_metrics <= {(m[0], m[1]) for m in shown}
    errors = {m[3] for m in shown if m[:3] == ["AWS/Lambda", "Errors", "FunctionName"]}
    assert errors == set(deployment.outputs["function_names"].values())
    if stack == "sfn":
        machines = {m[3] for m in shown if m[0] == "AWS/States"}
        assert machines == {deployment.outputs["state_machine_arn"]}
    else:
        queues = {m[3] for m in shown if m[0] == "AWS/SQS"}
        urls = [deployment.outputs[k] for k in ("put_queue_url", "delete_queue_url", "put_dlq_url", "delete_dlq_url")]
        assert queues == {url.rsplit("/", 1)[1] for url in urls}


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_every_alarm_is_on_the_dashboard_and_widgets_fit_the_grid(deploy: Deploy, stack: str) -> None:
    deployment = deploy(stack)
    widgets = body(deployment)["widgets"]
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    declared = {a.state["arn"] for a in deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms["properties"]["alarms"]) == declared and len(declared) <= 100
    for widget in widgets:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == REGION
    places = [(w["x"], w["y"]) for w in widgets]
    assert len(places) == len(set(places))
