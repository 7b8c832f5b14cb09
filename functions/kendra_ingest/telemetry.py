"""The pipeline's metrics and traces (Powertools): what a job did, and how Kendra answered.

Metrics are CloudWatch embedded metric format (EMF) lines in the stack's namespace (the
``POWERTOOLS_METRICS_NAMESPACE`` every function gets), each with two dimension sets: ``[service]``
(what the dashboard and alarms read) and ``[service, stack, source]`` (per source). Per job, when its
report is written (:func:`job_finished`): ``DocumentsPut``, ``DocumentsSkipped``, ``DocumentsDeleted``,
``DocumentsFailed``, ``JobDurationSeconds``, ``JobsFailed``. Per part, for the Kendra calls made while
it ran (:func:`kendra_calls`): ``KendraThrottles`` and ``KendraCallLatency``. Only counts, durations
and the source name leave this module: never document content, metadata values or ACL principals.

Each Kendra call is also an X-Ray subsegment (``## kendra.<operation>``) once a handler's tracer exists.
EMF lines go to stdout (Lambda ships them to CloudWatch Logs); tests and the sandbox capture them
with :func:`emit_to`.

Example::

    with telemetry.kendra_calls(source="hr"):
        with telemetry.kendra_call("batch_put_document", throttling=THROTTLING_CODES):
            client.batch_put_document(...)
    # on exit: one EMF line with KendraThrottles and KendraCallLatency, dimension source=hr
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from kendra_ingest.settings import (
    DEFAULT_METRICS_NAMESPACE,
    DOCUMENTS_DELETED,
    DOCUMENTS_FAILED,
    DOCUMENTS_PUT,
    DOCUMENTS_SKIPPED,
    JOB_DURATION_SECONDS,
    JOBS_FAILED,
    KENDRA_CALL_LATENCY,
    KENDRA_THROTTLES,
    METRICS_SERVICE,
)

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
#: CloudWatch takes at most 100 values of one metric in one EMF record, and Powertools prints a record on
#: its own (to stdout, without our dimensions) when a metric reaches 100: stay one below.
MAX_VALUES_PER_RECORD = 99


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


_sink: Callable[[str], None] = _stdout


def emit_to(sink: Callable[[str], None] | None) -> Callable[[str], None]:
    """Send EMF lines to ``sink`` (None: stdout again); returns the previous sink."""
    global _sink
    previous, _sink = _sink, sink or _stdout
    return previous


def namespace() -> str:
    """The stack's metric namespace, as the function's environment sets it."""
    return os.environ.get(NAMESPACE_ENV) or DEFAULT_METRICS_NAMESPACE


def stack() -> str:
    """The stack (``<project>-<stack>``) the namespace ``KendraIngestion/<project>-<stack>`` names."""
    return namespace().partition("/")[2] or namespace()


def _disabled() -> bool:
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    return is_metrics_disabled()


def emit(metrics: list[tuple[str, str, float | list[float]]], *, source: str | None) -> None:
    """One EMF record per ≤ 99 values of a metric: ``metrics`` is (name, unit, value or values)."""
    if not metrics or _disabled():
        return
    from aws_lambda_powertools.metrics import EphemeralMetrics

    chunks: list[list[tuple[str, str, float]]] = [[]]
    for name, unit, value in metrics:
        values = value if isinstance(value, list) else [value]
        for start in range(0, len(values), MAX_VALUES_PER_RECORD):
            if start:
                chunks.append([])
            chunks[-1].extend((name, unit, v) for v in values[start:start + MAX_VALUES_PER_RECORD])
    for chunk in chunks:
        # Ephemeral: no state shared with other invocations (the sandbox runs many in one process).
        record = EphemeralMetrics(namespace=namespace(), service=METRICS_SERVICE)
        for name, unit, value in chunk:
            record.add_metric(name=name, unit=unit, value=value)
        if source:
            record.add_dimensions(service=METRICS_SERVICE, stack=stack(), source=source)
        _sink(json.dumps(record.serialize_metric_set(), separators=(",", ":")))


def job_finished(summary: Any) -> None:
    """The per-job metrics of a written ``summary.json`` (a :class:`kendra_ingest.reports.Summary`)."""
    documents, deletes = summary.documents, summary.deletes
    emit([
        (DOCUMENTS_PUT, "Count", documents.put),
        (DOCUMENTS_SKIPPED, "Count", documents.skipped_unchanged),
        (DOCUMENTS_DELETED, "Count", deletes.deleted),
        # The rows of failures.csv: documents and deletes that failed.
        (DOCUMENTS_FAILED, "Count", documents.failed + deletes.failed),
        (JOB_DURATION_SECONDS, "Seconds", float(summary.duration_seconds)),
        (JOBS_FAILED, "Count", 1 if summary.status == "FAILED" else 0),
    ], source=summary.source)


# ------------------------------------------------------------------------------------ Kendra calls


@dataclass
class KendraCalls:
    """The Kendra calls of one part (or of one invocation outside any part)."""

    source: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    throttles: int = 0


_calls: ContextVar[KendraCalls | None] = ContextVar("kendra_calls", default=None)


@contextmanager
def kendra_calls(source: str | None = None) -> Iterator[KendraCalls]:
    """Collect the Kendra calls made inside; on exit emit ``KendraThrottles`` and ``KendraCallLatency``."""
    calls = KendraCalls(source=source)
    token = _calls.set(calls)
    try:
        yield calls
    finally:
        _calls.reset(token)
        if calls.latencies_ms:
            emit([(KENDRA_THROTTLES, "Count", calls.throttles),
                  (KENDRA_CALL_LATENCY, "Milliseconds", calls.latencies_ms)], source=calls.source)


def current_calls() -> KendraCalls | None:
    """The collector of the innermost :func:`kendra_calls`, if any."""
    return _calls.get()


#: The handlers' tracer, once :func:`tracer` made it (Kendra calls outside a handler are not traced).
_tracer: Any = None


def tracer() -> Any:
    """The Powertools Tracer, made on first use: importing the X-Ray SDK costs ~0.2 s, paid by the first
    invocation rather than by every import. Outside Lambda (tests, the sandbox) it is disabled."""
    global _tracer
    if _tracer is None:
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(service=METRICS_SERVICE)
    return _tracer


@contextmanager
def _subsegment(name: str) -> Iterator[None]:
    if _tracer is None or _tracer.disabled:
        yield
        return
    with _tracer.provider.in_subsegment(name):
        yield


@contextmanager
def kendra_call(operation: str, *, throttling: Collection[str]) -> Iterator[None]:
    """One Kendra request: an X-Ray subsegment, its latency, and whether it was throttled (an error
    whose code is in ``throttling``), recorded in the current :func:`kendra_calls`."""
    started = time.perf_counter()
    throttled = False
    try:
        with _subsegment(f"## kendra.{operation}"):
            yield
    except Exception as exc:
        error = getattr(exc, "response", None) or {}
        throttled = (error.get("Error") or {}).get("Code") in throttling
        raise
    finally:
        calls = _calls.get()
        if calls is not None:
            calls.latencies_ms.append(round((time.perf_counter() - started) * 1000, 3))
            calls.throttles += throttled
