"""The declared resources and the stack outputs of both options."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from infra.defaults import DLQ_RETENTION_SECONDS, MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR
from infra.testing import Deployment

from .conftest import INDEX_ID, Deploy

FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SFN_HANDLERS = {
    "load_manifest",
    "acquire_lock",
    "list_batches",
    "process_batch",
    "verify_indexing",
    "aggregate_failures",
    "release_lock",
    "finish_abandoned",
}
SQS_HANDLERS = {"producer", "put_worker", "del_worker", "dead_letter", "summarizer", "watchdog"}
COMMON_OUTPUTS = {
    "option",
    "ingestion_bucket",
    "reports_bucket",
    "manifest_key_pattern",
    "notification_topic_arn",
    "lock_table",
    "documents_table",
    "kendra_index_id",
    "function_names",
    "dashboard_name",
}


def aws_types(deployment: Deployment) -> Counter[str]:
    return Counter(r.type for r in deployment.resources if r.custom)


def test_the_sfn_resource_set(deploy: Deploy) -> None:
    assert aws_types(deploy("sfn")) == Counter(
        {
            # ingestion, reports and their access logs (accessLogs)
            "aws:s3/bucket:Bucket": 3,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 3,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
            "aws:s3/bucketPolicy:BucketPolicy": 3,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 3,
            "aws:s3/bucketLogging:BucketLogging": 2,
            "aws:s3/bucketVersioning:BucketVersioning": 1,
            "aws:s3/bucketNotification:BucketNotification": 1,
            "aws:dynamodb/table:Table": 2,
            "aws:sns/topic:Topic": 1,
            "aws:kms/key:Key": 1,  # the topic's own key: alarms cannot publish with alias/aws/sns
            "aws:kms/alias:Alias": 1,
            "aws:sns/topicPolicy:TopicPolicy": 1,
            "aws:lambda/layerVersion:LayerVersion": 1,
            FUNCTION: 8,
            "aws:iam/role:Role": 10,
            "aws:iam/rolePolicy:RolePolicy": 10,  # 8 functions, machine, rule
            "aws:cloudwatch/logGroup:LogGroup": 9,
            "aws:sfn/stateMachine:StateMachine": 1,
            RULE: 2,
            TARGET: 2,
            "aws:lambda/permission:Permission": 1,
            "aws:cloudwatch/metricAlarm:MetricAlarm": 8 * 2 + 2,
            "aws:cloudwatch/dashboard:Dashboard": 1,
        }
    )


def test_the_sqs_resource_set(deploy: Deploy) -> None:
    assert aws_types(deploy("sqs")) == Counter(
        {
            # ingestion, reports and their access logs (accessLogs)
            "aws:s3/bucket:Bucket": 3,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 3,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
            "aws:s3/bucketPolicy:BucketPolicy": 3,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 3,
            "aws:s3/bucketLogging:BucketLogging": 2,
            "aws:s3/bucketVersioning:BucketVersioning": 1,
            "aws:s3/bucketNotification:BucketNotification": 1,
            "aws:dynamodb/table:Table": 2,
            "aws:sns/topic:Topic": 1,
            "aws:kms/key:Key": 1,  # the topic's own key: alarms cannot publish with alias/aws/sns
            "aws:kms/alias:Alias": 1,
            "aws:sns/topicPolicy:TopicPolicy": 1,
            "aws:lambda/layerVersion:LayerVersion": 1,
            FUNCTION: 6,
            "aws:iam/role:Role": 6,
            "aws:iam/rolePolicy:RolePolicy": 6,
            "aws:cloudwatch/logGroup:LogGroup": 6,
            QUEUE: 4,
            "aws:sqs/queuePolicy:QueuePolicy": 4,
            "aws:lambda/eventSourceMapping:EventSourceMapping": 4,
            RULE: 2,
            TARGET: 2,
            "aws:lambda/permission:Permission": 2,
            "aws:cloudwatch/metricAlarm:MetricAlarm": 6 * 2 + 4 + 1,  # + unreadable dead letters
            "aws:cloudwatch/dashboard:Dashboard": 1,
        }
    )


def test_kms_adds_one_rotating_key_and_s3_mode_adds_the_kendra_role(deploy: Deploy) -> None:
    deployment = deploy("sfn", encryption="kms", documentMode="s3")
    (key,) = deployment.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    (alias,) = deployment.of_type("aws:kms/alias:Alias")
    assert alias.inputs["name"] == "alias/kendra-ingestion-sfn"
    trusts = [
        json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]["Service"]
        for r in deployment.of_type("aws:iam/role:Role")
    ]
    assert trusts.count("kendra.amazonaws.com") == 1
    # Without kms only the topic has a key of its own (CloudWatch alarms need a customer managed key).
    (topic_alias,) = deploy("sfn").of_type("aws:kms/alias:Alias")
    assert topic_alias.inputs["name"] == "alias/kendra-ingestion-sfn-topic"


@pytest.mark.parametrize(
    ("stack", "extra"),
    [("sfn", {"state_machine_arn"}), ("sqs", {"put_queue_url", "delete_queue_url", "put_dlq_url", "delete_dlq_url"})],
)
def test_outputs_are_exactly_the_contract(deploy: Deploy, stack: str, extra: set[str]) -> None:
    outputs = deploy(stack).outputs
    assert set(outputs) == COMMON_OUTPUTS | extra
    assert outputs["manifest_key_pattern"] == "<prefix>/_control/manifest.json"
    assert outputs["kendra_index_id"] == INDEX_ID
    assert set(outputs["function_names"]) == (SFN_HANDLERS if stack == "sfn" else SQS_HANDLERS)
    functions = {f.state["name"] for f in deploy(stack).of_type(FUNCTION)}
    assert set(outputs["function_names"].values()) == functions
    buckets = {b.state["bucket"] for b in deploy(stack).of_type("aws:s3/bucket:Bucket") if "access-logs" not in b.name}
    assert {outputs["ingestion_bucket"], outputs["reports_bucket"]} == buckets
    tables = {t.state["name"] for t in deploy(stack).of_type("aws:dynamodb/table:Table")}
    assert {outputs["lock_table"], outputs["documents_table"]} == tables


def test_sqs_queue_outputs_name_fifo_queues(deploy: Deploy) -> None:
    outputs = deploy("sqs").outputs
    for key, suffix in (
        ("put_queue_url", "-put.fifo"),
        ("delete_queue_url", "-delete.fifo"),
        ("put_dlq_url", "-put-dlq.fifo"),
        ("delete_dlq_url", "-delete-dlq.fifo"),
    ):
        assert outputs[key].endswith(f"/kendra-ingestion-sqs{suffix}")


def test_buckets_lifecycle_and_notifications(deploy: Deploy) -> None:
    deployment = deploy("sfn", archiveExpirationDays=90)
    outputs = deployment.outputs
    rules = {
        r.inputs["bucket"]: {rule["id"]: rule for rule in r.inputs["rules"]}
        for r in deployment.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    }
    reports, ingestion = rules[outputs["reports_bucket"]], rules[outputs["ingestion_bucket"]]
    assert reports["expire-archived-manifests"]["filter"] == {"prefix": "_archive/"}
    assert reports["expire-archived-manifests"]["expiration"] == {"days": 90}
    # A run's work files (plan, parts, results) expire: a million-document job leaves no lasting litter.
    assert reports["expire-work-files"]["filter"] == {"prefix": "_work/"}
    assert reports["expire-work-files"]["expiration"] == {"days": 30}
    for bucket in (reports, ingestion):
        assert bucket["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": 7
        }
        assert bucket["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] > 0
    (versioning,) = deployment.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["bucket"] == outputs["reports_bucket"]
    (notification,) = deployment.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs == {"bucket": outputs["ingestion_bucket"], "eventbridge": True}


def test_tables(deploy: Deploy) -> None:
    deployment = deploy("sfn", encryption="kms")
    (key,) = deployment.of_type("aws:kms/key:Key")
    tables = {t.state["name"]: t.inputs for t in deployment.of_type("aws:dynamodb/table:Table")}
    lock, documents = tables[deployment.outputs["lock_table"]], tables[deployment.outputs["documents_table"]]
    assert lock["hashKey"] == "pk" and lock["attributes"] == [{"name": "pk", "type": "S"}]
    assert documents["hashKey"] == "documentId"
    assert sorted((a["name"], a["type"]) for a in documents["attributes"]) == [("documentId", "S"), ("source", "S")]
    (index,) = documents["globalSecondaryIndexes"]
    assert index["name"] == "bySource"
    assert [(k["attributeName"], k["keyType"]) for k in index["keySchemas"]] == [
        ("source", "HASH"),
        ("documentId", "RANGE"),
    ]
    for table in (lock, documents):
        assert table["billingMode"] == "PAY_PER_REQUEST"
        assert table["ttl"] == {"attributeName": "expiresAt", "enabled": True}
        assert table["pointInTimeRecovery"] == {"enabled": True}
        assert table["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key.state["arn"]}


@pytest.mark.parametrize(("encryption", "expected"), [("s3", "alias/aws/sns"), ("kms", "key")])
def test_topic_encryption_and_subscriptions(deploy: Deploy, encryption: str, expected: str) -> None:
    deployment = deploy("sqs", encryption=encryption, notificationEmails=["a@example.com", "b@example.com"])
    (topic,) = deployment.of_type("aws:sns/topic:Topic")
    key = deployment.of_type("aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == (key[0].state["arn"] if key else expected)
    subscriptions = deployment.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert {(s.inputs["protocol"], s.inputs["endpoint"], s.inputs["topic"]) for s in subscriptions} == {
        ("email", "a@example.com", topic.state["arn"]),
        ("email", "b@example.com", topic.state["arn"]),
    }


def test_the_state_machine(deploy: Deploy) -> None:
    deployment = deploy("sfn", mapConcurrency=7)
    (machine,) = deployment.of_type("aws:sfn/stateMachine:StateMachine")
    assert machine.inputs["type"] == "STANDARD"
    assert machine.inputs["tracingConfiguration"] == {"enabled": True}
    logging = machine.inputs["loggingConfiguration"]
    assert logging["level"] == "ALL" and logging["includeExecutionData"] is False
    assert machine.state["arn"] == deployment.outputs["state_machine_arn"]
    definition = machine.inputs["definition"]
    assert "${" not in definition
    parsed = json.loads(definition)
    functions = {f.state["arn"] for f in deployment.of_type(FUNCTION)}
    tasks = set()

    def walk(states: dict) -> None:
        for state in states.values():
            if state.get("Type") == "Map":
                assert state["MaxConcurrency"] == 7
                walk(state["ItemProcessor"]["States"])
            elif str(state.get("Resource", "")).startswith("arn:aws:lambda:"):
                tasks.add(state["Resource"])

    walk(parsed["States"])
    assert tasks <= functions and len(tasks) == 7
    assert deployment.outputs["notification_topic_arn"] in definition


def _pattern(rule: object) -> dict:
    return json.loads(rule.inputs["eventPattern"])  # type: ignore[attr-defined]


def test_sfn_event_wiring(deploy: Deploy) -> None:
    deployment = deploy("sfn")
    outputs = deployment.outputs
    rules = {r.state["name"]: r for r in deployment.of_type(RULE)}
    targets = {t.inputs["rule"]: t for t in deployment.of_type(TARGET)}
    manifest = next(r for r in rules.values() if _pattern(r)["source"] == ["aws.s3"])
    assert _pattern(manifest) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [outputs["ingestion_bucket"]]},
            "object": {"key": [{"wildcard": "*_control/manifest.json"}]},
        },
    }
    start = targets[manifest.state["name"]]
    assert start.inputs["arn"] == outputs["state_machine_arn"]
    assert "input" not in start.inputs and "inputTransformer" not in start.inputs  # the event itself
    abandoned = next(r for r in rules.values() if _pattern(r)["source"] == ["aws.states"])
    assert _pattern(abandoned)["detail"] == {
        "status": ["FAILED", "TIMED_OUT", "ABORTED"],
        "stateMachineArn": [outputs["state_machine_arn"]],
    }
    release = next(
        f for f in deployment.of_type(FUNCTION) if f.state["name"] == outputs["function_names"]["finish_abandoned"]
    )
    assert targets[abandoned.state["name"]].inputs["arn"] == release.state["arn"]
    (permission,) = deployment.of_type("aws:lambda/permission:Permission")
    assert permission.inputs == {
        "action": "lambda:InvokeFunction",
        "function": release.state["name"],
        "principal": "events.amazonaws.com",
        "sourceArn": abandoned.state["arn"],
    }


def test_sqs_queues_and_mappings(deploy: Deploy) -> None:
    deployment = deploy("sqs", putConcurrency=3, deleteConcurrency=5)
    queues = {q.state["arn"]: q for q in deployment.of_type(QUEUE)}
    functions = {f.state["arn"]: f for f in deployment.of_type(FUNCTION)}
    for queue in queues.values():
        assert queue.inputs["fifoQueue"] is True and queue.inputs["contentBasedDeduplication"] is False
        assert queue.inputs["sqsManagedSseEnabled"] is True
        if "redrivePolicy" in queue.inputs:
            redrive = json.loads(queue.inputs["redrivePolicy"])
            assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT
            assert queues[redrive["deadLetterTargetArn"]].inputs["messageRetentionSeconds"] == DLQ_RETENTION_SECONDS
    wiring = {}
    for mapping in deployment.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
        assert mapping.inputs["batchSize"] <= 10
        assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
        queue, function = queues[mapping.inputs["eventSourceArn"]], functions[mapping.inputs["functionName"]]
        assert queue.inputs["visibilityTimeoutSeconds"] >= VISIBILITY_TIMEOUT_FACTOR * function.inputs["timeout"]
        wiring[queue.state["name"].removeprefix("kendra-ingestion-sqs-")] = (
            function.inputs["handler"],
            mapping.inputs["scalingConfig"]["maximumConcurrency"],
        )
    assert wiring == {
        "put.fifo": ("put_worker.handler", 3),
        "delete.fifo": ("del_worker.handler", 5),
        "put-dlq.fifo": ("dead_letter.handler", 2),
        "delete-dlq.fifo": ("dead_letter.handler", 2),
    }


def test_sqs_event_wiring(deploy: Deploy) -> None:
    deployment = deploy("sqs")
    names = deployment.outputs["function_names"]
    arns = {f.state["name"]: f.state["arn"] for f in deployment.of_type(FUNCTION)}
    rules = {r.state["name"]: r for r in deployment.of_type(RULE)}
    targets = {t.inputs["rule"]: t.inputs["arn"] for t in deployment.of_type(TARGET)}
    schedule = next(r for r in rules.values() if "scheduleExpression" in r.inputs)
    assert schedule.inputs["scheduleExpression"] == "rate(5 minutes)"
    assert targets[schedule.state["name"]] == arns[names["watchdog"]]
    manifest = next(r for r in rules.values() if "eventPattern" in r.inputs)
    assert _pattern(manifest)["detail"]["object"] == {"key": [{"wildcard": "*_control/manifest.json"}]}
    assert targets[manifest.state["name"]] == arns[names["producer"]]
    permissions = {
        p.inputs["sourceArn"]: p.inputs["function"] for p in deployment.of_type("aws:lambda/permission:Permission")
    }
    assert permissions == {schedule.state["arn"]: names["watchdog"], manifest.state["arn"]: names["producer"]}


@pytest.mark.parametrize("stack", ["sfn", "sqs"])
def test_alarms_cover_every_function_and_the_option(deploy: Deploy, stack: str) -> None:
    deployment = deploy(stack)
    alarms = deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    topic = deployment.outputs["notification_topic_arn"]
    assert all(a.inputs["alarmActions"] == [topic] and a.inputs["period"] == 300 for a in alarms)
    lambda_alarms = {
        (a.inputs["dimensions"]["FunctionName"], a.inputs["metricName"])
        for a in alarms
        if a.inputs["namespace"] == "AWS/Lambda"
    }
    names = deployment.outputs["function_names"].values()
    assert lambda_alarms == {(n, m) for n in names for m in ("Errors", "Throttles")}
    for alarm in alarms:
        if alarm.inputs["namespace"] == "AWS/Lambda":
            assert (alarm.inputs["statistic"], alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (
                "Sum",
                0,
                "GreaterThanThreshold",
            )
    other = sorted(a.inputs["metricName"] for a in alarms if a.inputs["namespace"] != "AWS/Lambda")
    if stack == "sfn":
        assert other == ["ExecutionsFailed", "ExecutionsTimedOut"]
    else:
        assert other == (["ApproximateAgeOfOldestMessage"] * 2 + ["ApproximateNumberOfMessagesVisible"] * 2
                         + ["UnreadableDeadLetters"])


def test_lambda_memory_overrides_every_function(deploy: Deploy) -> None:
    assert {f.inputs["memorySize"] for f in deploy("sqs", lambdaMemoryMb=2048).of_type(FUNCTION)} == {2048}


def test_every_function_uses_the_code_archive_and_the_layer(deploy: Deploy) -> None:
    deployment = deploy("sfn")
    (layer,) = deployment.of_type("aws:lambda/layerVersion:LayerVersion")
    assert layer.inputs["compatibleArchitectures"] == ["arm64"]
    assert layer.inputs["compatibleRuntimes"] == ["python3.13"]
    for function in deployment.of_type(FUNCTION):
        assert function.inputs["layers"] == [layer.state["arn"]]
        assert function.inputs["code"].path.endswith("build/functions.zip")
