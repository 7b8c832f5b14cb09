"""Lambda's SQS event source mapping, run locally against moto's queues.

moto's own mapping invokes one record at a time synchronously and ignores ``batchItemFailures``
(moto 5.2.x), so the deployer only records the program's mappings
(``Deployment.event_source_mappings``) and this module runs them the way Lambda does for a FIFO queue
(as the Lambda developer guide describes it for FIFO queues):

- one poller per mapping receives up to ``batch_size`` (≤ 10) messages with no batching window; a batch
  may mix message groups (SQS fills it from one group first: ``moto_fixes.fifo_receive``);
- concurrency = min(message groups with deliverable messages, ``maximum_concurrency``): at most that
  many batches are in flight, and a group with a message in flight delivers nothing more until it is
  settled, so a receive only finds groups no running batch holds;
- the function runs in-process through :class:`sandbox.lambdas.LambdaRuntime` with the SQS event Lambda
  sends (``Records`` with ``messageId``, ``receiptHandle``, ``body``, ``attributes``, ...);
- with ``ReportBatchItemFailures`` the successes are deleted and the listed failures returned; an
  invalid response or an exception returns the whole batch; without it any return deletes the batch;
- a returned message stays in flight until the queue's visibility timeout ends, scaled by
  ``visibility_scale`` for the sandbox (AWS timing is 1.0), then SQS delivers it again; after
  ``maxReceiveCount`` receives SQS moves it to the dead-letter queue (moto does so on the next receive).

Lambda makes the mapping's calls (ReceiveMessage, DeleteMessage, and GetQueueAttributes when the
mapping is created) with the function's execution role: the poller makes them on a client charged to
the function (:func:`sandbox.iam_recorder.charge_to`), and everything the sandbox itself asks (the queue
URL, the depths :meth:`EventSources.idle` watches, ending a returned message's scaled visibility
timeout, which on AWS is just time passing) on a separate client charged to no one.

A message that keeps failing on a queue with no dead-letter queue behind it (the dead-letter queues'
own mappings) is reported by :meth:`EventSources.stuck`: on AWS it would sit there with the DLQ-depth
alarm firing; in the sandbox it means the pipeline cannot settle it.

Example, inside ``mock_aws`` with the runtime installed::

    with lambdas.installed(deployment) as runtime, sqs.installed(deployment.event_source_mappings, runtime) as esm:
        ...  # send messages
        while not esm.idle():
            time.sleep(0.05)
    assert esm.errors == []
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sandbox.deploy import EventSourceMappingInfo
from sandbox.iam_recorder import charge_to
from sandbox.lambdas import FunctionError, LambdaRuntime

REGION = "us-east-1"
#: Lambda's FIFO limit (a FIFO event source mapping's batch size is at most 10).
MAX_FIFO_BATCH_SIZE = 10
#: SQS ReceiveMessage returns at most 10 messages per call.
MAX_RECEIVE = 10
#: Worker threads of a mapping that declares no ``maximum_concurrency`` (Lambda's own cap is far higher).
DEFAULT_CONCURRENCY = 32
#: Failures in a row after which a message on a queue without a dead-letter queue counts as stuck.
STUCK_RECEIVES = 5
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
#: The system attributes Lambda copies into each record's ``attributes``.
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
)


@dataclass(frozen=True)
class Batch:
    """One invocation made by a mapping, and how it ended."""

    mapping: str  # the mapping's logical name
    function_name: str
    message_ids: tuple[str, ...]
    groups: tuple[str, ...]  # MessageGroupId of each record, in order
    bodies: tuple[str, ...]
    receive_counts: tuple[int, ...]
    outcome: str  # ok | partial | error | invalid-response
    failed_ids: tuple[str, ...]
    started: float  # time.monotonic()
    ended: float
    error: str | None = None


def lambda_record(message: dict[str, Any], source_arn: str, region: str = REGION) -> dict[str, Any]:
    """The record Lambda puts in the event for one received SQS message."""
    system = message.get("Attributes") or {}
    attributes = {name: system[name] for name in _RECORD_ATTRIBUTES if name in system}
    message_attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        converted: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            converted["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        message_attributes[name] = converted
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: Any, message_ids: list[str], response_types: Iterable[str]) -> set[str] | None:
    """The messages Lambda returns to the queue after the function returned ``result``.

    Lambda's partial batch response rules: without ``ReportBatchItemFailures`` any return is a full
    success; ``None``, ``{}`` or an empty/null ``batchItemFailures`` is a full success; a response that
    is not an object, or an item without a valid ``itemIdentifier`` naming a message of the batch,
    fails the whole batch (returned as ``None``: "invalid").
    """
    if REPORT_BATCH_ITEM_FAILURES not in tuple(response_types) or result is None:
        return set()
    if not isinstance(result, dict):
        return None
    items = result.get("batchItemFailures")
    if not items:
        return set()
    if not isinstance(items, list):
        return None
    known = set(message_ids)
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in known:
            return None
        failed.add(ident)
    return failed


def _sqs_client() -> Any:
    import boto3

    return boto3.client("sqs", region_name=REGION)


def _queue_url(client: Any, arn: str) -> str:
    parts = arn.split(":")
    return client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]


class MappingPoller:
    """Runs one event source mapping: a poller thread and up to ``concurrency`` invocation threads."""

    def __init__(self, mapping: EventSourceMappingInfo, runtime: LambdaRuntime, sources: EventSources) -> None:
        if mapping.batch_size < 1 or mapping.batch_size > MAX_RECEIVE:
            raise ValueError(f"mapping {mapping.logical_name}: batch size {mapping.batch_size} not in 1..10 "
                             "(the sandbox receives one ReceiveMessage per batch)")
        if mapping.maximum_batching_window_seconds:
            raise ValueError(f"mapping {mapping.logical_name}: a batching window is not supported "
                             "(FIFO mappings have none)")
        self.mapping = mapping
        self.runtime = runtime
        self.sources = sources
        #: The mapping's calls, made with the function's role (recorded as the function's).
        self.client = charge_to(_sqs_client(), mapping.function_name, via="event source mapping")
        #: The sandbox's own look at the queue (not a call Lambda makes).
        self.monitor = _sqs_client()
        self.url = _queue_url(self.monitor, mapping.event_source_arn)
        # Lambda reads the queue's attributes when the mapping is created (it validates the visibility
        # timeout against the function's timeout).
        attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        self.fifo = attrs.get("FifoQueue") == "true"
        if self.fifo and mapping.batch_size > MAX_FIFO_BATCH_SIZE:
            raise ValueError(f"mapping {mapping.logical_name}: FIFO batch size must be ≤ {MAX_FIFO_BATCH_SIZE}")
        self.visibility_timeout = float(attrs.get("VisibilityTimeout", 30))
        redrive = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else None
        self.max_receive_count: int | None = int(redrive["maxReceiveCount"]) if redrive else None
        self.concurrency = mapping.maximum_concurrency or DEFAULT_CONCURRENCY
        self._cond = threading.Condition()
        self._in_flight = 0
        self.max_in_flight = 0
        self._returns: list[tuple[float, int, str]] = []  # (due, seq, receipt handle)
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency,
                                            thread_name_prefix=f"esm-{mapping.logical_name}")
        self._thread = threading.Thread(target=self._poll, name=f"esm-poll-{mapping.logical_name}", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.mapping.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._executor.shutdown(wait=True)

    # -- state --------------------------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        """(visible or delayed, in flight) messages of the source queue."""
        attrs = self.monitor.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        visible = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesDelayed"])
        return visible, int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def idle(self) -> bool:
        """No batch running, no message waiting for its return, and the source queue empty."""
        with self._cond:
            if self._in_flight or self._returns:
                return False
        return self.counts() == (0, 0)

    # -- polling ------------------------------------------------------------------------------------
    def _return_delay(self) -> float:
        return max(0.0, self.visibility_timeout * self.sources.visibility_scale)

    def _release_due(self) -> None:
        """End the (scaled) visibility timeout of returned messages whose time has come."""
        now = time.monotonic()
        due: list[str] = []
        with self._cond:
            while self._returns and self._returns[0][0] <= now:
                due.append(heapq.heappop(self._returns)[2])
        for handle in due:
            try:
                # Time passing, compressed: the monitor's call, not the mapping's.
                self.monitor.change_message_visibility(QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0)
            except self.monitor.exceptions.ReceiptHandleIsInvalid:
                pass  # deleted meanwhile (a duplicate delivery settled it)
            except Exception as exc:
                self.sources._error(f"{self.mapping.logical_name}: ChangeMessageVisibility: {exc}")

    def _sleep_time(self, idle_polls: int) -> float:
        base = min(self.sources.poll_interval, self.sources.min_poll_interval * (2 ** min(idle_polls, 8)))
        with self._cond:
            if self._returns:
                base = min(base, max(0.0, self._returns[0][0] - time.monotonic()))
        return base

    def _poll(self) -> None:
        idle_polls = 0
        while not self._stop.is_set():
            self._release_due()
            with self._cond:
                if self._in_flight >= self.concurrency:
                    # Every slot busy: wait for one to free (``_done`` notifies) or for a return to fall due.
                    timeout = self.sources.poll_interval
                    if self._returns:
                        timeout = min(timeout, self._returns[0][0] - time.monotonic())
                    self._cond.wait(timeout=max(timeout, self.sources.min_poll_interval))
                    continue
                self._in_flight += 1  # reserve the slot before the receive (idle() must see the batch)
            try:
                messages = self.client.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=self.mapping.batch_size,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
            except Exception as exc:
                self.sources._error(f"{self.mapping.logical_name}: ReceiveMessage: {exc}")
                messages = []
            if not messages:
                self._done()
                idle_polls += 1
                self._stop.wait(self._sleep_time(idle_polls))
                continue
            idle_polls = 0
            with self._cond:
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self.sources._activity()
            self._executor.submit(self._invoke, messages)

    def _done(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    # -- one batch ----------------------------------------------------------------------------------
    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._settle(messages)
        except Exception as exc:  # the mapping itself must never die silently
            self.sources._error(f"{self.mapping.logical_name}: {type(exc).__name__}: {exc}")
        finally:
            self._done()

    def _settle(self, messages: list[dict[str, Any]]) -> None:
        arn, name = self.mapping.event_source_arn, self.mapping.function_name
        records = [lambda_record(m, arn) for m in messages]
        ids = [r["messageId"] for r in records]
        started = time.monotonic()
        error: str | None = None
        try:
            result = self.runtime.invoke_local(name, {"Records": records})
        except FunctionError as exc:
            failed: set[str] | None = set(ids)
            outcome, error = "error", str(exc)
        else:
            failed = failed_message_ids(result, ids, self.mapping.function_response_types)
            if failed is None:
                failed, outcome, error = set(ids), "invalid-response", f"invalid batch response: {result!r}"
            else:
                outcome = "partial" if failed else "ok"
        ended = time.monotonic()
        receive_counts = [int(r["attributes"].get("ApproximateReceiveCount", "1")) for r in records]
        lost = {i for i, count in zip(ids, receive_counts, strict=True)
                if i not in failed and count == 1 and self.sources._lose_delete()}
        by_id = {r["messageId"]: r for r in records}
        settled = [i for i in ids if i not in failed and i not in lost]
        if settled:
            self._delete([by_id[i]["receiptHandle"] for i in settled])
        returned = [i for i in ids if i in failed or i in lost]
        if returned:
            due = time.monotonic() + self._return_delay()
            with self._cond:
                for i in returned:
                    heapq.heappush(self._returns, (due, next(self._seq), by_id[i]["receiptHandle"]))
        self.sources._record(
            Batch(
                mapping=self.mapping.logical_name,
                function_name=name,
                message_ids=tuple(ids),
                groups=tuple(r["attributes"].get("MessageGroupId", "") for r in records),
                bodies=tuple(r["body"] for r in records),
                receive_counts=tuple(receive_counts),
                outcome=outcome,
                failed_ids=tuple(i for i in ids if i in failed),
                started=started,
                ended=ended,
                error=error,
            ),
            settled=settled,
            redelivered=sorted(lost),
            stuck=[] if self.max_receive_count else [
                (i, self.mapping.logical_name, count, error or "reported as a batch item failure")
                for i, count in zip(ids, receive_counts, strict=True) if i in failed and count >= STUCK_RECEIVES
            ],
        )

    def _delete(self, handles: list[str]) -> None:
        entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles)]
        for start in range(0, len(entries), MAX_RECEIVE):
            out = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries[start:start + MAX_RECEIVE])
            for failure in out.get("Failed", []):
                self.sources._error(f"{self.mapping.logical_name}: DeleteMessageBatch: {failure}")


@dataclass
class EventSources:
    """The running mappings and what they did (batches, errors, stuck messages)."""

    visibility_scale: float = 1.0
    #: Probability that a message processed successfully on its first receive is not deleted (as if
    #: the delete were lost or the visibility timeout ran out first), so SQS delivers it once more.
    redeliver: float = 0.0
    seed: int | None = None
    poll_interval: float = 0.05
    min_poll_interval: float = 0.002
    pollers: list[MappingPoller] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deleted: int = 0
    redelivered: list[str] = field(default_factory=list)
    activity: int = 0
    _stuck: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def idle(self) -> bool:
        """Every mapping idle: nothing running, nothing waiting to return, every source queue empty."""
        return all(p.idle() for p in self.pollers)

    def stuck(self) -> list[str]:
        """Messages that failed ``STUCK_RECEIVES`` times on a queue with no dead-letter queue behind it."""
        with self._lock:
            return list(self._stuck.values())

    def depths(self) -> dict[str, tuple[int, int]]:
        """Source queue name → (visible, in flight)."""
        return {p.url.rsplit("/", 1)[-1]: p.counts() for p in self.pollers}

    def poller(self, logical_or_function: str) -> MappingPoller:
        """The poller of the mapping with this logical name or function name."""
        for p in self.pollers:
            if logical_or_function in (p.mapping.logical_name, p.mapping.function_name):
                return p
        raise KeyError(logical_or_function)

    def _record(self, batch: Batch, *, settled: list[str], redelivered: list[str],
                stuck: list[tuple[str, str, int, str]]) -> None:
        with self._lock:
            self.batches.append(batch)
            self.deleted += len(settled)
            self.redelivered.extend(redelivered)
            for message_id in settled:
                self._stuck.pop(message_id, None)
            for message_id, mapping, count, error in stuck:
                self._stuck[message_id] = (f"message {message_id} on {mapping} failed {count} times and has no "
                                           f"dead-letter queue: {error}")

    def _error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def _activity(self) -> None:
        with self._lock:
            self.activity += 1

    def _lose_delete(self) -> bool:
        if self.redeliver <= 0:
            return False
        with self._lock:
            return self._rng.random() < self.redeliver


@contextmanager
def installed(
    mappings: Iterable[EventSourceMappingInfo],
    runtime: LambdaRuntime,
    *,
    visibility_scale: float = 1.0,
    redeliver: float = 0.0,
    seed: int | None = None,
    poll_interval: float = 0.05,
) -> Iterator[EventSources]:
    """Start a poller per SQS mapping; on exit stop polling and wait for the running batches.

    Call inside ``mock_aws`` with the queues and functions created and ``runtime`` installed
    (:func:`sandbox.lambdas.installed`). Apply ``moto_fixes`` ``serialise_sqs``, ``fifo_receive`` and
    ``fifo_dedup_window`` too (``moto_fixes.applied`` does by default): moto's SQS alone loses messages
    under concurrency and can deliver a FIFO group out of order.
    """
    if visibility_scale < 0:
        raise ValueError("visibility_scale must be ≥ 0")
    sources = EventSources(visibility_scale=visibility_scale, redeliver=redeliver, seed=seed,
                           poll_interval=poll_interval)
    with ExitStack() as stack:
        for mapping in mappings:
            if mapping.event_source_arn.split(":")[2] != "sqs":
                continue
            poller = MappingPoller(mapping, runtime, sources)
            sources.pollers.append(poller)
            stack.callback(poller.stop)
        for poller in sources.pollers:
            poller.start()
        yield sources


__all__ = [
    "Batch",
    "EventSources",
    "MappingPoller",
    "failed_message_ids",
    "installed",
    "lambda_record",
]
