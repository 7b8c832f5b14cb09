"""Small, named patches to moto 5.2.x internals that the sandbox needs (pinned: moto==5.2.5).

Each patch names the moto 5.2.x behaviour it answers (docs/design.md, "The sandbox"). They patch
internals, so every one checks that its target still exists and fails loudly if moto moved it.

- :func:`cache_jsonpath_parsing` — "JSONPath is re-parsed on every use (caching the parse made
  executions ~6x faster)". jsonpath-ng's parser builds a PLY parser per call; parsed expressions are
  immutable and ``find``/``update_or_create`` do not mutate them, so sharing is safe across threads.
- :func:`scale_waits` — "Retry waits are real sleeps": ``Wait`` states and Retry ``IntervalSeconds``
  (with ``BackoffRate``/``MaxDelaySeconds`` already applied) sleep ``seconds * factor``. Sandbox only:
  factor 1.0 is AWS's timing; the sandbox uses e.g. 0.01 so a 30 s wait costs 0.3 s.
- :func:`emit_execution_status_events` — moto publishes no "Step Functions Execution Status Change"
  events; the pipeline's lock-release rule on FAILED/TIMED_OUT/ABORTED needs them.
- :func:`evaluate_bucket_policy_conditions` — moto ignores a policy's ``Bool`` condition and applies
  the statement anyway, so a TLS-only bucket policy (every bucket has one) denies every request.
- :func:`log_delivery_policy_lists` — moto accepts a target bucket for server access logs only when its
  log-delivery statement names the target as a single ``Resource`` string (AWS accepts a list too; the
  program renders every statement's resources as a list), and fails on any statement whose
  ``Principal`` is ``"*"`` (a TLS-only deny).
- :func:`serialise_sqs` — moto's SQS queues are not thread-safe: ``delete_message`` rebuilds the
  message list while a concurrent send appends to it, and the send is lost. The sandbox sends from
  handlers while its event source mappings (:mod:`sandbox.sqs`) receive and delete on other threads.
- :func:`fifo_receive` — moto: "when several in-flight messages of a group time out together the head
  can be skipped"; also fills a batch from one message group first, as SQS does.
- :func:`fifo_dedup_window` — moto: "a duplicate sent after the original was deleted is accepted".

Usage, around (or inside) ``mock_aws``::

    with moto_fixes.applied(wait_scale=0.01) as fixes:
        ...
    assert not fixes.errors
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

_SFN = "moto.stepfunctions.parser.asl"


def _require(obj: Any, attr: str) -> Any:
    if not hasattr(obj, attr):
        raise RuntimeError(f"moto internals changed: {obj!r} has no {attr!r}; re-check sandbox/moto_fixes.py")
    return getattr(obj, attr)


@contextmanager
def cache_jsonpath_parsing(maxsize: int = 4096) -> Iterator[None]:
    """Memoise the JSONPath parse of moto's Step Functions engine (~6x faster executions)."""
    import importlib

    json_path = importlib.import_module(f"{_SFN}.utils.json_path")
    result_path = importlib.import_module(f"{_SFN}.component.common.path.result_path")
    originals = [(json_path, _require(json_path, "parse")), (result_path, _require(result_path, "parse"))]
    try:
        for module, parse in originals:
            module.parse = functools.lru_cache(maxsize=maxsize)(parse)
        yield
    finally:
        for module, parse in originals:
            module.parse = parse


