"""Alarms to the notification topic: errors and throttles of every function, plus what each option
adds (failed or timed-out executions; dead letters and stale messages); and the stack's CloudWatch
dashboard: jobs and documents, failures, Kendra throttling and latency, what each option adds
(executions; queue depth and age) and the functions' errors, with every alarm's state.

The pipeline's own metrics (``DocumentsPut``, ``JobsFailed``, ``KendraCallLatency`` ...) live in the
stack's namespace (``functions/kendra_ingest/settings.py``: ``metrics_namespace``); the dashboard reads
their dimension set ``[service]`` (``functions/kendra_ingest/telemetry.py`` also emits
``[service, stack, source]``). Each alarm is named ``<project>-<stack>-<alarm_suffix>`` and its
description links to its section of docs/runbook.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.contract import settings
from infra.defaults import ALARM_PERIOD_SECONDS, DASHBOARD_PERIOD_SECONDS
from infra.naming import MAX_ALARM_NAME_LENGTH, MAX_DASHBOARD_NAME_LENGTH, physical_name

#: The operators' guide: one section per alarm, titled with :func:`alarm_suffix` (its anchor too).
RUNBOOK = "docs/runbook.md"


def alarm_suffix(watch_name: str) -> str:
    """The alarm's name after ``<project>-<stack>-``, e.g. ``process-batch-errors``; also its runbook anchor."""
    return re.sub(r"[^a-z0-9-]+", "-", watch_name.lower()).strip("-")


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
class Line:
    """One metric drawn on a dashboard graph."""

    namespace: str
    metric_name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str = "Sum"
    label: str | None = None

    def render(self) -> list[object]:
        """The metric array of a CloudWatch dashboard widget."""
        options: dict[str, object] = {"stat": self.statistic}
        if self.label:
            options["label"] = self.label
        dims = [part for name, value in self.dimensions.items() for part in (name, value)]
        return [self.namespace, self.metric_name, *dims, options]


@dataclass(frozen=True, kw_only=True)
class Graph:
    """One graph of the dashboard."""

    title: str
    lines: tuple[Line, ...]
    stacked: bool = False


def pipeline_line(namespace: str, metric: str, statistic: str = "Sum", label: str | None = None) -> Line:
    """A metric the pipeline itself emits (its namespace, dimension ``service``)."""
    return Line(namespace=namespace, metric_name=metric, dimensions={"service": settings.METRICS_SERVICE},
                statistic=statistic, label=label)


def pipeline_graphs(namespace: str) -> tuple[Graph, ...]:
    """What every stack shows, whatever its option: jobs, documents, failures and Kendra."""
    s = settings
    return (
        Graph(title="Documents", stacked=True, lines=tuple(
            pipeline_line(namespace, metric) for metric in
            (s.DOCUMENTS_PUT, s.DOCUMENTS_SKIPPED, s.DOCUMENTS_DELETED, s.DOCUMENTS_FAILED))),
        Graph(title="Failures", lines=(
            pipeline_line(namespace, s.JOBS_FAILED), pipeline_line(namespace, s.DOCUMENTS_FAILED))),
        Graph(title="Job duration (seconds)", lines=(
            pipeline_line(namespace, s.JOB_DURATION_SECONDS, "Average"),
            pipeline_line(namespace, s.JOB_DURATION_SECONDS, "Maximum"),
            pipeline_line(namespace, s.JOB_DURATION_SECONDS, "SampleCount", label="Jobs"))),
        Graph(title="Kendra throttling", lines=(pipeline_line(namespace, s.KENDRA_THROTTLES),)),
        Graph(title="Kendra call latency (ms)", lines=(
            pipeline_line(namespace, s.KENDRA_CALL_LATENCY, "Average"),
            pipeline_line(namespace, s.KENDRA_CALL_LATENCY, "p99"))),
    )


def function_graphs(functions: Mapping[str, aws.lambda_.Function]) -> tuple[Graph, ...]:
    """Errors, throttles and duration of every function."""

    def per_function(metric: str, statistic: str) -> tuple[Line, ...]:
        return tuple(
            Line(namespace="AWS/Lambda", metric_name=metric, dimensions={"FunctionName": f.name},
                 statistic=statistic, label=handler)
            for handler, f in sorted(functions.items())
        )

    return (
        Graph(title="Lambda errors", lines=per_function("Errors", "Sum")),
        Graph(title="Lambda throttles", lines=per_function("Throttles", "Sum")),
        Graph(title="Lambda duration p99 (ms)", lines=per_function("Duration", "p99")),
    )


#: Dashboard grid: 24 units wide; three graphs a row.
GRID_WIDTH, GRAPH_WIDTH, GRAPH_HEIGHT = 24, 8, 6


def dashboard_body(
    graphs: tuple[Graph, ...], *, region: pulumi.Input[str], alarm_arns: list[pulumi.Input[str]]
) -> pulumi.Output[str]:
    """The dashboard JSON: an alarm-status row, then the graphs three a row."""
    widgets: list[dict[str, object]] = [{
        "type": "alarm", "x": 0, "y": 0, "width": GRID_WIDTH, "height": 3,
        "properties": {"title": "Alarms", "alarms": alarm_arns},
    }]
    per_row = GRID_WIDTH // GRAPH_WIDTH
    for n, graph in enumerate(graphs):
        widgets.append({
            "type": "metric",
            "x": (n % per_row) * GRAPH_WIDTH, "y": 3 + (n // per_row) * GRAPH_HEIGHT,
            "width": GRAPH_WIDTH, "height": GRAPH_HEIGHT,
            "properties": {
                "title": graph.title, "region": region, "view": "timeSeries", "stacked": graph.stacked,
                "period": DASHBOARD_PERIOD_SECONDS, "metrics": [line.render() for line in graph.lines],
            },
        })
    return pulumi.Output.json_dumps({"widgets": widgets})


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """Where alarms go, what to watch, and what the dashboard shows."""

    topic_arn: pulumi.Input[str]
    watches: tuple[Watch, ...]
    #: ``<project>-<stack>``: the dashboard's name.
    prefix: str = "kendra-ingestion"
    region: pulumi.Input[str] = "us-east-1"
    #: The option's and the functions' graphs, after the pipeline's own (:func:`pipeline_graphs`).
    graphs: tuple[Graph, ...] = ()
    metrics_namespace: str = settings.DEFAULT_METRICS_NAMESPACE


class Monitoring(pulumi.ComponentResource):
    """One alarm per :class:`Watch`, each notifying the topic, and the stack's dashboard."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kendra-ingestion:index:Monitoring", name, None, opts)
        self.alarms = {
            watch.name: aws.cloudwatch.MetricAlarm(
                f"{name}-{watch.name}",
                name=physical_name(args.prefix, alarm_suffix(watch.name), max_length=MAX_ALARM_NAME_LENGTH),
                # CloudWatch shows the description with the alarm, and the notification carries it.
                alarm_description=f"{watch.description}. Runbook: {RUNBOOK}#{alarm_suffix(watch.name)}",
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
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=physical_name(args.prefix, "dashboard", max_length=MAX_DASHBOARD_NAME_LENGTH),
            dashboard_body=dashboard_body(
                (*pipeline_graphs(args.metrics_namespace), *args.graphs),
                region=args.region,
                alarm_arns=[alarm.arn for alarm in self.alarms.values()],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"dashboard_name": self.dashboard.dashboard_name})
