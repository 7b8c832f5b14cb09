"""KendraIndex: retries, deadline, error mapping, counts, status batching, sync jobs.

Kendra is played by a small scripted fake (``FakeKendra``) or by botocore's Stubber on a real client
(which validates every request against the Kendra service model). Time is fake: nothing sleeps.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import ANY, Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kendra_ingest import aws
from kendra_ingest import kendra as kendra_module
from kendra_ingest.deadline import Deadline
from kendra_ingest.kendra import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    MAX_THROTTLED_ATTEMPTS,
    STATUS_ERROR,
    KendraError,
    KendraIndex,
    SyncJobBusy,
)

INDEX_ID = "0123456789abcdef0123456789abcdef0123"


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def client_error(
    code: str, message: str = "boom", status: int = 400, op: str = "BatchPutDocument",
) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


Behaviour = Callable[[dict[str, Any]], dict[str, Any]]


class FakeKendra:
    """Answers each call with the next scripted behaviour (an exception or a function of the request)."""

    def __init__(self, script: list[Exception | Behaviour] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def _next(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((operation, request))
        step = self.script.pop(0) if self.script else (lambda _r: {})
        if isinstance(step, Exception):
            raise step
        return step(request)

    def batch_put_document(self, **request: Any) -> dict[str, Any]:
        return self._next("put", request)

    def batch_delete_document(self, **request: Any) -> dict[str, Any]:
        return self._next("delete", request)

    def batch_get_document_status(self, **request: Any) -> dict[str, Any]:
        return self._next("status", request)

    def describe_index(self, **request: Any) -> dict[str, Any]:
        return self._next("describe", request)

    def sent_ids(self, operation: str = "put") -> list[list[str]]:
        out = []
        for op, request in self.requests:
            if op == operation == "put":
                out.append([d["Id"] for d in request["Documents"]])
            elif op == operation == "delete":
                out.append(list(request["DocumentIdList"]))
            elif op == operation == "status":
                out.append([d["DocumentId"] for d in request["DocumentInfoList"]])
        return out


def fail_docs(codes: dict[str, tuple[str, str]]) -> Behaviour:
    """A 200 answer failing the given ids (id -> (ErrorCode, ErrorMessage)) if they were sent."""
    def answer(request: dict[str, Any]) -> dict[str, Any]:
        sent = ({d["Id"] for d in request["Documents"]} if "Documents" in request
                else set(request["DocumentIdList"]))
        return {"FailedDocuments": [{"Id": i, "ErrorCode": c, "ErrorMessage": m}
                                    for i, (c, m) in codes.items() if i in sent]}
    return answer


def docs(*ids: str) -> list[dict[str, Any]]:
    return [{"Id": i, "Title": i, "Blob": b"x", "ContentType": "PLAIN_TEXT"} for i in ids]


def make_index(fake: Any, t: FakeTime, **kwargs: Any) -> KendraIndex:
    return KendraIndex(INDEX_ID, client=fake, sleep=t.sleep, clock=t.clock, rng=random.Random(7), **kwargs)


@pytest.fixture
def t() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region so a real client can be built (Stubber answers; nothing is sent)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    yield
    aws.reset_clients()


# ------------------------------------------------------------------------------------------- aws


def test_one_client_per_service_shared_by_threads_with_standard_retries(fake_env: None) -> None:
    first = aws.client("kendra")
    assert aws.client("kendra") is first
    retries = first.meta.config.retries
    assert retries["mode"] == "standard" and retries["total_max_attempts"] == aws.MAX_ATTEMPTS["kendra"]
    assert aws.client("dynamodb").meta.config.retries["total_max_attempts"] == aws.DEFAULT_MAX_ATTEMPTS
    assert first.meta.config.connect_timeout == aws.CONNECT_TIMEOUT_SECONDS
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(aws.client("kendra")))
    thread.start()
    thread.join()
    assert other[0] is first  # built once: clients are thread-safe, building them is slow
    aws.reset_clients()
    assert aws.client("kendra") is not first


# ------------------------------------------------------------------------------------------- put


def test_put_all_accepted(t: FakeTime) -> None:
    fake = FakeKendra()
    index = make_index(fake, t)
    outcomes = index.put(docs("a", "b"), deadline=Deadline(60, clock=t.clock))
    assert [(o.document_id, o.status, o.operation) for o in outcomes] == [
        ("a", "put", "put"), ("b", "put", "put")]
    assert fake.requests[0][1]["IndexId"] == INDEX_ID
    assert "RoleArn" not in fake.requests[0][1]
    assert index.calls.model_dump(by_alias=True) == {
        "batchPutCalls": 1, "batchDeleteCalls": 0, "statusCalls": 0, "throttled": 0}
    assert t.sleeps == []


def test_only_internal_error_documents_are_retried(t: FakeTime) -> None:
    fake = FakeKendra([fail_docs({"b": ("InternalError", "try later"),
                                  "c": ("InvalidRequest", "bad field")})])
    index = make_index(fake, t)
    outcomes = index.put(docs("a", "b", "c"), deadline=Deadline(60, clock=t.clock))
    assert fake.sent_ids() == [["a", "b", "c"], ["b"]]
    by_id = {o.document_id: o for o in outcomes}
    assert by_id["a"].status == by_id["b"].status == "put"
    assert (by_id["c"].status, by_id["c"].error_code, by_id["c"].error_message) == (
        "failed", "InvalidRequest", "bad field")
    assert index.calls.batch_put_calls == 2
    assert len(t.sleeps) == 1 and 0 <= t.sleeps[0] <= BACKOFF_BASE_SECONDS


def test_throttling_then_success(t: FakeTime) -> None:
    fake = FakeKendra([client_error("ThrottlingException", "slow down"),
                       client_error("ThrottlingException", "slow down")])
    index = make_index(fake, t)
    outcomes = index.put(docs("a", "b"), deadline=Deadline(60, clock=t.clock))
    assert all(o.status == "put" for o in outcomes)
    assert fake.sent_ids() == [["a", "b"]] * 3
    assert index.calls.throttled == 2 and index.calls.batch_put_calls == 3
    # full jitter under a doubling ceiling
    assert len(t.sleeps) == 2
    assert t.sleeps[0] <= BACKOFF_BASE_SECONDS and t.sleeps[1] <= 2 * BACKOFF_BASE_SECONDS


@pytest.mark.parametrize("error", [
    client_error("InternalServerException", status=500),
    client_error("SomethingNew", status=503),
    EndpointConnectionError(endpoint_url="https://kendra.example"),
])
def test_transient_call_errors_are_retried(t: FakeTime, error: Exception) -> None:
    fake = FakeKendra([error])
    index = make_index(fake, t)
    outcomes = index.put(docs("a"), deadline=Deadline(60, clock=t.clock))
    assert [o.status for o in outcomes] == ["put"]
    assert index.calls.batch_put_calls == 2 and index.calls.throttled == 0


def test_deadline_stops_retries_and_reports_retries_exhausted(t: FakeTime) -> None:
    always = fail_docs({"b": ("InternalError", "still broken"), "c": ("InternalError", "still broken")})
    fake = FakeKendra([always] * 100)
    index = make_index(fake, t)
    start = t.now
    deadline = Deadline(1.0, clock=t.clock)
    outcomes = index.put(docs("a", "b", "c"), deadline=deadline)
    assert outcomes[0].status == "put"
    for o in outcomes[1:]:
        assert (o.status, o.error_code) == ("failed", "RetriesExhausted")
        assert "deadline reached" in o.error_message and "InternalError: still broken" in o.error_message
        assert f"{len(fake.requests)} attempt(s)" in o.error_message
    # never slept past the deadline, and stopped before the attempt limit
    assert t.now - start < 1.0
    assert 1 < len(fake.requests) < MAX_ATTEMPTS
    assert fake.sent_ids()[1:] == [["b", "c"]] * (len(fake.requests) - 1)


def test_attempt_limit_bounds_throttled_retries_without_deadline(t: FakeTime) -> None:
    fake = FakeKendra([client_error("ThrottlingException")] * 100)
    index = make_index(fake, t)
    outcomes = index.put(docs("a"), deadline=Deadline.never(clock=t.clock))
    assert len(fake.requests) == MAX_THROTTLED_ATTEMPTS
    assert outcomes[0].error_code == "RetriesExhausted"
    assert "attempt limit" in outcomes[0].error_message and "ThrottlingException" in outcomes[0].error_message
    assert index.calls.throttled == MAX_THROTTLED_ATTEMPTS
    assert all(s <= BACKOFF_CAP_SECONDS for s in t.sleeps)


def test_failures_other_than_throttling_have_the_smaller_limit(t: FakeTime) -> None:
    fake = FakeKendra([client_error("InternalServerException", status=500)] * 100)
    index = make_index(fake, t)
    outcomes = index.put(docs("a"), deadline=Deadline.never(clock=t.clock))
    assert len(fake.requests) == MAX_ATTEMPTS
    assert "attempt limit" in outcomes[0].error_message


def test_throttling_does_not_use_up_the_failure_limit(t: FakeTime) -> None:
    throttles = [client_error("ThrottlingException")] * (MAX_ATTEMPTS + 5)
    fake = FakeKendra(throttles)  # then success
    index = make_index(fake, t)
    outcomes = index.put(docs("a"), deadline=Deadline.never(clock=t.clock))
    assert outcomes[0].status == "put" and index.calls.throttled == MAX_ATTEMPTS + 5


def test_expired_deadline_sends_nothing(t: FakeTime) -> None:
    fake = FakeKendra()
    index = make_index(fake, t)
    outcomes = index.put(docs("a"), deadline=Deadline(0, clock=t.clock))
    assert fake.requests == []
    assert outcomes[0].error_code == "RetriesExhausted" and "0 attempt(s)" in outcomes[0].error_message


@pytest.mark.parametrize("code", [
    "ValidationException", "AccessDeniedException", "ResourceNotFoundException",
    "ServiceQuotaExceededException", "ConflictException",
])
def test_non_retryable_call_errors_fail_every_document(t: FakeTime, code: str) -> None:
    fake = FakeKendra([client_error(code, f"{code} happened")])
    index = make_index(fake, t)
    outcomes = index.put(docs("a", "b"), deadline=Deadline(60, clock=t.clock))
    assert len(fake.requests) == 1 and t.sleeps == []
    assert [(o.status, o.error_code, o.error_message) for o in outcomes] == [
        ("failed", code, f"{code} happened")] * 2


def test_fatal_error_after_partial_success_keeps_accepted_documents(t: FakeTime) -> None:
    fake = FakeKendra([fail_docs({"b": ("InternalError", "x")}),
                       client_error("AccessDeniedException", "nope")])
    outcomes = make_index(fake, t).put(docs("a", "b"), deadline=Deadline(60, clock=t.clock))
    assert [(o.status, o.error_code) for o in outcomes] == [
        ("put", None), ("failed", "AccessDeniedException")]


def test_put_rejects_more_than_ten_and_duplicates(t: FakeTime) -> None:
    index = make_index(FakeKendra(), t)
    with pytest.raises(ValueError, match="at most 10"):
        index.put(docs(*[str(i) for i in range(11)]), deadline=Deadline(60, clock=t.clock))
    with pytest.raises(ValueError, match="duplicate"):
        index.put(docs("a", "a"), deadline=Deadline(60, clock=t.clock))
    assert index.put([], deadline=Deadline(60, clock=t.clock)) == []


def test_put_request_shape_with_role_and_sync_job_is_valid_for_kendra(t: FakeTime, fake_env: None) -> None:
    """A real client + Stubber validates the request against the Kendra service model."""
    real = aws.client("kendra")
    index = make_index(real, t, role_arn="arn:aws:iam::123456789012:role/kendra-s3",
                       data_source_id="ds-1234567890", sync_job_id="exec-1")
    original = {"Id": "a", "S3Path": {"Bucket": "ingest-bucket", "Key": "k.txt"}, "ContentType": "PLAIN_TEXT",
                "Attributes": [{"Key": "team", "Value": {"StringValue": "hr"}},
                               {"Key": "_data_source_id", "Value": {"StringValue": "stale"}}]}
    expected_doc = {**original, "Attributes": [
        {"Key": "team", "Value": {"StringValue": "hr"}},
        {"Key": "_data_source_id", "Value": {"StringValue": "ds-1234567890"}},
        {"Key": "_data_source_sync_job_execution_id", "Value": {"StringValue": "exec-1"}},
    ]}
    with Stubber(real) as stub:
        stub.add_client_error("batch_put_document", "ThrottlingException", "Rate exceeded", 400)
        stub.add_response("batch_put_document", {"FailedDocuments": []}, {
            "IndexId": INDEX_ID, "RoleArn": "arn:aws:iam::123456789012:role/kendra-s3",
            "Documents": [expected_doc]})
        stub.add_response("batch_delete_document", {"FailedDocuments": [
            {"Id": "gone", "ErrorCode": "InvalidRequest",
             "ErrorMessage": "Document can't be deleted because it doesn't exist."}]}, {
            "IndexId": INDEX_ID, "DocumentIdList": ["gone"],
            "DataSourceSyncJobMetricTarget": {
                "DataSourceId": "ds-1234567890", "DataSourceSyncJobId": "exec-1"}})
        put = index.put([original], deadline=Deadline(60, clock=t.clock))
        deleted = index.delete(["gone"], deadline=Deadline(60, clock=t.clock))
        stub.assert_no_pending_responses()
    assert [o.status for o in put] == ["put"] and [o.status for o in deleted] == ["deleted"]
    assert original["Attributes"][1]["Value"]["StringValue"] == "stale"  # caller's dict untouched
    assert index.calls.model_dump(by_alias=True) == {
        "batchPutCalls": 2, "batchDeleteCalls": 1, "statusCalls": 0, "throttled": 1}


# ---------------------------------------------------------------------------------------- delete


def test_delete_unknown_id_counts_as_deleted_and_retries_internal_errors(t: FakeTime) -> None:
    fake = FakeKendra([fail_docs({
        "x": ("InvalidRequest", "Document can't be deleted because it doesn't exist."),
        "y": ("InternalError", "later"),
        "z": ("InvalidRequest", "Document id is malformed"),
    })])
    index = make_index(fake, t)
    outcomes = index.delete(["w", "x", "y", "z"], deadline=Deadline(60, clock=t.clock))
    assert [(o.document_id, o.status, o.operation) for o in outcomes] == [
        ("w", "deleted", "delete"), ("x", "deleted", "delete"), ("y", "deleted", "delete"),
        ("z", "failed", "delete")]
    assert outcomes[3].error_code == "InvalidRequest"
    assert fake.sent_ids("delete") == [["w", "x", "y", "z"], ["y"]]
    assert "DataSourceSyncJobMetricTarget" not in fake.requests[0][1]
    assert index.calls.batch_delete_calls == 2 and index.calls.batch_put_calls == 0


def test_delete_rejects_more_than_ten(t: FakeTime) -> None:
    with pytest.raises(ValueError):
        make_index(FakeKendra(), t).delete([str(i) for i in range(11)], deadline=Deadline(60, clock=t.clock))


# ---------------------------------------------------------------------------------------- status


def status_answer(request: dict[str, Any]) -> dict[str, Any]:
    ids = [d["DocumentId"] for d in request["DocumentInfoList"]]
    return {"DocumentStatusList": [
        {"DocumentId": i, "DocumentStatus": "FAILED", "FailureCode": "400", "FailureReason": "bad utf-8"}
        if i.endswith("7") else {"DocumentId": i, "DocumentStatus": "INDEXED"} for i in ids], "Errors": []}


def test_status_batches_of_ten(t: FakeTime) -> None:
    fake = FakeKendra([status_answer] * 3)
    index = make_index(fake, t)
    ids = [f"d{i}" for i in range(25)]
    result = index.status([*ids, "d3"], deadline=Deadline(60, clock=t.clock))
    assert [len(batch) for batch in fake.sent_ids("status")] == [10, 10, 5]
    assert sorted(i for batch in fake.sent_ids("status") for i in batch) == sorted(ids)
    assert set(result) == set(ids)
    assert result["d7"] == ("FAILED", "400", "bad utf-8") and result["d0"] == ("INDEXED", None, None)
    assert index.calls.status_calls == 3


def test_status_item_errors(t: FakeTime) -> None:
    def with_errors(request: dict[str, Any]) -> dict[str, Any]:
        return {"DocumentStatusList": [{"DocumentId": "a", "DocumentStatus": "PROCESSING"}], "Errors": [
            {"DocumentId": "b", "ErrorCode": "InternalError", "ErrorMessage": "later"},
            {"DocumentId": "c", "ErrorCode": "InvalidRequest", "ErrorMessage": "bad id"}]}
    fake = FakeKendra([with_errors, status_answer])
    result = make_index(fake, t).status(["a", "b", "c"], deadline=Deadline(60, clock=t.clock))
    assert fake.sent_ids("status") == [["a", "b", "c"], ["b"]]
    assert result == {"a": ("PROCESSING", None, None), "b": ("INDEXED", None, None),
                      "c": (STATUS_ERROR, "InvalidRequest", "bad id")}


def test_status_unanswered_ids_are_absent_and_fatal_errors_raise(t: FakeTime) -> None:
    fake = FakeKendra([client_error("ThrottlingException")] * 100)
    assert make_index(fake, t).status(["a"], deadline=Deadline(1, clock=t.clock)) == {}
    fake = FakeKendra([client_error("AccessDeniedException", "no")])
    with pytest.raises(KendraError) as err:
        make_index(fake, t).status(["a"], deadline=Deadline(60, clock=t.clock))
    assert err.value.code == "AccessDeniedException"


# ---------------------------------------------------------------------------------- control plane


def test_date_fields_from_describe_index_cached(t: FakeTime) -> None:
    fake = FakeKendra([client_error("ThrottlingException", op="DescribeIndex"), lambda _r: {
        "DocumentMetadataConfigurations": [
            {"Name": "_created_at", "Type": "DATE_VALUE"}, {"Name": "team", "Type": "STRING_VALUE"},
            {"Name": "hired", "Type": "DATE_VALUE"}, {"Name": "level", "Type": "LONG_VALUE"}]}])
    index = make_index(fake, t)
    assert index.date_fields() == frozenset({"_created_at", "hired"})
    assert index.date_fields() == frozenset({"_created_at", "hired"})
    assert len(fake.requests) == 2 and fake.requests[-1][1] == {"Id": INDEX_ID}


def test_sync_job_lifecycle(t: FakeTime, fake_env: None) -> None:
    real = aws.client("kendra")
    index = make_index(real, t, data_source_id="ds-1")
    with Stubber(real) as stub:
        stub.add_client_error("start_data_source_sync_job", "ResourceInUseException", "already syncing", 400)
        stub.add_response("start_data_source_sync_job", {"ExecutionId": "exec-9"},
                          {"Id": "ds-1", "IndexId": INDEX_ID})
        stub.add_response("batch_put_document", {}, {"IndexId": INDEX_ID, "Documents": ANY})
        stub.add_response("stop_data_source_sync_job", {}, {"Id": "ds-1", "IndexId": INDEX_ID})
        with pytest.raises(SyncJobBusy):
            index.start_sync_job()
        assert index.start_sync_job() == "exec-9" and index.sync_job_id == "exec-9"
        index.put(docs("a"), deadline=Deadline(60, clock=t.clock))
        assert index.stop_sync_job() is True
        stub.assert_no_pending_responses()
    assert index.sync_job_id is None and index.stop_sync_job() is False
    assert make_index(FakeKendra(), t).start_sync_job() is None


def test_client_is_created_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    monkeypatch.setattr(kendra_module.aws, "client", lambda service: made.append(service) or FakeKendra())
    index = KendraIndex(INDEX_ID)
    assert made == []
    index.put(docs("a"), deadline=Deadline(5))
    assert made == ["kendra"]


# ------------------------------------------------------------------------------ invariant (hypothesis)

CALL_KINDS = ["ok", "ok", "ok", "throttle", "server", "connection", "fatal"]


class ScriptedByHypothesis(FakeKendra):
    """Draws each answer from hypothesis and remembers the truth the outcomes must match."""

    def __init__(self, data: st.DataObject) -> None:
        super().__init__()
        self.data = data
        self.accepted: set[str] = set()
        self.rejected: dict[str, str] = {}
        self.fatal: str | None = None
        self.throttles = 0

    def batch_put_document(self, **request: Any) -> dict[str, Any]:
        sent = [d["Id"] for d in request["Documents"]]
        self.requests.append(("put", request))
        assert self.fatal is None, "called again after a fatal error"
        assert not set(sent) & (self.accepted | set(self.rejected)), "re-sent a settled document"
        kind = self.data.draw(st.sampled_from(CALL_KINDS))
        if kind == "throttle":
            self.throttles += 1
            raise client_error("ThrottlingException")
        if kind == "server":
            raise client_error("InternalServerException", status=500)
        if kind == "connection":
            raise EndpointConnectionError(endpoint_url="https://kendra")
        if kind == "fatal":
            self.fatal = self.data.draw(st.sampled_from(["ValidationException", "AccessDeniedException"]))
            raise client_error(self.fatal)
        codes = self.data.draw(st.lists(st.sampled_from([None, "InternalError", "InvalidRequest"]),
                                        min_size=len(sent), max_size=len(sent)))
        failed = []
        for doc_id, code in zip(sent, codes, strict=True):
            if code is None:
                self.accepted.add(doc_id)
            else:
                failed.append({"Id": doc_id, "ErrorCode": code, "ErrorMessage": code.lower()})
                if code == "InvalidRequest":
                    self.rejected[doc_id] = code
        return {"FailedDocuments": failed}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(1, 10), budget=st.floats(0.0, 20.0), seed=st.integers(0, 2**16))
def test_every_document_ends_with_exactly_one_outcome(data: st.DataObject, n: int, budget: float,
                                                      seed: int) -> None:
    t = FakeTime()
    fake = ScriptedByHypothesis(data)
    index = KendraIndex(INDEX_ID, client=fake, sleep=t.sleep, clock=t.clock, rng=random.Random(seed))
    ids = [f"doc-{i}" for i in range(n)]
    start = t.now
    outcomes = index.put(docs(*ids), deadline=Deadline(budget, clock=t.clock))

    assert [o.document_id for o in outcomes] == ids
    for o in outcomes:
        assert o.status in ("put", "failed")
        if o.document_id in fake.accepted:
            assert o.status == "put"
        elif o.document_id in fake.rejected:
            assert (o.status, o.error_code) == ("failed", "InvalidRequest")
        elif fake.fatal is not None:
            assert (o.status, o.error_code) == ("failed", fake.fatal)
        else:
            assert (o.status, o.error_code) == ("failed", "RetriesExhausted")
    assert t.now - start <= budget  # never slept past the deadline
    # Attempts that failed other than by throttling are bounded by MAX_ATTEMPTS, all of them by the larger
    # MAX_THROTTLED_ATTEMPTS (the last attempt may be the one that ends it).
    assert len(fake.requests) - fake.throttles <= MAX_ATTEMPTS
    assert len(fake.requests) <= MAX_THROTTLED_ATTEMPTS
    assert index.calls.batch_put_calls == len(fake.requests)
    assert index.calls.throttled == fake.throttles
    assert all(0 <= s <= BACKOFF_CAP_SECONDS for s in t.sleeps)


def test_request_botocore_refuses_fails_the_documents_without_sending(t: FakeTime, fake_env: None) -> None:
    real = aws.client("kendra")
    index = make_index(real, t)
    with Stubber(real) as stub:
        stub.add_response("batch_put_document", {})  # stays queued: the request never gets that far
        outcomes = index.put([{"Id": "a", "S3Path": {"Bucket": "b", "Key": "k"}}], deadline=Deadline(60))
        with pytest.raises(AssertionError):
            stub.assert_no_pending_responses()
    assert (outcomes[0].status, outcomes[0].error_code) == ("failed", "ParamValidationError")
    assert "S3Path.Bucket" in outcomes[0].error_message
    assert index.calls.batch_put_calls == 0


# ---------------------------------------------------------------------------------------- deadline


class LambdaContext:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_deadline_from_context_keeps_a_safety_margin(t: FakeTime) -> None:
    deadline = Deadline.from_context(LambdaContext(30_000), margin_seconds=10, clock=t.clock)
    assert deadline.remaining() == pytest.approx(20.0)
    assert deadline.allows(19.9) and not deadline.allows(20.0)
    t.sleep(20)
    assert deadline.expired() and deadline.remaining() == 0.0
    # a short-lived function still gets half its remaining time
    assert Deadline.from_context(LambdaContext(4_000), margin_seconds=10, clock=t.clock).remaining() == 2.0
    assert Deadline.from_context(None, fallback_seconds=7, clock=t.clock).remaining() == 7.0
    assert not Deadline.never(clock=t.clock).expired()