@contextmanager
def scale_waits(factor: float) -> Iterator[None]:
    """Make ``Wait`` states and Retry intervals take ``factor`` of the declared time (moto's are real sleeps)."""
    import importlib

    if factor < 0:
        raise ValueError("factor must be ≥ 0")
    wait_function = importlib.import_module(f"{_SFN}.component.state.wait.wait_function.wait_function")
    retrier = importlib.import_module(f"{_SFN}.component.common.retry.retrier_decl")
    wait_cls = _require(wait_function, "WaitFunction")
    original_wait = _require(wait_cls, "_wait_interval")
    original_time = _require(retrier, "time")

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        # moto's own loop compares whole seconds waited, so a fractional wait would loop forever;
        # wait on the same event (a stopped execution interrupts it) until the scaled time passed.
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * factor
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    scaled_time = SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    scaled_time.sleep = lambda seconds: time.sleep(max(0.0, float(seconds)) * factor)

    wait_cls._wait_interval = _wait_interval
    retrier.time = scaled_time  # retrier_decl calls time.sleep(interval) through its module global
    try:
        yield
    finally:
        wait_cls._wait_interval = original_wait
        retrier.time = original_time


@contextmanager
def emit_execution_status_events(errors: list[str]) -> Iterator[None]:
    """Publish "Step Functions Execution Status Change" events when an execution ends.

    moto's Step Functions engine emits no EventBridge events, so a rule on them (a Catch never
    runs on abort or timeout, so locks are also released from an "Execution Status Change" rule) would never
    fire. Only terminal statuses (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) are published. A failure to
    publish is appended to ``errors`` (the execution itself is unaffected).
    """
    import importlib

    execution_module = importlib.import_module("moto.stepfunctions.parser.backend.execution")
    comm_cls = _require(execution_module, "BaseExecutionWorkerCommunication")
    original = _require(comm_cls, "terminated")

    def terminated(self: Any) -> None:
        original(self)
        try:
            _publish_status_change(self.execution)
        except Exception as exc:
            errors.append(f"status event for {self.execution.exec_arn}: {type(exc).__name__}: {exc}")

    comm_cls.terminated = terminated
    try:
        yield
    finally:
        comm_cls.terminated = original


def _millis(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _publish_status_change(execution: Any) -> None:
    import json

    from moto.events.models import events_backends

    status = execution.exec_status.value if execution.exec_status is not None else None
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "output": json.dumps(execution.output) if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
    }
    events_backends[execution.account_id][execution.region_name].put_events(
        [
            {
                "Source": "aws.states",
                "DetailType": "Step Functions Execution Status Change",
                "Detail": json.dumps(detail),
                "Resources": [execution.exec_arn],
            }
        ]
    )


# The sandbox's clients all use moto's https endpoints: requests arrive over TLS.
_REQUEST_CONTEXT = {"aws:securetransport": True}


def _bool_condition_holds(block: dict[str, Any]) -> bool | None:
    """Evaluate a ``Bool`` condition block against the sandbox request context (None: unknown key)."""
    for key, expected in block.items():
        actual = _REQUEST_CONTEXT.get(key.lower())
        if actual is None:
            return None
        values = expected if isinstance(expected, list) else [expected]
        if not any(str(v).lower() == str(actual).lower() for v in values):
            return False
    return True


def _policy_for_request(policy: dict[str, Any]) -> dict[str, Any]:
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    kept = []
    for statement in statements:
        condition = dict(statement.get("Condition") or {})
        if "Bool" in condition:
            holds = _bool_condition_holds(condition["Bool"])
            if holds is False:
                continue  # the statement does not apply to this request
            if holds is True:
                condition.pop("Bool")
                statement = (
                    {**statement, "Condition": condition}
                    if condition
                    else {k: v for k, v in statement.items() if k != "Condition"}
                )
        kept.append(statement)
    return {**policy, "Statement": kept}


