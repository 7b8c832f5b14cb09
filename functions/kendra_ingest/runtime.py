"""What every handler shares: the Powertools logger, the handler decorator, its settings, and
per-container caches.

Handlers stay thin: parse the event, call the library, return. Each is decorated with
:func:`lambda_handler`, so every log line is JSON with the Lambda request id as ``correlation_id`` and,
once the job is known, ``jobId``, ``runId``, ``source`` (and ``part`` for one part); the invocation is
traced, and its Kendra calls become metrics (:mod:`kendra_ingest.telemetry`).

Example::

    @lambda_handler
    def handler(event: dict, context: object) -> dict:
        job = Job.model_validate(event["job"])   # event["job"] already gave the log keys
        ...
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from aws_lambda_powertools import Logger

from kendra_ingest import telemetry
from kendra_ingest.deadline import Deadline
from kendra_ingest.settings import METRICS_SERVICE, Settings

logger = Logger(service=METRICS_SERVICE)

#: The log keys of a job (Powertools keys of the calling thread: the sandbox runs invocations side by side).
JOB_KEYS = ("jobId", "runId", "source", "part")

Handler = TypeVar("Handler", bound=Callable[..., Any])


def job_keys(data: Mapping[str, Any]) -> dict[str, str]:
    """The log keys found in an event, a job (``Job.dump()``) or a part message body."""
    keys: dict[str, str] = {}
    state = data.get("state")  # release_lock gets the whole execution state
    job = data.get("job") or (state.get("job") if isinstance(state, Mapping) else None)
    # Top-level keys only beside a jobId or runId: an EventBridge event's "source" is "aws.s3".
    top = data if ("jobId" in data or "runId" in data) else {}
    for where in (job if isinstance(job, Mapping) else {}, top):
        for key in ("jobId", "runId", "source"):
            if key not in keys and isinstance(where.get(key), str):
                keys[key] = where[key]
    part = data.get("part")
    if isinstance(part, Mapping):  # option sfn: the Map item
        part = {"action": part.get("action"), "part": part.get("part")}
    elif isinstance(part, int) and not isinstance(part, bool):  # option sqs: the message body
        part = {"action": data.get("action"), "part": part}
    if isinstance(part, Mapping) and part.get("action") and part.get("part") is not None:
        keys["part"] = f"{part['action']}-{part['part']}"
    return keys


def for_job(job: Any, *, part: str | None = None) -> None:
    """Add ``job``'s ``jobId``, ``runId`` and ``source`` (and ``part``) to every later log line of this
    invocation, and its source to this invocation's Kendra-call metrics. ``job`` is any object with
    ``job_id``, ``run_id`` and ``source`` attributes (a ``Job``, a part message)."""
    keys = {"jobId": getattr(job, "job_id", None), "runId": getattr(job, "run_id", None),
            "source": getattr(job, "source", None), "part": part}
    _use({k: v for k, v in keys.items() if v})


def _use(keys: Mapping[str, str]) -> None:
    if keys:
        logger.thread_safe_append_keys(**keys)
    calls = telemetry.current_calls()
    if calls is not None and keys.get("source"):
        calls.source = keys["source"]


@contextmanager
def part_scope(body: str) -> Iterator[None]:
    """One queue message (a part) of a batch: its keys on the log lines and its own Kendra-call metrics."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    keys = job_keys(data) if isinstance(data, dict) else {}
    before = dict(logger.thread_safe_get_current_keys())
    try:
        with telemetry.kendra_calls(source=keys.get("source")):
            _use(keys)
            yield
    finally:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**before)


def lambda_handler(handler: Handler) -> Handler:
    """Decorate a Lambda handler: Powertools Logger context, the request id as ``correlation_id``, the
    job's keys from the event (``job``, ``jobId``/``runId``, ``part``), the Tracer, and the Kendra-call
    metrics of the invocation."""
    logged = logger.inject_lambda_context(handler)
    traced: Callable[..., Any] | None = None

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        nonlocal traced
        if traced is None:
            # The handler's result is not recorded in the trace: it may name documents.
            traced = telemetry.tracer().capture_lambda_handler(logged, capture_response=False)
        logger.thread_safe_clear_keys()
        request_id = getattr(context, "aws_request_id", None)
        if request_id:
            logger.thread_safe_append_keys(correlation_id=request_id)
        try:
            with telemetry.kendra_calls():
                _use(job_keys(event) if isinstance(event, Mapping) else {})
                return traced(event, context)
        finally:
            logger.thread_safe_clear_keys()

    return invoke  # type: ignore[return-value]


def settings(handler: str) -> Settings:
    """The handler's validated environment (read per invocation: the sandbox shares a process)."""
    return Settings.load(handler)


def deadline(context: Any) -> Deadline:
    return Deadline.from_context(context)


def kendra_index(settings: Settings, *, sync_job_id: str | None = None) -> Any:
    """The index client; ``sync_job_id`` makes every put and delete part of that data-source sync job."""
    from kendra_ingest.kendra import KendraIndex

    pacer = None
    if settings.kendra_tps and settings.lock_table:
        from kendra_ingest.pacing import QuotaPacer

        pacer = QuotaPacer(settings.lock_table, settings.kendra_tps)
    return KendraIndex(settings.kendra_index_id, role_arn=settings.kendra_role_arn,
                       data_source_id=settings.kendra_data_source_id, sync_job_id=sync_job_id, pacer=pacer)


@functools.lru_cache(maxsize=8)
def _date_fields(index_id: str) -> frozenset[str]:
    from kendra_ingest.kendra import KendraIndex

    return KendraIndex(index_id).date_fields()


def date_fields(settings: Settings) -> frozenset[str]:
    """Index fields of type DATE_VALUE (DescribeIndex), cached per container."""
    return _date_fields(settings.kendra_index_id)


def reset_caches() -> None:
    """Forget per-container caches (tests and the sandbox start a new container in the same process)."""
    _date_fields.cache_clear()


def ledger(settings: Settings) -> Any:
    from kendra_ingest.ledger import Ledger

    return Ledger(settings.documents_table)


def lock(settings: Settings) -> Any:
    from kendra_ingest.lock import Lock

    return Lock(settings.lock_table)
