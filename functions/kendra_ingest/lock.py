"""The lock table: leased locks (one job per source at a time) and job records (dedupe, sqs fan-in).

Table: partition key ``pk`` (S); TTL attribute ``expiresAt`` (N, epoch seconds). DynamoDB's TTL deletes
lazily (moto never does), so expiry is always checked in the conditions, never assumed.

Items:
  ``<key>`` (e.g. ``source#phonebook``)  a lock: ``owner``, ``expiresAt``, ``acquiredAt``
  ``job#<jobId>``                        a job record: ``source``, attributes, ``parts`` (sealed
                                         total), ``partsDone``, ``count_<name>`` counters,
                                         ``progressAt`` (last seal or completion), ``summaryState``,
                                         ``summaryOwner``, ``summaryExpiresAt``, ``status``
  ``job#<jobId>#part#<partId>``          a part-completion marker (makes completions idempotent)
  ``full#<runId>``                       the run found the Kendra index full: ``message`` (Kendra's)

Example::

    lock = Lock(settings.lock_table)
    got = lock.acquire(source_lock_key("phonebook"), owner=job_id, lease_seconds=900)
    if not got.acquired: ...  # got.held_by, got.expires_at
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kendra_ingest import aws

#: Job records and part markers outlive any job (dedupe of late duplicate triggers) but not forever.
JOB_RECORD_TTL_SECONDS = 30 * 24 * 3600

SUMMARY_RUNNING = "running"
SUMMARY_DONE = "done"

_COUNT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_COUNT_PREFIX = "count_"


def source_lock_key(source: str) -> str:
    """The lock key that serialises the jobs of one source."""
    return f"source#{source}"


def job_key(job_id: str) -> str:
    """The partition key of a job record."""
    return f"job#{job_id}"


def part_key(job_id: str, part_id: str) -> str:
    """The partition key of a part-completion marker."""
    return f"job#{job_id}#part#{part_id}"


class UnknownJob(LookupError):
    """The job record does not exist (never registered, or expired)."""


@dataclass(frozen=True)
class AcquireResult:
    """The answer to :meth:`Lock.acquire`: whether we hold it, and who does and until when."""

    acquired: bool
    held_by: str | None
    expires_at: int | None


@dataclass(frozen=True)
class JobProgress:
    """Fan-in state of a job: sealed part total (None until sealed), parts done, summed counts."""

    job_id: str
    parts: int | None
    parts_done: int
    counts: dict[str, int] = field(default_factory=dict)
    summary_state: str | None = None
    status: str | None = None
    #: When the job last moved (sealed or a part completed); None before either happened.
    progress_at: str | None = None
    #: Epoch seconds after which a running summary may be taken over (None: never).
    summary_expires_at: int | None = None

    @property
    def complete(self) -> bool:
        """Every sealed part has completed (the summary may start)."""
        return self.parts is not None and self.parts_done >= self.parts


@dataclass(frozen=True)
class JobRecord:
    """A registered job: its source, the attributes given at registration and its progress."""

    job_id: str
    source: str
    attributes: dict[str, Any]
    progress: JobProgress
    registered_at: str | None = None


class Lock:
    """Leased locks and job records in one DynamoDB table."""

    def __init__(
        self, table_name: str, *, client: Any = None, clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` returns epoch seconds (the lease is compared with the TTL attribute)."""
        self.table_name = table_name
        self._client = client
        self._clock = clock

    @property
    def client(self) -> Any:
        """The DynamoDB client (the thread's cached one unless given)."""
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def _now(self) -> int:
        return int(self._clock())

    # ---------------------------------------------------------------- leased locks

    def acquire(self, key: str, owner: str, lease_seconds: int) -> AcquireResult:
        """Take ``key`` for ``lease_seconds`` if it is free, expired, or already ours (then extend it)."""
        now = self._now()
        expires = now + int(lease_seconds)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #owner = :owner, expiresAt = :exp, acquiredAt = :at",
                ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner}, ":exp": {"N": str(expires)}, ":now": {"N": str(now)},
                    ":at": {"S": _iso(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            item = exc.response.get("Item") or self._get(key) or {}
            held_by = item.get("owner", {}).get("S")
            expires_at = int(item["expiresAt"]["N"]) if "expiresAt" in item else None
            return AcquireResult(acquired=False, held_by=held_by, expires_at=expires_at)
        return AcquireResult(acquired=True, held_by=owner, expires_at=expires)

    def heartbeat(self, key: str, owner: str, lease_seconds: int) -> bool:
        """Extend our lease; False when the lock is gone or someone else holds it."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": key}},
                UpdateExpression="SET expiresAt = :exp",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner}, ":exp": {"N": str(self._now() + int(lease_seconds))},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, key: str, owner: str) -> bool:
        """Delete the lock if we own it; False (not an error) when it is gone or someone else's."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": key}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def holder(self, key: str) -> AcquireResult:
        """Who holds ``key`` now (``acquired`` is True when an unexpired lease exists)."""
        item = self._get(key)
        if not item or "expiresAt" not in item:
            return AcquireResult(acquired=False, held_by=None, expires_at=None)
        expires_at = int(item["expiresAt"]["N"])
        live = expires_at >= self._now()
        return AcquireResult(acquired=live, held_by=item.get("owner", {}).get("S"), expires_at=expires_at)

    # ---------------------------------------------------------------- job records

    def register_job(self, job_id: str, source: str, attributes: Mapping[str, Any] | None = None) -> bool:
        """Create the job record; False when it exists already (a duplicate trigger of the same job)."""
        now = self._now()
        item: dict[str, Any] = {
            "pk": {"S": job_key(job_id)},
            "jobId": {"S": job_id},
            "source": {"S": source},
            "registeredAt": {"S": _iso(now)},
            "expiresAt": {"N": str(now + JOB_RECORD_TTL_SECONDS)},
            "partsDone": {"N": "0"},
        }
        if attributes:
            item["attributes"] = _serialize(dict(attributes))
        try:
            self.client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job record, or None when it was never registered."""
        item = self._get(job_key(job_id))
        if item is None:
            return None
        attributes = _deserialize(item["attributes"]) if "attributes" in item else {}
        return JobRecord(
            job_id=job_id,
            source=item.get("source", {}).get("S", ""),
            attributes=attributes,
            progress=_progress(job_id, item),
            registered_at=item.get("registeredAt", {}).get("S"),
        )

    def progress(self, job_id: str) -> JobProgress:
        """The job's fan-in progress (strongly consistent read); raises UnknownJob."""
        item = self._get(job_key(job_id))
        if item is None:
            raise UnknownJob(job_id)
        return _progress(job_id, item)

    def seal_job(self, job_id: str, parts: int) -> JobProgress:
        """Record the total number of parts (after every part was sent); returns the progress now."""
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": job_key(job_id)}},
                UpdateExpression="SET parts = :parts, progressAt = :at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":parts": {"N": str(int(parts))}, ":at": {"S": _iso(self._now())}},
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise UnknownJob(job_id) from exc
        return _progress(job_id, response["Attributes"])

    def complete_part(self, job_id: str, part_id: str, counts: Mapping[str, int]) -> JobProgress:
        """Mark a part done and add its counts, once: a repeated completion changes nothing.

        One transaction: the part marker (only if absent) plus ADD to ``partsDone`` and the counters,
        so a crash or a redelivered message can never count a part twice.
        """
        for name in counts:
            if not _COUNT_NAME.match(name):
                raise ValueError(f"count name {name!r} must match {_COUNT_NAME.pattern}")
        now = self._now()
        names = {"#done": "partsDone", "#at": "progressAt"}
        values: dict[str, Any] = {":one": {"N": "1"}, ":at": {"S": _iso(now)}}
        adds = ["#done :one"]
        for i, (name, value) in enumerate(sorted(counts.items())):
            names[f"#c{i}"] = _COUNT_PREFIX + name
            values[f":c{i}"] = {"N": str(int(value))}
            adds.append(f"#c{i} :c{i}")
        marker = {
            "pk": {"S": part_key(job_id, part_id)},
            "jobId": {"S": job_id},
            "partId": {"S": part_id},
            "counts": _serialize({k: int(v) for k, v in counts.items()}),
            "completedAt": {"S": _iso(now)},
            "expiresAt": {"N": str(now + JOB_RECORD_TTL_SECONDS)},
        }
        try:
            self.client.transact_write_items(TransactItems=[
                {"Put": {
                    "TableName": self.table_name, "Item": marker,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }},
                {"Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": job_key(job_id)}},
                    "UpdateExpression": "SET #at = :at ADD " + ", ".join(adds),
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }},
            ])
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise UnknownJob(job_id) from exc
            if not reasons or reasons[0] != "ConditionalCheckFailed":
                raise
            # The marker exists: this part was counted before; report the progress as it is.
        return self.progress(job_id)

    def part_completed(self, job_id: str, part_id: str) -> bool:
        """Whether the part's completion marker exists (a redelivered message has nothing left to do)."""
        return self._get(part_key(job_id, part_id)) is not None

    def try_start_summary(self, job_id: str, owner: str, lease_seconds: int | None = None) -> bool:
        """Claim the job's summary; while it runs, exactly one owner holds it.

        The same ``owner`` may claim again while the summary is running (a Lambda async retry keeps
        its request id, so a summarizer that crashed can finish its own work). With ``lease_seconds``
        the claim expires: after that another owner may take over a summary whose owner died.
        Once :meth:`finish_job` ran, nobody gets it.
        """
        now = self._now()
        values: dict[str, Any] = {
            ":running": {"S": SUMMARY_RUNNING}, ":owner": {"S": owner}, ":now": {"N": str(now)},
        }
        update = "SET summaryState = :running, summaryOwner = :owner"
        if lease_seconds is None:
            update += " REMOVE summaryExpiresAt"
        else:
            update += ", summaryExpiresAt = :exp"
            values[":exp"] = {"N": str(now + int(lease_seconds))}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": job_key(job_id)}},
                UpdateExpression=update,
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(summaryState) OR "
                    "(summaryState = :running AND (summaryOwner = :owner OR summaryExpiresAt < :now)))"
                ),
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish_job(self, job_id: str, status: str) -> None:
        """Record the job's final status (and that its summary is done)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": job_key(job_id)}},
                UpdateExpression="SET #status = :status, summaryState = :done, finishedAt = :at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status}, ":done": {"S": SUMMARY_DONE}, ":at": {"S": _iso(self._now())},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise UnknownJob(job_id) from exc

    # ---------------------------------------------------------------- a full index

    def mark_index_full(self, run_id: str, message: str) -> None:
        """Record that Kendra refused a put of ``run_id`` because the index is full."""
        self.client.put_item(TableName=self.table_name, Item={
            "pk": {"S": f"full#{run_id}"}, "message": {"S": message},
            "expiresAt": {"N": str(self._now() + JOB_RECORD_TTL_SECONDS)},
        })

    def index_full(self, run_id: str) -> str | None:
        """Kendra's message when a part of ``run_id`` found the index full, else None."""
        item = self._get(f"full#{run_id}")
        return None if item is None else item.get("message", {}).get("S", "")

    # ---------------------------------------------------------------- helpers

    def _get(self, key: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": key}}, ConsistentRead=True,
        )
        return response.get("Item")


def _progress(job_id: str, item: Mapping[str, Any]) -> JobProgress:
    counts = {
        name[len(_COUNT_PREFIX):]: int(value["N"])
        for name, value in item.items() if name.startswith(_COUNT_PREFIX)
    }
    return JobProgress(
        job_id=job_id,
        parts=int(item["parts"]["N"]) if "parts" in item else None,
        parts_done=int(item.get("partsDone", {}).get("N", "0")),
        counts=counts,
        summary_state=item.get("summaryState", {}).get("S"),
        status=item.get("status", {}).get("S"),
        progress_at=item.get("progressAt", {}).get("S"),
        summary_expires_at=int(item["summaryExpiresAt"]["N"]) if "summaryExpiresAt" in item else None,
    )


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """JSON-like value -> what TypeSerializer accepts (floats as Decimal)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _serialize(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer().serialize(_plain(value))


def _deserialize(value: Mapping[str, Any]) -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return _json_like(TypeDeserializer().deserialize(value))


def _json_like(value: Any) -> Any:
    """Decimals back to int/float so records round-trip into JSON and pydantic."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _json_like(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_json_like(v) for v in value]
    return value
