"""Ledger: the documents table on moto DynamoDB (chunking, unprocessed retries, inventory, unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kendra_ingest import aws
from kendra_ingest.ledger import GET_CHUNK, WRITE_CHUNK, Ledger, LedgerEntry, LedgerError
from moto import mock_aws

TABLE = "kendra-ingestion-documents"


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
            AttributeDefinitions=[{"AttributeName": "documentId", "AttributeType": "S"},
                                  {"AttributeName": "source", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "documentId", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "bySource",
                "KeySchema": [{"AttributeName": "source", "KeyType": "HASH"},
                              {"AttributeName": "documentId", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        )
        yield client
    aws.reset_clients()


class Recording:
    """Forwards to the real (moto) client, recording requests; can hold work back as "unprocessed"
    (what DynamoDB does when a table throttles) and page queries with a small Limit."""

    def __init__(self, client: Any, *, hold_back: int = 0, query_limit: int | None = None) -> None:
        self._client = client
        self.hold_back = hold_back  # rounds in which half of each batch comes back unprocessed
        self.query_limit = query_limit
        self.calls: list[tuple[str, int]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        self.calls.append(("get", len(keys)))
        assert len(keys) <= GET_CHUNK
        held: list[Any] = []
        if self.hold_back:
            self.hold_back -= 1
            half = max(1, len(keys) // 2)
            held, keys = keys[:half], keys[half:]
        response: dict[str, Any] = {"Responses": {table: []}}
        if keys:
            response = self._client.batch_get_item(RequestItems={table: {**request, "Keys": keys}})
        if held:
            response["UnprocessedKeys"] = {table: {**request, "Keys": held}}
        return response

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        self.calls.append(("write", len(requests)))
        assert len(requests) <= WRITE_CHUNK
        held: list[Any] = []
        if self.hold_back:
            self.hold_back -= 1
            half = max(1, len(requests) // 2)
            held, requests = requests[:half], requests[half:]
        response: dict[str, Any] = {}
        if requests:
            response = self._client.batch_write_item(RequestItems={table: requests})
        if held:
            response["UnprocessedItems"] = {table: held}
        return response

    def query(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("query", 0))
        if self.query_limit:
            request["Limit"] = self.query_limit
        return self._client.query(**request)


def records(n: int, source: str = "hr", job: str = "hr-1") -> list[tuple[str, str, str, str, str]]:
    return [(f"doc-{i:04d}", source, f"etag{i}:meta{i}", f"in/batches/doc-{i:04d}.txt", job)
            for i in range(n)]


def count(dynamodb: Any) -> int:
    return dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"]


def test_round_trip_and_chunking_of_260_items(dynamodb: Any) -> None:
    client = Recording(dynamodb)
    ledger = Ledger(TABLE, client=client, clock=lambda: 1_760_000_000.0)
    assert ledger.record_put(records(260)) == 260
    assert client.calls == [("write", 25)] * 10 + [("write", 10)]
    assert count(dynamodb) == 260
    item = dynamodb.get_item(TableName=TABLE, Key={"documentId": {"S": "doc-0007"}})["Item"]
    assert {k: v["S"] for k, v in item.items()} == {
        "documentId": "doc-0007", "source": "hr", "fingerprint": "etag7:meta7",
        "s3Key": "in/batches/doc-0007.txt", "jobId": "hr-1", "updatedAt": "2025-10-09T08:53:20Z"}

    client.calls.clear()
    wanted = [f"doc-{i:04d}" for i in range(260)] + ["missing-1", "doc-0001"]
    found = ledger.entries(wanted)
    assert client.calls == [("get", 100), ("get", 100), ("get", 61)]  # deduplicated
    assert {i: e.fingerprint for i, e in found.items()} == {f"doc-{i:04d}": f"etag{i}:meta{i}" for i in range(260)}


def test_unprocessed_keys_and_items_are_retried(dynamodb: Any) -> None:
    sleeps: list[float] = []
    client = Recording(dynamodb, hold_back=3)
    ledger = Ledger(TABLE, client=client, sleep=sleeps.append)
    ledger.record_put(records(30))
    assert count(dynamodb) == 30
    assert len(sleeps) == 3
    client.hold_back = 2
    assert len(ledger.entries([f"doc-{i:04d}" for i in range(30)])) == 30
    assert len(sleeps) == 5 and all(s >= 0 for s in sleeps)


def test_never_processed_raises(dynamodb: Any) -> None:
    client = Recording(dynamodb, hold_back=10_000)
    with pytest.raises(LedgerError, match="unprocessed"):
        Ledger(TABLE, client=client, sleep=lambda _s: None).record_put(records(4))


def test_last_write_wins_within_one_call(dynamodb: Any) -> None:
    ledger = Ledger(TABLE)
    written = ledger.record_put([("a", "hr", "v1", "k1", "j1"), ("a", "hr", "v2", "k2", "j2")])
    assert written == 1
    assert ledger.entries(["a"]) == {"a": LedgerEntry(fingerprint="v2", source="hr")}


def test_unchanged_check(dynamodb: Any) -> None:
    ledger = Ledger(TABLE)
    ledger.record_put([("a", "hr", "e1:m1", "k", "j"), ("b", "hr", "e2:m2", "k", "j"),
                       ("c", "it", "e3:m3", "k", "j")])
    candidates = {"a": "e1:m1", "b": "e2:CHANGED", "c": "e3:m3", "new": "e9:m9"}
    assert ledger.unchanged(candidates) == {"a", "c"}
    assert ledger.unchanged(candidates, source="hr") == {"a"}  # c belongs to another source
    assert ledger.unchanged({"new": ""}) == set()  # an empty fingerprint never matches
    assert ledger.unchanged({}) == set()


def test_delete_forget_and_inventory(dynamodb: Any) -> None:
    client = Recording(dynamodb, query_limit=7)
    ledger = Ledger(TABLE, client=client)
    ledger.record_put(records(30, source="hr"))
    ledger.record_put([(f"it-{i}", "it", "f", "k", "j") for i in range(5)])
    inventory = list(ledger.inventory("hr"))
    assert inventory == [f"doc-{i:04d}" for i in range(30)]
    assert sum(1 for op, _ in client.calls if op == "query") == 5  # 30 ids, 7 per page
    assert ledger.record_delete([f"doc-{i:04d}" for i in range(10)] + ["never-existed"]) == 11
    assert ledger.forget(["doc-0010", "doc-0010"]) == 1
    assert sorted(ledger.inventory("hr")) == [f"doc-{i:04d}" for i in range(11, 30)]
    assert sorted(ledger.inventory("it")) == [f"it-{i}" for i in range(5)]
    assert list(ledger.inventory("nobody")) == []
    assert {i: e.fingerprint for i, e in ledger.entries(["doc-0000", "doc-0011"]).items()} == {
        "doc-0011": "etag11:meta11"}
