"""The only module that talks to Amazon Kendra (another sink would be a sibling of this module).

:class:`KendraIndex` sends already-built ``Document`` dicts and document ids, retries what is worth
retrying with capped, fully-jittered exponential backoff, never waits past the caller's
:class:`~kendra_ingest.deadline.Deadline`, and returns exactly one :class:`Outcome` per document.

Retried: call-level throttling, ``InternalServerException``/5xx and connection errors (the whole call),
and per-document ``InternalError`` (only those documents). Never retried: ``ValidationException``,
``AccessDeniedException``, ``ResourceNotFoundException``, ``ServiceQuotaExceededException`` (index full:
an operator must act), ``ConflictException`` and per-document ``InvalidRequest``.

Example::

    index = KendraIndex(settings.kendra_index_id, role_arn=settings.kendra_role_arn)
    outcomes = index.put(documents, deadline=Deadline.from_context(context))
    index.calls.model_dump(by_alias=True)   # {"batchPutCalls": 1, ...}
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from kendra_ingest import aws, telemetry
from kendra_ingest.deadline import Deadline
from kendra_ingest.models import ErrorCode, KendraCounts, Operation, Outcome
from kendra_ingest.settings import MAX_DOCUMENTS_PER_CALL

#: Full-jitter backoff: attempt n waits uniform(0, min(CAP, BASE * 2**(n-1))) seconds.
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0
#: Attempts per call (first included) that failed for a reason other than throttling, even when the
#: deadline is far away (a 15-minute Lambda): errors that persist are reported, not retried for ever.
MAX_ATTEMPTS = 8
#: Throttling only means "wait your turn": with many workers on one quota a call may be throttled far
#: more often than it fails, so throttled attempts have their own, larger bound (about 2.5 min of backoff).
MAX_THROTTLED_ATTEMPTS = 60

#: Budget of the small control-plane calls (DescribeIndex, sync jobs) when the caller gives none.
CONTROL_CALL_BUDGET_SECONDS = 30.0

#: Status reported by :meth:`KendraIndex.status` for an id Kendra answered with a non-retryable error.
STATUS_ERROR = "ERROR"

SYNC_SOURCE_ATTRIBUTE = "_data_source_id"
SYNC_JOB_ATTRIBUTE = "_data_source_sync_job_execution_id"

_THROTTLING = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "SlowDown",
})
_TRANSIENT = frozenset({
    "InternalServerException", "InternalServerError", "InternalFailure", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
_DOC_RETRYABLE = "InternalError"
_DOC_MISSING = re.compile(r"(n't|not) exist|not found|no such", re.IGNORECASE)


class KendraError(RuntimeError):
    """A Kendra call failed for good (non-retryable, or retries ran out)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SyncJobBusy(KendraError):
    """The data source already runs a sync job (``ResourceInUseException``): wait and try again."""