@contextmanager
def evaluate_bucket_policy_conditions() -> Iterator[None]:
    """Evaluate ``Bool`` conditions (``aws:SecureTransport``) in S3 bucket policies.

    moto's policy engine ignores condition operators it does not know (only ``StringEquals`` is
    implemented) and then treats the statement as matching, so the program's TLS-only policy
    (Deny ``s3:*`` when ``aws:SecureTransport`` is ``false``) denies every request with a bare 403.
    """
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    original = _require(FakeBucket, "get_permission")

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = _policy_for_request(json.loads(self.policy.decode()))
        if not policy["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission
    try:
        yield
    finally:
        FakeBucket.get_permission = original


@contextmanager
def log_delivery_policy_lists() -> Iterator[None]:
    """Let moto's PutBucketLogging check accept a log-delivery statement whose ``Resource`` is a list."""
    import json

    from moto.s3.models import FakeBucket

    original = _require(FakeBucket, "_log_permissions_enabled_policy")

    def enabled(target_bucket: Any, target_prefix: str | None) -> bool:
        if not target_bucket.policy:
            return False
        for statement in json.loads(target_bucket.policy.decode()).get("Statement", []):
            if not isinstance(statement.get("Principal"), dict):
                continue  # e.g. the TLS-only deny's "*": moto's own check would fail on it
            resources = statement.get("Resource")
            for resource in resources if isinstance(resources, list) else [resources]:
                single = json.dumps({"Statement": [{**statement, "Resource": resource}]}).encode()
                view = SimpleNamespace(policy=single, partition=target_bucket.partition, name=target_bucket.name)
                if original(view, target_prefix):
                    return True
        return False

    FakeBucket._log_permissions_enabled_policy = staticmethod(enabled)
    try:
        yield
    finally:
        FakeBucket._log_permissions_enabled_policy = staticmethod(original)


# --------------------------------------------------------------------------------------------------
# SQS (moto's FIFO queues)
# --------------------------------------------------------------------------------------------------

#: One lock for every SQS queue operation: moto's queues take none of their own (see serialise_sqs).
_SQS_LOCK = threading.RLock()
#: SQS's deduplication interval (SQS developer guide: "5-minute deduplication interval").
DEDUPLICATION_SECONDS = 300


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _SQS_LOCK:
            return method(*args, **kwargs)

    return wrapper


@contextmanager
def serialise_sqs() -> Iterator[None]:
    """Run moto's SQS queue mutations one at a time.

    ``Queue.delete_message`` builds a new message list and assigns it, so a message another thread
    appended meanwhile (a handler's SendMessage) silently disappears; ``receive_message`` moves
    messages to the dead-letter queue with ``list.remove`` under the same race. A long-polling
    receive on a standard queue is left unlocked (it sleeps; FIFO receives never sleep under the lock,
    see :func:`fifo_receive`).
    """
    from moto.sqs.models import Queue, SQSBackend

    originals = {
        (Queue, "add_message"): _require(Queue, "add_message"),
        (Queue, "delete_message"): _require(Queue, "delete_message"),
        (SQSBackend, "change_message_visibility"): _require(SQSBackend, "change_message_visibility"),
        (SQSBackend, "purge_queue"): _require(SQSBackend, "purge_queue"),
    }
    original_receive = _require(SQSBackend, "receive_message")

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any,
                        **kwargs: Any) -> Any:
        if wait_seconds_timeout:
            return original_receive(self, queue_name, count, wait_seconds_timeout, *args, **kwargs)
        with _SQS_LOCK:
            return original_receive(self, queue_name, count, wait_seconds_timeout, *args, **kwargs)

    try:
        for (cls, name), method in originals.items():
            setattr(cls, name, _locked(method))
        SQSBackend.receive_message = receive_message
        yield
    finally:
        for (cls, name), method in originals.items():
            setattr(cls, name, method)
        SQSBackend.receive_message = original_receive


