"""Option sqs: fan a job out to the FIFO queues and fan the part results back in, exactly once.

The steps (each handler of option sqs calls one of them):

- :func:`produce` (producer): load the manifest, claim the run, take the source lock or wait for it,
  plan once, start the data source's sync job (``kendraDataSourceId``) or wait for it, send one message
  per part, then seal the part total.
- :func:`work` (put_worker / del_worker): process one part message unless its completion marker
  exists, save its result, complete the part (conditional marker + counter in one transaction).
- :func:`dead_letter` (dead_letter): a part whose message exhausted its receives fails as
  ``DeadLettered`` and still completes, so the job can finish.
- :func:`summarize` (summarizer): exactly one winner stops the job's sync job, writes the report,
  notifies, releases the source lock and starts the next job waiting for that source.
- :func:`watch` (watchdog): summarize jobs whose last part completion never triggered it, abort jobs
  that stopped moving, start waiting jobs whose source is free, release locks of finished runs.

The fan-in id of a run is its run record, ``locking.run_record(runId)`` (``run-<runId>``): a re-upload of
the same manifest is a new run with its own counters and markers. Lambda async invokes go through
:func:`invoke_async` only, so tests can replace that one function.

The data source (``kendraDataSourceId``) runs one sync job at a time, shared by every source. A run that
finds it busy (:class:`~kendra_ingest.kendra.SyncJobBusy`) keeps its source lock (later jobs of its
source stay behind it), gives up its production claim and is recorded as waiting, like a run waiting for
its source: the watchdog re-invokes its producer every round until the sync job starts (the committed
plan is reused), and the summarizer of a job of the same source starts it as its next job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from kendra_ingest import aws, finish, locking, parts, plan, store, sync, tenancy, verify
from kendra_ingest import job as jobs
from kendra_ingest.deadline import Deadline
from kendra_ingest.job import Job
from kendra_ingest.kendra import KendraError, SyncJobBusy
from kendra_ingest.lock import JobProgress, JobRecord, Lock, UnknownJob, source_lock_key
from kendra_ingest.models import DeletePart, ErrorCode, PutPart, Wire
from kendra_ingest.runtime import date_fields, for_job, kendra_index, ledger, logger
from kendra_ingest.settings import MAX_DOCUMENTS_PER_CALL, METRICS_SERVICE, UNREADABLE_DEAD_LETTERS, Settings

#: ``invoke(function_name, payload)``: an asynchronous Lambda invoke.
Invoker = Callable[[str, dict[str, Any]], None]

#: SQS limits: 10 entries and 256 KiB of bodies per SendMessageBatch.
MAX_BATCH_BYTES = 256 * 1024
SEND_ATTEMPTS = 5
SEND_BACKOFF_SECONDS = 0.2
#: The producer's production claim outlives its 900 s timeout; after that a redelivery may take over
#: (it then reuses the committed plan, see :func:`produce`).
PRODUCE_LEASE_SECONDS = 2 * 900
#: A summary claim outlives the summarizer's 900 s timeout; the watchdog re-invokes an expired one.
SUMMARY_LEASE_SECONDS = 900 + 60
#: A job that has not moved (sealed, a part completed) for this long is aborted by the watchdog.
STUCK_AFTER_SECONDS = 2 * 3600
#: Time a dead letter may take to ask Kendra about its part when no Lambda deadline is given.
DEAD_LETTER_BUDGET_SECONDS = 60.0
#: Verification polling: interval, and time kept back for writing the report afterwards.
VERIFY_POLL_SECONDS = 2.0
FINISH_RESERVE_SECONDS = 120.0

WAITING_PREFIX = "waiting#"
PRODUCE_PREFIX = "produce#"
RUN_PREFIX = "job#run-"
QUARANTINE_PREFIX = "_deadletters/unreadable/"


def invoke_async(function_name: str, payload: dict[str, Any]) -> None:
    """Invoke a Lambda asynchronously (``InvocationType`` ``Event``): the one place option sqs does so."""
    aws.client("lambda").invoke(
        FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode(),
    )


def _invoker(invoke: Invoker | None) -> Invoker:
    # Resolved at call time (not as a default argument) so a test can replace ``invoke_async``.
    return invoke or invoke_async


def request_id(context: Any) -> str:
    """The invocation's request id: Lambda keeps it across async retries, so a retry can re-enter its claims."""
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def producer_owner(run_id: str) -> str:
    """Owner of the run record and of the source lock the run holds (the summarizer releases it as this)."""
    return f"producer:{run_id}"


