"""Two teams, two ingestion pipelines, one Kendra index: ``KendraIngestion`` reused as a component.

The program creates the index itself and hands its ``id`` (an Output) to both components. Each
component's children are named after it (``hr-...``, ``legal-...``) and its physical names start with
``<project>-<stack>-<component>``, so the two never collide. Every resource is tagged (project, stack,
component) by the stack transform that ``tagging.register()`` installs.

Run it (the Pulumi CLI, AWS credentials, kendra-ingestion installed in ``venv``)::

    cd examples/two-teams
    python -m venv venv && venv/bin/pip install ../..    # or: pip install kendra-ingestion
    venv/bin/python -m infra.packaging layer              # the Lambda dependencies layer, once per pin set
    pulumi stack init dev && pulumi up

Settings are code here (``StackConfig``); a program may equally read them with
``infra.config.load(pulumi.Config(), stack=pulumi.get_stack())``.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra import tagging
from infra.config import StackConfig
from infra.stack import KendraIngestion, KendraIngestionArgs

#: Kendra writes its own CloudWatch metrics and logs with the index role.
KENDRA_PRINCIPAL = "kendra.amazonaws.com"


def kendra_index() -> aws.kendra.Index:
    """A developer-edition index and the role Kendra runs it with."""
    role = aws.iam.Role(
        "search-index",
        assume_role_policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": KENDRA_PRINCIPAL}, "Action": "sts:AssumeRole"}],
        }),
    )
    aws.iam.RolePolicy(
        "search-index-metrics",
        role=role.id,
        policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",  # PutMetricData supports no resource; the condition scopes it
                "Condition": {"StringEquals": {"cloudwatch:namespace": "AWS/Kendra"}},
            }],
        }),
    )
    return aws.kendra.Index("search", edition="DEVELOPER_EDITION", role_arn=role.arn)


def program() -> None:
    """Declare the index and one ingestion pipeline per team; export each team's bucket and topic."""
    tagging.register()
    index = kendra_index()
    teams = {
        "hr": StackConfig(option="sfn", notification_emails=("hr-search@example.com",)),
        "legal": StackConfig(option="sqs", encryption="kms", sources={"contracts": "contracts", "cases": "cases"}),
    }
    for team, config in teams.items():
        app = KendraIngestion(team, KendraIngestionArgs(config=config, kendra_index_id=index.id))
        pulumi.export(f"{team}_ingestion_bucket", app.outputs["ingestion_bucket"])
        pulumi.export(f"{team}_notification_topic_arn", app.outputs["notification_topic_arn"])
        pulumi.export(f"{team}_function_names", app.outputs["function_names"])
        if "source_writer_policies" in app.outputs:
            pulumi.export(f"{team}_source_writer_policies", app.outputs["source_writer_policies"])
    pulumi.export("kendra_index_id", index.id)


if __name__ == "__main__":  # Pulumi runs this file as __main__; tests import it and call program()
    program()
