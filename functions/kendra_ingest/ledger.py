"""The documents table: what we put into the index, with which fingerprint, from which source.

Kendra has no ListDocuments API, so this ledger is the inventory of what is indexed, and its
fingerprints let a re-run skip unchanged documents without reading a single body.

Table: partition key ``documentId`` (S); attributes ``source``, ``fingerprint``, ``s3Key``,
``updatedAt``, ``jobId``; GSI ``bySource`` (``source``, ``documentId``).

Example::

    ledger = Ledger(settings.documents_table)
    skip = ledger.unchanged({pair_id: pair.fingerprint for pair_id, pair in pairs.items()}, source="hr")
    ledger.record_put([(doc_id, "hr", fingerprint, s3_key, job_id)])
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kendra_ingest import aws

#: DynamoDB limits: BatchGetItem 100 keys, BatchWriteItem 25 requests.
GET_CHUNK = 100
WRITE_CHUNK = 25
SOURCE_INDEX = "bySource"

#: Rounds of resending UnprocessedKeys/UnprocessedItems before giving up (throttled table).
MAX_UNPROCESSED_ROUNDS = 10
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0


class LedgerError(RuntimeError):
    """DynamoDB kept part of a batch unprocessed after every retry."""


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one indexed document."""

    fingerprint: str
    source: str | None


PutRecord = tuple[str, str, str, str, str] | tuple[str, str, str, str, str, str]
"""(document_id, source, fingerprint, s3_key, job_id)"""


class Ledger:
    """Reads and writes of the documents table, batched to DynamoDB's limits."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """``client`` defaults to the thread's cached DynamoDB client."""
        self.table_name = table_name
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()

    @property
    def client(self) -> Any:
        """The DynamoDB client (created on first use)."""
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    # ---------------------------------------------------------------- reads

    def entries(self, document_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """Fingerprint and source of every id the ledger knows (unknown ids are absent)."""
        unique = list(dict.fromkeys(document_ids))
        found: dict[str, LedgerEntry] = {}
        for start in range(0, len(unique), GET_CHUNK):
            request: dict[str, Any] = {self.table_name: {
                "Keys": [{"documentId": {"S": i}} for i in unique[start:start + GET_CHUNK]],
                "ProjectionExpression": "documentId, fingerprint, #source",
                "ExpressionAttributeNames": {"#source": "source"},
            }}
            for round_ in range(MAX_UNPROCESSED_ROUNDS + 1):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item["documentId"]["S"]] = LedgerEntry(
                        fingerprint=item.get("fingerprint", {}).get("S", ""),
                        source=item.get("source", {}).get("S"),
                    )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if round_ == MAX_UNPROCESSED_ROUNDS:
                    raise LedgerError(f"{self.table_name}: keys still unprocessed after {round_ + 1} rounds")
                self._backoff(round_)
        return found

    def unchanged(
        self, candidates: Mapping[str, str], *, source: str | None = None,
        known: Mapping[str, LedgerEntry] | None = None,
    ) -> set[str]:
        """The ids whose stored fingerprint equals the new one (so the put can be skipped).

        With ``source``, a document last put by another source is not unchanged: sending it again
        moves it into this source's inventory. An empty fingerprint never matches. ``known``: entries
        already read for (at least) every candidate the table holds, so nothing is read again.
        """
        stored = self.entries(candidates) if known is None else known
        return {
            doc_id for doc_id, fingerprint in candidates.items()
            if fingerprint
            and (entry := stored.get(doc_id)) is not None
            and entry.fingerprint == fingerprint
            and (source is None or entry.source == source)
        }

    def _source_items(self, source: str, projection: str) -> Iterator[dict[str, Any]]:
        """The items recorded for ``source`` (paginated query on the ``bySource`` index)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": SOURCE_INDEX,
            "KeyConditionExpression": "#source = :source",
            "ExpressionAttributeNames": {"#source": "source"},
            "ExpressionAttributeValues": {":source": {"S": source}},
            "ProjectionExpression": projection,
        }
        while True:
            response = self.client.query(**request)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def inventory(self, source: str) -> Iterator[str]:
        """Every document id recorded for ``source``."""
        return (item["documentId"]["S"] for item in self._source_items(source, "documentId"))

    def keys(self, source: str) -> dict[str, tuple[str, str]]:
        """``{key relative to its job's root: (documentId, fingerprint)}`` of the documents recorded for
        ``source`` (those recorded with ``relKey``).

        What a job needs to skip unchanged documents from its listing alone, before reading any metadata
        (the fingerprint is the listing's ETags). One query page holds thousands of these small items.
        """
        found: dict[str, tuple[str, str]] = {}
        for item in self._source_items(source, "documentId, relKey, fingerprint"):
            key, fingerprint = item.get("relKey", {}).get("S"), item.get("fingerprint", {}).get("S", "")
            if key and fingerprint:
                found[key] = (item["documentId"]["S"], fingerprint)
        return found

    # ---------------------------------------------------------------- writes

    def record_put(self, items: Iterable[PutRecord]) -> int:
        """Record documents Kendra accepted; returns how many were written (last wins per id)."""
        now = datetime.fromtimestamp(self._clock(), UTC).isoformat().replace("+00:00", "Z")
        latest: dict[str, dict[str, Any]] = {}
        for document_id, source, fingerprint, s3_key, job_id, *relative in items:
            item = {
                "documentId": {"S": document_id},
                "source": {"S": source},
                "fingerprint": {"S": fingerprint},
                "s3Key": {"S": s3_key},
                "updatedAt": {"S": now},
                "jobId": {"S": job_id},
            }
            if relative:
                item["relKey"] = {"S": relative[0]}
            latest[document_id] = {"PutRequest": {"Item": item}}
        self._write(list(latest.values()))
        return len(latest)

    def record_delete(self, document_ids: Iterable[str]) -> int:
        """Remove documents deleted from the index; returns how many ids were written."""
        unique = list(dict.fromkeys(document_ids))
        self._write([{"DeleteRequest": {"Key": {"documentId": {"S": i}}}} for i in unique])
        return len(unique)

    def forget(self, document_ids: Iterable[str]) -> int:
        """Drop documents whose indexing later FAILED, so the next run sends them again."""
        return self.record_delete(document_ids)

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), WRITE_CHUNK):
            pending: dict[str, Any] = {self.table_name: requests[start:start + WRITE_CHUNK]}
            for round_ in range(MAX_UNPROCESSED_ROUNDS + 1):
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                if round_ == MAX_UNPROCESSED_ROUNDS:
                    raise LedgerError(
                        f"{self.table_name}: writes still unprocessed after {round_ + 1} rounds")
                self._backoff(round_)

    def _backoff(self, round_: int) -> None:
        # Full jitter: unprocessed work means the table is throttling; spread the resends out.
        self._sleep(self._rng.uniform(0.0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**round_)))
