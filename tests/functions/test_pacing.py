"""QuotaPacer: the shared quota spreads calls evenly and never exceeds the rate, whatever the workers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kendra_ingest.deadline import Deadline
from kendra_ingest.pacing import QuotaPacer
from moto import mock_aws

TABLE = "lock"


class Clock:
    """A shared fake clock: sleeping advances it (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    fake = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        yield client


def test_calls_are_spread_evenly_at_the_rate(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 5.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    starts = []
    for _ in range(20):
        assert pacer.acquire("BatchPutDocument", Deadline(3600, clock=clock.time))
        starts.append(clock.time())
    # 20 calls at 5/s take 4 windows, and no second holds more than 5 calls.
    assert starts[-1] - starts[0] < 4.0
    for second in {int(t) for t in starts}:
        assert sum(1 for t in starts if second <= t < second + 1) <= 5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.2 - 0.01  # evenly spaced (up to the 10 ms wake-up jitter): no bursts


def test_operations_have_separate_quotas(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 1.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    deadline = Deadline(3600, clock=clock.time)
    assert pacer.acquire("BatchPutDocument", deadline) and pacer.acquire("BatchDeleteDocument", deadline)
    assert clock.time() == 1_000.0  # neither waited for the other


def test_a_rate_below_one_uses_longer_windows(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 0.25, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    deadline = Deadline(3600, clock=clock.time)
    assert pacer.acquire("BatchPutDocument", deadline)
    first = clock.time()
    assert pacer.acquire("BatchPutDocument", deadline)
    assert clock.time() - first >= 4.0 - 1e-9


def test_no_slot_before_the_deadline_gives_up(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 1.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    assert pacer.acquire("BatchPutDocument", Deadline(10, clock=clock.time))
    assert not pacer.acquire("BatchPutDocument", Deadline(0.5, clock=clock.time))


def test_workers_on_threads_share_one_quota(dynamodb: Any) -> None:
    clock = Clock()
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        pacer = QuotaPacer(TABLE, 4.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
        for _ in range(5):
            assert pacer.acquire("BatchPutDocument", Deadline(3600, clock=clock.time))
            with lock:
                taken.append(clock.time())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 20
    # Slots are counted in DynamoDB: 20 calls at 4/s need at least 4 full windows.
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert all(int(i["used"]["N"]) <= 4 for i in items)
    assert len(items) >= 5