def _fifo_batch(queue: Any, count: int, now_ms: float) -> tuple[list[Any], list[Any]]:
    """(messages to deliver, messages to redrive) for one ReceiveMessage on a FIFO queue."""
    # A message whose visibility timeout ran out is no longer in flight. moto releases these one at
    # a time while scanning, so with two timed-out messages of a group the first is skipped (the
    # second still marks the group busy) and the second is delivered ahead of it.
    for message in list(queue.pending_messages):
        if now_ms > message.visible_at:
            queue.pending_messages.discard(message)
    busy = {m.group_id for m in queue.pending_messages}
    retention_ms = float(queue.message_retention_period) * 1000
    max_receives = (queue.redrive_policy or {}).get("maxReceiveCount") if queue.dead_letter_queue else None
    groups: dict[str, list[Any]] = {}
    redrive: list[Any] = []
    expired: list[Any] = []
    for message in queue._messages:
        if message.group_id in busy or now_ms <= message.visible_at or now_ms < message.delayed_until:
            continue
        if now_ms - message.sent_timestamp >= retention_ms:
            expired.append(message)
        elif max_receives is not None and message.approximate_receive_count >= max_receives:
            redrive.append(message)  # SQS moves it when a receive would return it a further time
        else:
            groups.setdefault(message.group_id, []).append(message)
    for message in expired:
        queue._messages.remove(message)
    # "SQS first attempts to return as many messages with the same message group ID as possible"
    # (SQS developer guide, FIFO delivery logic), so other consumers can take the other groups.
    chosen = [m for ordered in groups.values() for m in ordered][:count]
    return chosen, redrive


@contextmanager
def fifo_receive(poll_seconds: float = 0.02) -> Iterator[None]:
    """ReceiveMessage on FIFO queues as SQS does it (standard queues keep moto's code).

    Fixes moto's "when several in-flight messages of a group time out together the head can be
    skipped": every timed-out message leaves the in-flight set before groups are examined, so a
    group is either wholly available (from its head) or wholly blocked. Messages of one group fill
    the batch first. Redrive to the dead-letter queue after ``maxReceiveCount`` is kept (moto's rule:
    on the receive after the last allowed one). Runs under :func:`serialise_sqs`'s lock and never
    sleeps while holding it.
    """
    from copy import deepcopy

    from moto.core.utils import unix_time_millis
    from moto.sqs import models as sqs_models

    backend_cls = sqs_models.SQSBackend
    original = _require(backend_cls, "receive_message")
    filter_attributes = _require(sqs_models, "_filter_message_attributes")

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
                        message_attribute_names: list[str] | None = None) -> list[Any]:
        queue = self.get_queue(queue_name)
        if not queue.fifo_queue:
            return original(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                            message_attribute_names)
        deadline = time.monotonic() + float(wait_seconds_timeout or 0)
        while True:
            with _SQS_LOCK:
                chosen, redrive = _fifo_batch(queue, int(count), unix_time_millis())
                for message in redrive:
                    queue._messages.remove(message)
                    queue.dead_letter_queue.add_message(message)
                result = []
                for message in chosen:
                    queue.pending_messages.add(message)
                    message.mark_received(visibility_timeout=visibility_timeout)
                    copy = deepcopy(message)
                    filter_attributes(copy, list(message_attribute_names or []))
                    result.append(copy)
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(poll_seconds)

    backend_cls.receive_message = receive_message
    try:
        yield
    finally:
        backend_cls.receive_message = original


@contextmanager
def fifo_dedup_window() -> Iterator[None]:
    """Drop a FIFO message whose deduplication id was sent in the last 5 minutes, deleted or not.

    Fixes moto's "a duplicate sent after the original was deleted is accepted": moto compares with
    the messages still in the queue only. On SQS the interval runs from the first send whatever
    happened to that message; a duplicate is accepted (the send succeeds) but never delivered.
    Outside the interval a duplicate is a new message, as on SQS. ``DeduplicationScope``
    ``messageGroup`` keys the interval by group.
    """
    from moto.sqs.models import Queue

    original = _require(Queue, "add_message")

    def add_message(self: Any, message: Any) -> None:
        if not self.fifo_queue or not message.deduplication_id:
            return original(self, message)
        scope = getattr(self, "deduplication_scope", "queue") == "messageGroup"
        key = (message.group_id if scope else None, message.deduplication_id)
        with _SQS_LOCK:
            seen: dict[Any, float] = self.__dict__.setdefault("_sandbox_dedup", {})
            sent = float(message.sent_timestamp or 0)
            first = seen.get(key)
            if first is not None and (sent - first) / 1000 < DEDUPLICATION_SECONDS:
                return None
            seen[key] = sent
            return original(self, message)

    Queue.add_message = add_message
    try:
        yield
    finally:
        Queue.add_message = original


