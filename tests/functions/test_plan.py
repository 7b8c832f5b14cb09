"""plan_job against an embedded S3/DynamoDB: the manifest version, sources and documentMode s3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kendra_ingest import fanin, job, plan
from kendra_ingest.ledger import Ledger

from tests.functions.sqs_world import INGESTION, World, make_world


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch)


def load(world: World, event: dict[str, Any]) -> job.Job:
    from kendra_ingest import store

    return job.load(event, store.read)


def test_a_manifest_replaced_after_the_event_is_not_used(world: World) -> None:
    event = world.upload("team/a", "first-1", {"d1": "one"})
    loaded = load(world, event)
    # The next job's manifest lands on the same prefix while this one waits for its source.
    world.upload("team/a", "second-1", {"d2": "two"})
    result, parts = plan.plan_job(loaded, world.settings())
    assert parts == [] and "replaced" in (result.error or "")


def test_unchanged_means_unchanged_in_this_source(world: World) -> None:
    event = world.upload("team/b", "hr-1", {"d1": "one", "d2": "two"}, source="hr")
    loaded = load(world, event)
    listed = world.s3.list_objects_v2(Bucket=INGESTION, Prefix="team/b/batches/")["Contents"]
    etag = {o["Key"].removeprefix("team/b/batches/"): o["ETag"].strip('"') for o in listed}
    fp = {name: f"{etag[f'{name}.txt']}:{etag[f'{name}.txt.metadata.json']}" for name in ("d1", "d2")}
    Ledger(world.settings().documents_table).record_put([
        ("d1", "hr", fp["d1"], "k", "old"), ("d2", "finance", fp["d2"], "k", "old")])
    result, parts = plan.plan_job(loaded, world.settings())
    sent = [d.document_id for p in parts for d in getattr(p, "docs", ())]
    assert result.counts.skipped_unchanged == 1 and sent == ["d2"]  # d2 moved to this source: re-sent


def test_documents_kendra_reads_from_s3_are_not_bound_by_the_inline_limits(world: World) -> None:
    big = "x" * 200_000
    event = world.upload("team/c", "big-1", {"large": big})
    loaded = load(world, event)
    tight = {"MAX_DOCUMENT_BYTES": "100000", "MAX_REQUEST_BYTES": "100000"}
    _, inline_parts = plan.plan_job(loaded, world.settings(**tight))
    failures = json.loads(world.s3.get_object(Bucket=world.settings().reports_bucket,
                                              Key=loaded.work_key("plan.json"))["Body"].read())["failures"]
    assert inline_parts == [] and [f["errorCode"] for f in failures] == ["DocumentTooLarge"]
    _, s3_parts = plan.plan_job(loaded, world.settings(DOCUMENT_MODE="s3", **tight))
    assert [d.document_id for p in s3_parts for d in p.docs] == ["large"]


def test_a_worker_drops_the_parts_of_a_run_whose_summary_started(world: World) -> None:
    from kendra_ingest import locking

    event = world.upload("team/d", "late-1", {"d1": "one"})
    produced = fanin.produce(event, settings=world.settings(), lock=world.lock, request_id="r-1")
    # The watchdog aborted the run: its summary started and reports the part as JobAborted.
    assert world.lock.try_start_summary(locking.run_record(produced.run_id), "watchdog")
    (message,) = world.sqs.receive_message(QueueUrl=world.put_url, MaxNumberOfMessages=10)["Messages"]
    from kendra_ingest.deadline import Deadline

    outcome = fanin.work(message["Body"], operation="put", settings=world.settings(), lock=world.lock,
                         deadline=Deadline(60))
    assert outcome == "run ended"
    assert not [c for c in world.emulator.calls if c["operation"] == "BatchPutDocument"]


def test_a_job_with_nothing_to_do_fails_naming_where_it_looked(world: World) -> None:
    loaded = load(world, world.upload("team/e", "empty-1", {}))
    result, parts = plan.plan_job(loaded, world.settings())
    assert parts == [] and result.error is not None
    assert "no documents under s3://" in result.error and "team/e/batches/" in result.error
    assert "upload the documents before the manifest" in result.error


def test_a_job_whose_documents_sit_outside_batches_names_them(world: World) -> None:
    for name in ("docs/a.pdf", "docs/b.pdf", "c.txt", "d.txt", "e.txt"):
        world.s3.put_object(Bucket=INGESTION, Key=f"team/m/{name}", Body=b"x")
    loaded = load(world, world.upload("team/m", "misplaced-1", {}))
    result, _ = plan.plan_job(loaded, world.settings())
    assert result.error is not None and result.counts.documents_requested == 0
    assert "team/m/c.txt, team/m/d.txt, team/m/docs/a.pdf and more" in result.error
    assert "manifest.json" not in result.error


def test_a_job_of_deletes_only_is_not_empty(world: World) -> None:
    loaded = load(world, world.upload("team/d", "deletes-1", {}, deletes=["gone"]))
    result, parts = plan.plan_job(loaded, world.settings())
    assert result.error is None and [p.document_ids for p in parts] == [["gone"]]
