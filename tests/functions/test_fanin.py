"""Option sqs fan-out / fan-in (kendra_ingest.fanin) on moto + the Kendra emulator."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kendra_ingest import fanin, locking, parts
from kendra_ingest.deadline import Deadline
from kendra_ingest.lock import Lock, source_lock_key
from kendra_ingest.reports import read_failures_csv

from tests.functions.sqs_world import REPORTS, Context, Published, World, make_world


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch)



def work_key(world: World, job_id: str, name: str) -> str:
    """The key of a work object of the job's only run (work state is kept per run)."""
    (key,) = [o["Key"] for o in world.s3.list_objects_v2(Bucket=REPORTS, Prefix=f"_work/{job_id}/")["Contents"]
              if o["Key"].endswith(f"/{name}")]
    return key


def produce(world: World, event: dict[str, Any], **kwargs: Any) -> fanin.Produced:
    return fanin.produce(event, settings=kwargs.pop("settings", None) or world.settings(), lock=world.lock,
                         request_id=kwargs.pop("request_id", "req-1"), **kwargs)


def drain(world: World) -> int:
    """Run the workers over both queues until they are empty; returns how many batches ran."""
    batches = 0
    for url, handler, operation in ((world.put_url, "put_worker", "put"), (world.delete_url, "del_worker", "delete")):
        while (event := world.receive(url))["Records"]:
            response = fanin.handle_batch(event, Context(), handler=handler, operation=operation)
            assert response["batchItemFailures"] == []
            world.acknowledge(url, event, response)
            batches += 1
    return batches


def summarize(world: World, payload: dict[str, Any], *, owner: str = "sum-1", sns: Any = None) -> dict[str, Any]:
    return fanin.summarize(fanin.SummaryRequest.model_validate(payload), settings=world.settings(),
                           lock=world.lock, owner=owner, deadline=Deadline(60), sleep=lambda s: None,
                           sns=sns or Published())


def messages(world: World, url: str) -> list[dict[str, Any]]:
    found = []
    while got := world.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           AttributeNames=["All"]).get("Messages"):
        for m in got:
            found.append(m)
            world.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def docs(n: int, prefix: str = "d") -> dict[str, str]:
    return {f"{prefix}{i:03d}": f"document {i} " + "x" * i for i in range(n)}


# ------------------------------------------------------------------------------------ producer


def test_producer_packs_shards_and_dedups(world: World) -> None:
    event = world.upload("team/a", "pack-1", docs(25), deletes=[f"gone-{i}" for i in range(23)])
    # A small request limit makes size, not the 10-document maximum, decide some parts.
    settings = world.settings(MAX_REQUEST_BYTES="200")
    produced = produce(world, event, settings=settings)
    assert produced.status == "sealed"

    puts, deletes = messages(world, world.put_url), messages(world, world.delete_url)
    saved = json.loads(world.s3.get_object(Bucket=REPORTS, Key=work_key(world, "pack-1", "parts.json"))["Body"].read())
    assert produced.parts == len(puts) + len(deletes) == len(saved)
    assert len(deletes) == 3  # 23 ids, 10 per request
    run_id = produced.run_id
    for m in puts + deletes:
        body = json.loads(m["Body"])
        assert body["runId"] == run_id and body["jobId"] == "pack-1" and body["source"] == "pack"
        items = body.get("docs") or body["documentIds"]
        assert 1 <= len(items) <= 10
        if body["action"] == "put":
            sizes = [d["size"] for d in body["docs"]]
            assert sum(sizes) <= 200 or len(sizes) == 1
            assert m["Attributes"]["MessageGroupId"] == f"put-{body['part'] % 2}"
        else:
            assert m["Attributes"]["MessageGroupId"] == f"del-{body['part'] % 4}"
        digest = hashlib.sha256(m["Body"].encode()).hexdigest()
        expected = hashlib.sha256(f"pack-1{run_id}{digest}".encode()).hexdigest()
        assert m["Attributes"]["MessageDeduplicationId"] == expected
        # The message is exactly the saved part plus the run and the source.
        assert {k: v for k, v in body.items() if k not in ("runId", "source")} in saved
    groups = {m["Attributes"]["MessageGroupId"] for m in puts}
    assert groups == {"put-0", "put-1"} and len(puts) > 3  # size limit forced more than ceil(25/10) parts
    assert world.lock.progress(locking.run_record(run_id)).parts == produced.parts
    assert world.lock.holder(source_lock_key("pack")).held_by == fanin.producer_owner(run_id)


