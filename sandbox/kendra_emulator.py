"""The Kendra emulator: an in-memory index behind real boto3 ``kendra`` clients (the sandbox's Kendra).

Botocore validates and serialises every request exactly as it would for AWS; a ``before-send.kendra``
handler then answers with an ``AWSResponse`` instead of sending it. The client therefore parses results,
raises ``ClientError`` from the ``__type`` of an error body and retries throttling for real.

Example::

    emulator = KendraEmulator(index_fields={"department": "STRING_VALUE"})
    with emulator.installed():                      # every kendra client created now is served here
        kendra = boto3.client("kendra", region_name="us-east-1")
        kendra.batch_put_document(
            IndexId=emulator.index_id,
            Documents=[{"Id": "a", "Blob": b"hello", "ContentType": "PLAIN_TEXT"}],
        )
    emulator.index_snapshot()["documents"]["a"]["status"]    # "INDEXED"

Where Kendra's behaviour is not published, the emulator decides, and says so here:

- Constraints of the service model that botocore does not check client-side (maximum lengths and list
  sizes, enums such as ``ContentType`` or an ACL ``Type``/``Access``, patterns, numeric ranges) fail the
  whole call with ``ValidationException`` in AWS's own wording, as AWS's request validation does.
  Semantic problems of one document fail only that document in ``FailedDocuments``: an attribute that is
  neither reserved nor an index field, a value of the wrong type, an inline document over
  ``max_document_bytes``, both ``Blob`` and ``S3Path``, a sync job that is not running, and the limits
  Kendra documents outside the model: more than 200 ``AccessControlList`` entries (developer guide, user
  context filtering) and a ``StringListValue`` of more than 10 strings (the model's documented default).
- ``max_documents_per_call`` can only lower the model's limit of 10 documents.
- A document without content (empty ``Blob``, or neither ``Blob`` nor ``S3Path``) is accepted and then
  fails indexing, as does text content (``PLAIN_TEXT``, ``HTML``, ``MD``, ``CSV``, ``JSON``, ``XML``,
  ``XSLT``) that is not UTF-8; without a ``ContentType`` only the empty check applies.
  ``FailureCode`` is ``InvalidContent`` then.
- A re-put of a document whose indexing had succeeded goes through ``PROCESSING`` to ``UPDATED`` (or
  ``UPDATE_FAILED``); a delete takes effect at once (Kendra can take an hour to show ``NOT_FOUND``).
- ``StopDataSourceSyncJob`` without a running job is a ``ValidationException``; a stopped job shows
  ``SYNCING_INDEXING`` for ``indexing_delay_seconds``, then ``SUCCEEDED``. A put or a delete naming a
  job that is not running (``_data_source_sync_job_execution_id`` or ``DataSourceSyncJobMetricTarget``)
  fails every document with ``InvalidRequest``; so does a put with ``_data_source_id`` alone while that
  data source has no running job (Kendra uses the running job then).
- Random faults are reproducible under concurrency: each draw hashes (seed, kind, request or document,
  how often that request or document was seen before), so the same requests get the same faults
  whatever the thread interleaving.
- An operation the emulator does not implement raises :class:`EmulatorNotImplementedError` out of the
  client call (not a ``ClientError``, so no caller mistakes a gap for a Kendra answer).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import secrets
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.client
import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.model import OperationModel, Shape

DEFAULT_INDEX_ID = "e0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"
DEFAULT_INDEX_NAME = "sandbox-index"
DEFAULT_MAX_DOCUMENTS_PER_CALL = 10  # BatchPutDocument / BatchDeleteDocument / BatchGetDocumentStatus
DEFAULT_MAX_DOCUMENT_BYTES = 5 * 1024 * 1024  # inline document
MAX_ACL_ENTRIES = 200  # AccessControlList entries per document (developer guide)
MAX_STRING_LIST_VALUES = 10  # strings per StringListValue (the model's documentation)
DEFAULT_MAX_REQUEST_BYTES = 50 * 1024 * 1024  # one call's decoded Blob bytes
MAX_ERROR_MESSAGE_CHARS = 2048  # the model's ErrorMessage maximum

FIELD_TYPES = frozenset({"STRING_VALUE", "STRING_LIST_VALUE", "LONG_VALUE", "DATE_VALUE"})

#: Kendra's reserved document attributes that this emulator accepts, with their types.
RESERVED_ATTRIBUTES: dict[str, str] = {
    "_source_uri": "STRING_VALUE",
    "_created_at": "DATE_VALUE",
    "_last_updated_at": "DATE_VALUE",
    "_category": "STRING_VALUE",
    "_version": "STRING_VALUE",
    "_view_count": "LONG_VALUE",
    "_language_code": "STRING_VALUE",
    "_authors": "STRING_LIST_VALUE",
    "_file_type": "STRING_VALUE",
    "_data_source_id": "STRING_VALUE",
    "_data_source_sync_job_execution_id": "STRING_VALUE",
    "_document_title": "STRING_VALUE",
    "_excerpt_page_number": "LONG_VALUE",
}

#: Wire member of ``DocumentAttributeValue`` -> index field type.
VALUE_MEMBER_TYPES: dict[str, str] = {
    "StringValue": "STRING_VALUE",
    "StringListValue": "STRING_LIST_VALUE",
    "LongValue": "LONG_VALUE",
    "DateValue": "DATE_VALUE",
}

#: Content types whose bytes must be UTF-8 text for indexing to succeed.
TEXT_CONTENT_TYPES = frozenset({"PLAIN_TEXT", "HTML", "MD", "CSV", "JSON", "XML", "XSLT"})

CONTENT_FAILURE_CODE = "InvalidContent"
DOCUMENT_MISSING_MESSAGE = "Document can't be deleted because it doesn't exist"  # Kendra's wording

IMPLEMENTED_OPERATIONS = (
    "BatchPutDocument",
    "BatchDeleteDocument",
    "BatchGetDocumentStatus",
    "DescribeIndex",
    "StartDataSourceSyncJob",
    "StopDataSourceSyncJob",
    "ListDataSourceSyncJobs",
)

_ERROR_STATUS = {"InternalServerException": 500}  # every other Kendra exception is a 400
_DATA_SOURCE_ID = "_data_source_id"
_INDEXED_STATUSES = frozenset({"INDEXED", "UPDATED"})
#: The final status of a re-put of an indexed document, by the status a first put would reach.
_UPDATE_STATUS = {"INDEXED": "UPDATED", "FAILED": "UPDATE_FAILED"}
_SYNC_EXECUTION_ID = "_data_source_sync_job_execution_id"


class EmulatorNotImplementedError(NotImplementedError):
    """A client called a Kendra operation the emulator does not implement."""


class NoEmulatorInstalledError(RuntimeError):
    """A client created under :meth:`KendraEmulator.installed` was used after every emulator exited."""


class _ServiceError(Exception):
    """A call-level Kendra exception, answered as ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the service model's server-side constraints ---------------------------------------------------