@dataclass
class AppliedFixes:
    """What :func:`applied` installed; ``errors`` collects failures of the event-publishing fix."""

    errors: list[str] = field(default_factory=list)


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """Serve moto's DynamoDB requests one at a time.

    Real DynamoDB makes each request atomic (a conditional write, a transaction); moto checks a condition
    and then writes without a lock, and its transactions snapshot and restore whole tables, so two threads
    can both pass ``attribute_not_exists`` (seen: two summarizers both won a conditional claim).
    """
    from moto.dynamodb.responses import DynamoHandler

    original = _require(DynamoHandler, "call_action")
    gate = threading.RLock()

    def call_action(self: Any) -> Any:
        with gate:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler.call_action = original  # type: ignore[method-assign]


@contextmanager
def cheap_transaction_snapshots() -> Iterator[None]:
    """Snapshot only the items a DynamoDB transaction touches, not whole tables.

    moto's ``transact_write_items`` deep-copies every table it touches so it can roll back; each sqs part
    completion is a transaction on the lock table, which holds one marker per part, so a 20,000-document
    job did quadratic work (seen: 603 s and 6 GB). Saving the touched items (there are at most 100) and
    putting them back on failure is the same rollback. Safe because :func:`atomic_dynamodb` runs one
    request at a time.
    """
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend = _require(models, "DynamoDBBackend")
    original = _require(backend, "transact_write_items")
    real_copy = _require(models, "copy")

    class _CopyModule:
        """Stands in for ``copy`` inside moto.dynamodb.models: tables are not copied (see above)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, models.Table) else real_copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, bool]] = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            existed = hash_value in table.items
            saved.append((table, hash_value, real_copy.deepcopy(table.items[hash_value]) if existed else None,
                          existed))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, item, existed in reversed(saved):
                if existed:
                    table.items[hash_value] = item
                else:
                    table.items.pop(hash_value, None)
            raise

    models.copy = _CopyModule()
    backend.transact_write_items = transact_write_items
    try:
        yield
    finally:
        backend.transact_write_items = original
        models.copy = real_copy


@contextmanager
def applied(
    *,
    wait_scale: float = 1.0,
    jsonpath_cache: bool = True,
    execution_events: bool = True,
    bucket_policy_conditions: bool = True,
    sqs: bool = True,
) -> Iterator[AppliedFixes]:
    """Apply the sandbox's moto fixes for the duration of the block."""
    fixes = AppliedFixes()
    with ExitStack() as stack:
        patches: list[Callable[[], Any]] = []
        if jsonpath_cache:
            patches.append(cache_jsonpath_parsing)
        if wait_scale != 1.0:
            patches.append(lambda: scale_waits(wait_scale))
        if execution_events:
            patches.append(lambda: emit_execution_status_events(fixes.errors))
        if bucket_policy_conditions:
            patches.append(evaluate_bucket_policy_conditions)
        if sqs:
            patches.extend((serialise_sqs, fifo_receive, fifo_dedup_window))
        patches.extend((atomic_dynamodb, cheap_transaction_snapshots, log_delivery_policy_lists))
        for make in patches:
            stack.enter_context(make())
        yield fixes


__all__ = [
    "AppliedFixes",
    "applied",
    "atomic_dynamodb",
    "cache_jsonpath_parsing",
    "cheap_transaction_snapshots",
    "emit_execution_status_events",
    "evaluate_bucket_policy_conditions",
    "fifo_dedup_window",
    "fifo_receive",
    "log_delivery_policy_lists",
    "scale_waits",
    "serialise_sqs",
]