class _Fatal(Exception):
    """Internal: a call-level error that must not be retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


class KendraIndex:
    """One Kendra index seen through the Documents API, with deadline-aware retries and call counts.

    Not thread-safe: use one instance per worker thread (counts add up with ``KendraCounts.__add__``).
    """

    def __init__(
        self,
        index_id: str,
        *,
        client: Any = None,
        role_arn: str | None = None,
        data_source_id: str | None = None,
        sync_job_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        pacer: Any = None,
    ) -> None:
        """``client`` defaults to the process's boto3 ``kendra`` client, made on first use.

        ``pacer`` (a :class:`kendra_ingest.pacing.QuotaPacer`) spaces puts and deletes to the index's
        quota across all workers; without it only throttling slows them down.

        ``sync_job_id`` is the execution id of a running data-source sync job (see
        :meth:`start_sync_job`); while set, puts and deletes are attributed to it.
        """
        self.index_id = index_id
        self.role_arn = role_arn
        self.data_source_id = data_source_id
        self.sync_job_id = sync_job_id
        self.calls = KendraCounts()
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._date_fields: frozenset[str] | None = None
        self._last_error = ""
        self._limit_reached = False
        self._pacer = pacer

    @property
    def counts(self) -> KendraCounts:
        """Alias of :attr:`calls` (the requests this instance sent, for summary.json's ``kendra``)."""
        return self.calls

    @property
    def client(self) -> Any:
        """The boto3 client (created lazily so constructing an index costs nothing)."""
        if self._client is None:
            self._client = aws.client("kendra")
        return self._client

    # ---------------------------------------------------------------- documents API

    def put(self, documents: Sequence[dict[str, Any]], *, deadline: Deadline) -> list[Outcome]:
        """BatchPutDocument up to 10 documents; one ``put`` or ``failed`` Outcome per document, in order.

        ``put`` means Kendra accepted the document; indexing is asynchronous (see :meth:`status`).
        """
        ids = _unique_ids([doc["Id"] for doc in documents], "put")
        by_id = {doc["Id"]: self._attributed(doc) for doc in documents}
        done: dict[str, Outcome] = {}

        def attempt(pending: list[str]) -> list[str]:
            request: dict[str, Any] = {"IndexId": self.index_id, "Documents": [by_id[i] for i in pending]}
            if self.role_arn:
                request["RoleArn"] = self.role_arn
            self._pace("BatchPutDocument", deadline)
            response = self._send("batch_put_document", request)
            return self._settle("put", pending, response.get("FailedDocuments") or [], done)

        return self._run_batch("put", ids, attempt, done, deadline)

    def delete(self, document_ids: Sequence[str], *, deadline: Deadline) -> list[Outcome]:
        """BatchDeleteDocument up to 10 ids; one ``deleted`` or ``failed`` Outcome per id, in order.

        An id Kendra does not have counts as ``deleted``: deletes are idempotent.
        """
        ids = _unique_ids(list(document_ids), "delete")
        done: dict[str, Outcome] = {}

        def attempt(pending: list[str]) -> list[str]:
            request: dict[str, Any] = {"IndexId": self.index_id, "DocumentIdList": list(pending)}
            if self.sync_job_id and self.data_source_id:
                request["DataSourceSyncJobMetricTarget"] = {
                    "DataSourceId": self.data_source_id, "DataSourceSyncJobId": self.sync_job_id,
                }
            self._pace("BatchDeleteDocument", deadline)
            response = self._send("batch_delete_document", request)
            return self._settle("delete", pending, response.get("FailedDocuments") or [], done)

        return self._run_batch("delete", ids, attempt, done, deadline)

    def status(
        self, document_ids: Sequence[str], *, deadline: Deadline,
    ) -> dict[str, tuple[str, str | None, str | None]]:
        """BatchGetDocumentStatus for any number of ids (10 per call): id -> (status, code, reason).

        Ids Kendra answers with a non-retryable per-item error map to ``(STATUS_ERROR, code, message)``;
        ids still unanswered when retries or the deadline run out are absent (unknown: poll again).
        A non-retryable call-level error raises :class:`KendraError`.
        """
        unique = list(dict.fromkeys(document_ids))
        result: dict[str, tuple[str, str | None, str | None]] = {}

        def attempt(pending: list[str]) -> list[str]:
            response = self._send("batch_get_document_status", {
                "IndexId": self.index_id, "DocumentInfoList": [{"DocumentId": i} for i in pending],
            })
            for item in response.get("DocumentStatusList") or []:
                result[item["DocumentId"]] = (
                    item.get("DocumentStatus", ""), item.get("FailureCode"), item.get("FailureReason"),
                )
            retry: list[str] = []
            for error in response.get("Errors") or []:
                doc_id = error.get("DocumentId")
                if doc_id not in pending:
                    continue
                if error.get("ErrorCode") == _DOC_RETRYABLE:
                    retry.append(doc_id)
                    self._last_error = f"{_DOC_RETRYABLE}: {error.get('ErrorMessage', '')}"
                else:
                    result[doc_id] = (STATUS_ERROR, error.get("ErrorCode"), error.get("ErrorMessage"))
            return retry

        for start in range(0, len(unique), MAX_DOCUMENTS_PER_CALL):
            chunk = unique[start:start + MAX_DOCUMENTS_PER_CALL]
            _left, _attempts, fatal = self._retry(chunk, attempt, deadline)
            if fatal is not None:
                raise KendraError(fatal.code, fatal.message)
        return result

    # ---------------------------------------------------------------- control plane

    def date_fields(self, *, deadline: Deadline | None = None) -> frozenset[str]:
        """Names of the index's DATE_VALUE fields (DescribeIndex), cached on this instance."""
        if self._date_fields is None:
            response = self._control("describe_index", {"Id": self.index_id}, deadline)
            self._date_fields = frozenset(
                field["Name"] for field in response.get("DocumentMetadataConfigurations") or []
                if field.get("Type") == "DATE_VALUE"
            )
        return self._date_fields

    def start_sync_job(self, *, deadline: Deadline | None = None) -> str | None:
        """Start a sync job on the configured CUSTOM data source; None when none is configured.

        Raises :class:`SyncJobBusy` while another sync job of that data source runs.
        """
        if not self.data_source_id:
            return None
        try:
            response = self._control(
                "start_data_source_sync_job", {"Id": self.data_source_id, "IndexId": self.index_id}, deadline,
            )
        except KendraError as exc:
            if exc.code == "ResourceInUseException":
                raise SyncJobBusy(exc.code, exc.message) from exc
            raise
        self.sync_job_id = response["ExecutionId"]
        return self.sync_job_id

    def stop_sync_job(self, *, deadline: Deadline | None = None) -> bool:
        """Stop the data source's running sync job; False when there is no data source or job."""
        if not self.data_source_id or not self.sync_job_id:
            return False
        request = {"Id": self.data_source_id, "IndexId": self.index_id}
        self._control("stop_data_source_sync_job", request, deadline)
        self.sync_job_id = None
        return True

    # ---------------------------------------------------------------- machinery

    def _attributed(self, document: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``document`` carrying the sync-job attributes when a sync job is active."""
        if not (self.sync_job_id and self.data_source_id):
            return document
        extra = {SYNC_SOURCE_ATTRIBUTE: self.data_source_id, SYNC_JOB_ATTRIBUTE: self.sync_job_id}
        attributes = [a for a in document.get("Attributes") or [] if a.get("Key") not in extra]
        attributes += [{"Key": key, "Value": {"StringValue": value}} for key, value in extra.items()]
        return {**document, "Attributes": attributes}

    def _settle(
        self,
        operation: Operation,
        pending: list[str],
        failed: list[dict[str, Any]],
        done: dict[str, Outcome],
    ) -> list[str]:
        """Record the outcome of each pending id from a 200 answer; return the ids to retry."""
        failures = {f.get("Id"): f for f in failed}
        success = "put" if operation == "put" else "deleted"
        retry: list[str] = []
        for doc_id in pending:
            failure = failures.get(doc_id)
            if failure is None:
                done[doc_id] = Outcome(document_id=doc_id, operation=operation, status=success)
                continue
            code = failure.get("ErrorCode") or "Unknown"
            message = failure.get("ErrorMessage") or ""
            if code == _DOC_RETRYABLE:
                retry.append(doc_id)
                self._last_error = f"{code}: {message}"
            elif operation == "delete" and _DOC_MISSING.search(message):
                done[doc_id] = Outcome(document_id=doc_id, operation=operation, status=success)
            else:
                done[doc_id] = Outcome.failed(doc_id, operation, code, message)
        return retry

    def _run_batch(
        self,
        operation: Operation,
        ids: list[str],
        attempt: Callable[[list[str]], list[str]],
        done: dict[str, Outcome],
        deadline: Deadline,
    ) -> list[Outcome]:
        left, attempts, fatal = self._retry(ids, attempt, deadline)
        for doc_id in left:
            if fatal is not None:
                done[doc_id] = Outcome.failed(doc_id, operation, fatal.code, fatal.message)
            else:
                done[doc_id] = Outcome.failed(
                    doc_id, operation, ErrorCode.RETRIES_EXHAUSTED.value, self._exhausted(attempts),
                )
        return [done[doc_id] for doc_id in ids]

    def _exhausted(self, attempts: int) -> str:
        why = "attempt limit reached" if self._limit_reached else "deadline reached"
        last = self._last_error or "none"
        return f"gave up after {attempts} attempt(s) ({why}); last error: {last}"

    def _retry(
        self, ids: list[str], attempt: Callable[[list[str]], list[str]], deadline: Deadline,
    ) -> tuple[list[str], int, _Fatal | None]:
        """Call ``attempt(pending)`` until nothing is pending, an error is fatal, or time/attempts run out.

        ``attempt`` returns the ids to try again; a raised retryable error retries all pending ids.
        Returns (ids left, attempts made, the fatal error if any).
        """
        pending = list(ids)
        attempts = failures = 0
        self._last_error = ""
        self._limit_reached = False
        while pending:
            if deadline.expired():
                return pending, attempts, None
            attempts += 1
            throttled = False
            try:
                pending = attempt(pending)
            except _Fatal as fatal:
                return pending, attempts, fatal
            except _Retryable as exc:
                self._last_error = str(exc)
                throttled = exc.throttled
            if not pending:
                break
            failures += not throttled
            if failures >= MAX_ATTEMPTS or attempts >= MAX_THROTTLED_ATTEMPTS:
                self._limit_reached = True
                return pending, attempts, None
            delay = self._backoff(attempts)
            if not deadline.allows(delay):
                return pending, attempts, None
            self._sleep(delay)
        return [], attempts, None

    def _pace(self, operation: str, deadline: Deadline) -> None:
        """Wait for the shared quota's next slot; without one before the deadline, give up retrying."""
        if self._pacer is not None and not self._pacer.acquire(operation, deadline):
            raise _Retryable(f"no {operation} slot of the configured kendraTps before the deadline")

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**(attempt-1)))."""
        return self._rng.uniform(0.0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))

    def _send(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        """One API request; counts it and turns botocore errors into _Retryable / _Fatal."""
        from botocore.exceptions import ClientError, HTTPClientError, ParamValidationError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            with telemetry.kendra_call(method, throttling=_THROTTLING):
                response = getattr(self.client, method)(**request)
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            meta = exc.response.get("ResponseMetadata") or {}
            self._count(method, meta)
            code = error.get("Code") or "Unknown"
            message = error.get("Message") or str(exc)
            if code in _THROTTLING:
                self.calls.throttled += 1
                raise _Retryable(f"{code}: {message}", throttled=True) from exc
            if code in _TRANSIENT or int(meta.get("HTTPStatusCode") or 0) >= 500:
                raise _Retryable(f"{code}: {message}") from exc
            raise _Fatal(code, message) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            # The request may or may not have arrived; puts and deletes are idempotent, so resend.
            self._count(method, {})
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        except ParamValidationError as exc:
            # botocore refused to serialise the request: nothing was sent and resending cannot help.
            raise _Fatal(type(exc).__name__, str(exc)) from exc
        self._count(method, response.get("ResponseMetadata") or {})
        return response

    def _count(self, method: str, meta: dict[str, Any]) -> None:
        # botocore's own attempts reached Kendra too (only when someone raises aws.MAX_ATTEMPTS).
        sent = 1 + int(meta.get("RetryAttempts") or 0)
        if method == "batch_put_document":
            self.calls.batch_put_calls += sent
        elif method == "batch_delete_document":
            self.calls.batch_delete_calls += sent
        elif method == "batch_get_document_status":
            self.calls.status_calls += sent

    def _control(self, method: str, request: dict[str, Any], deadline: Deadline | None) -> dict[str, Any]:
        """A single non-batch call with the same retry rules; raises KendraError when it fails for good."""
        if deadline is None:
            deadline = Deadline(CONTROL_CALL_BUDGET_SECONDS, clock=self._clock)
        answer: dict[str, Any] = {}

        def attempt(pending: list[str]) -> list[str]:
            answer.update(self._send(method, request))
            return []

        left, attempts, fatal = self._retry([method], attempt, deadline)
        if fatal is not None:
            raise KendraError(fatal.code, fatal.message)
        if left:
            raise KendraError(ErrorCode.RETRIES_EXHAUSTED.value, f"{method}: {self._exhausted(attempts)}")
        return answer


class _Retryable(Exception):
    """Internal: a call-level error worth retrying (throttling, 5xx, connection)."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


def _unique_ids(ids: list[str], operation: str) -> list[str]:
    """Validate one call's ids: at most 10 and no duplicates (outcomes are keyed by id)."""
    if len(ids) > MAX_DOCUMENTS_PER_CALL:
        raise ValueError(f"{operation}: {len(ids)} documents in one call; Kendra takes at most "
                         f"{MAX_DOCUMENTS_PER_CALL} (pack them first)")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{operation}: duplicate document ids in one call")
    return ids
