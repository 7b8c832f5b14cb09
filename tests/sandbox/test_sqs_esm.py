"""The sandbox's SQS event source mapping (sandbox/sqs.py) and moto's SQS FIFO fixes, with tiny handlers.

Queues and functions are created directly in moto; mappings are registered by hand, as the deployer
records them from the program.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import time
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox import lambdas, moto_fixes, sqs
from sandbox.deploy import EventSourceMappingInfo
from sandbox.run import _fake_credentials

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
ASSUME_LAMBDA = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
PARTIAL = ("ReportBatchItemFailures",)


@dataclass
class World:
    """moto with the fixture functions deployed and the SQS fixes applied."""

    runtime: lambdas.LambdaRuntime
    sqs: Any
    role: str

    def queue(self, name: str, *, visibility: int = 30, dlq: str | None = None, max_receives: int = 3) -> str:
        attributes = {"FifoQueue": "true", "VisibilityTimeout": str(visibility)}
        if dlq:
            arn = self.arn(dlq)
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives})
        return self.sqs.create_queue(QueueName=f"{name}.fifo", Attributes=attributes)["QueueUrl"]

    def arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def function(self, handler: str) -> str:
        name = f"fn-{handler}-{uuid.uuid4().hex[:6]}"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("placeholder.py", "")
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName=name, Runtime="python3.12", Role=self.role, Handler=f"sqs_esm_fixture.{handler}",
            Code={"ZipFile": buf.getvalue()}, Timeout=30,
        )
        return name

    def mapping(self, url: str, handler: str, *, batch_size: int = 10, concurrency: int | None = None,
                response_types: tuple[str, ...] = PARTIAL) -> EventSourceMappingInfo:
        return EventSourceMappingInfo(
            uuid=str(uuid.uuid4()), event_source_arn=self.arn(url), function_name=self.function(handler),
            batch_size=batch_size, maximum_concurrency=concurrency, function_response_types=response_types,
            maximum_batching_window_seconds=0, enabled=True, logical_name=f"{handler}-mapping",
        )

    def send(self, url: str, bodies: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "MessageBody": json.dumps(b), "MessageGroupId": b["group"],
                    "MessageDeduplicationId": b["id"]} for i, b in enumerate(bodies)]
        for start in range(0, len(entries), 10):
            out = self.sqs.send_message_batch(QueueUrl=url, Entries=entries[start:start + 10])
            assert not out.get("Failed"), out

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return sum(int(attrs[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                           "ApproximateNumberOfMessagesDelayed"))


def fx() -> Any:
    """The fixture module as the runtime imported it (top level, from the code directory)."""
    return importlib.import_module("sqs_esm_fixture")


@contextmanager
def world(*, sleep: float = 0.0) -> Iterator[World]:
    with ExitStack() as stack:
        stack.enter_context(_fake_credentials())
        stack.enter_context(mock_aws())
        for fix in (moto_fixes.serialise_sqs, moto_fixes.fifo_receive, moto_fixes.fifo_dedup_window):
            stack.enter_context(fix())
        runtime = stack.enter_context(lambdas.installed(code_dirs=[FIXTURES]))
        fx().reset(sleep=sleep)
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="fixture-role", AssumeRolePolicyDocument=ASSUME_LAMBDA)["Role"]["Arn"]
        yield World(runtime=runtime, sqs=boto3.client("sqs", region_name=REGION), role=role)


def settle(esm: sqs.EventSources, runtime: lambdas.LambdaRuntime, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not (esm.idle() and runtime.idle() and esm.idle()):
        assert time.monotonic() < deadline, ("mappings did not settle", esm.depths(), esm.errors)
        time.sleep(0.02)
    assert esm.errors == []


def bodies(group: str, count: int, *, fail: dict[int, int] | None = None, prefix: str = "m") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{group}-{n:02d}", "group": group, "n": n, "fail": (fail or {}).get(n, 0)}
            for n in range(count)]


def records(event: dict[str, Any]) -> list[dict[str, Any]]:
    return event["Records"]


# --------------------------------------------------------------------------------------------------
# Batching and the event Lambda sends
# --------------------------------------------------------------------------------------------------


def test_batches_hold_at_most_ten_records_of_the_lambda_event_shape():
    with world() as w:
        url = w.queue("shape")
        w.send(url, bodies("g0", 25))
        mapping = w.mapping(url, "partial")
        with sqs.installed([mapping], w.runtime) as esm:
            settle(esm, w.runtime)
        assert w.depth(url) == 0
        sizes = [len(records(e)) for e in fx().LOG.events]
        assert max(sizes) == 10 and sum(sizes) == 25, sizes
        assert sorted(b["n"] for b in fx().LOG.done) == list(range(25))
        record = records(fx().LOG.events[0])[0]
        assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                               "eventSource", "eventSourceARN", "awsRegion"}
        assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == REGION
        assert record["eventSourceARN"] == mapping.event_source_arn
        attributes = record["attributes"]
        assert attributes["MessageGroupId"] == "g0"
        assert attributes["MessageDeduplicationId"] == "m-g0-00"
        assert attributes["ApproximateReceiveCount"] == "1"
        assert attributes["SequenceNumber"].isdigit() and attributes["SentTimestamp"].isdigit()
        assert json.loads(record["body"])["id"] == "m-g0-00"


def test_a_batch_mixes_groups_after_filling_from_one_group_first():
    with world() as w:
        url = w.queue("mixed")
        per_group = [bodies(g, 4) for g in ("g0", "g1", "g2")]
        w.send(url, [b for row in zip(*per_group, strict=True) for b in row])  # sent interleaved g0 g1 g2 g0 ...
        with sqs.installed([w.mapping(url, "partial")], w.runtime) as esm:
            settle(esm, w.runtime)
        first = [r["attributes"]["MessageGroupId"] for r in records(fx().LOG.events[0])]
        # SQS returns as many messages of one group as it can, then continues with the next groups.
        assert first == ["g0"] * 4 + ["g1"] * 4 + ["g2"] * 2, first
        assert len(fx().LOG.done) == 12


def test_message_attributes_use_lambdas_record_names():
    message = {"MessageId": "1", "ReceiptHandle": "r", "Body": "b", "MD5OfBody": "x",
               "Attributes": {"MessageGroupId": "g", "ApproximateReceiveCount": "2", "Other": "dropped"},
               "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
    record = sqs.lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q.fifo")
    assert record["attributes"] == {"MessageGroupId": "g", "ApproximateReceiveCount": "2"}
    assert record["messageAttributes"] == {
        "k": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"}}


# --------------------------------------------------------------------------------------------------
# What is deleted and what comes back
# --------------------------------------------------------------------------------------------------


def _received_counts() -> dict[str, list[int]]:
    counts: dict[str, list[int]] = defaultdict(list)
    for event in fx().LOG.events:
        for r in records(event):
            counts[json.loads(r["body"])["id"]].append(int(r["attributes"]["ApproximateReceiveCount"]))
    return counts


def test_partial_batch_response_deletes_only_the_successes():
    with world() as w:
        url = w.queue("partial")
        # One group per message: the handler's failures do not hold back later messages of their group.
        sent = [b for n in range(10) for b in bodies(f"g{n}", 1, fail={0: 1 if n in (3, 7) else 0})]
        w.send(url, sent)
        with sqs.installed([w.mapping(url, "partial")], w.runtime, visibility_scale=0.01) as esm:
            settle(esm, w.runtime)
        first = esm.batches[0]
        assert first.outcome == "partial" and len(first.failed_ids) == 2
        counts = _received_counts()
        assert counts["m-g3-00"] == [1, 2] and counts["m-g7-00"] == [1, 2]
        assert all(c == [1] for k, c in counts.items() if k not in ("m-g3-00", "m-g7-00")), counts
        assert Counter(b["id"] for b in fx().LOG.done) == Counter(b["id"] for b in sent)  # each exactly once
        assert w.depth(url) == 0


def test_a_crash_returns_the_whole_batch():
    with world() as w:
        url = w.queue("crash")
        sent = bodies("g0", 6, fail={4: 1})
        w.send(url, sent)
        with sqs.installed([w.mapping(url, "crash")], w.runtime, visibility_scale=0.01) as esm:
            settle(esm, w.runtime)
        assert [b.outcome for b in esm.batches] == ["error", "ok"]
        assert "Rejected" in (esm.batches[0].error or "")
        assert all(c == [1, 2] for c in _received_counts().values())
        assert [b["n"] for b in fx().LOG.done] == list(range(6))


def test_an_invalid_batch_response_returns_the_whole_batch():
    with world() as w:
        url = w.queue("invalid")
        w.send(url, bodies("g0", 3, fail={1: 1}))
        with sqs.installed([w.mapping(url, "invalid")], w.runtime, visibility_scale=0.01) as esm:
            settle(esm, w.runtime)
        assert [b.outcome for b in esm.batches] == ["invalid-response", "ok"]
        assert len(fx().LOG.done) == 3


def test_without_report_batch_item_failures_a_partial_response_is_ignored():
    with world() as w:
        url = w.queue("ignored")
        w.send(url, bodies("g0", 4, fail={2: 1}))
        with sqs.installed([w.mapping(url, "partial", response_types=())], w.runtime) as esm:
            settle(esm, w.runtime)
        assert [b.outcome for b in esm.batches] == ["ok"]
        assert w.depth(url) == 0 and sorted(fx().LOG.attempts.values()) == [1, 1, 1, 1]


def test_failed_messages_wait_for_the_scaled_visibility_timeout():
    with world() as w:
        url = w.queue("visibility", visibility=20)
        w.send(url, bodies("g0", 1, fail={0: 1}))
        with sqs.installed([w.mapping(url, "partial")], w.runtime, visibility_scale=0.02) as esm:
            settle(esm, w.runtime)
        first, second = esm.batches
        assert second.started - first.ended >= 0.4 - 0.05  # 20 s x 0.02


def test_redrive_to_the_dead_letter_queue_after_max_receive_count():
    with world() as w:
        dlq = w.queue("work-dlq")
        url = w.queue("work", dlq=dlq, max_receives=3)
        # Fails on each of the worker's 3 receives; the dead-letter handler then takes it.
        w.send(url, [*bodies("g0", 1, fail={0: 3}, prefix="poison"), *bodies("g0", 3, prefix="ok")])
        work = w.mapping(url, "partial")
        dead = w.mapping(dlq, "partial")
        with sqs.installed([work, dead], w.runtime, visibility_scale=0.0) as esm:
            settle(esm, w.runtime)
        # Received maxReceiveCount times by the worker, then once by the dead-letter mapping.
        assert fx().LOG.attempts["poison-g0-00"] == 4
        by_function = defaultdict(list)
        for batch in esm.batches:
            by_function[batch.function_name].extend(json.loads(b)["id"] for b in batch.bodies)
        assert Counter(by_function[work.function_name])["poison-g0-00"] == 3
        assert by_function[dead.function_name] == ["poison-g0-00"]
        assert [b["id"] for b in fx().LOG.done] == ["ok-g0-00", "ok-g0-01", "ok-g0-02", "poison-g0-00"]
        assert w.depth(url) == 0 and w.depth(dlq) == 0
        assert esm.stuck() == []


def test_group_mates_skipped_after_a_failure_share_its_receive_count():
    """Real FIFO behaviour worth knowing: a handler that skips the rest of a failed group (Powertools
    ``skip_group_on_error``) returns the later messages of that group in the batch too; each return
    counts as a receive, so they reach the dead-letter queue together with the failing head."""
    with world() as w:
        dlq = w.queue("drag-dlq")
        url = w.queue("drag", dlq=dlq, max_receives=3)
        w.send(url, [*bodies("g0", 1, fail={0: 3}, prefix="poison"), *bodies("g0", 2, prefix="ok"),
                     *bodies("g1", 2, prefix="ok")])
        work, dead = w.mapping(url, "fifo"), w.mapping(dlq, "partial")
        with sqs.installed([work, dead], w.runtime, visibility_scale=0.0) as esm:
            settle(esm, w.runtime)
        dead_letters = [json.loads(b)["id"] for x in esm.batches if x.function_name == dead.function_name
                        for b in x.bodies]
        assert dead_letters == ["poison-g0-00", "ok-g0-00", "ok-g0-01"]
        worker_done = [b["id"] for b in fx().LOG.done][:2]
        assert worker_done == ["ok-g1-00", "ok-g1-01"]  # the other group is spared


def test_a_message_that_keeps_failing_without_a_dead_letter_queue_is_reported_stuck():
    with world() as w:
        url = w.queue("nodlq")
        w.send(url, bodies("g0", 1, fail={0: -1}))
        with sqs.installed([w.mapping(url, "partial")], w.runtime, visibility_scale=0.0) as esm:
            deadline = time.monotonic() + 10
            while not esm.stuck():
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert re.search(r"failed \d+ times and has no dead-letter queue", esm.stuck()[0])
            w.sqs.purge_queue(QueueUrl=url)


def test_a_lost_delete_delivers_the_message_once_more():
    with world() as w:
        url = w.queue("redeliver")
        w.send(url, bodies("g0", 5))
        with sqs.installed([w.mapping(url, "partial")], w.runtime, visibility_scale=0.0, redeliver=1.0) as esm:
            settle(esm, w.runtime)
        assert all(c == [1, 2] for c in _received_counts().values())
        assert sorted(esm.redelivered) == sorted(esm.batches[0].message_ids)
        assert w.depth(url) == 0


# --------------------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------------------


def test_concurrency_is_bounded_by_maximum_concurrency():
    with world(sleep=0.1) as w:
        url = w.queue("many-groups")
        w.send(url, [b for g in range(8) for b in bodies(f"g{g}", 3)])
        with sqs.installed([w.mapping(url, "partial", batch_size=1, concurrency=3)], w.runtime) as esm:
            settle(esm, w.runtime)
        assert fx().LOG.max_running == 3
        assert esm.pollers[0].max_in_flight == 3
        assert len(fx().LOG.done) == 24


def test_concurrency_is_bounded_by_the_number_of_message_groups():
    with world(sleep=0.05) as w:
        url = w.queue("two-groups")
        w.send(url, [b for g in range(2) for b in bodies(f"g{g}", 8)])
        with sqs.installed([w.mapping(url, "partial", batch_size=1, concurrency=10)], w.runtime) as esm:
            settle(esm, w.runtime)
        assert fx().LOG.max_running == 2
        assert esm.pollers[0].max_in_flight == 2
        assert len(fx().LOG.done) == 16


# --------------------------------------------------------------------------------------------------
# FIFO order, and the moto fixes it rests on
# --------------------------------------------------------------------------------------------------


def test_fifo_order_within_a_group_survives_failures_and_retries():
    failing = {"g0": {2: 1, 5: 2}, "g1": {7: 1, 8: 1}, "g2": {0: 1}}
    with world() as w:
        url = w.queue("order")
        w.send(url, [b for g in ("g0", "g1", "g2") for b in bodies(g, 12, fail=failing[g])])
        with sqs.installed([w.mapping(url, "fifo", concurrency=3)], w.runtime, visibility_scale=0.0) as esm:
            settle(esm, w.runtime)
        for group in ("g0", "g1", "g2"):
            order = [b["n"] for b in fx().LOG.done if b["group"] == group]
            assert order == list(range(12)), (group, order)
        assert any(b.outcome == "partial" for b in esm.batches)


def test_timed_out_messages_of_a_group_come_back_head_first():
    """moto 5.2.x can skip the head when several in-flight messages of a group time out together."""
    with world() as w:
        url = w.queue("head")
        w.send(url, bodies("g0", 3))
        got = w.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
        assert len(got) == 3
        time.sleep(1.05)  # all three time out together (ChangeMessageVisibility(0) releases them one by one)
        again = w.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        assert json.loads(again[0]["Body"])["n"] == 0


def test_a_duplicate_sent_after_the_original_was_deleted_is_not_delivered():
    """moto 5.2.x accepts it; SQS drops a duplicate for 5 minutes from the first send."""
    with world() as w:
        url = w.queue("dedup")
        w.send(url, bodies("g0", 1))
        got = w.sqs.receive_message(QueueUrl=url)["Messages"]
        w.sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        w.send(url, bodies("g0", 1))  # accepted (no error), as SQS does ...
        assert w.sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # ... but never delivered
        w.send(url, bodies("g0", 1, prefix="other"))
        assert len(w.sqs.receive_message(QueueUrl=url)["Messages"]) == 1


def test_messages_sent_while_the_mapping_deletes_are_not_lost():
    """moto's delete rebuilds the message list; a concurrent send must survive it (serialise_sqs)."""
    import threading

    with world() as w:
        url = w.queue("busy")
        with sqs.installed([w.mapping(url, "partial", concurrency=4)], w.runtime, visibility_scale=0.0) as esm:
            threads = [threading.Thread(target=w.send, args=(url, bodies(f"g{g}", 60))) for g in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            settle(esm, w.runtime)
        assert len(fx().LOG.done) == 240


def test_batch_size_above_the_fifo_limit_is_refused():
    with world() as w:
        url = w.queue("big")
        mapping = w.mapping(url, "partial")
        too_big = EventSourceMappingInfo(**{**mapping.__dict__, "batch_size": 11})
        with pytest.raises(ValueError, match="batch size"), sqs.installed([too_big], w.runtime):
            pass


def test_failed_message_ids_follows_lambdas_partial_response_rules():
    ids = ["a", "b"]
    assert sqs.failed_message_ids(None, ids, PARTIAL) == set()
    assert sqs.failed_message_ids({}, ids, PARTIAL) == set()
    assert sqs.failed_message_ids({"batchItemFailures": None}, ids, PARTIAL) == set()
    assert sqs.failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids, PARTIAL) == {"b"}
    assert sqs.failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids, PARTIAL) is None
    assert sqs.failed_message_ids({"batchItemFailures": [{"id": "b"}]}, ids, PARTIAL) is None
    assert sqs.failed_message_ids("ok", ids, PARTIAL) is None
    assert sqs.failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids, ()) == set()