# --------------------------------------------------------------------------------- messages


class PartMessage(Wire):
    """A queue message: the part's wire shape (docs/design.md, "Option sqs") plus the run and the source, and the
    execution id of the job's data-source sync job when ``kendraDataSourceId`` is configured."""

    action: Literal["put", "delete"]
    job_id: str
    part: int
    run_id: str
    source: str
    sync_job_id: str | None = None

    @property
    def part_id(self) -> str:
        return f"{self.action}-{self.part}"


def part_id(part: PutPart | DeletePart) -> str:
    """The part's id in the fan-in (its completion marker)."""
    return f"{part.action}-{part.part}"


def message_body(part: PutPart | DeletePart, *, run_id: str, source: str, sync_job_id: str | None = None) -> str:
    extra = {"syncJobId": sync_job_id} if sync_job_id else {}
    return json.dumps({**part.model_dump(by_alias=True, exclude_none=True), "runId": run_id, "source": source, **extra},
                      separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def group_id(part: PutPart | DeletePart, *, put_shards: int, delete_shards: int) -> str:
    """``put-<n>`` / ``del-<n>``: one group per unit of worker concurrency (FIFO delivers one batch per group
    at a time, so the groups bound how many workers run; the parts need no order, see :func:`handle_batch`)."""
    if isinstance(part, PutPart):
        return f"put-{part.part % put_shards}"
    return f"del-{part.part % delete_shards}"


def dedup_id(job_id: str, run_id: str, body: str) -> str:
    """SHA-256 of jobId + runId + the body's digest: the same message of the same run is sent once."""
    digest = hashlib.sha256(body.encode()).hexdigest()
    return hashlib.sha256(f"{job_id}{run_id}{digest}".encode()).hexdigest()


def parse_message(body: str) -> tuple[PartMessage, PutPart | DeletePart]:
    """The envelope and the part of a queue message body; raises ValueError (pydantic) if it is not one."""
    item = json.loads(body)
    if not isinstance(item, dict):
        raise ValueError("message body is not a JSON object")
    return PartMessage.model_validate(item), parts.parse(item)


class SendFailed(RuntimeError):
    """Some messages could not be sent; the run is not sealed and the producer's event must be retried."""


def _batches(entries: Sequence[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    """Entries in SendMessageBatch-sized groups: at most 10 and at most 256 KiB of bodies each."""
    batch: list[dict[str, str]] = []
    size = 0
    for entry in entries:
        body = len(entry["MessageBody"].encode())
        if batch and (len(batch) == MAX_DOCUMENTS_PER_CALL or size + body > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += body
    if batch:
        yield batch


def send_parts(
    items: Sequence[PutPart | DeletePart], *, job: Job, settings: Settings, sqs: Any = None,
    sleep: Callable[[float], None] = time.sleep, sync_job_id: str | None = None,
) -> int:
    """Send one message per part; returns how many. Raises :class:`SendFailed` unless every send succeeded.

    ``sync_job_id`` (the job's data-source sync job) goes into every body as ``syncJobId``.

    Entries that SQS reports as ``Failed`` are retried with jittered backoff (a sender fault is not
    retried: resending the same request cannot fix it).
    """
    sqs = sqs or aws.client("sqs")
    queued: dict[str, list[dict[str, str]]] = {}
    for part in items:
        body = message_body(part, run_id=job.run_id, source=job.source, sync_job_id=sync_job_id)
        url = settings.put_queue_url if isinstance(part, PutPart) else settings.delete_queue_url
        queued.setdefault(str(url), []).append({
            "Id": part_id(part),
            "MessageBody": body,
            "MessageGroupId": group_id(part, put_shards=settings.put_shards, delete_shards=settings.delete_shards),
            "MessageDeduplicationId": dedup_id(job.job_id, job.run_id, body),
        })
    for url, entries in queued.items():
        for batch in _batches(entries):
            pending = batch
            for attempt in range(SEND_ATTEMPTS):
                response = sqs.send_message_batch(QueueUrl=url, Entries=pending)
                failed = response.get("Failed") or []
                if not failed:
                    break
                fatal = [f for f in failed if f.get("SenderFault")]
                if fatal or attempt == SEND_ATTEMPTS - 1:
                    first = (fatal or failed)[0]
                    raise SendFailed(f"job {job.job_id}: {len(failed)} message(s) not sent to {url}: "
                                     f"{first.get('Code')}: {first.get('Message')}")
                retry = {f["Id"] for f in failed}
                pending = [e for e in pending if e["Id"] in retry]
                sleep(random.uniform(0, SEND_BACKOFF_SECONDS * 2**attempt))
    return len(items)


# --------------------------------------------------------------------------------- waiting jobs


def waiting_key(source: str) -> str:
    """One item per source lists the runs waiting for its lock (a map ``jobs``: runId -> entry)."""
    return f"{WAITING_PREFIX}{source}"


@dataclass(frozen=True)
class WaitingJob:
    run_id: str
    job_id: str
    started_at: str
    event: dict[str, Any]


def add_waiting(lock: Lock, job: Job, event: dict[str, Any]) -> None:
    """Record that ``job`` waits for its source (with the event that restarts it). Idempotent."""
    key = {"pk": {"S": waiting_key(job.source)}}
    # Two updates: DynamoDB cannot create the map and set one of its keys in one expression.
    lock.client.update_item(
        TableName=lock.table_name, Key=key, UpdateExpression="SET jobs = if_not_exists(jobs, :empty)",
        ExpressionAttributeValues={":empty": {"M": {}}},
    )
    entry = {"M": {"jobId": {"S": job.job_id}, "startedAt": {"S": job.started_at},
                   "event": {"S": json.dumps(event, separators=(",", ":"))}}}
    lock.client.update_item(
        TableName=lock.table_name, Key=key, UpdateExpression="SET jobs.#run = :entry",
        ExpressionAttributeNames={"#run": job.run_id}, ExpressionAttributeValues={":entry": entry},
    )


def remove_waiting(lock: Lock, source: str, run_id: str) -> None:
    """Forget a waiting run (it started, or turned out to be a duplicate). Idempotent."""
    with contextlib.suppress(lock.client.exceptions.ConditionalCheckFailedException):
        lock.client.update_item(
            TableName=lock.table_name, Key={"pk": {"S": waiting_key(source)}},
            UpdateExpression="REMOVE jobs.#run", ConditionExpression="attribute_exists(jobs)",
            ExpressionAttributeNames={"#run": run_id},
        )


def _waiting_from_item(item: dict[str, Any]) -> list[WaitingJob]:
    found = [
        WaitingJob(run_id=run_id, job_id=value["M"]["jobId"]["S"], started_at=value["M"]["startedAt"]["S"],
                   event=json.loads(value["M"]["event"]["S"]))
        for run_id, value in item.get("jobs", {}).get("M", {}).items()
    ]
    return sorted(found, key=lambda w: (w.started_at, w.run_id))


def waiting_jobs(lock: Lock, source: str) -> list[WaitingJob]:
    """The runs waiting for ``source``, oldest first."""
    item = lock.client.get_item(TableName=lock.table_name, Key={"pk": {"S": waiting_key(source)}},
                                ConsistentRead=True).get("Item")
    return _waiting_from_item(item or {})


def start_next(lock: Lock, source: str, settings: Settings, invoke: Invoker | None = None) -> str | None:
    """Re-invoke the producer for the oldest run waiting for ``source``; returns its run id.

    The entry stays until that producer takes the lock (it removes it then), so a lost invoke is
    retried by the watchdog.
    """
    waiting = waiting_jobs(lock, source)
    if not waiting or not settings.producer_function:
        return None
    _invoker(invoke)(settings.producer_function, waiting[0].event)
    return waiting[0].run_id


# --------------------------------------------------------------------------------- producer


class Produced(Wire):
    """What the producer did with a manifest event."""

    status: Literal["duplicate", "waiting", "failed", "sealed"]
    job_id: str
    run_id: str
    parts: int = 0
    held_by: str | None = None
    error: str | None = None


def _started(record: JobRecord) -> bool:
    """A run that got past waiting: sealed, summarizing or finished (a later delivery is a duplicate)."""
    p = record.progress
    return p.parts is not None or p.summary_state is not None or p.status is not None


def produce(
    event: dict[str, Any], *, settings: Settings, lock: Lock, request_id: str,
    invoke: Invoker | None = None, sqs: Any = None,
) -> Produced:
    """The producer: claim the run, take the source or wait, plan once, send every part, then seal."""
    job = jobs.load(event, store.read, sources=settings.sources)
    for_job(job)
    run = locking.run_record(job.run_id)
    owner = producer_owner(job.run_id)
    record = lock.get_job(run)
    if record is None:
        # The job itself lives on the run record: the summarizer and the watchdog need it, and a
        # re-invoked waiting run keeps its first startedAt.
        lock.register_job(run, job.source, {"owner": owner, "jobId": job.job_id, "job": job.dump()})
    else:
        job = Job.model_validate(record.attributes.get("job") or job.dump())
        if _started(record):
            remove_waiting(lock, job.source, job.run_id)
            return Produced(status="duplicate", job_id=job.job_id, run_id=job.run_id)

    claim = locking.claim(lock, job, owner=owner)
    if claim["duplicate"]:
        return Produced(status="duplicate", job_id=job.job_id, run_id=job.run_id)
    if job.error:
        # A bad manifest: nothing is locked or sent; the summarizer writes the FAILED report.
        lock.seal_job(run, 0)
        _request_summary(settings, job.job_id, job.run_id, invoke)
        return Produced(status="failed", job_id=job.job_id, run_id=job.run_id, error=job.error)
    if not claim["acquired"]:
        add_waiting(lock, job, event)
        # The holder may have released between our attempt and the entry above (its summarizer then
        # saw no waiting run): try once more so the run does not wait for the watchdog.
        claim = locking.claim(lock, job, owner=owner)
        if not claim["acquired"]:
            return Produced(status="waiting", job_id=job.job_id, run_id=job.run_id, held_by=claim.get("heldBy"))
    remove_waiting(lock, job.source, job.run_id)

    # Concurrent deliveries of one event share the run and the source lock; one produces. A Lambda
    # retry of the same invocation keeps its request id and re-enters.
    if not lock.acquire(f"{PRODUCE_PREFIX}{run}", request_id, PRODUCE_LEASE_SECONDS).acquired:
        return Produced(status="duplicate", job_id=job.job_id, run_id=job.run_id)

    items = _committed_parts(settings, job)
    if items is None:
        result, items = plan.plan_job(job, settings)
        # job.json is written last: it commits the plan, so a retry sends the same parts again
        # (re-planning could pack differently once workers have updated the ledger).
        store.write_json(settings.reports_bucket, job.work_key("job.json"), job.dump())
        logger.info("planned", extra={"jobId": job.job_id, "runId": job.run_id, "parts": result.parts,
                                      "error": result.error})
    try:
        # After the plan is committed: a run that waits for the data source does not plan again.
        sync_job_id = sync.start(settings, job) if items else None
    except SyncJobBusy as exc:
        # The data source runs another sync job (another source's job, or one started elsewhere). Lambda
        # would retry this async event only twice: wait like for a held source instead (module docstring).
        # The production claim goes first, so a restart can take it once the entry below exists.
        lock.heartbeat(f"{PRODUCE_PREFIX}{run}", request_id, -1)  # an already ended lease (no DeleteItem)
        add_waiting(lock, job, event)
        logger.info("waiting for the data source", extra={"jobId": job.job_id, "runId": job.run_id,
                                                          "reason": exc.message})
        return Produced(status="waiting", job_id=job.job_id, run_id=job.run_id,
                        held_by=f"dataSource:{settings.kendra_data_source_id}")
    send_parts(items, job=job, settings=settings, sqs=sqs, sync_job_id=sync_job_id)
    progress = lock.seal_job(run, len(items))
    if progress.complete:
        _request_summary(settings, job.job_id, job.run_id, invoke)
    return Produced(status="sealed", job_id=job.job_id, run_id=job.run_id, parts=len(items))


def _committed_parts(settings: Settings, job: Job) -> list[PutPart | DeletePart] | None:
    saved = store.read_json(settings.reports_bucket, job.work_key("job.json"))
    if not saved or saved.get("runId") != job.run_id:
        return None
    return plan.load_parts(settings.reports_bucket, job)


def _request_summary(settings: Settings, job_id: str, run_id: str, invoke: Invoker | None) -> None:
    _invoker(invoke)(str(settings.summarizer_function), {"jobId": job_id, "runId": run_id})


# --------------------------------------------------------------------------------- workers


def _complete(settings: Settings, lock: Lock, message: PartMessage, result: parts.PartResult,
              invoke: Invoker | None) -> JobProgress:
    """Save the part's result, then count it once; ask for the summary when it was the last part."""
    parts.save(str(settings.reports_bucket), result, message.run_id)
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    progress = lock.complete_part(locking.run_record(message.run_id), message.part_id, counts)
    if progress.complete and progress.summary_state is None:
        _request_summary(settings, message.job_id, message.run_id, invoke)
    return progress


def work(
    body: str, *, operation: Literal["put", "delete"], settings: Settings, lock: Lock, deadline: Any,
    invoke: Invoker | None = None,
) -> str:
    """Process one part message; ``"done"``, or ``"already done"`` for a redelivered completed part.

    Raises when the part could not be processed (the message is then redelivered, and dead-lettered
    after its last receive).
    """
    message, part = parse_message(body)
    if part.action != operation:
        raise ValueError(f"a {part.action} part arrived on the {operation} queue")
    run = locking.run_record(message.run_id)
    if lock.part_completed(run, message.part_id):
        return "already done"
    if _run_ended(lock, run):
        # The watchdog aborted the run and its report counts this part as JobAborted: sending it now
        # would index documents the report says were not, and could overlap the source's next job.
        logger.warning("part of an ended run dropped", extra={"runId": message.run_id, "part": message.part_id})
        return "run ended"
    # One per part (its call counts are the part's); inside the job's data-source sync job if any.
    index = kendra_index(settings, sync_job_id=message.sync_job_id)
    book = ledger(settings)
    # Registered sources: the part checks its documents' owners again right before sending them.
    owners = tenancy.ledger_owners(book) if settings.sources else None
    if isinstance(part, PutPart):
        result = parts.process_put(
            part, source=message.source, index=index, ledger=book, deadline=deadline,
            document_mode=settings.document_mode, date_fields=date_fields(settings), owners=owners,
            index_full=parts.IndexFull(lock, message.run_id), access=parts.access_rules(part),
        )
    else:
        result = parts.process_delete(part, index=index, ledger=book, deadline=deadline,
                                      source=message.source, owners=owners)
    _complete(settings, lock, message, result, invoke)
    return "done"


def _run_ended(lock: Lock, run: str) -> bool:
    """The run's summary has started (or the run record is gone): no part may change it any more."""
    try:
        return lock.progress(run).summary_state is not None
    except UnknownJob:
        return True


def handle_batch(event: dict[str, Any], context: Any, *, handler: str,
                 operation: Literal["put", "delete"] | None) -> dict[str, Any]:
    """An SQS FIFO batch for a worker (``operation``) or the dead-letter handler (None).

    Returns the partial batch response (``batchItemFailures``) naming only the records that failed.

    Every record is processed on its own, not in FIFO order: the parts of one job are independent
    (a document id is in at most one part of a job: ``DuplicateDocumentId``, ``ConflictingOperation``),
    and jobs that could touch the same documents (one source) never overlap, so nothing relies on the
    order within a message group. Stopping a group at its first failure (Powertools'
    ``SqsFifoPartialProcessor``) would return the group's later records unprocessed, and each return
    costs them a receive: one crashing part would push healthy parts of its group to the dead-letter
    queue.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from kendra_ingest import runtime

    settings = runtime.settings(handler)
    lock = runtime.lock(settings)
    until = runtime.deadline(context)  # one budget for the whole batch

    def record_handler(record: SQSRecord) -> str:
        with runtime.part_scope(record.body):  # the part's log keys and Kendra-call metrics
            if operation is None:
                return dead_letter(record.body, message_id=record.message_id, settings=settings, lock=lock,
                                   deadline=until)
            return work(record.body, operation=operation, settings=settings, lock=lock, deadline=until)

    # A processor per invocation: it holds the batch's state, and the sandbox runs concurrent
    # invocations of one module in one process.
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)


# --------------------------------------------------------------------------------- dead letters


class UnreadableDeadLetter(ValueError):
    """A dead letter that is not a part message of a known run (quarantined, see :func:`dead_letter`)."""


def dead_letter(
    body: str, *, message_id: str, settings: Settings, lock: Lock, invoke: Invoker | None = None,
    deadline: Any = None,
) -> str:
    """A part whose message exhausted ``maxReceiveCount`` is settled from what Kendra holds
    (:func:`kendra_ingest.parts.settle_lost`: its worker may have died after Kendra accepted its call);
    the documents it cannot prove sent fail ``DeadLettered``, and the part completes (so the job
    finishes). ``"done"``, ``"already done"`` or ``"quarantined"``.

    A body that is not a part message, or whose run is unknown, cannot be accounted to any job: it is
    copied to ``_deadletters/unreadable/<messageId>.json`` in the reports bucket, logged as an error and
    counted in the ``UnreadableDeadLetters`` metric, then acknowledged. Leaving it in the FIFO DLQ would
    block every later dead letter of its message group, and those belong to jobs that can still finish.
    """
    try:
        message, part = parse_message(body)
        record = lock.get_job(locking.run_record(message.run_id))
        if record is None:
            raise UnreadableDeadLetter(f"run {message.run_id} is unknown (expired or never registered)")
    except (ValueError, UnreadableDeadLetter) as exc:
        recovered = _from_saved_plan(body, settings=settings, lock=lock)
        if recovered is None:
            _quarantine(settings, message_id, body, str(exc))
            return "quarantined"
        message, part = recovered
    if lock.part_completed(locking.run_record(message.run_id), message.part_id):
        return "already done"  # a worker completed it before the message ran out of receives
    worker = "put_worker" if part.action == "put" else "del_worker"
    lost = (f"the {part.action} message of part {part.part} failed on every delivery and went to the "
            f"dead-letter queue (the {worker} log has the error under jobId {message.job_id})")
    try:
        result = parts.settle_lost(part, source=message.source, index=kendra_index(settings),
                                   ledger=ledger(settings), deadline=deadline or Deadline(DEAD_LETTER_BUDGET_SECONDS),
                                   code=ErrorCode.DEAD_LETTERED, lost=lost)
    except KendraError as exc:
        logger.error("dead letter not checked against Kendra", extra={"jobId": message.job_id,
                                                                      "part": message.part_id, "error": str(exc)})
        result = parts.fail(part, ErrorCode.DEAD_LETTERED, f"{lost}; Kendra could not be asked whether it "
                            f"holds the documents ({exc.code}): run the job again")
    _complete(settings, lock, message, result, invoke)
    return "done"


def _from_saved_plan(body: str, *, settings: Settings, lock: Lock) -> tuple[PartMessage, PutPart | DeletePart] | None:
    """A damaged message that still names its run and part: the part as the saved plan has it.

    Its documents are then reported in their job (DeadLettered) instead of only being quarantined.
    """
    try:
        item = json.loads(body)
        run_id, action, number = item["runId"], item["action"], int(item["part"])
    except (ValueError, TypeError, KeyError):
        return None
    record = lock.get_job(locking.run_record(str(run_id)))
    if record is None or "job" not in record.attributes:
        return None
    job = Job.model_validate(record.attributes["job"])
    saved = plan.load_parts(str(settings.reports_bucket), job) or []
    part = next((p for p in saved if p.action == action and p.part == number), None)
    if part is None:
        return None
    message = PartMessage(action=part.action, job_id=job.job_id, part=part.part, run_id=job.run_id,
                          source=job.source)
    return message, part


def _quarantine(settings: Settings, message_id: str, body: str, reason: str) -> None:
    from aws_lambda_powertools import single_metric
    from aws_lambda_powertools.metrics import MetricUnit

    key = f"{QUARANTINE_PREFIX}{message_id}.json"
    store.write_json(str(settings.reports_bucket), key, {"messageId": message_id, "reason": reason, "body": body})
    logger.error("unreadable dead letter quarantined", extra={"messageId": message_id, "reason": reason,
                                                             "quarantineKey": key})
    with single_metric(name=UNREADABLE_DEAD_LETTERS, unit=MetricUnit.Count, value=1,
                       namespace=settings.metrics_namespace) as metric:
        metric.add_dimension(name="service", value=METRICS_SERVICE)


# --------------------------------------------------------------------------------- summarizer


class SummaryRequest(Wire):
    """The summarizer's event: ``{"jobId", "runId"}``, or ``{"runId", "abort": reason}`` from the watchdog."""

    run_id: str
    job_id: str | None = None
    abort: str | None = None


def summarize(
    request: SummaryRequest, *, settings: Settings, lock: Lock, owner: str, deadline: Any,
    invoke: Invoker | None = None, sleep: Callable[[float], None] = time.sleep, sns: Any = None,
) -> dict[str, Any]:
    """Write the run's report once, notify, finish the run, release its source and start the next job.

    Returns ``{"summarized": False, "reason"}`` when another invocation owns the summary, the run is
    unknown, or its parts are not all complete yet (and no abort was asked for).
    """
    run = locking.run_record(request.run_id)
    record = lock.get_job(run)
    if record is None or "job" not in record.attributes:
        return {"summarized": False, "reason": "unknown run"}
    job = Job.model_validate(record.attributes["job"])
    for_job(job)
    if not (request.abort or job.error or record.progress.complete):
        return {"summarized": False, "reason": "parts still running"}
    if not lock.try_start_summary(run, owner, SUMMARY_LEASE_SECONDS):
        return {"summarized": False, "reason": "summary owned by another invocation"}

    # Every part is done (or the job is aborted): end the sync job now, not after verification, so a job
    # waiting for the data source can start sooner (idempotent: a retried summary stops nothing twice).
    sync.stop(settings, job)

    if settings.verify_indexing and not (request.abort or job.error):
        _verify(settings, job, deadline, sleep)
    report, _ = finish.finish(job, option="sqs", reports_bucket=str(settings.reports_bucket), error=request.abort,
                              ledger=ledger(settings))
    (sns or aws.client("sns")).publish(TopicArn=settings.topic_arn, Subject=report.subject, Message=report.message)
    lock.finish_job(run, report.status)
    released = lock.release(source_lock_key(job.source), producer_owner(job.run_id))
    next_run = start_next(lock, job.source, settings, invoke)
    logger.info("job finished", extra={"jobId": job.job_id, "runId": job.run_id, "status": report.status,
                                       "released": released, "next": next_run})
    return {"summarized": True, "released": released, "nextRunId": next_run, **report.model_dump(by_alias=True)}


def _verify(settings: Settings, job: Job, deadline: Any, sleep: Callable[[float], None]) -> None:
    """Poll indexing for the verification window, or while the Lambda has time to poll again and still
    finish; what is not confirmed by the last round is ``IndexingUnconfirmed``."""
    while True:
        last = not deadline.allows(2 * VERIFY_POLL_SECONDS + FINISH_RESERVE_SECONDS)
        # A fresh index per round: verify() adds the index's call counts to its saved state.
        state = verify.verify(job, reports_bucket=str(settings.reports_bucket),
                              index=kendra_index(settings), ledger=ledger(settings), deadline=deadline,
                              timeout=settings.verify_timeout_seconds, last=last)
        if state.done:
            return
        sleep(VERIFY_POLL_SECONDS)


# --------------------------------------------------------------------------------- watchdog


class WatchRequest(Wire):
    """The watchdog's event (the schedule's); ``stuckAfterSeconds`` may be set in the target's input."""

    stuck_after_seconds: float = Field(STUCK_AFTER_SECONDS, gt=0)


class Watched(Wire):
    """What one watchdog round did (run ids per action)."""

    summarized: list[str] = []
    aborted: list[str] = []
    started: list[str] = []
    released: list[str] = []


def _scan(lock: Lock) -> Iterator[dict[str, Any]]:
    """Run records (unfinished), source locks and waiting lists; part markers are filtered out."""
    paginator = lock.client.get_paginator("scan")
    pages = paginator.paginate(
        TableName=lock.table_name, ConsistentRead=True,
        FilterExpression=(
            "(begins_with(pk, :run) AND attribute_not_exists(partId)) "
            "OR begins_with(pk, :source) OR begins_with(pk, :waiting)"
        ),
        ExpressionAttributeValues={":run": {"S": RUN_PREFIX}, ":source": {"S": "source#"},
                                   ":waiting": {"S": WAITING_PREFIX}},
    )
    for page in pages:
        yield from page.get("Items", ())


def watch(
    *, settings: Settings, lock: Lock, stuck_after: float = STUCK_AFTER_SECONDS, now: float | None = None,
    invoke: Invoker | None = None,
) -> Watched:
    """One round over the lock table (the sqs watchdog, every 5 minutes)."""
    from datetime import datetime

    invoke = _invoker(invoke)
    now = time.time() if now is None else now
    done = Watched()
    runs: list[str] = []
    finished: set[str] = set()  # run ids
    locks: dict[str, str] = {}  # source lock key -> owner
    waiting: dict[str, list[WaitingJob]] = {}
    for item in _scan(lock):
        pk = item["pk"]["S"]
        if pk.startswith(RUN_PREFIX):
            if "status" in item:
                finished.add(pk[len(RUN_PREFIX):])
            else:
                runs.append(pk[len("job#"):])
        elif pk.startswith("source#"):
            locks[pk] = item.get("owner", {}).get("S", "")
        else:
            waiting[pk[len(WAITING_PREFIX):]] = _waiting_from_item(item)
    waiting_runs = {w.run_id for entries in waiting.values() for w in entries}

    for key, owner in list(locks.items()):
        # The summarizer finished the run but died before releasing its source (or a late duplicate
        # delivery re-took it): free the source for the next job.
        run_id = owner.removeprefix("producer:")
        if owner.startswith("producer:") and run_id in finished and lock.release(key, owner):
            del locks[key]
            done.released.append(run_id)

    for run in runs:
        record = lock.get_job(run)
        if record is None or "job" not in record.attributes:
            continue
        job = Job.model_validate(record.attributes["job"])
        p = record.progress
        if job.run_id in waiting_runs:
            continue
        if p.summary_state is not None:
            if p.summary_expires_at is not None and p.summary_expires_at < now:
                # The summarizer died mid-summary: a new one takes over (an abort again if it was one).
                payload = {"jobId": job.job_id, "runId": job.run_id}
                if not p.complete:
                    payload["abort"] = "the job was aborted and its summary interrupted; finished by the watchdog"
                invoke(str(settings.summarizer_function), payload)
                done.summarized.append(job.run_id)
            continue
        if p.complete:
            _request_summary(settings, job.job_id, job.run_id, invoke)
            done.summarized.append(job.run_id)
            continue
        moved = p.progress_at or record.registered_at
        quiet = now - datetime.fromisoformat(moved.replace("Z", "+00:00")).timestamp() if moved else 0.0
        if quiet > stuck_after:
            reason = (f"no progress for {int(quiet)} s ({p.parts_done} of "
                      f"{'unsealed' if p.parts is None else p.parts} parts done); aborted by the watchdog")
            invoke(str(settings.summarizer_function), {"jobId": job.job_id, "runId": job.run_id, "abort": reason})
            done.aborted.append(job.run_id)

    for source, entries in waiting.items():
        if not entries or not settings.producer_function:
            continue
        holder = lock.holder(source_lock_key(source))
        # A free source starts its oldest waiting run; a run that holds its source waits for the data
        # source's sync job (see the module docstring) and is retried until it gets one.
        holders = {producer_owner(w.run_id): w for w in entries}
        restart = holders.get(holder.held_by or "") if holder.acquired else entries[0]
        if restart is not None:
            invoke(settings.producer_function, restart.event)
            done.started.append(restart.run_id)
    return done
