"""QuotaPacer: one shared schedule spaces calls evenly below the rate, whatever the workers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kendra_ingest.deadline import Deadline
from kendra_ingest.pacing import HEADROOM, QuotaPacer
from moto import mock_aws

from tests.functions.serialised import Serialised

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
        # Threads share this client: build botocore's lazy exception classes now, as aws.client does
        # (else two threads may build two ConditionalCheckFailedException classes and miss a catch).
        _ = client.exceptions
        yield client


def test_calls_are_spread_evenly_below_the_rate(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 5.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    starts = []
    for _ in range(20):
        assert pacer.acquire("BatchPutDocument", Deadline(3600, clock=clock.time))
        starts.append(clock.time())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(1 / (5.0 * HEADROOM))
    assert max(gaps) == pytest.approx(1 / (5.0 * HEADROOM))


def test_operations_have_separate_schedules(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 1.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    deadline = Deadline(3600, clock=clock.time)
    assert pacer.acquire("BatchPutDocument", deadline) and pacer.acquire("BatchDeleteDocument", deadline)
    assert clock.time() == 1_000.0  # neither waited for the other


@pytest.mark.parametrize("rate", [0.25, 0.7, 1.5, 2.5])
def test_a_fractional_rate_is_not_rounded(dynamodb: Any, rate: float) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, rate, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    deadline = Deadline(3600, clock=clock.time)
    first = clock.time()
    for _ in range(11):
        assert pacer.acquire("BatchPutDocument", deadline)
    # 10 intervals after the first call: the achieved rate is HEADROOM x the quota, not less.
    assert 10 / (clock.time() - first) == pytest.approx(rate * HEADROOM)


def test_an_idle_schedule_starts_again_now_without_a_burst(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 2.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    deadline = Deadline(3600, clock=clock.time)
    assert pacer.acquire("BatchPutDocument", deadline)
    clock.sleep(100.0)
    idle_end = clock.time()
    assert pacer.acquire("BatchPutDocument", deadline)
    assert clock.time() == idle_end  # the past slots are not handed out
    assert pacer.acquire("BatchPutDocument", deadline)
    assert clock.time() == pytest.approx(idle_end + 1 / (2.0 * HEADROOM))


def test_no_slot_before_the_deadline_gives_up(dynamodb: Any) -> None:
    clock = Clock()
    pacer = QuotaPacer(TABLE, 1.0, client=dynamodb, clock=clock.time, sleep=clock.sleep)
    assert pacer.acquire("BatchPutDocument", Deadline(10, clock=clock.time))
    assert not pacer.acquire("BatchPutDocument", Deadline(0.5, clock=clock.time))


def test_workers_on_threads_book_distinct_evenly_spaced_slots(dynamodb: Any) -> None:
    clock = Clock()  # never advances: every booking after the first is ahead of "now"
    booked: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker() -> None:
        pacer = QuotaPacer(TABLE, 4.0, client=Serialised(dynamodb), clock=clock.time, sleep=clock.sleep)
        barrier.wait()
        for _ in range(5):
            slot = pacer._book("BatchPutDocument")
            with lock:
                booked.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    booked.sort()
    assert len(booked) == 30
    gaps = [b - a for a, b in itertools.pairwise(booked)]
    assert min(gaps) == pytest.approx(1 / (4.0 * HEADROOM), abs=1e-5)


@settings(max_examples=20, deadline=None)
@given(rate=st.floats(min_value=0.2, max_value=50.0),
       pauses=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=2, max_size=15))
def test_consecutive_calls_never_start_closer_than_the_interval(rate: float, pauses: list[float]) -> None:
    """Whatever the pauses between callers, no two calls start closer than 1 / (rate x HEADROOM)."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        clock = Clock()
        pacer = QuotaPacer(TABLE, rate, client=client, clock=clock.time, sleep=clock.sleep)
        starts = []
        for pause in pauses:
            clock.sleep(pause)
            assert pacer.acquire("BatchPutDocument", Deadline(3600, clock=clock.time))
            starts.append(clock.time())
    assert all(b - a >= 1 / (rate * HEADROOM) - 1e-5 for a, b in itertools.pairwise(starts))