_PATTERN_CACHE: dict[str, Callable[[str], bool] | None] = {}


def _no_control_characters(value: str) -> bool:
    return not any(unicodedata.category(char).startswith("C") for char in value)


def _pattern_check(pattern: str) -> Callable[[str], bool] | None:
    """A full-match predicate for a model pattern, or None for patterns Python cannot apply faithfully."""
    if pattern not in _PATTERN_CACHE:
        check: Callable[[str], bool] | None = None
        if pattern == r"^\P{C}*$":  # Java's "no control/format/unassigned characters"
            check = _no_control_characters
        elif not pattern.startswith("/"):  # the model's LambdaArn pattern is a quoted JS literal
            try:
                compiled = re.compile(pattern)
                check = lambda value, compiled=compiled: compiled.fullmatch(value) is not None  # noqa: E731
            except re.error:
                check = None
        _PATTERN_CACHE[pattern] = check
    return _PATTERN_CACHE[pattern]


def _quote(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."


def constraint_violations(shape: Shape, value: Any, path: str = "") -> list[str]:
    """The model constraints ``value`` breaks, in AWS's wording (``Value 'x' at 'documents.1.member.id'``).

    Botocore checks required members, types and minimum lengths client-side; this covers the rest
    (maximum lengths and sizes, enums, patterns, numeric ranges), as AWS's request validation does.
    """
    problems: list[str] = []
    _walk(shape, value, path, problems)
    return problems


def _walk(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if value.get(name) is not None:
                child = name[0].lower() + name[1:]
                _walk(member, value[name], f"{path}.{child}" if path else child, problems)
    elif kind == "list" and isinstance(value, list):
        _check_size(meta, len(value), f"Value with {len(value)} items at '{path}'", problems)
        for position, item in enumerate(value, start=1):
            _walk(shape.member, item, f"{path}.{position}.member", problems)
    elif kind == "map" and isinstance(value, dict):
        _check_size(meta, len(value), f"Value with {len(value)} entries at '{path}'", problems)
        for key, item in value.items():
            _walk(shape.value, item, f"{path}.{key}", problems)
    elif kind == "string" and isinstance(value, str):
        subject = f"Value '{_quote(value)}' at '{path}'"
        _check_size(meta, len(value), subject, problems)
        if shape.enum and value not in shape.enum:
            problems.append(
                f"{subject} failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(shape.enum)}]"
            )
        check = _pattern_check(meta["pattern"]) if "pattern" in meta else None
        if check is not None and not check(value):
            problems.append(
                f"{subject} failed to satisfy constraint: Member must satisfy regular expression "
                f"pattern: {meta['pattern']}"
            )
    elif kind in ("integer", "long") and isinstance(value, int):
        subject = f"Value '{value}' at '{path}'"
        if "min" in meta and value < meta["min"]:
            problems.append(
                f"{subject} failed to satisfy constraint: Member must have value greater than or equal "
                f"to {meta['min']}"
            )
        if "max" in meta and value > meta["max"]:
            problems.append(
                f"{subject} failed to satisfy constraint: Member must have value less than or equal "
                f"to {meta['max']}"
            )


def _check_size(meta: dict[str, Any], size: int, subject: str, problems: list[str]) -> None:
    if "min" in meta and size < meta["min"]:
        problems.append(
            f"{subject} failed to satisfy constraint: Member must have length greater than or equal "
            f"to {meta['min']}"
        )
    if "max" in meta and size > meta["max"]:
        problems.append(
            f"{subject} failed to satisfy constraint: Member must have length less than or equal "
            f"to {meta['max']}"
        )


def _validation_message(problems: list[str]) -> str:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(problems)


# --- state ----------------------------------------------------------------------------------------


class _TokenBucket:
    """``rate`` tokens a second, holding at most ``capacity``; starts full."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class _Document:
    """One document as the index holds it; the final status applies once ``ready_at`` is reached."""

    title: str | None
    content_type: str | None
    attributes: dict[str, dict[str, Any]]
    acl: list[dict[str, Any]]
    hierarchical_acl: list[dict[str, Any]] | None
    s3_path: dict[str, str] | None
    size: int
    ready_at: float
    final_status: str
    failure_code: str | None = None
    failure_reason: str | None = None

    def status(self, now: float) -> str:
        return self.final_status if now >= self.ready_at else "PROCESSING"


@dataclass
class _SyncJob:
    execution_id: str
    data_source_id: str
    started_at: float  # on the emulator's clock
    stopped_at: float | None = None
    metrics: Counter[str] = field(default_factory=Counter)

    def status(self, now: float, delay: float) -> str:
        if self.stopped_at is None:
            return "SYNCING"
        return "SUCCEEDED" if now >= self.stopped_at + delay else "SYNCING_INDEXING"


@dataclass
class _PreparedDocument:
    """A put document after the checks that need no state: either an error or what to store."""

    doc_id: str
    data_source_id: str | None
    execution_id: str | None
    error: str | None = None
    document: _Document | None = None


class _RawBody(io.BytesIO):
    """The raw stream botocore reads an ``AWSResponse`` body from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


# --- the emulator ---------------------------------------------------------------------------------


class KendraEmulator:
    """An in-memory Kendra index answering real boto3 ``kendra`` clients (see the module docstring).

    Example::

        emulator = KendraEmulator(tps=5, seed=1)
        client = boto3.client("kendra", region_name="us-east-1")
        emulator.attach(client)
        client.describe_index(Id=emulator.index_id)["Status"]    # "ACTIVE"
    """

    def __init__(
        self,
        *,
        index_id: str = DEFAULT_INDEX_ID,
        index_fields: dict[str, str] | None = None,
        tps: float | None = None,
        throttle_probability: float = 0.0,
        internal_error_probability: float = 0.0,
        server_error_probability: float = 0.0,
        seed: int | None = None,
        max_documents_per_call: int = DEFAULT_MAX_DOCUMENTS_PER_CALL,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        indexing_delay_seconds: float = 0.0,
        index_capacity: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        data_source_ids: set[str] | None = None,
        s3_reader: Callable[[str, str], bytes] | None = None,
    ) -> None:
        """Configure the index and its faults.

        ``index_fields`` maps custom field names to their type; None accepts any custom attribute.
        ``tps`` is a token bucket per operation (None: unlimited); the probabilities draw a
        ``ThrottlingException`` per call, an ``InternalError`` per document and an
        ``InternalServerException`` (HTTP 500) per call. ``s3_reader(bucket, key)`` lets ``S3Path``
        documents be checked like inline ones. ``data_source_ids`` (None: any) are the CUSTOM data sources.
        ``index_capacity`` (None: unlimited) is the most documents the index holds: a put that would add
        documents beyond it fails as a whole with ``ServiceQuotaExceededException``, as a full index does.
        """
        self._service_model = botocore.session.get_session().get_service_model("kendra")
        index_id_problems = constraint_violations(
            self._service_model.shape_for("IndexId"), index_id, "indexId"
        )
        if index_id_problems:
            raise ValueError(f"index_id must be a 36-character Kendra index id: {index_id_problems[0]}")
        for name, field_type in (index_fields or {}).items():
            if field_type not in FIELD_TYPES:
                raise ValueError(
                    f"index_fields[{name!r}] is {field_type!r}; expected one of {sorted(FIELD_TYPES)}"
                )
        for name, probability in (
            ("throttle_probability", throttle_probability),
            ("internal_error_probability", internal_error_probability),
            ("server_error_probability", server_error_probability),
        ):
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {probability}")
        if index_capacity is not None and index_capacity < 0:
            raise ValueError(f"index_capacity must be >= 0 or None (unlimited), got {index_capacity}")
        if tps is not None and tps <= 0:
            raise ValueError(f"tps must be positive or None (unlimited), got {tps}")
        if not 1 <= max_documents_per_call <= DEFAULT_MAX_DOCUMENTS_PER_CALL:
            raise ValueError(
                f"max_documents_per_call must be within 1..10 (Kendra's limit), got {max_documents_per_call}"
            )

        self.index_id = index_id
        self.index_fields = dict(index_fields) if index_fields is not None else None
        self.tps = tps
        self.throttle_probability = throttle_probability
        self.internal_error_probability = internal_error_probability
        self.server_error_probability = server_error_probability
        self.seed = seed if seed is not None else secrets.randbits(64)
        self.max_documents_per_call = max_documents_per_call
        self.max_document_bytes = max_document_bytes
        self.max_request_bytes = max_request_bytes
        self.indexing_delay_seconds = indexing_delay_seconds
        self.index_capacity = index_capacity
        self.clock = clock
        self.data_source_ids = set(data_source_ids) if data_source_ids is not None else None
        self.s3_reader = s3_reader

        #: Every call received, in order (the sandbox's calls.json). Appended under the lock.
        self.calls: list[dict[str, Any]] = []

        self._lock = threading.Lock()
        self._documents: dict[str, _Document] = {}
        self._buckets: dict[str, _TokenBucket] = {}
        self._draws: Counter[str] = Counter()
        self._jobs: dict[str, _SyncJob] = {}  # execution id -> job
        self._running: dict[str, _SyncJob] = {}  # data source id -> its running job
        self._history: dict[str, list[_SyncJob]] = {}  # data source id -> jobs, oldest first
        self._clock_origin = clock()
        self._wall_origin = time.time()
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "BatchPutDocument": self._batch_put_document,
            "BatchDeleteDocument": self._batch_delete_document,
            "BatchGetDocumentStatus": self._batch_get_document_status,
            "DescribeIndex": self._describe_index,
            "StartDataSourceSyncJob": self._start_data_source_sync_job,
            "StopDataSourceSyncJob": self._stop_data_source_sync_job,
            "ListDataSourceSyncJobs": self._list_data_source_sync_jobs,
        }

    # --- wiring ---

    def attach(self, client: botocore.client.BaseClient) -> None:
        """Serve one ``kendra`` client from this emulator (idempotent)."""
        if client.meta.service_model.service_name != "kendra":
            raise ValueError(
                f"KendraEmulator can only serve kendra clients, not {client.meta.service_model.service_name}"
            )
        # Answer before any other before-send handler: moto's catch-all stubber would send a 404 (it runs
        # later anyway, being registered on the less specific ``before-send``).
        client.meta.events.register_first(
            "before-send.kendra", self._handle, unique_id=f"kendra-emulator-{id(self)}"
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[KendraEmulator]:
        """While active, every kendra client created anywhere in the process is served by this emulator.

        Clients created inside are routed to the innermost active emulator at call time, so a client a
        handler cached at module level follows the next sandbox's emulator; once none is active, such a
        client raises :class:`NoEmulatorInstalledError` rather than reach real AWS.
        """
        _install(self)
        try:
            yield self
        finally:
            _uninstall(self)

    # --- reading state ---

    def index_snapshot(self) -> dict[str, Any]:
        """The index as JSON-serialisable data (``OUT/index.json``)."""
        with self._lock:
            now = self.clock()
            documents = {
                doc_id: {
                    "title": doc.title,
                    "contentType": doc.content_type,
                    "attributes": json.loads(json.dumps(doc.attributes)),
                    "acl": json.loads(json.dumps(doc.acl)),
                    "hierarchicalAcl": json.loads(json.dumps(doc.hierarchical_acl)),
                    "status": doc.status(now),
                }
                for doc_id, doc in self._documents.items()
            }
        return {"documents": documents}

    def counts(self) -> dict[str, int]:
        """Calls per operation (throttled and failed ones included), plus ``throttled`` and ``errors``."""
        with self._lock:
            calls = list(self.calls)
        result = dict.fromkeys(IMPLEMENTED_OPERATIONS, 0)
        result.update(Counter(call["operation"] for call in calls))
        result["throttled"] = sum(call["outcome"] == "throttled" for call in calls)
        result["errors"] = sum(call["outcome"] == "error" for call in calls)
        return result

    # --- the before-send handler ---

    def _handle(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        operation = _operation_name(request, kwargs.get("event_name", ""))
        body = request.body or b"{}"
        params = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        doc_ids, nbytes = _summarize(operation, params)
        handler = self._handlers.get(operation)
        if handler is None:
            self._record(operation, doc_ids, nbytes, "error")
            raise EmulatorNotImplementedError(
                f"The Kendra emulator does not implement {operation}; "
                f"it implements {', '.join(IMPLEMENTED_OPERATIONS)}"
            )

        request_key = (
            operation + "\x1f" + ("\x1e".join(doc_ids) if doc_ids else json.dumps(params, sort_keys=True))
        )
        with self._lock:
            refusal = self._refusal(operation, request_key, self.clock())
            if refusal is not None:
                outcome = "throttled" if refusal.code == "ThrottlingException" else "error"
                self._append_call(operation, doc_ids, nbytes, outcome)
        if refusal is not None:
            return _error_response(request, refusal)
        try:
            result = handler(params)
        except _ServiceError as error:
            self._record(operation, doc_ids, nbytes, "error")
            return _error_response(request, error)
        return _json_response(request, 200, result)

    def _refusal(self, operation: str, request_key: str, now: float) -> _ServiceError | None:
        """Throttling and injected server errors, decided before the call touches state (under the lock)."""
        if self.throttle_probability and self._draw("throttle", request_key) < self.throttle_probability:
            return _ServiceError("ThrottlingException", "Rate exceeded (emulated throttle_probability).")
        if self.tps is not None:
            bucket = self._buckets.get(operation)
            if bucket is None:
                bucket = self._buckets[operation] = _TokenBucket(self.tps, max(1.0, self.tps), now)
            if not bucket.take(now):
                return _ServiceError(
                    "ThrottlingException", f"Rate exceeded for {operation} (emulated {self.tps} TPS)."
                )
        if (
            self.server_error_probability
            and self._draw("server-error", request_key) < self.server_error_probability
        ):
            return _ServiceError("InternalServerException", "An internal error occurred (emulated).")
        return None

    def _draw(self, kind: str, key: str) -> float:
        """A uniform number in [0, 1) from (seed, kind, key, occurrence): reproducible across threads."""
        occurrence = self._draws[kind + "\x1d" + key]
        self._draws[kind + "\x1d" + key] += 1
        digest = hashlib.blake2b(f"{self.seed}\x1d{kind}\x1d{key}\x1d{occurrence}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64

    def _record(self, operation: str, doc_ids: list[str], nbytes: int, outcome: str) -> None:
        with self._lock:
            self._append_call(operation, doc_ids, nbytes, outcome)

    def _append_call(self, operation: str, doc_ids: list[str], nbytes: int, outcome: str) -> None:
        self.calls.append(
            {"operation": operation, "documentIds": doc_ids, "bytes": nbytes, "outcome": outcome}
        )

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        """AWS-side model validation, then the index id (every implemented operation names the index)."""
        input_shape = self._operation_model(operation).input_shape
        problems = constraint_violations(input_shape, params)
        if problems:
            raise _ServiceError("ValidationException", _validation_message(problems))
        index_id = params["Id"] if operation == "DescribeIndex" else params["IndexId"]
        if index_id != self.index_id:
            raise _ServiceError("ResourceNotFoundException", f"Index {index_id} does not exist.")

    def _operation_model(self, operation: str) -> OperationModel:
        return self._service_model.operation_model(operation)

    def _now_wall(self, now: float) -> float:
        """The emulator's clock mapped to epoch seconds (so an injected clock gives stable timestamps)."""
        return self._wall_origin + (now - self._clock_origin)

    # --- BatchPutDocument ---

    def _batch_put_document(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("BatchPutDocument", params)
        documents = params["Documents"]
        if len(documents) > self.max_documents_per_call:
            raise _ServiceError(
                "ValidationException",
                f"Documents holds {len(documents)} documents; "
                f"at most {self.max_documents_per_call} are allowed per call.",
            )
        blobs = [base64.b64decode(doc["Blob"]) if "Blob" in doc else None for doc in documents]
        total = sum(len(blob) for blob in blobs if blob is not None)
        if total > self.max_request_bytes:
            raise _ServiceError(
                "ValidationException",
                f"The documents of this request total {total} bytes, "
                f"over the limit of {self.max_request_bytes} bytes.",
            )
        if any("S3Path" in doc for doc in documents) and not params.get("RoleArn"):
            raise _ServiceError(
                "ValidationException", "RoleArn is required when a document is given by S3Path."
            )
        # Checks that need no state (and S3 reads) run outside the lock.
        prepared = [self._prepare(doc, blob) for doc, blob in zip(documents, blobs, strict=True)]

        failed: list[dict[str, Any]] = []
        with self._lock:
            now = self.clock()
            if self.index_capacity is not None:
                added = {item.doc_id for item in prepared if not item.error and item.doc_id not in self._documents}
                if added and len(self._documents) + len(added) > self.index_capacity:
                    raise _ServiceError(
                        "ServiceQuotaExceededException",
                        f"The index {self.index_id} holds {len(self._documents)} documents and its document "
                        f"capacity is {self.index_capacity}: this request would add {len(added)}. "
                        "Add storage capacity units to the index or delete documents.",
                    )
            for item in prepared:
                error_code, message = ("InvalidRequest", item.error) if item.error else self._admit(item, now)
                job = self._job_of(item)
                if error_code is not None:
                    entry = {
                        "Id": item.doc_id,
                        "ErrorCode": error_code,
                        "ErrorMessage": message[:MAX_ERROR_MESSAGE_CHARS],
                    }
                    if item.data_source_id:
                        entry["DataSourceId"] = item.data_source_id
                    failed.append(entry)
                    if job is not None and job.stopped_at is None:
                        job.metrics["DocumentsFailed"] += 1
                    continue
                assert item.document is not None
                item.document.ready_at = now + self.indexing_delay_seconds
                previous = self._documents.get(item.doc_id)
                if previous is not None and previous.status(now) in _INDEXED_STATUSES:
                    # Kendra reports a re-indexed document as an update of the one it held.
                    item.document.final_status = _UPDATE_STATUS[item.document.final_status]
                if job is not None:
                    job.metrics[
                        "DocumentsModified" if item.doc_id in self._documents else "DocumentsAdded"
                    ] += 1
                    job.metrics["DocumentsScanned"] += 1
                self._documents[item.doc_id] = item.document
            self._append_call("BatchPutDocument", [doc["Id"] for doc in documents], total, "ok")
        return {"FailedDocuments": failed}

    def _prepare(self, doc: dict[str, Any], blob: bytes | None) -> _PreparedDocument:
        attributes = doc.get("Attributes") or []
        item = _PreparedDocument(
            doc_id=doc["Id"],
            data_source_id=_string_attribute(attributes, _DATA_SOURCE_ID),
            execution_id=_string_attribute(attributes, _SYNC_EXECUTION_ID),
        )
        item.error = self._document_error(doc, blob, attributes)
        if item.error is not None:
            return item
        final_status, failure_code, failure_reason = self._indexing_result(doc, blob)
        item.document = _Document(
            title=doc.get("Title"),
            content_type=doc.get("ContentType"),
            attributes={attr["Key"]: _snapshot_value(attr["Value"]) for attr in attributes},
            acl=list(doc.get("AccessControlList") or []),
            hierarchical_acl=doc.get("HierarchicalAccessControlList"),
            s3_path=doc.get("S3Path"),
            size=len(blob) if blob is not None else 0,
            ready_at=0.0,
            final_status=final_status,
            failure_code=failure_code,
            failure_reason=failure_reason,
        )
        return item

    def _document_error(
        self, doc: dict[str, Any], blob: bytes | None, attributes: list[dict[str, Any]]
    ) -> str | None:
        """Why Kendra would refuse this one document (``InvalidRequest``), or None."""
        if blob is not None and "S3Path" in doc:
            return "A document can have either a Blob or an S3Path, not both."
        if blob is not None and len(blob) > self.max_document_bytes:
            return (
                f"The document is {len(blob)} bytes, "
                f"over the inline document limit of {self.max_document_bytes} bytes."
            )
        acl = doc.get("AccessControlList") or []
        if len(acl) > MAX_ACL_ENTRIES:
            return (
                f"The AccessControlList has {len(acl)} entries; a document can have at most "
                f"{MAX_ACL_ENTRIES}."
            )
        seen: set[str] = set()
        for attribute in attributes:
            key, value = attribute["Key"], attribute["Value"]
            if key in seen:
                return f"Attribute {key} is given more than once."
            seen.add(key)
            members = [name for name in VALUE_MEMBER_TYPES if value.get(name) is not None]
            if len(members) != 1:
                return f"Attribute {key} must have exactly one of {', '.join(VALUE_MEMBER_TYPES)}."
            given = VALUE_MEMBER_TYPES[members[0]]
            strings = value.get("StringListValue")
            if strings is not None and len(strings) > MAX_STRING_LIST_VALUES:
                return (
                    f"Attribute {key} has {len(strings)} values; a StringListValue can have at most "
                    f"{MAX_STRING_LIST_VALUES}."
                )
            expected = self._field_type(key, given)
            if expected is None:
                return (
                    f"Attribute {key} is not defined at the index level. Add it as an index field "
                    "(UpdateIndex) or remove it from the document."
                )
            if expected != given:
                return (
                    f"Attribute {key} has a {given} value, but the index field {key} is of type {expected}."
                )
        return None

    def _field_type(self, key: str, given: str) -> str | None:
        """The declared type of ``key``; ``given`` when any custom key is accepted; None if undeclared."""
        if self.index_fields is not None and key in self.index_fields:
            return self.index_fields[key]
        if key in RESERVED_ATTRIBUTES:
            return RESERVED_ATTRIBUTES[key]
        return given if self.index_fields is None else None

    def _indexing_result(self, doc: dict[str, Any], blob: bytes | None) -> tuple[str, str | None, str | None]:
        """What asynchronous indexing will make of the content: (status, FailureCode, FailureReason)."""
        content = blob
        if "S3Path" in doc:
            if self.s3_reader is None:
                return "INDEXED", None, None  # the emulator cannot look at the object
            bucket, key = doc["S3Path"]["Bucket"], doc["S3Path"]["Key"]
            try:
                content = self.s3_reader(bucket, key)
            except Exception as error:
                return "FAILED", CONTENT_FAILURE_CODE, f"Could not read s3://{bucket}/{key}: {error}"[:2048]
        if not content:
            return "FAILED", CONTENT_FAILURE_CODE, "The document has no content."
        if doc.get("ContentType") in TEXT_CONTENT_TYPES:
            try:
                content.decode("utf-8")
            except UnicodeDecodeError as error:
                return (
                    "FAILED",
                    CONTENT_FAILURE_CODE,
                    f"The {doc['ContentType']} document is not valid UTF-8 (byte {error.start}).",
                )
        return "INDEXED", None, None

    def _admit(self, item: _PreparedDocument, now: float) -> tuple[str | None, str]:
        """State-dependent per-document checks (under the lock): sync jobs, then injected InternalError."""
        if item.execution_id is not None:
            job = self._jobs.get(item.execution_id)
            if job is None:
                return "InvalidRequest", f"Data source sync job {item.execution_id} does not exist."
            if item.data_source_id is not None and job.data_source_id != item.data_source_id:
                return (
                    "InvalidRequest",
                    f"Data source sync job {item.execution_id} belongs to data source {job.data_source_id}, "
                    f"not {item.data_source_id}.",
                )
            if job.stopped_at is not None:
                return (
                    "InvalidRequest",
                    f"Data source sync job {item.execution_id} is not running (it was stopped); "
                    "start a new sync job before putting documents.",
                )
        elif item.data_source_id is not None:
            if self.data_source_ids is not None and item.data_source_id not in self.data_source_ids:
                return "InvalidRequest", f"Data source {item.data_source_id} does not exist."
            if item.data_source_id not in self._running:
                return "InvalidRequest", f"Data source {item.data_source_id} has no running sync job."
        if (
            self.internal_error_probability
            and self._draw("internal-error", item.doc_id) < self.internal_error_probability
        ):
            return "InternalError", "An internal error occurred while processing the document. Try again."
        return None, ""

    def _job_of(self, item: _PreparedDocument) -> _SyncJob | None:
        if item.execution_id is not None:
            return self._jobs.get(item.execution_id)
        if item.data_source_id is not None:
            return self._running.get(item.data_source_id)
        return None

    # --- BatchDeleteDocument ---

    def _batch_delete_document(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("BatchDeleteDocument", params)
        doc_ids: list[str] = params["DocumentIdList"]
        target = params.get("DataSourceSyncJobMetricTarget")
        failed: list[dict[str, Any]] = []
        with self._lock:
            job: _SyncJob | None = None
            refusal: str | None = None
            if target is not None:
                data_source_id = target["DataSourceId"]
                self._check_data_source(data_source_id)
                job_id = target.get("DataSourceSyncJobId")
                job = self._jobs.get(job_id) if job_id else self._running.get(data_source_id)
                if job is None or job.stopped_at is not None or job.data_source_id != data_source_id:
                    named = f" {job_id}" if job_id else ""
                    refusal = f"Data source {data_source_id} has no running sync job{named}."
            for doc_id in doc_ids:
                if refusal is not None:
                    message = refusal
                elif self._documents.pop(doc_id, None) is None:
                    message = DOCUMENT_MISSING_MESSAGE
                else:
                    if job is not None:
                        job.metrics["DocumentsDeleted"] += 1
                    continue
                entry = {"Id": doc_id, "ErrorCode": "InvalidRequest", "ErrorMessage": message}
                if target is not None:
                    entry["DataSourceId"] = target["DataSourceId"]
                failed.append(entry)
            self._append_call("BatchDeleteDocument", list(doc_ids), 0, "ok")
        return {"FailedDocuments": failed}

    # --- BatchGetDocumentStatus ---

    def _batch_get_document_status(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("BatchGetDocumentStatus", params)
        statuses: list[dict[str, Any]] = []
        with self._lock:
            now = self.clock()
            for info in params["DocumentInfoList"]:
                doc = self._documents.get(info["DocumentId"])
                status: dict[str, Any] = {"DocumentId": info["DocumentId"]}
                if doc is None:
                    status["DocumentStatus"] = "NOT_FOUND"
                else:
                    status["DocumentStatus"] = doc.status(now)
                    if status["DocumentStatus"] in ("FAILED", "UPDATE_FAILED"):
                        status["FailureCode"] = doc.failure_code
                        status["FailureReason"] = doc.failure_reason
                statuses.append(status)
            ids = [info["DocumentId"] for info in params["DocumentInfoList"]]
            self._append_call("BatchGetDocumentStatus", ids, 0, "ok")
        return {"Errors": [], "DocumentStatusList": statuses}

    # --- DescribeIndex ---

    def _describe_index(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("DescribeIndex", params)
        fields = dict(RESERVED_ATTRIBUTES)
        fields.update(self.index_fields or {})
        with self._lock:
            now = self.clock()
            indexed = [doc for doc in self._documents.values() if doc.status(now) in _INDEXED_STATUSES]
            self._append_call("DescribeIndex", [], 0, "ok")
        created = self._wall_origin
        return {
            "Id": self.index_id,
            "Name": DEFAULT_INDEX_NAME,
            "Edition": "ENTERPRISE_EDITION",
            "Status": "ACTIVE",
            "Description": "Kendra emulator (sandbox)",
            "CreatedAt": created,
            "UpdatedAt": created,
            "DocumentMetadataConfigurations": [
                {
                    "Name": name,
                    "Type": field_type,
                    "Search": {
                        "Facetable": False,
                        "Searchable": field_type in ("STRING_VALUE", "STRING_LIST_VALUE"),
                        "Displayable": True,
                        "Sortable": False,
                    },
                }
                for name, field_type in fields.items()
            ],
            "IndexStatistics": {
                "FaqStatistics": {"IndexedQuestionAnswersCount": 0},
                "TextDocumentStatistics": {
                    "IndexedTextDocumentsCount": len(indexed),
                    "IndexedTextBytes": sum(doc.size for doc in indexed),
                },
            },
        }

    # --- CUSTOM data source sync jobs ---

    def _check_data_source(self, data_source_id: str) -> None:
        if self.data_source_ids is not None and data_source_id not in self.data_source_ids:
            raise _ServiceError(
                "ResourceNotFoundException",
                f"Data source {data_source_id} does not exist in index {self.index_id}.",
            )

    def _start_data_source_sync_job(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("StartDataSourceSyncJob", params)
        data_source_id = params["Id"]
        with self._lock:
            self._check_data_source(data_source_id)
            running = self._running.get(data_source_id)
            if running is not None:
                raise _ServiceError(
                    "ResourceInUseException",
                    f"Data source {data_source_id} is already syncing (execution {running.execution_id}).",
                )
            job = _SyncJob(
                execution_id=str(uuid.uuid4()), data_source_id=data_source_id, started_at=self.clock()
            )
            self._jobs[job.execution_id] = job
            self._running[data_source_id] = job
            self._history.setdefault(data_source_id, []).append(job)
            self._append_call("StartDataSourceSyncJob", [], 0, "ok")
        return {"ExecutionId": job.execution_id}

    def _stop_data_source_sync_job(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("StopDataSourceSyncJob", params)
        data_source_id = params["Id"]
        with self._lock:
            self._check_data_source(data_source_id)
            job = self._running.pop(data_source_id, None)
            if job is None:
                raise _ServiceError(
                    "ValidationException", f"Data source {data_source_id} has no running sync job."
                )
            job.stopped_at = self.clock()
            self._append_call("StopDataSourceSyncJob", [], 0, "ok")
        return {}

    def _list_data_source_sync_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate("ListDataSourceSyncJobs", params)
        data_source_id = params["Id"]
        status_filter = params.get("StatusFilter")
        time_filter = params.get("StartTimeFilter") or {}
        with self._lock:
            self._check_data_source(data_source_id)
            now = self.clock()
            history = []
            for job in reversed(self._history.get(data_source_id, [])):  # newest first
                status = job.status(now, self.indexing_delay_seconds)
                started = self._now_wall(job.started_at)
                if status_filter and status != status_filter:
                    continue
                if "StartTime" in time_filter and started < time_filter["StartTime"]:
                    continue
                if "EndTime" in time_filter and started > time_filter["EndTime"]:
                    continue
                entry: dict[str, Any] = {
                    "ExecutionId": job.execution_id,
                    "StartTime": started,
                    "Status": status,
                    "Metrics": {
                        name: str(job.metrics[name])
                        for name in (
                            "DocumentsAdded",
                            "DocumentsModified",
                            "DocumentsDeleted",
                            "DocumentsFailed",
                            "DocumentsScanned",
                        )
                    },
                }
                if status == "SUCCEEDED":
                    assert job.stopped_at is not None
                    entry["EndTime"] = self._now_wall(job.stopped_at + self.indexing_delay_seconds)
                history.append(entry)
            self._append_call("ListDataSourceSyncJobs", [], 0, "ok")
        start = int(params.get("NextToken") or 0)
        page_size = params.get("MaxResults") or len(history) or 1
        result: dict[str, Any] = {"History": history[start : start + page_size]}
        if start + page_size < len(history):
            result["NextToken"] = str(start + page_size)
        return result


# --- request and response helpers -----------------------------------------------------------------


def _operation_name(request: AWSPreparedRequest, event_name: str) -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
    return event_name.rsplit(".", 1)[-1]


def _summarize(operation: str, params: dict[str, Any]) -> tuple[list[str], int]:
    """The document ids a call names and its decoded Blob bytes, for :attr:`KendraEmulator.calls`."""
    if operation == "BatchPutDocument":
        documents = params.get("Documents") or []
        nbytes = sum(_decoded_length(doc["Blob"]) for doc in documents if "Blob" in doc)
        return [doc.get("Id") for doc in documents], nbytes
    if operation == "BatchDeleteDocument":
        return list(params.get("DocumentIdList") or []), 0
    if operation == "BatchGetDocumentStatus":
        return [info.get("DocumentId") for info in params.get("DocumentInfoList") or []], 0
    return [], 0


def _decoded_length(encoded: str) -> int:
    """Bytes a base64 string decodes to, without decoding it."""
    return len(encoded) * 3 // 4 - encoded[-2:].count("=") if encoded else 0


def _string_attribute(attributes: list[dict[str, Any]], key: str) -> str | None:
    for attribute in attributes:
        if attribute.get("Key") == key:
            return attribute.get("Value", {}).get("StringValue")
    return None


def _snapshot_value(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value as the snapshot shows it: dates as ISO-8601, the rest as sent."""
    if value.get("DateValue") is not None:
        return {"DateValue": datetime.fromtimestamp(value["DateValue"], tz=UTC).isoformat()}
    return {name: value[name] for name in VALUE_MEMBER_TYPES if value.get(name) is not None}


def _json_response(request: AWSPreparedRequest, status: int, payload: dict[str, Any]) -> AWSResponse:
    body = json.dumps(payload).encode("utf-8")
    headers = {
        "x-amzn-RequestId": str(uuid.uuid4()),
        "Content-Type": "application/x-amz-json-1.1",
        "Content-Length": str(len(body)),
    }
    return AWSResponse(request.url, status, headers, _RawBody(body))


def _error_response(request: AWSPreparedRequest, error: _ServiceError) -> AWSResponse:
    payload = {"__type": error.code, "message": error.message}
    return _json_response(request, _ERROR_STATUS.get(error.code, 400), payload)


# --- process-wide installation --------------------------------------------------------------------

_ROUTER_ID = "kendra-emulator-router"
_install_lock = threading.Lock()
_active: list[KendraEmulator] = []
_original_create_client: Callable[..., Any] | None = None


def _route(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
    with _install_lock:
        emulator = _active[-1] if _active else None
    if emulator is None:
        raise NoEmulatorInstalledError(
            "This kendra client was created under KendraEmulator.installed(), which has exited; "
            "create clients inside the block (the emulator never lets them reach real AWS)."
        )
    return emulator._handle(request, **kwargs)


def _create_client_with_emulator(self: botocore.client.ClientCreator, *args: Any, **kwargs: Any) -> Any:
    assert _original_create_client is not None
    client = _original_create_client(self, *args, **kwargs)
    if client.meta.service_model.service_name == "kendra":
        client.meta.events.register_first("before-send.kendra", _route, unique_id=_ROUTER_ID)
    return client


def _install(emulator: KendraEmulator) -> None:
    global _original_create_client
    with _install_lock:
        if not _active:
            _original_create_client = botocore.client.ClientCreator.create_client
            botocore.client.ClientCreator.create_client = _create_client_with_emulator  # type: ignore[method-assign]
        _active.append(emulator)


def _uninstall(emulator: KendraEmulator) -> None:
    global _original_create_client
    with _install_lock:
        position = len(_active) - 1 - _active[::-1].index(emulator)
        del _active[position]
        if not _active and _original_create_client is not None:
            botocore.client.ClientCreator.create_client = _original_create_client  # type: ignore[method-assign]
            _original_create_client = None
