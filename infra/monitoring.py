"""Alarms to the notification topic: errors and throttles of every function, plus what each option
adds (failed or timed-out executions; dead letters and stale messages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.defaults import ALARM_PERIOD_SECONDS


@dataclass(frozen=True, kw_only=True)
class Watch:
    """One metric that must stay at or below ``threshold`` over one period."""

    name: str
    description: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str = "Sum"
    threshold: float = 0.0


def function_watches(handler: str, function: aws.lambda_.Function) -> tuple[Watch, ...]:
    """Any error or throttle of a function is worth a look."""
    return tuple(
        Watch(
            name=f"{handler}-{metric.lower()}",
            description=f"{handler}: {metric} > 0 in 5 minutes",
            namespace="AWS/Lambda",
            metric_name=metric,
            dimensions={"FunctionName": function.name},
        )
        for metric in ("Errors", "Throttles")
    )


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """Where alarms go, and what to watch."""

    topic_arn: pulumi.Input[str]
    watches: tuple[Watch, ...]


class Monitoring(pulumi.ComponentResource):
    """One alarm per :class:`Watch`, each notifying the topic."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:Monitoring", name, None, opts)
        self.alarms = {
            watch.name: aws.cloudwatch.MetricAlarm(
                f"{name}-{watch.name}",
                alarm_description=watch.description,
                namespace=watch.namespace,
                metric_name=watch.metric_name,
                dimensions=dict(watch.dimensions),
                statistic=watch.statistic,
                period=ALARM_PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=watch.threshold,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[args.topic_arn],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for watch in args.watches
        }
        self.register_outputs({})
