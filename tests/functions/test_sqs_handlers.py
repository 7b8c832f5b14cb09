"""The option sqs handler modules, driven end to end: producer -> workers -> summarizer; dead_letter; watchdog."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dead_letter
import del_worker
import producer
import put_worker
import pytest
import summarizer
import watchdog
from kendra_ingest.reports import read_failures_csv

from tests.functions.sqs_world import Context, World, make_world


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch)


def test_handlers_run_a_job_end_to_end(world: World) -> None:
    docs = {f"h{i:02d}": f"body {i}" for i in range(23)}
    event = world.upload("team/x", "hand-1", docs, deletes=["old-1", "h00"])
    produced = producer.handler(event, Context())
    assert produced["status"] == "sealed" and produced["parts"] == 4  # 3 put parts + 1 delete part

    for url, module in ((world.put_url, put_worker), (world.delete_url, del_worker)):
        while (batch := world.receive(url))["Records"]:
            response = module.handler(batch, Context())
            assert response == {"batchItemFailures": []}
            world.acknowledge(url, batch, response)
    (payload,) = world.take_invokes("summarizer-fn")
    assert payload == {"jobId": "hand-1", "runId": produced["runId"]}
    result = summarizer.handler(payload, Context())
    assert result["summarized"] and result["status"] == "COMPLETED_WITH_FAILURES"
    assert summarizer.handler(payload, Context())["summarized"] is False  # a second invoke does nothing

    summary, failures = world.report("hand-1")
    assert summary["documents"] == {"requested": 23, "put": 22, "skippedUnchanged": 0, "failed": 1, "excluded": 0}
    assert summary["deletes"] == {"requested": 2, "deleted": 1, "failed": 1, "fullSync": 0}
    assert {r[2] for r in read_failures_csv(failures)} == {"ConflictingOperation"}
    assert summary["kendra"]["batchPutCalls"] == 3 and summary["kendra"]["statusCalls"] >= 1
    assert world.s3.list_objects_v2(Bucket="reports-bucket", Prefix="_archive/hand-1/")["KeyCount"] == 1
    assert producer.handler(event, Context())["status"] == "duplicate"
    assert watchdog.handler({"detail-type": "Scheduled Event"}, Context()) == {
        "summarized": [], "aborted": [], "started": [], "released": []}


def test_dead_letter_handler_fails_parts_and_quarantines_unreadable_bodies(world: World) -> None:
    event = world.upload("team/y", "dlh-1", {"a": "x", "b": "y"})
    produced = producer.handler(event, Context())
    batch = world.receive(world.put_url)
    batch["Records"].append({**batch["Records"][0], "messageId": "poison", "body": "{broken"})
    assert dead_letter.handler(batch, Context()) == {"batchItemFailures": []}
    (payload,) = world.take_invokes("summarizer-fn")
    assert payload["runId"] == produced["runId"]
    summarizer.handler(payload, Context())
    summary, failures = world.report("dlh-1")
    assert summary["documents"]["failed"] == 2 and {r[2] for r in read_failures_csv(failures)} == {"DeadLettered"}
    quarantined = world.s3.get_object(Bucket="reports-bucket", Key="_deadletters/unreadable/poison.json")
    assert json.loads(quarantined["Body"].read())["body"] == "{broken"


def test_watchdog_handler_takes_the_threshold_from_its_event(world: World) -> None:
    event = world.upload("team/z", "wd-1", {"a": "x"})
    produced = producer.handler(event, Context())
    assert watchdog.handler({}, Context())["aborted"] == []
    assert watchdog.handler({"stuckAfterSeconds": 0.001}, Context())["aborted"] == [produced["runId"]]
    with pytest.raises(ValueError):
        watchdog.handler({"stuckAfterSeconds": -1}, Context())