class FailingSqs:
    """Forwards to SQS but reports one entry of every batch as failed (not a sender fault)."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        sent = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=Entries[1:]) if Entries[1:] else {}
        return {"Successful": sent.get("Successful", []),
                "Failed": [{"Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"}]}


def test_failing_send_does_not_seal_and_a_retry_reuses_the_plan(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanin.time, "sleep", lambda s: None)
    event = world.upload("team/b", "send-1", docs(12))
    failing = FailingSqs(world.sqs)
    with pytest.raises(fanin.SendFailed):
        produce(world, event, sqs=failing)
    assert failing.calls >= fanin.SEND_ATTEMPTS
    run = locking.run_record(fanin.jobs.ManifestEvent.parse(event).run_id)
    assert world.lock.progress(run).parts is None  # not sealed
    assert world.invoked == []
    first_plan = world.s3.get_object(Bucket=REPORTS, Key=work_key(world, "send-1", "parts.json"))["ETag"]

    # The event is retried (same invocation: Lambda keeps the request id) and every send succeeds.
    again = produce(world, event)
    assert again.status == "sealed" and world.lock.progress(run).parts == 2
    assert world.s3.get_object(Bucket=REPORTS, Key=work_key(world, "send-1", "parts.json"))["ETag"] == first_plan
    assert len(messages(world, world.put_url)) == 2  # SQS dropped the resends of the first attempt


def test_duplicate_manifest_event_runs_once(world: World) -> None:
    event = world.upload("team/c", "dup-1", docs(3))
    assert produce(world, event).status == "sealed"
    assert produce(world, event, request_id="req-2").status == "duplicate"
    # Even once finished (source released), a late duplicate starts nothing and takes no lock.
    drain(world)
    (payload,) = world.take_invokes("summarizer-fn")
    assert summarize(world, payload)["summarized"]
    assert produce(world, event, request_id="req-3").status == "duplicate"
    assert not world.lock.holder(source_lock_key("dup")).acquired
    assert messages(world, world.put_url) == [] and world.invoked == []


def test_concurrent_deliveries_produce_once(world: World) -> None:
    event = world.upload("team/c", "conc-1", docs(30))
    results: list[str] = []
    threads = [threading.Thread(target=lambda n=n: results.append(produce(world, event, request_id=f"r{n}").status))
               for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("sealed") == 1, results
    assert len(messages(world, world.put_url)) == 3


def test_bad_manifest_reports_failed_and_locks_nothing(world: World) -> None:
    event = world.upload("team/d", "bad", {}, manifest=b'{"schemaVersion": 1, "jobId": "bad", "surprise": 1}')
    produced = produce(world, event)
    assert produced.status == "failed" and produced.error
    assert messages(world, world.put_url) == [] and messages(world, world.delete_url) == []
    (payload,) = world.take_invokes("summarizer-fn")
    sns = Published()
    assert summarize(world, payload, sns=sns)["status"] == "FAILED"
    summary, failures = world.report(produced.job_id)
    assert summary["status"] == "FAILED" and summary["option"] == "sqs" and read_failures_csv(failures) == []
    assert len(sns.messages) == 1 and "FAILED" in sns.messages[0]["Subject"]
    scan = world.lock.client.scan(TableName=world.lock.table_name)["Items"]
    assert not [i for i in scan if i["pk"]["S"].startswith(("source#", "waiting#"))]


# ------------------------------------------------------------------------------------ workers


def test_same_message_twice_is_counted_once(world: World) -> None:
    event = world.upload("team/e", "twice-1", docs(4))
    produced = produce(world, event)
    (message,) = messages(world, world.put_url)
    settings = world.settings()
    assert fanin.work(message["Body"], operation="put", settings=settings, lock=world.lock,
                      deadline=Deadline(60)) == "done"
    assert fanin.work(message["Body"], operation="put", settings=settings, lock=world.lock,
                      deadline=Deadline(60)) == "already done"
    progress = world.lock.progress(locking.run_record(produced.run_id))
    assert (progress.parts_done, progress.counts) == (1, {"put": 4})
    assert [c["operation"] for c in world.emulator.calls].count("BatchPutDocument") == 1
    assert len(world.take_invokes("summarizer-fn")) == 1
    with pytest.raises(ValueError, match="arrived on the delete queue"):
        fanin.work(message["Body"], operation="delete", settings=settings, lock=world.lock, deadline=Deadline(60))


def test_worker_crash_mid_batch_completes_each_part_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    event = world.upload("team/f", "crash-1", docs(50))
    produced = produce(world, event, settings=world.settings(PUT_SHARDS="1"))  # one group
    real = Lock.complete_part
    calls = {"n": 0}

    def dies_on_second(self: Lock, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # after Kendra accepted the part and its result was saved
            raise RuntimeError("Lambda crashed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Lock, "complete_part", dies_on_second)
    batch = world.receive(world.put_url)
    assert len(batch["Records"]) == 5
    response = fanin.handle_batch(batch, Context(), handler="put_worker", operation="put")
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    # Only the failing record is returned: the later records of its group were processed anyway, so a
    # crashing part costs no other part a receive (which would push healthy parts to the dead letters).
    assert failed == [batch["Records"][1]["messageId"]]
    world.acknowledge(world.put_url, batch, response)

    # A crash of the whole invocation would return the whole batch: redeliver the first record too.
    redelivered = {"Records": batch["Records"]}
    assert fanin.work(batch["Records"][0]["body"], operation="put", settings=world.settings(), lock=world.lock,
                      deadline=Deadline(60)) == "already done"
    response = fanin.handle_batch(redelivered, Context(), handler="put_worker", operation="put")
    assert response["batchItemFailures"] == []
    world.acknowledge(world.put_url, redelivered, response)
    drain(world)
    progress = world.lock.progress(locking.run_record(produced.run_id))
    assert progress.complete and progress.parts_done == 5 and progress.counts == {"put": 50}
    (payload,) = world.take_invokes("summarizer-fn")
    result = summarize(world, payload)
    summary, _ = world.report("crash-1")
    assert result["status"] == summary["status"] == "SUCCEEDED"
    assert summary["documents"] == {"requested": 50, "put": 50, "skippedUnchanged": 0, "failed": 0}


def test_two_summarizers_at_once_make_one_report(world: World) -> None:
    event = world.upload("team/g", "race-1", docs(5), deletes=["old-1"])
    produce(world, event)
    drain(world)
    (payload,) = world.take_invokes("summarizer-fn")
    sns = Published()
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(4)

    def run(n: int) -> None:
        barrier.wait()
        results.append(summarize(world, payload, owner=f"sum-{n}", sns=sns))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["summarized"] for r in results) == 1 and len(sns.messages) == 1
    summary, failures = world.report("race-1")
    assert summary["deletes"] == {"requested": 1, "deleted": 1, "failed": 0}
    assert summary["documents"]["put"] == 5 and read_failures_csv(failures) == []
    assert not world.lock.holder(source_lock_key("race")).acquired  # released by the winner


def test_dead_letters_are_settled_from_kendra_and_count_toward_completion(world: World) -> None:
    event = world.upload("team/h", "dl-1", docs(15), deletes=["x-1", "x-2"])
    produced = produce(world, event)
    put_messages, delete_messages = messages(world, world.put_url), messages(world, world.delete_url)
    settings = world.settings()
    fanin.work(put_messages[0]["Body"], operation="put", settings=settings, lock=world.lock, deadline=Deadline(60))
    for m in (put_messages[1], delete_messages[0]):
        assert fanin.dead_letter(m["Body"], message_id=m["MessageId"], settings=settings,
                                 lock=world.lock) == "done"
    # A dead letter of a part a worker completed changes nothing.
    assert fanin.dead_letter(put_messages[0]["Body"], message_id="m0", settings=settings,
                             lock=world.lock) == "already done"
    progress = world.lock.progress(locking.run_record(produced.run_id))
    assert progress.complete and progress.parts_done == 3
    (payload,) = world.take_invokes("summarizer-fn")
    summarize(world, payload)
    summary, failures = world.report("dl-1")
    rows = read_failures_csv(failures)
    dead = json.loads(put_messages[1]["Body"])
    assert summary["status"] == "COMPLETED_WITH_FAILURES"
    assert summary["documents"] == {"requested": 15, "put": 10, "skippedUnchanged": 0, "failed": 5}
    # Kendra does not hold x-1 and x-2: deleting them is done (deletes are idempotent).
    assert summary["deletes"] == {"requested": 2, "deleted": 2, "failed": 0}
    # Kendra does not hold the lost put part's documents: they were not sent.
    assert sorted(r[1] for r in rows) == sorted(d["documentId"] for d in dead["docs"])
    assert {r[2] for r in rows} == {"DeadLettered"}
    assert all("run the job again to send it" in r[3] and "Traceback" not in r[3] for r in rows)
    assert world.s3.list_objects_v2(Bucket=REPORTS, Prefix="_reports/dl-1/put/")["KeyCount"] == 2


def test_a_dead_letter_whose_put_reached_kendra_reports_new_documents_put(world: World) -> None:
    """The worker died after Kendra accepted the part, every time: the new documents are indexed, so the
    report must say put, not DeadLettered; a document the ledger knew stays DeadLettered (ambiguous)."""
    from kendra_ingest.ledger import Ledger

    event = world.upload("team/z", "lost-1", docs(3))
    produce(world, event)
    (message,) = messages(world, world.put_url)
    body = json.loads(message["Body"])
    kendra = boto3.client("kendra", region_name="us-east-1")
    kendra.batch_put_document(IndexId=world.emulator.index_id, Documents=[
        {"Id": d["documentId"], "Blob": b"x", "ContentType": "PLAIN_TEXT"} for d in body["docs"]])
    known = body["docs"][0]["documentId"]
    Ledger(world.settings().documents_table).record_put([(known, "team", "old-fp", "k", "earlier-job")])
    settings = world.settings()
    assert fanin.dead_letter(message["Body"], message_id="m-1", settings=settings, lock=world.lock) == "done"
    (payload,) = world.take_invokes("summarizer-fn")
    summarize(world, payload)
    summary, failures = world.report("lost-1")
    rows = read_failures_csv(failures)
    assert summary["documents"]["put"] == 2 and summary["documents"]["failed"] == 1
    assert [(r[1], r[2]) for r in rows] == [(known, "DeadLettered")]
    assert "may be an earlier version" in rows[0][3]
    # What it settled as put is in the ledger: the next job skips it as unchanged.
    entries = Ledger(settings.documents_table).entries([d["documentId"] for d in body["docs"]])
    assert all(entries[d["documentId"]].fingerprint == d["fingerprint"] for d in body["docs"][1:])


def test_a_damaged_dead_letter_of_a_known_run_is_reported_in_its_job(world: World) -> None:
    event = world.upload("team/k", "dmg-1", docs(3))
    produced = produce(world, event)
    (message,) = messages(world, world.put_url)
    damaged = json.loads(message["Body"])
    damaged["docs"] = "truncated"  # still names its run, action and part
    settings = world.settings()
    assert fanin.dead_letter(json.dumps(damaged), message_id="m-9", settings=settings, lock=world.lock) == "done"
    progress = world.lock.progress(locking.run_record(produced.run_id))
    assert progress.complete
    (payload,) = world.take_invokes("summarizer-fn")
    summarize(world, payload)
    summary, failures = world.report("dmg-1")
    assert summary["documents"] == {"requested": 3, "put": 0, "skippedUnchanged": 0, "failed": 3}
    assert {r[2] for r in read_failures_csv(failures)} == {"DeadLettered"}


def test_unreadable_dead_letter_is_quarantined_not_dropped(world: World) -> None:
    settings = world.settings()
    assert fanin.dead_letter("not json", message_id="m-1", settings=settings, lock=world.lock) == "quarantined"
    ghost = json.dumps({"action": "delete", "jobId": "j", "part": 1, "documentIds": ["a"], "runId": "nope",
                        "source": "s"})
    assert fanin.dead_letter(ghost, message_id="m-2", settings=settings, lock=world.lock) == "quarantined"
    kept = world.s3.get_object(Bucket=REPORTS, Key="_deadletters/unreadable/m-2.json")["Body"].read()
    assert json.loads(kept)["body"] == ghost and "unknown" in json.loads(kept)["reason"]
    assert world.s3.get_object(Bucket=REPORTS, Key="_deadletters/unreadable/m-1.json")


# ------------------------------------------------------------------------------------ waiting and watchdog


def test_a_job_waits_for_its_source_and_starts_after_the_summary(world: World) -> None:
    first = world.upload("team/i", "src-1", docs(3), source="shared")
    second = world.upload("team/j", "src-2", docs(2), source="shared")
    assert produce(world, first).status == "sealed"
    waiting = produce(world, second, request_id="req-2")
    first_run = fanin.jobs.ManifestEvent.parse(first).run_id
    assert waiting.status == "waiting" and waiting.held_by == fanin.producer_owner(first_run)
    assert [w.job_id for w in fanin.waiting_jobs(world.lock, "shared")] == ["src-2"]
    assert messages(world, world.put_url) != []  # only the first job's parts
    world.sqs.purge_queue(QueueUrl=world.put_url)

    # The first job's parts went missing: the watchdog leaves the waiting job alone, the source is held.
    assert fanin.watch(settings=world.settings(), lock=world.lock).started == []
    # Finish the first job by hand (its parts dead-lettered), then the summarizer starts the waiting one.
    run = locking.run_record(fanin.jobs.ManifestEvent.parse(first).run_id)
    saved = world.s3.get_object(Bucket=REPORTS, Key=work_key(world, "src-1", "parts.json"))
    for item in json.loads(saved["Body"].read()):
        part = parts.parse(item)
        world.lock.complete_part(run, fanin.part_id(part), {"failed": 1})
    result = summarize(world, {"runId": run.removeprefix("run-"), "jobId": "src-1"})
    assert result["released"] and result["nextRunId"] == waiting.run_id
    (restart,) = world.take_invokes("producer-fn")
    assert restart == second
    assert produce(world, restart, request_id="req-3").status == "sealed"
    assert fanin.waiting_jobs(world.lock, "shared") == []


def test_watchdog_aborts_a_stuck_job_into_job_aborted_rows(world: World) -> None:
    event = world.upload("team/k", "stuck-1", docs(12))
    produced = produce(world, event)
    (first, _second) = messages(world, world.put_url)
    fanin.work(first["Body"], operation="put", settings=world.settings(), lock=world.lock, deadline=Deadline(60))
    assert fanin.watch(settings=world.settings(), lock=world.lock).aborted == []  # still fresh

    later = fanin.time.time() + fanin.STUCK_AFTER_SECONDS + 60
    watched = fanin.watch(settings=world.settings(), lock=world.lock, now=later)
    assert watched.aborted == [produced.run_id]
    (payload,) = world.take_invokes("summarizer-fn")
    assert "abort" in payload
    summarize(world, payload)
    summary, failures = world.report("stuck-1")
    rows = read_failures_csv(failures)
    assert summary["status"] == "FAILED" and "watchdog" in summary["error"]
    assert summary["documents"] == {"requested": 12, "put": 10, "skippedUnchanged": 0, "failed": 2}
    assert {r[2] for r in rows} == {"JobAborted"} and len(rows) == 2
    assert fanin.watch(settings=world.settings(), lock=world.lock, now=later + 3600).aborted == []  # finished


def test_watchdog_summarizes_complete_jobs_and_starts_waiting_ones(world: World) -> None:
    event = world.upload("team/l", "quiet-1", docs(2), source="q")
    produced = produce(world, event)
    drain(world)
    world.take_invokes("summarizer-fn")  # the invoke got lost
    waiting = produce(world, world.upload("team/m", "quiet-2", docs(1), source="q"), request_id="req-2")
    assert waiting.status == "waiting"
    watched = fanin.watch(settings=world.settings(), lock=world.lock)
    assert watched.summarized == [produced.run_id] and watched.started == []
    # The summarizer died after finishing the run but before releasing the source.
    world.lock.try_start_summary(locking.run_record(produced.run_id), "dead")
    world.lock.finish_job(locking.run_record(produced.run_id), "SUCCEEDED")
    world.invoked.clear()
    watched = fanin.watch(settings=world.settings(), lock=world.lock)
    assert watched.released == [produced.run_id] and watched.started == [waiting.run_id]
    (restart,) = world.take_invokes("producer-fn")
    assert produce(world, restart, request_id="req-3").status == "sealed"


def test_summary_claim_expires_for_takeover_and_reenters_for_its_owner(world: World) -> None:
    lock, run = world.lock, "run-abc"
    lock.register_job(run, "s", {})
    assert lock.try_start_summary(run, "a", 60) and lock.try_start_summary(run, "a", 60)  # async retry
    assert not lock.try_start_summary(run, "b", 60)
    late = Lock(lock.table_name, clock=lambda: fanin.time.time() + 120)
    assert late.try_start_summary(run, "b", 60)


# ------------------------------------------------------------------------------------ data-source sync job


DATA_SOURCE = "custom-source-1"


def sync_history(world: World) -> list[dict[str, Any]]:
    kendra = boto3.client("kendra", region_name="us-east-1")
    return kendra.list_data_source_sync_jobs(Id=DATA_SOURCE, IndexId=world.emulator.index_id)["History"]


def test_data_source_sync_job_wraps_the_job(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENDRA_DATA_SOURCE_ID", DATA_SOURCE)  # the workers read their environment
    settings = world.settings(KENDRA_DATA_SOURCE_ID=DATA_SOURCE)
    event = world.upload("team/s", "sync-1", docs(12), deletes=["gone-1"])
    produced = produce(world, event, settings=settings)
    assert produced.status == "sealed"
    (running,) = sync_history(world)
    assert running["Status"] == "SYNCING"
    # Read without consuming (the visibility timeout is 0): the workers get them next.
    sent = world.receive(world.put_url)["Records"] + world.receive(world.delete_url)["Records"]
    assert len(sent) == 3 and {json.loads(r["body"])["syncJobId"] for r in sent} == {running["ExecutionId"]}
    drain(world)
    (payload,) = world.take_invokes("summarizer-fn")
    result = fanin.summarize(fanin.SummaryRequest.model_validate(payload), settings=settings, lock=world.lock,
                             owner="sum-1", deadline=Deadline(60), sleep=lambda s: None, sns=Published())
    assert result["status"] == "SUCCEEDED"
    (run,) = sync_history(world)
    assert run["ExecutionId"] == running["ExecutionId"] and run["Status"] in {"SYNCING_INDEXING", "SUCCEEDED"}
    attributes = world.emulator.index_snapshot()["documents"]["d000"]["attributes"]
    assert attributes["_data_source_sync_job_execution_id"] == {"StringValue": run["ExecutionId"]}
    deletes = [c for c in world.emulator.calls if c["operation"] == "BatchDeleteDocument"]
    assert deletes and all(c["outcome"] == "ok" for c in deletes)
    # Without a data source the messages carry no syncJobId and nothing starts a sync job.
    produce(world, world.upload("team/t", "plain-1", docs(2, "p")), request_id="req-2")
    assert "syncJobId" not in json.loads(messages(world, world.put_url)[0]["Body"])
    assert len(sync_history(world)) == 1


def test_a_busy_data_source_makes_the_job_wait_and_the_watchdog_restarts_it(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KENDRA_DATA_SOURCE_ID", DATA_SOURCE)
    settings = world.settings(KENDRA_DATA_SOURCE_ID=DATA_SOURCE)
    kendra = boto3.client("kendra", region_name="us-east-1")
    other = kendra.start_data_source_sync_job(Id=DATA_SOURCE, IndexId=world.emulator.index_id)["ExecutionId"]

    first = world.upload("team/u", "busy-1", docs(4), source="busy")
    waiting = produce(world, first, settings=settings)
    assert waiting.status == "waiting" and waiting.held_by == f"dataSource:{DATA_SOURCE}"
    assert messages(world, world.put_url) == [] and world.invoked == []
    assert [w.run_id for w in fanin.waiting_jobs(world.lock, "busy")] == [waiting.run_id]
    # The run keeps its source: a later job of the same source queues behind it.
    assert world.lock.holder(source_lock_key("busy")).held_by == fanin.producer_owner(waiting.run_id)
    second = produce(world, world.upload("team/v", "busy-2", docs(1), source="busy"), settings=settings,
                     request_id="req-2")
    assert second.status == "waiting" and second.held_by == fanin.producer_owner(waiting.run_id)
    plan_etag = world.s3.get_object(Bucket=REPORTS, Key=work_key(world, "busy-1", "parts.json"))["ETag"]

    # Still busy: each watchdog round restarts the run holding the source; it waits again and is not aborted.
    later = fanin.time.time() + fanin.STUCK_AFTER_SECONDS + 60
    watched = fanin.watch(settings=settings, lock=world.lock, now=later)
    assert watched.started == [waiting.run_id] and watched.aborted == []
    (restart,) = world.take_invokes("producer-fn")
    assert restart == first
    assert produce(world, restart, settings=settings, request_id="req-3").status == "waiting"

    kendra.stop_data_source_sync_job(Id=DATA_SOURCE, IndexId=world.emulator.index_id)
    assert fanin.watch(settings=settings, lock=world.lock).started == [waiting.run_id]
    (restart,) = world.take_invokes("producer-fn")
    # A new invocation (new request id): the first ones gave up their production claim.
    produced = produce(world, restart, settings=settings, request_id="req-4")
    assert produced.status == "sealed" and produced.parts == 1
    planned = world.s3.get_object(Bucket=REPORTS, Key=work_key(world, "busy-1", "parts.json"))
    assert planned["ETag"] == plan_etag  # planned once
    assert [w.job_id for w in fanin.waiting_jobs(world.lock, "busy")] == ["busy-2"]
    drain(world)
    (payload,) = world.take_invokes("summarizer-fn")
    result = fanin.summarize(fanin.SummaryRequest.model_validate(payload), settings=settings, lock=world.lock,
                             owner="sum-1", deadline=Deadline(60), sleep=lambda s: None, sns=Published())
    assert result["status"] == "SUCCEEDED" and result["nextRunId"] == second.run_id
    history = {run["ExecutionId"]: run for run in sync_history(world)}
    assert len(history) == 2 and all(run["Status"] != "SYNCING" for run in history.values())
    ours = world.emulator.index_snapshot()["documents"]["d000"]["attributes"]["_data_source_sync_job_execution_id"]
    assert ours["StringValue"] in history and ours["StringValue"] != other
    # The next job of the source gets the (now free) data source.
    (restart,) = world.take_invokes("producer-fn")
    assert produce(world, restart, settings=settings, request_id="req-5").status == "sealed"


def test_an_aborted_job_stops_its_sync_job(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENDRA_DATA_SOURCE_ID", DATA_SOURCE)
    settings = world.settings(KENDRA_DATA_SOURCE_ID=DATA_SOURCE)
    produced = produce(world, world.upload("team/w", "abort-1", docs(3)), settings=settings)
    assert [run["Status"] for run in sync_history(world)] == ["SYNCING"]
    request = fanin.SummaryRequest(run_id=produced.run_id, job_id=produced.job_id, abort="stuck")
    result = fanin.summarize(request, settings=settings, lock=world.lock, owner="sum-1", deadline=Deadline(60),
                             sleep=lambda s: None, sns=Published())
    assert result["status"] == "FAILED"
    assert [run["Status"] for run in sync_history(world)] != ["SYNCING"]
    # A retried summary does not stop (nor fail on) the stopped sync job again.
    assert fanin.summarize(request, settings=settings, lock=world.lock, owner="sum-1", deadline=Deadline(60),
                           sleep=lambda s: None, sns=Published())["summarized"] is False


def test_a_sync_job_stopped_outside_the_pipeline_does_not_block_the_summary(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KENDRA_DATA_SOURCE_ID", DATA_SOURCE)
    settings = world.settings(KENDRA_DATA_SOURCE_ID=DATA_SOURCE)
    produced = produce(world, world.upload("team/x", "outside-1", docs(2)), settings=settings)
    drain(world)
    # Someone stops the job's sync job in the console before the summary runs.
    boto3.client("kendra", region_name="us-east-1").stop_data_source_sync_job(
        Id=DATA_SOURCE, IndexId=settings.kendra_index_id)
    (payload,) = world.take_invokes("summarizer-fn")
    request = fanin.SummaryRequest(run_id=produced.run_id, job_id=produced.job_id)
    assert payload["runId"] == produced.run_id
    result = fanin.summarize(request, settings=settings, lock=world.lock, owner="sum-1", deadline=Deadline(60),
                             sleep=lambda s: None, sns=Published())
    assert result["summarized"] is True and result["status"] == "SUCCEEDED"
