"""Lock: leased locks and job records on a moto DynamoDB table shaped like the deployed one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kendra_ingest import aws
from kendra_ingest.lock import (
    SUMMARY_DONE,
    SUMMARY_RUNNING,
    Lock,
    UnknownJob,
    job_key,
    source_lock_key,
)
from moto import mock_aws

from tests.functions.serialised import Serialised

TABLE = "kendra-ingestion-locks"


class Clock:
    def __init__(self) -> None:
        self.now = 1_760_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        client.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expiresAt"})
        yield client
    aws.reset_clients()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lock(dynamodb: Any, clock: Clock) -> Lock:
    return Lock(TABLE, clock=clock)


# ------------------------------------------------------------------------------------ leased locks


def test_acquire_contention_and_release(lock: Lock, clock: Clock, dynamodb: Any) -> None:
    key = source_lock_key("phonebook")
    first = lock.acquire(key, "job-1", 300)
    assert (first.acquired, first.held_by, first.expires_at) == (True, "job-1", int(clock.now) + 300)
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}})["Item"]
    assert item["owner"]["S"] == "job-1" and item["expiresAt"]["N"] == str(int(clock.now) + 300)

    clock.now += 100
    second = lock.acquire(key, "job-2", 300)
    assert (second.acquired, second.held_by, second.expires_at) == (False, "job-1", first.expires_at)

    assert lock.release(key, "job-2") is False  # not the owner
    assert lock.holder(key).held_by == "job-1"
    assert lock.release(key, "job-1") is True
    assert lock.release(key, "job-1") is False  # already gone
    assert lock.acquire(key, "job-2", 300).acquired


def test_same_owner_reacquire_extends(lock: Lock, clock: Clock) -> None:
    key = source_lock_key("hr")
    lock.acquire(key, "job-1", 60)
    clock.now += 50
    again = lock.acquire(key, "job-1", 60)
    assert again.acquired and again.expires_at == int(clock.now) + 60


def test_expired_lease_is_taken_over(lock: Lock, clock: Clock) -> None:
    key = source_lock_key("hr")
    lock.acquire(key, "job-1", 60)
    clock.now += 60
    assert not lock.acquire(key, "job-2", 60).acquired  # expiresAt == now: still held
    clock.now += 1
    taken = lock.acquire(key, "job-2", 60)
    assert taken.acquired and taken.held_by == "job-2"
    # the old owner lost it: no heartbeat, no release
    assert lock.heartbeat(key, "job-1", 60) is False
    assert lock.release(key, "job-1") is False
    assert lock.holder(key).held_by == "job-2"


def test_heartbeat_extends_only_for_owner(lock: Lock, clock: Clock) -> None:
    key = source_lock_key("hr")
    lock.acquire(key, "job-1", 60)
    clock.now += 50
    assert lock.heartbeat(key, "job-1", 60) is True
    clock.now += 50  # would have expired without the heartbeat
    assert not lock.acquire(key, "job-2", 60).acquired
    assert lock.holder(key).expires_at == int(clock.now) - 50 + 60
    assert lock.heartbeat(key, "job-2", 60) is False
    assert lock.heartbeat(source_lock_key("nobody"), "job-1", 60) is False


def test_holder_of_free_and_expired_locks(lock: Lock, clock: Clock) -> None:
    key = source_lock_key("hr")
    assert lock.holder(key).acquired is False and lock.holder(key).held_by is None
    lock.acquire(key, "job-1", 10)
    assert lock.holder(key).acquired
    clock.now += 11
    stale = lock.holder(key)
    assert stale.acquired is False and stale.held_by == "job-1"


# ------------------------------------------------------------------------------------ job records


def test_register_job_dedupes_duplicate_triggers(lock: Lock, dynamodb: Any) -> None:
    attributes = {"prefix": "incoming/hr", "expectedDocuments": 12, "ratio": 0.5, "tags": ["a", "b"],
                  "nested": {"force": False}}
    assert lock.register_job("hr-1", "hr", attributes) is True
    assert lock.register_job("hr-1", "hr", {"prefix": "other"}) is False
    record = lock.get_job("hr-1")
    assert record is not None
    assert (record.job_id, record.source, record.attributes) == ("hr-1", "hr", attributes)
    assert record.progress.parts is None and record.progress.parts_done == 0 and not record.progress.complete
    assert lock.get_job("never") is None
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": job_key("hr-1")}})["Item"]
    assert "expiresAt" in item  # job records carry a TTL


def test_complete_part_counts_once_and_seal(lock: Lock, dynamodb: Any) -> None:
    lock.register_job("hr-1", "hr", {})
    progress = lock.complete_part("hr-1", "put-00001", {"put": 8, "failed": 2})
    assert (progress.parts_done, progress.counts) == (1, {"put": 8, "failed": 2})
    again = lock.complete_part("hr-1", "put-00001", {"put": 8, "failed": 2})
    assert (again.parts_done, again.counts) == (1, {"put": 8, "failed": 2})
    lock.complete_part("hr-1", "del-00001", {"deleted": 3, "failed": 1})
    sealed = lock.seal_job("hr-1", 3)
    assert (sealed.parts, sealed.parts_done, sealed.complete) == (3, 2, False)
    last = lock.complete_part("hr-1", "put-00002", {"put": 10})
    assert last.complete and last.counts == {"put": 18, "failed": 3, "deleted": 3}
    marker = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "job#hr-1#part#put-00001"}})["Item"]
    assert marker["counts"]["M"]["put"]["N"] == "8"


def test_complete_part_of_unknown_job_raises_and_leaves_no_marker(lock: Lock, dynamodb: Any) -> None:
    with pytest.raises(UnknownJob):
        lock.complete_part("ghost", "p1", {"put": 1})
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "job#ghost#part#p1"}})
    with pytest.raises(UnknownJob):
        lock.seal_job("ghost", 1)
    with pytest.raises(ValueError):
        lock.complete_part("ghost", "p1", {"bad name": 1})


def test_summary_claim_and_finish(lock: Lock) -> None:
    lock.register_job("hr-1", "hr", {})
    assert lock.try_start_summary("hr-1", "worker-a") is True
    assert lock.try_start_summary("hr-1", "worker-b") is False
    assert lock.try_start_summary("unknown", "worker-a") is False
    assert lock.progress("hr-1").summary_state == SUMMARY_RUNNING
    lock.finish_job("hr-1", "SUCCEEDED")
    progress = lock.progress("hr-1")
    assert (progress.summary_state, progress.status) == (SUMMARY_DONE, "SUCCEEDED")
    assert lock.try_start_summary("hr-1", "worker-c") is False
    with pytest.raises(UnknownJob):
        lock.finish_job("unknown", "FAILED")


def test_duplicate_completions_and_summary_race_across_threads(dynamodb: Any, clock: Clock) -> None:
    Lock(TABLE, clock=clock).register_job("big", "hr", {})
    parts = [f"p{i:03d}" for i in range(12)]
    workers = 5
    barrier = threading.Barrier(workers)
    winners: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            mine = Lock(TABLE, client=Serialised(aws.client("dynamodb")), clock=clock)
            barrier.wait()
            # every worker completes every part (as with redelivered messages), in its own order
            for part in parts[n:] + parts[:n]:
                mine.complete_part("big", part, {"put": 10, "failed": 1})
            if mine.try_start_summary("big", f"w{n}"):
                winners.append(f"w{n}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    progress = Lock(TABLE, clock=clock).seal_job("big", len(parts))
    assert progress.complete and progress.parts_done == len(parts)
    assert progress.counts == {"put": 10 * len(parts), "failed": len(parts)}
    assert len(winners) == 1
