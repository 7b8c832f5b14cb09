"""Every alarm the stack creates has its section in docs/runbook.md, named as the alarm, and its
description links there; every link inside the runbook leads to a section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.monitoring import RUNBOOK, alarm_suffix

from .conftest import Deploy

REPO = Path(__file__).resolve().parents[2]
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> set[str]:
    text = (REPO / RUNBOOK).read_text()
    return {anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize(("stack", "config"), [
    ("sfn", {}), ("sqs", {}), ("sfn", {"encryption": "kms", "documentMode": "s3"}),
    ("sqs", {"sources": {"hr": "teams/hr"}, "kendraDataSourceId": "ds-1"}),
])
def test_every_alarm_has_a_section_named_as_it_and_links_to_it(deploy: Deploy, stack: str, config: dict) -> None:
    alarms = deploy(stack, **config).of_type(ALARM)
    assert alarms
    known = sections()
    for alarm in alarms:
        name = alarm.inputs["name"]
        prefix = f"kendra-ingestion-{stack}-"
        assert name.startswith(prefix), name
        suffix = name.removeprefix(prefix)
        assert suffix in known, f"docs/runbook.md has no section '### {suffix}' for alarm {name}"
        assert alarm.inputs["alarmDescription"].endswith(f"Runbook: {RUNBOOK}#{suffix}"), name


def test_the_alarm_names_are_unique_and_within_cloudwatchs_limit(deploy: Deploy) -> None:
    for stack in ("sfn", "sqs"):
        names = [a.inputs["name"] for a in deploy(stack).of_type(ALARM)]
        assert len(names) == len(set(names)) and all(len(n) <= 255 for n in names)


def test_every_link_inside_the_runbook_leads_to_a_section() -> None:
    text = (REPO / RUNBOOK).read_text()
    targets = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert targets and targets <= sections(), sorted(targets - sections())
    for relative in re.findall(r"\]\(([\w./-]+\.md)\)", text):
        assert (REPO / "docs" / relative).is_file(), relative


def test_alarm_suffix_is_a_valid_anchor() -> None:
    assert alarm_suffix("process_batch-errors") == "process-batch-errors"
    assert anchor("### process-batch-errors".removeprefix("### ")) == "process-batch-errors"
