"""The embedded-AWS deployer: a Pulumi program deployed into moto, run with in-process handlers."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pulumi_aws as aws
import pytest
from moto import mock_aws

from sandbox import eventbridge, lambdas, moto_fixes
from sandbox.deploy import DeployError, Deployment, deploy

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}

ASSUME_LAMBDA = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
ASSUME_STATES = ASSUME_LAMBDA.replace("lambda.amazonaws.com", "states.amazonaws.com")
ASSUME_EVENTS = ASSUME_LAMBDA.replace("lambda.amazonaws.com", "events.amazonaws.com")


def _definition(load_arn: str, process_arn: str) -> str:
    """A Task + Map(MaxConcurrency 2) + Retry + Catch + Wait state machine over the fixture handlers."""
    return json.dumps(
        {
            "StartAt": "LoadManifest",
            "States": {
                "LoadManifest": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": load_arn, "Payload.$": "$"},
                    "ResultSelector": {"jobId.$": "$.Payload.jobId", "items.$": "$.Payload.items"},
                    "Next": "Pause",
                },
                # 60 s on AWS; moto_fixes.scale_waits makes it 0.6 s here.
                "Pause": {"Type": "Wait", "Seconds": 60, "Next": "Items"},
                "Items": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "MaxConcurrency": 2,
                    "ResultPath": "$.results",
                    "Iterator": {
                        "StartAt": "ProcessItem",
                        "States": {
                            "ProcessItem": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "Parameters": {"FunctionName": process_arn, "Payload.$": "$"},
                                "OutputPath": "$.Payload",
                                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 30, "MaxAttempts": 2}],
                                "Catch": [
                                    {
                                        "ErrorEquals": ["ItemRejected"],
                                        "ResultPath": "$.error",
                                        "Next": "Rejected",
                                    }
                                ],
                                "End": True,
                            },
                            "Rejected": {
                                "Type": "Pass",
                                "Parameters": {
                                    "item.$": "$.item",
                                    "status": "rejected",
                                    "error.$": "$.error.Error",
                                },
                                "End": True,
                            },
                        },
                    },
                    "Next": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        },
        indent=2,
    )


def tiny_program() -> None:
    """A self-contained program with the shapes the real one uses."""
    cfg = pulumi.Config()
    ingest = aws.s3.Bucket("ingest", bucket_prefix="ingest-")
    aws.s3.BucketNotification("ingest-events", bucket=ingest.id, eventbridge=True)
    aws.s3.BucketVersioning("ingest-versioning", bucket=ingest.id, versioning_configuration={"status": "Enabled"})
    aws.s3.BucketLifecycleConfiguration(
        "ingest-lifecycle",
        bucket=ingest.id,
        rules=[
            {
                "id": "expire",
                "status": "Enabled",
                "filter": {"prefix": "_archive/"},
                "expiration": {"days": 60},
            }
        ],
    )
    aws.s3.BucketPolicy(  # TLS-only, as the program makes every bucket
        "ingest-policy",
        bucket=ingest.id,
        policy=ingest.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [arn, f"{arn}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            )
        ),
    )
    table = aws.dynamodb.Table(
        "items",
        name=f"items-{pulumi.get_stack()}",
        hash_key="pk",
        billing_mode="PAY_PER_REQUEST",
        attributes=[{"name": "pk", "type": "S"}, {"name": "fn", "type": "S"}],
        global_secondary_indexes=[
            {
                "name": "by-fn",
                "key_schemas": [{"attribute_name": "fn", "key_type": "HASH"}],
                "projection_type": "KEYS_ONLY",
            }
        ],
        ttl={"attribute_name": "expiresAt", "enabled": True},
    )
    dlq = aws.sqs.Queue("work-dlq", fifo_queue=True)
    aws.sqs.Queue(
        "work",
        fifo_queue=True,
        visibility_timeout_seconds=180,
        message_retention_seconds=1209600,
        redrive_policy=dlq.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})),
    )
    aws.cloudwatch.MetricAlarm(  # not handled: must be listed in Deployment.skipped
        "dlq-alarm",
        comparison_operator="GreaterThanThreshold",
        evaluation_periods=1,
        metric_name="ApproximateNumberOfMessagesVisible",
        namespace="AWS/SQS",
        period=60,
        statistic="Maximum",
        threshold=0,
    )
    topic = aws.sns.Topic("notify")
    aws.sns.TopicSubscription("notify-email", topic=topic.arn, protocol="email", endpoint="team@example.com")
    role = aws.iam.Role("fn-role", assume_role_policy=ASSUME_LAMBDA)
    aws.iam.RolePolicy(
        "fn-policy",
        role=role.id,
        policy=table.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": arn}],
                }
            )
        ),
    )

    def function(logical: str, handler: str, env: dict[str, Any], **extra: Any) -> aws.lambda_.Function:
        return aws.lambda_.Function(
            logical,
            role=role.arn,
            runtime="python3.13",
            handler=f"sandbox_deploy_fixture.{handler}",
            architectures=["arm64"],
            timeout=extra.pop("timeout", 30),
            memory_size=extra.pop("memory_size", 256),
            code=pulumi.AssetArchive({"x.py": pulumi.StringAsset("# placeholder\n")}),
            environment={"variables": env},
            **extra,
        )

    loader = function("load-manifest", "load_manifest", {"TABLE_NAME": table.name}, name="load-manifest-fn")
    processor = function("process-item", "process_item", {"TABLE_NAME": table.name}, timeout=45, memory_size=512)
    function("probe-a", "env_probe", {"PROBE": "alpha"}, name="probe-a")
    function("probe-b", "env_probe", {"PROBE": "beta"}, name="probe-b")
    boom = function("boom", "boom", {}, name="boom-fn")
    aws.lambda_.EventSourceMapping(
        "work-esm",
        event_source_arn=dlq.arn,
        function_name=processor.name,
        batch_size=10,
        function_response_types=["ReportBatchItemFailures"],
        scaling_config={"maximum_concurrency": 2},
    )
    sfn_role = aws.iam.Role("sfn-role", assume_role_policy=ASSUME_STATES)
    machine = aws.sfn.StateMachine(
        "orchestrator",
        role_arn=sfn_role.arn,
        definition=pulumi.Output.all(loader.arn, processor.arn).apply(lambda arns: _definition(*arns)),
    )
    events_role = aws.iam.Role("events-role", assume_role_policy=ASSUME_EVENTS)
    rule = aws.cloudwatch.EventRule(
        "manifest-created",
        state="ENABLED",
        event_pattern=ingest.bucket.apply(
            lambda b: json.dumps(
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [b]},
                        "object": {"key": [{"suffix": "/_control/manifest.json"}]},
                    },
                }
            )
        ),
    )
    aws.cloudwatch.EventTarget(
        "manifest-to-sfn",
        rule=rule.name,
        arn=machine.arn,
        role_arn=events_role.arn,
        input_transformer={
            "input_paths_map": {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
            "input_template": '{"bucket": "<bucket>", "key": "<key>"}',
        },
    )
    # A second rule whose Lambda target always fails: its error must be recorded, not swallowed.
    boom_rule = aws.cloudwatch.EventRule(
        "boom-rule",
        state=cfg.get("boomRuleState") or "DISABLED",
        event_pattern=json.dumps({"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "boom/"}]}}}),
    )
    aws.cloudwatch.EventTarget("boom-target", rule=boom_rule.name, arn=boom.arn, input='{"why": "event"}')
    # What the real pipeline does to release locks when a Catch cannot run (abort, timeout).
    watcher = function("status-watcher", "record_event", {}, name="status-watcher")
    failed_rule = aws.cloudwatch.EventRule(
        "execution-failed",
        event_pattern=machine.arn.apply(
            lambda arn: json.dumps(
                {
                    "source": ["aws.states"],
                    "detail-type": ["Step Functions Execution Status Change"],
                    "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [arn]},
                }
            )
        ),
    )
    aws.cloudwatch.EventTarget("execution-failed-target", rule=failed_rule.name, arn=watcher.arn)
    aws.cloudwatch.EventRule("nightly", schedule_expression="rate(1 day)")
    aws.cloudwatch.LogGroup("process-logs", name="/aws/lambda/process-item-logs", retention_in_days=30)
    key = aws.kms.Key("data-key", description="sandbox test key", enable_key_rotation=True)
    region = aws.get_region()
    identity = aws.get_caller_identity()
    pulumi.export("ingestion_bucket", ingest.bucket)
    pulumi.export("table", table.name)
    pulumi.export("state_machine_arn", machine.arn)
    pulumi.export("kms_key_arn", key.arn)
    pulumi.export("region", region.region)
    pulumi.export("account", identity.account_id)
    pulumi.export("function_names", {"load_manifest": loader.name, "process_item": processor.name})


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@contextmanager
def embedded_aws() -> Iterator[moto_fixes.AppliedFixes]:
    """moto with the Step Functions engine and sandbox-speed waits."""
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_fixes.applied(wait_scale=0.01) as fixes,
    ):
        yield fixes


@pytest.fixture
def aws_env(credentials: None) -> Iterator[None]:
    with embedded_aws() as fixes:
        yield
    assert fixes.errors == []


@pytest.fixture
def deployment(aws_env: None) -> Deployment:
    return deploy({"boomRuleState": "ENABLED"}, stack="test", program=tiny_program)


def _wait_terminal(sfn: Any, execution_arns: list[str], timeout: float = 20.0) -> list[dict[str, Any]]:
    """Poll until every execution is terminal (staying inside mock_aws: executions run in its threads)."""
    deadline = time.monotonic() + timeout
    while True:
        described = [sfn.describe_execution(executionArn=arn) for arn in execution_arns]
        if all(d["status"] in TERMINAL for d in described):
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"executions not terminal: {[d['status'] for d in described]}")
        time.sleep(0.05)


def _upload_manifest(bucket: str, prefix: str, job_id: str, items: list[str]) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=bucket,
        Key=f"{prefix}/_control/manifest.json",
        Body=json.dumps({"jobId": job_id, "items": items}).encode(),
    )


# --------------------------------------------------------------------------------------------------


def test_deploy_creates_declared_resources_in_moto(deployment: Deployment) -> None:
    out = deployment.outputs
    bucket = out["ingestion_bucket"]
    assert bucket.startswith("ingest-")
    assert out["region"] == REGION
    assert out["account"] == "123456789012"
    assert out["table"] == "items-test"
    assert out["kms_key_arn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")

    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    [lifecycle] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (lifecycle["Filter"], lifecycle["Expiration"]) == ({"Prefix": "_archive/"}, {"Days": 60})
    # moto's GetBucketNotificationConfiguration does not render EventBridge: read its model.
    from moto.s3.models import s3_backends

    notification = s3_backends["123456789012"]["aws"].get_bucket(bucket).notification_configuration
    assert notification.event_bridge == {}

    ddb = boto3.client("dynamodb", region_name=REGION)
    table = ddb.describe_table(TableName="items-test")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    [gsi] = table["GlobalSecondaryIndexes"]
    assert (gsi["IndexName"], gsi["KeySchema"]) == ("by-fn", [{"AttributeName": "fn", "KeyType": "HASH"}])
    ttl = ddb.describe_time_to_live(TableName="items-test")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}

    lam = boto3.client("lambda", region_name=REGION)
    process_name = out["function_names"]["process_item"]
    assert process_name.startswith("process-item-")  # autonamed <logical>-<hex>
    conf = lam.get_function_configuration(FunctionName=process_name)
    assert conf["Handler"] == "sandbox_deploy_fixture.process_item"
    assert conf["Timeout"] == 45 and conf["MemorySize"] == 512
    assert conf["Environment"]["Variables"] == {"TABLE_NAME": "items-test"}
    info = deployment.functions[process_name]
    assert (info.timeout, info.memory, dict(info.environment)) == (45, 512, {"TABLE_NAME": "items-test"})
    assert set(deployment.functions) == {
        "load-manifest-fn",
        process_name,
        "probe-a",
        "probe-b",
        "boom-fn",
        "status-watcher",
    }

    # The event source mapping is recorded for the sandbox's own poller, not created in moto.
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    [esm] = deployment.event_source_mappings
    assert esm.function_name == process_name
    assert (esm.batch_size, esm.maximum_concurrency) == (10, 2)
    assert esm.function_response_types == ("ReportBatchItemFailures",)
    assert esm.event_source_arn.endswith(":work-dlq-" + esm.event_source_arn.split(":work-dlq-")[1])

    sqs = boto3.client("sqs", region_name=REGION)
    [work_url] = [u for u in sqs.list_queues()["QueueUrls"] if "/work-" in u and "dlq" not in u]
    attrs = sqs.get_queue_attributes(QueueUrl=work_url, AttributeNames=["All"])["Attributes"]
    assert work_url.endswith(".fifo") and attrs["FifoQueue"] == "true"
    assert attrs["VisibilityTimeout"] == "180" and attrs["MessageRetentionPeriod"] == "1209600"
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": esm.event_source_arn,
        "maxReceiveCount": 3,
    }

    sfn = boto3.client("stepfunctions", region_name=REGION)
    [machine] = deployment.state_machines.values()
    assert machine.arn == out["state_machine_arn"]
    described = sfn.describe_state_machine(stateMachineArn=machine.arn)
    loader_arn = deployment.functions["load-manifest-fn"].arn
    assert described["definition"] == _definition(loader_arn, deployment.functions[process_name].arn)
    assert described["roleArn"].startswith("arn:aws:iam::123456789012:role/sfn-role-")

    events = boto3.client("events", region_name=REGION)
    rule = deployment.rules[next(n for n in deployment.rules if n.startswith("manifest-created-"))]
    [target] = events.list_targets_by_rule(Rule=rule.name)["Targets"]
    assert target["Arn"] == machine.arn
    assert target["InputTransformer"]["InputPathsMap"] == {
        "bucket": "$.detail.bucket.name",
        "key": "$.detail.object.key",
    }
    nightly = deployment.rules[next(n for n in deployment.rules if n.startswith("nightly-"))]
    assert nightly.schedule_expression == "rate(1 day)" and nightly.event_pattern is None

    logs = boto3.client("logs", region_name=REGION)
    [group] = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/process-item-logs")["logGroups"]
    assert group["retentionInDays"] == 30

    skipped = {(r.type, r.name) for r in deployment.skipped}
    assert ("aws:sns/topicSubscription:TopicSubscription", "notify-email") in skipped
    assert ("aws:cloudwatch/metricAlarm:MetricAlarm", "dlq-alarm") in skipped
    assert boto3.client("sns", region_name=REGION).list_subscriptions()["Subscriptions"] == []


def test_redeploy_gets_same_names_and_failed_resource_raises(credentials: None) -> None:
    with embedded_aws():
        first = deploy({}, stack="a", program=tiny_program)

    def broken() -> None:
        aws.lambda_.Function(  # the role does not exist in moto: create_function must fail loudly
            "orphan",
            role="arn:aws:iam::123456789012:role/missing",
            runtime="python3.13",
            handler="x.handler",
            code=pulumi.AssetArchive({}),
        )

    with embedded_aws():
        with pytest.raises(DeployError, match="aws:lambda/function:Function 'orphan'"):
            deploy({}, stack="b", program=broken)
        again = deploy({}, stack="a", program=tiny_program)
    assert set(again.functions) == set(first.functions)
    assert again.outputs["ingestion_bucket"] == first.outputs["ingestion_bucket"]


def test_manifest_upload_runs_state_machine_with_in_process_handlers(deployment: Deployment) -> None:
    bucket = deployment.outputs["ingestion_bucket"]
    with lambdas.installed(deployment, code_dirs=[FIXTURES]) as runtime, eventbridge.installed() as events:
        _upload_manifest(bucket, "teams/alpha", "job-1", ["a", "flaky-1", "reject-1", "b"])
        executions = events.executions()
        assert len(executions) == 1
        sfn = boto3.client("stepfunctions", region_name=REGION)
        [result] = _wait_terminal(sfn, executions)
        assert result["status"] == "SUCCEEDED", result
        output = json.loads(result["output"])
        assert output["jobId"] == "job-1"
        assert output["results"] == [
            {"item": "a", "status": "done"},
            {"item": "flaky-1", "status": "done"},  # retried once after Flaky
            {
                "item": "reject-1",
                "status": "rejected",
                "error": "ItemRejected",
            },  # the class name reached Catch
            {"item": "b", "status": "done"},
        ]
        process_name = deployment.outputs["function_names"]["process_item"]
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName="items-test")["Items"]
        assert sorted(i["pk"]["S"] for i in items) == ["job-1#a", "job-1#b", "job-1#flaky-1"]
        assert {i["fn"]["S"] for i in items} == {process_name}
        assert events.errors == []
        errors = sorted((i.function_name, i.error_type) for i in runtime.errors())
        assert errors == [(process_name, "Flaky"), (process_name, "ItemRejected")]
        assert len(runtime.invocations) == 6  # 1 load + 4 items + 1 retry


def test_env_overlay_is_per_thread_under_concurrency(deployment: Deployment) -> None:
    assert "PROBE" not in os.environ
    results: dict[str, Any] = {}
    with lambdas.installed(deployment, code_dirs=[FIXTURES]):
        fixture = importlib.import_module("sandbox_deploy_fixture")
        fixture.BARRIER = threading.Barrier(2)  # both handlers are inside at once, twice

        def call(name: str) -> None:
            client = boto3.client("lambda", region_name=REGION)
            payload = client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
            results[name] = json.loads(payload)

        threads = [threading.Thread(target=call, args=(n,)) for n in ("probe-a", "probe-b")]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=20)
        finally:
            fixture.BARRIER = None
        assert "PROBE" not in os.environ  # the caller's thread never sees a function's environment
    assert results["probe-a"] == {
        "probe": "alpha",
        "thread": "alpha",
        "getenv": "alpha",
        "inCopy": "alpha",
        "function": "probe-a",
    }
    assert results["probe-b"] == {
        "probe": "beta",
        "thread": "beta",
        "getenv": "beta",
        "inCopy": "beta",
        "function": "probe-b",
    }
    assert type(os.environ) is os._Environ  # restored


def test_lambda_errors_surface_like_lambda(deployment: Deployment) -> None:
    with lambdas.installed(deployment, code_dirs=[FIXTURES]) as runtime:
        client = boto3.client("lambda", region_name=REGION)
        response = client.invoke(FunctionName="boom-fn", Payload=json.dumps({"why": "test"}).encode())
        assert response["FunctionError"] == "Unhandled"
        payload = json.loads(response["Payload"].read())
        assert payload["errorType"] == "ValueError"
        assert payload["errorMessage"] == "boom: test"
        assert payload["stackTrace"]
        with pytest.raises(lambdas.FunctionError) as raised:
            lambdas.invoke_local("boom-fn", {"why": "local"})
        assert raised.value.error_type == "ValueError"
        assert isinstance(raised.value.cause, ValueError)
        assert runtime.invoke_local("probe-a", {})["probe"] == "alpha"
        assert [i.error_type for i in runtime.invocations] == ["ValueError", "ValueError", None]


def test_duplicate_delivery_starts_one_execution_per_copy(deployment: Deployment) -> None:
    bucket = deployment.outputs["ingestion_bucket"]
    with (
        lambdas.installed(deployment, code_dirs=[FIXTURES]),
        eventbridge.installed(duplicate_events=3) as events,
    ):
        _upload_manifest(bucket, "teams/beta", "job-2", ["x"])
        executions = events.executions()
        assert len(executions) == 3 and len(set(executions)) == 3
        sfn = boto3.client("stepfunctions", region_name=REGION)
        described = _wait_terminal(sfn, executions)
        assert [d["status"] for d in described] == ["SUCCEEDED"] * 3
        assert len({d["input"] for d in described}) == 1  # the same event, three times
        assert json.loads(described[0]["input"]) == {
            "bucket": bucket,
            "key": "teams/beta/_control/manifest.json",
        }
        assert {d.event_id for d in events.deliveries} == {events.deliveries[0].event_id}


def test_delivery_errors_are_recorded_and_do_not_skip_other_targets(deployment: Deployment) -> None:
    bucket = deployment.outputs["ingestion_bucket"]
    events_client = boto3.client("events", region_name=REGION)
    rule = next(n for n in deployment.rules if n.startswith("manifest-created-"))
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist"
    events_client.put_targets(Rule=rule, Targets=[{"Id": "a-missing", "Arn": missing}])
    with lambdas.installed(deployment, code_dirs=[FIXTURES]) as runtime, eventbridge.installed() as events:
        _upload_manifest(bucket, "teams/gamma", "job-3", ["y"])
        boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="boom/x.txt", Body=b"x")
        assert runtime.wait_idle() and runtime.idle()
        sfn = boto3.client("stepfunctions", region_name=REGION)
        [result] = _wait_terminal(sfn, events.executions())
        assert result["status"] == "SUCCEEDED"
    assert [i for i in events.items if isinstance(i, eventbridge.DeliveryError)] == events.errors
    by_target = {e.target_arn: e.error for e in events.errors}
    assert set(by_target) == {missing, deployment.functions["boom-fn"].arn}
    assert "does-not-exist" in by_target[missing]
    assert by_target[deployment.functions["boom-fn"].arn] == "ValueError: boom: event"
    # The disabled-by-default rule was enabled by config; the schedule-only rule received nothing.
    nightly = next(n for n in deployment.rules if n.startswith("nightly-"))
    assert all(d.rule != nightly for d in events.deliveries)


def test_disabled_rule_receives_nothing(aws_env: None) -> None:
    deployment = deploy({}, stack="test", program=tiny_program)  # boom-rule stays DISABLED
    with lambdas.installed(deployment, code_dirs=[FIXTURES]) as runtime, eventbridge.installed() as events:
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=deployment.outputs["ingestion_bucket"], Key="boom/x.txt", Body=b"x"
        )
        runtime.wait_idle()
    assert events.deliveries == [] and events.errors == []
    assert runtime.invocations == []


@pytest.mark.skipif(importlib.util.find_spec("infra.program") is None, reason="infra/program.py not written yet")
def test_real_program_deploys_for_option_sfn(aws_env: None) -> None:
    from sandbox import deploy as deploy_module

    program = deploy_module._default_program()
    dep = deploy(
        {
            "option": "sfn",
            "kendraIndexId": "a" * 8 + "-" + "b" * 4 + "-" + "c" * 4 + "-" + "d" * 4 + "-" + "e" * 12,
        },
        stack="sfn",
        program=program,
    )
    out = dep.outputs
    lam = boto3.client("lambda", region_name=REGION)
    moto_functions = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert set(out["function_names"].values()) <= moto_functions
    assert set(dep.functions) == moto_functions
    ddb = boto3.client("dynamodb", region_name=REGION)
    tables = set(ddb.list_tables()["TableNames"])
    assert {out["lock_table"], out["documents_table"]} <= tables
    s3 = boto3.client("s3", region_name=REGION)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {out["ingestion_bucket"], out["reports_bucket"]} <= buckets
    # accessLogs (default): both buckets log to the logs bucket, which moto accepted through its policy.
    targets = {s3.get_bucket_logging(Bucket=b)["LoggingEnabled"]["TargetBucket"]
               for b in (out["ingestion_bucket"], out["reports_bucket"])}
    assert len(targets) == 1 and targets <= buckets
    sns = boto3.client("sns", region_name=REGION)
    assert out["notification_topic_arn"] in {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    body = cloudwatch.get_dashboard(DashboardName=out["dashboard_name"])["DashboardBody"]
    assert "Kendra throttling" in body and "Executions" in body
    events = boto3.client("events", region_name=REGION)
    assert set(dep.rules) <= {r["Name"] for r in events.list_rules()["Rules"]}
    assert dep.rules
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [machine] = dep.state_machines.values()
    assert machine.arn == out["state_machine_arn"]
    declared = next(r for r in dep.resources if r.type == "aws:sfn/stateMachine:StateMachine").inputs["definition"]
    assert sfn.describe_state_machine(stateMachineArn=machine.arn)["definition"] == declared
    for info in dep.functions.values():
        conf = lam.get_function_configuration(FunctionName=info.name)
        assert conf["Handler"] == info.handler
        assert conf.get("Environment", {}).get("Variables", {}) == dict(info.environment)
    # Every handler the program deploys imports from functions/.
    with lambdas.installed(dep):
        pass


def test_run_program_fallback_binds_config_namespace_and_resolves_outputs(aws_env: None) -> None:
    from sandbox.deploy import MotoMocks, run_program

    def program() -> None:
        cfg = pulumi.Config()  # made after set_mocks: binds the kendra-ingestion namespace
        topic = aws.sns.Topic("t", name=cfg.require("topicName"))
        pulumi.export("topic_arn", topic.arn)
        pulumi.export("emails", cfg.require_object("emails"))

    outputs = run_program(
        program, MotoMocks("x"), stack="x", config={"topicName": "alerts", "emails": ["a@example.com"]}
    )
    assert outputs == {"topic_arn": "arn:aws:sns:us-east-1:123456789012:alerts", "emails": ["a@example.com"]}
    assert [t["TopicArn"] for t in boto3.client("sns", region_name=REGION).list_topics()["Topics"]] == [
        outputs["topic_arn"]
    ]


def test_failed_execution_publishes_status_change_event(deployment: Deployment) -> None:
    bucket = deployment.outputs["ingestion_bucket"]
    with lambdas.installed(deployment, code_dirs=[FIXTURES]) as runtime, eventbridge.installed() as events:
        fixture = importlib.import_module("sandbox_deploy_fixture")
        fixture.RECEIVED.clear()
        boto3.client("s3", region_name=REGION).put_object(  # no "items": load_manifest raises KeyError
            Bucket=bucket, Key="teams/delta/_control/manifest.json", Body=b'{"jobId": "job-4"}'
        )
        sfn = boto3.client("stepfunctions", region_name=REGION)
        [result] = _wait_terminal(sfn, events.executions())
        assert (result["status"], result["error"]) == ("FAILED", "KeyError")
        deadline = time.monotonic() + 10
        while not fixture.RECEIVED and time.monotonic() < deadline:
            runtime.wait_idle(timeout=0.1)
            time.sleep(0.02)
        [event] = fixture.RECEIVED
    assert event["source"] == "aws.states"
    assert event["detail-type"] == "Step Functions Execution Status Change"
    assert event["detail"]["status"] == "FAILED"
    assert event["detail"]["executionArn"] == result["executionArn"]
    assert event["detail"]["error"] == "KeyError"
    assert event["resources"] == [result["executionArn"]]


def test_tls_only_bucket_policy_allows_tls_requests_and_a_matching_deny_still_denies(
    deployment: Deployment,
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = deployment.outputs["ingestion_bucket"]
    s3.put_object(Bucket=bucket, Key="ok.txt", Body=b"x")  # moto alone answers 403 here
    assert s3.get_object(Bucket=bucket, Key="ok.txt")["Body"].read() == b"x"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    policy["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    with pytest.raises(s3.exceptions.ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="denied.txt", Body=b"x")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
