"""The Kendra emulator behind real boto3 clients: limits, checks, indexing, sync jobs, faults, wiring."""

from __future__ import annotations

import json
import threading
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.client
import botocore.endpoint
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import Shape

from sandbox.kendra_emulator import (
    DOCUMENT_MISSING_MESSAGE,
    IMPLEMENTED_OPERATIONS,
    RESERVED_ATTRIBUTES,
    EmulatorNotImplementedError,
    KendraEmulator,
    NoEmulatorInstalledError,
)

MODEL = botocore.session.get_session().get_service_model("kendra")
ROLE_ARN = "arn:aws:iam::123456789012:role/kendra-s3-access"


class FakeClock:
    """A monotonic clock that moves only when told to (also stands in for botocore's retry sleep)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake credentials and no user configuration, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KENDRA", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_sleep(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeClock:
    """botocore's retry back-off advances the fake clock instead of sleeping."""
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=clock.advance))
    return clock


#: One attempt, no retry. botocore's ``max_attempts`` counts retries (``max_attempts: 1`` sends twice);
#: ``total_max_attempts`` counts attempts.
SINGLE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


def client_for(emulator: KendraEmulator, attempts: int = 1) -> Any:
    client = boto3.client(
        "kendra",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )
    emulator.attach(client)
    return client


def doc(
    doc_id: str, body: bytes = b"hello", content_type: str = "PLAIN_TEXT", **extra: Any
) -> dict[str, Any]:
    return {"Id": doc_id, "Blob": body, "ContentType": content_type, **extra}


def attr(key: str, **value: Any) -> dict[str, Any]:
    return {"Key": key, "Value": value}


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def statuses(client: Any, emulator: KendraEmulator, *doc_ids: str) -> dict[str, dict[str, Any]]:
    response = client.batch_get_document_status(
        IndexId=emulator.index_id, DocumentInfoList=[{"DocumentId": doc_id} for doc_id in doc_ids]
    )
    return {status["DocumentId"]: status for status in response["DocumentStatusList"]}


# --- limits ---------------------------------------------------------------------------------------


def test_eleven_documents_fail_the_whole_call_with_validation_exception() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[doc(f"d{i}") for i in range(11)])
    assert error_code(excinfo) == "ValidationException"
    assert "less than or equal to 10" in str(excinfo.value)
    assert emulator.index_snapshot()["documents"] == {}
    assert emulator.calls == [
        {
            "operation": "BatchPutDocument",
            "documentIds": [f"d{i}" for i in range(11)],
            "bytes": 55,
            "outcome": "error",
        }
    ]


def test_a_lower_max_documents_per_call_is_enforced() -> None:
    emulator = KendraEmulator(max_documents_per_call=3)
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[doc(f"d{i}") for i in range(4)])
    assert error_code(excinfo) == "ValidationException"
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc(f"d{i}") for i in range(3)])
    assert len(emulator.index_snapshot()["documents"]) == 3


def test_an_oversize_document_fails_alone_with_invalid_request() -> None:
    emulator = KendraEmulator(max_document_bytes=10)
    client = client_for(emulator)
    response = client.batch_put_document(
        IndexId=emulator.index_id, Documents=[doc("big", b"x" * 11), doc("small", b"x" * 10)]
    )
    [failed] = response["FailedDocuments"]
    assert failed["Id"] == "big"
    assert failed["ErrorCode"] == "InvalidRequest"
    assert "11 bytes" in failed["ErrorMessage"]
    assert set(emulator.index_snapshot()["documents"]) == {"small"}
    assert emulator.calls[-1]["bytes"] == 21


def test_a_request_over_max_request_bytes_is_a_validation_exception() -> None:
    emulator = KendraEmulator(max_request_bytes=15)
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(
            IndexId=emulator.index_id, Documents=[doc("a", b"x" * 8), doc("b", b"y" * 8)]
        )
    assert error_code(excinfo) == "ValidationException"
    assert "16 bytes" in str(excinfo.value)
    assert emulator.calls[-1] == {
        "operation": "BatchPutDocument",
        "documentIds": ["a", "b"],
        "bytes": 16,
        "outcome": "error",
    }
    assert emulator.index_snapshot()["documents"] == {}


def test_delete_and_status_calls_take_at_most_ten_ids() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_delete_document(IndexId=emulator.index_id, DocumentIdList=[f"d{i}" for i in range(11)])
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        statuses(client, emulator, *[f"d{i}" for i in range(11)])
    assert error_code(excinfo) == "ValidationException"


def test_a_model_maximum_botocore_does_not_check_is_enforced() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(
            IndexId=emulator.index_id,
            Documents=[doc("a", Attributes=[attr("_category", StringValue="c" * 2049)])],
        )
    assert error_code(excinfo) == "ValidationException"
    assert "documents.1.member.attributes.1.member.value.stringValue" in str(excinfo.value)


def test_a_wrong_index_id_is_resource_not_found() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    other = "f" * 8 + "-0000-4000-8000-" + "0" * 12
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=other, Documents=[doc("a")])
    assert error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        client.describe_index(Id=other)
    assert error_code(excinfo) == "ResourceNotFoundException"


# --- per-document checks --------------------------------------------------------------------------


FIELDS = {
    "department": "STRING_VALUE",
    "pages": "LONG_VALUE",
    "tags": "STRING_LIST_VALUE",
    "due": "DATE_VALUE",
}


def test_declared_and_reserved_attributes_are_accepted_and_snapshotted() -> None:
    emulator = KendraEmulator(index_fields=FIELDS)
    client = client_for(emulator)
    attributes = [
        attr("department", StringValue="finance"),
        attr("pages", LongValue=12),
        attr("tags", StringListValue=["a", "b"]),
        attr("due", DateValue="2025-10-05T12:00:00Z"),
        attr("_created_at", DateValue="2025-10-01T08:30:00+02:00"),
        attr("_authors", StringListValue=["ann"]),
        attr("_view_count", LongValue=3),
        attr("_source_uri", StringValue="https://example.com/a"),
    ]
    acl = [{"Name": "staff", "Type": "GROUP", "Access": "ALLOW"}]
    response = client.batch_put_document(
        IndexId=emulator.index_id,
        Documents=[doc("a", Title="A", Attributes=attributes, AccessControlList=acl)],
    )
    assert response["FailedDocuments"] == []
    snapshot = emulator.index_snapshot()
    json.dumps(snapshot)  # JSON-serialisable
    assert snapshot["documents"]["a"] == {
        "title": "A",
        "contentType": "PLAIN_TEXT",
        "attributes": {
            "department": {"StringValue": "finance"},
            "pages": {"LongValue": 12},
            "tags": {"StringListValue": ["a", "b"]},
            "due": {"DateValue": "2025-10-05T12:00:00+00:00"},
            "_created_at": {"DateValue": "2025-10-01T06:30:00+00:00"},
            "_authors": {"StringListValue": ["ann"]},
            "_view_count": {"LongValue": 3},
            "_source_uri": {"StringValue": "https://example.com/a"},
        },
        "acl": acl,
        "hierarchicalAcl": None,
        "status": "INDEXED",
    }


def test_an_undeclared_attribute_fails_its_document_naming_the_attribute() -> None:
    emulator = KendraEmulator(index_fields=FIELDS)
    client = client_for(emulator)
    response = client.batch_put_document(
        IndexId=emulator.index_id,
        Documents=[doc("bad", Attributes=[attr("colour", StringValue="red")]), doc("good")],
    )
    [failed] = response["FailedDocuments"]
    assert (failed["Id"], failed["ErrorCode"]) == ("bad", "InvalidRequest")
    assert "colour" in failed["ErrorMessage"]
    assert set(emulator.index_snapshot()["documents"]) == {"good"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pages", {"StringValue": "twelve"}),
        ("department", {"LongValue": 1}),
        ("tags", {"StringValue": "a"}),
        ("due", {"LongValue": 1}),
        ("_created_at", {"StringValue": "2025-10-05"}),
        ("_view_count", {"StringValue": "3"}),
        ("_authors", {"StringValue": "ann"}),
        ("_category", {"StringListValue": ["x"]}),
    ],
)
def test_a_value_of_the_wrong_type_fails_its_document(key: str, value: dict[str, Any]) -> None:
    emulator = KendraEmulator(index_fields=FIELDS)
    client = client_for(emulator)
    response = client.batch_put_document(
        IndexId=emulator.index_id, Documents=[doc("a", Attributes=[{"Key": key, "Value": value}])]
    )
    [failed] = response["FailedDocuments"]
    assert failed["ErrorCode"] == "InvalidRequest"
    assert key in failed["ErrorMessage"]


def test_a_value_with_two_members_or_none_fails_its_document() -> None:
    emulator = KendraEmulator(index_fields=FIELDS)
    client = client_for(emulator)
    response = client.batch_put_document(
        IndexId=emulator.index_id,
        Documents=[
            doc("two", Attributes=[attr("department", StringValue="x", LongValue=1)]),
            doc("none", Attributes=[{"Key": "department", "Value": {}}]),
        ],
    )
    assert {failed["Id"] for failed in response["FailedDocuments"]} == {"two", "none"}


def test_without_declared_fields_any_custom_key_is_accepted_but_reserved_types_still_apply() -> None:
    emulator = KendraEmulator(index_fields=None)
    client = client_for(emulator)
    response = client.batch_put_document(
        IndexId=emulator.index_id,
        Documents=[
            doc("a", Attributes=[attr("anything", LongValue=1)]),
            doc("b", Attributes=[attr("_view_count", StringValue="many")]),
        ],
    )
    assert [failed["Id"] for failed in response["FailedDocuments"]] == ["b"]


def test_acl_enums_are_checked_although_botocore_does_not() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    bad_acl = [{"Name": "staff", "Type": "TEAM", "Access": "MAYBE"}]
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a", AccessControlList=bad_acl)])
    assert error_code(excinfo) == "ValidationException"
    message = str(excinfo.value)
    assert "accessControlList.1.member.type" in message and "[USER, GROUP]" in message
    assert "accessControlList.1.member.access" in message and "[ALLOW, DENY]" in message


def test_hierarchical_acl_allows_thirty_levels_not_thirty_one() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    level = {"PrincipalList": [{"Name": "u", "Type": "USER", "Access": "ALLOW"}]}
    client.batch_put_document(
        IndexId=emulator.index_id, Documents=[doc("a", HierarchicalAccessControlList=[level] * 30)]
    )
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(
            IndexId=emulator.index_id, Documents=[doc("b", HierarchicalAccessControlList=[level] * 31)]
        )
    assert error_code(excinfo) == "ValidationException"
    assert "hierarchicalAccessControlList" in str(excinfo.value)


def test_an_unknown_content_type_is_a_validation_exception() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a", content_type="DOCX")])
    assert error_code(excinfo) == "ValidationException"
    assert "contentType" in str(excinfo.value)


def test_s3_path_documents_need_a_role_arn() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    s3_doc = {"Id": "s", "S3Path": {"Bucket": "docs-bucket", "Key": "a.pdf"}, "ContentType": "PDF"}
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[s3_doc])
    assert error_code(excinfo) == "ValidationException"
    response = client.batch_put_document(IndexId=emulator.index_id, RoleArn=ROLE_ARN, Documents=[s3_doc])
    assert response["FailedDocuments"] == []
    assert emulator.index_snapshot()["documents"]["s"]["status"] == "INDEXED"
    assert emulator.calls[-1]["bytes"] == 0


def test_s3_path_content_is_checked_when_a_reader_is_given() -> None:
    objects = {("docs-bucket", "good.txt"): b"text", ("docs-bucket", "bad.txt"): b"\xff\xfe"}
    emulator = KendraEmulator(s3_reader=lambda bucket, key: objects[(bucket, key)])
    client = client_for(emulator)
    documents = [
        {"Id": name, "S3Path": {"Bucket": "docs-bucket", "Key": f"{name}.txt"}, "ContentType": "PLAIN_TEXT"}
        for name in ("good", "bad", "missing")
    ]
    client.batch_put_document(IndexId=emulator.index_id, RoleArn=ROLE_ARN, Documents=documents)
    found = statuses(client, emulator, "good", "bad", "missing")
    assert found["good"]["DocumentStatus"] == "INDEXED"
    assert found["bad"]["DocumentStatus"] == "FAILED"
    assert found["missing"]["DocumentStatus"] == "FAILED"
    assert "s3://docs-bucket/missing.txt" in found["missing"]["FailureReason"]


# --- asynchronous indexing ------------------------------------------------------------------------


def test_documents_are_processing_until_the_indexing_delay_has_elapsed(clock: FakeClock) -> None:
    emulator = KendraEmulator(indexing_delay_seconds=30, clock=clock)
    client = client_for(emulator)
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a"), doc("b")])
    assert {s["DocumentStatus"] for s in statuses(client, emulator, "a", "b").values()} == {"PROCESSING"}
    assert emulator.index_snapshot()["documents"]["a"]["status"] == "PROCESSING"
    clock.advance(29.9)
    assert statuses(client, emulator, "a")["a"]["DocumentStatus"] == "PROCESSING"
    clock.advance(0.1)
    assert {s["DocumentStatus"] for s in statuses(client, emulator, "a", "b").values()} == {"INDEXED"}
    assert emulator.index_snapshot()["documents"]["b"]["status"] == "INDEXED"


def test_text_that_is_not_utf8_or_empty_content_fails_indexing(clock: FakeClock) -> None:
    emulator = KendraEmulator(indexing_delay_seconds=5, clock=clock)
    client = client_for(emulator)
    latin1 = "café".encode("latin-1")
    response = client.batch_put_document(
        IndexId=emulator.index_id,
        Documents=[
            doc("latin1", latin1),
            doc("html", latin1, "HTML"),
            doc("pdf", latin1, "PDF"),  # binary types are not decoded
            doc("empty", b""),
            doc("utf8", "café".encode()),
        ],
    )
    assert response["FailedDocuments"] == []  # content failures only show through status
    found = statuses(client, emulator, "latin1", "html", "pdf", "empty", "utf8")
    assert {s["DocumentStatus"] for s in found.values()} == {"PROCESSING"}
    clock.advance(5)
    found = statuses(client, emulator, "latin1", "html", "pdf", "empty", "utf8")
    assert {name: s["DocumentStatus"] for name, s in found.items()} == {
        "latin1": "FAILED",
        "html": "FAILED",
        "pdf": "INDEXED",
        "empty": "FAILED",
        "utf8": "INDEXED",
    }
    assert "UTF-8" in found["latin1"]["FailureReason"]
    assert found["latin1"]["FailureCode"]
    assert emulator.index_snapshot()["documents"]["empty"]["status"] == "FAILED"


# --- deletes --------------------------------------------------------------------------------------


def test_deletes_remove_present_ids_and_fail_unknown_ones_as_kendra_does() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a"), doc("b")])
    response = client.batch_delete_document(IndexId=emulator.index_id, DocumentIdList=["a", "ghost"])
    assert response["FailedDocuments"] == [
        {"Id": "ghost", "ErrorCode": "InvalidRequest", "ErrorMessage": DOCUMENT_MISSING_MESSAGE}
    ]
    found = statuses(client, emulator, "a", "b")
    assert (found["a"]["DocumentStatus"], found["b"]["DocumentStatus"]) == ("NOT_FOUND", "INDEXED")
    assert emulator.calls[-2] == {
        "operation": "BatchDeleteDocument",
        "documentIds": ["a", "ghost"],
        "bytes": 0,
        "outcome": "ok",
    }


# --- DescribeIndex --------------------------------------------------------------------------------


def test_describe_index_lists_declared_and_reserved_fields() -> None:
    emulator = KendraEmulator(index_fields=FIELDS)
    client = client_for(emulator)
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a", b"12345")])
    index = client.describe_index(Id=emulator.index_id)
    assert (index["Id"], index["Status"]) == (emulator.index_id, "ACTIVE")
    assert index["Edition"] in MODEL.shape_for("IndexEdition").enum
    assert index["Name"] and index["CreatedAt"] and index["UpdatedAt"]
    fields = {config["Name"]: config["Type"] for config in index["DocumentMetadataConfigurations"]}
    assert fields == {**RESERVED_ATTRIBUTES, **FIELDS}
    assert all("Search" in config for config in index["DocumentMetadataConfigurations"])
    stats = index["IndexStatistics"]["TextDocumentStatistics"]
    assert (stats["IndexedTextDocumentsCount"], stats["IndexedTextBytes"]) == (1, 5)


# --- CUSTOM data source sync jobs -----------------------------------------------------------------


def sync_attributes(data_source_id: str, execution_id: str) -> list[dict[str, Any]]:
    return [
        attr("_data_source_id", StringValue=data_source_id),
        attr("_data_source_sync_job_execution_id", StringValue=execution_id),
    ]


def test_a_sync_job_wraps_puts_and_deletes_and_reports_history(clock: FakeClock) -> None:
    emulator = KendraEmulator(data_source_ids={"ds1"}, clock=clock, indexing_delay_seconds=10)
    client = client_for(emulator)
    index_id = emulator.index_id
    execution_id = client.start_data_source_sync_job(Id="ds1", IndexId=index_id)["ExecutionId"]
    assert len(execution_id) == 36

    with pytest.raises(ClientError) as excinfo:
        client.start_data_source_sync_job(Id="ds1", IndexId=index_id)
    assert error_code(excinfo) == "ResourceInUseException"

    response = client.batch_put_document(
        IndexId=index_id,
        Documents=[
            doc("a", Attributes=sync_attributes("ds1", execution_id)),
            doc("b", Attributes=sync_attributes("ds1", execution_id)),
        ],
    )
    assert response["FailedDocuments"] == []
    response = client.batch_delete_document(
        IndexId=index_id,
        DocumentIdList=["b"],
        DataSourceSyncJobMetricTarget={"DataSourceId": "ds1", "DataSourceSyncJobId": execution_id},
    )
    assert response["FailedDocuments"] == []

    [running] = client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id)["History"]
    assert (running["ExecutionId"], running["Status"]) == (execution_id, "SYNCING")
    assert running["Metrics"]["DocumentsAdded"] == "2" and running["Metrics"]["DocumentsDeleted"] == "1"

    client.stop_data_source_sync_job(Id="ds1", IndexId=index_id)
    [stopping] = client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id)["History"]
    assert stopping["Status"] == "SYNCING_INDEXING" and "EndTime" not in stopping
    clock.advance(10)
    [done] = client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id)["History"]
    assert done["Status"] == "SUCCEEDED" and done["EndTime"] > done["StartTime"]

    # A put still carrying the stopped job's execution id fails every document.
    response = client.batch_put_document(
        IndexId=index_id,
        Documents=[
            doc("c", Attributes=sync_attributes("ds1", execution_id)),
            doc("d", Attributes=sync_attributes("ds1", execution_id)),
        ],
    )
    assert [(f["Id"], f["ErrorCode"], f["DataSourceId"]) for f in response["FailedDocuments"]] == [
        ("c", "InvalidRequest", "ds1"),
        ("d", "InvalidRequest", "ds1"),
    ]

    second = client.start_data_source_sync_job(Id="ds1", IndexId=index_id)["ExecutionId"]
    history = client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id)["History"]
    assert [job["ExecutionId"] for job in history] == [second, execution_id]  # newest first
    only_succeeded = client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id, StatusFilter="SUCCEEDED")
    assert [job["ExecutionId"] for job in only_succeeded["History"]] == [execution_id]
    first_page = client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id, MaxResults=1)
    assert len(first_page["History"]) == 1 and first_page["NextToken"]


def test_sync_calls_for_an_unknown_data_source_are_resource_not_found() -> None:
    emulator = KendraEmulator(data_source_ids={"ds1"})
    client = client_for(emulator)
    for call in (
        client.start_data_source_sync_job,
        client.stop_data_source_sync_job,
        client.list_data_source_sync_jobs,
    ):
        with pytest.raises(ClientError) as excinfo:
            call(Id="nope", IndexId=emulator.index_id)
        assert error_code(excinfo) == "ResourceNotFoundException"


def test_stop_without_a_running_job_is_a_validation_exception() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.stop_data_source_sync_job(Id="ds1", IndexId=emulator.index_id)
    assert error_code(excinfo) == "ValidationException"


def test_a_put_for_a_data_source_without_a_running_job_fails_its_documents() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    response = client.batch_put_document(
        IndexId=emulator.index_id,
        Documents=[doc("a", Attributes=[attr("_data_source_id", StringValue="ds1")])],
    )
    [failed] = response["FailedDocuments"]
    assert failed["ErrorCode"] == "InvalidRequest" and "ds1" in failed["ErrorMessage"]


# --- throttling and injected faults ---------------------------------------------------------------


def test_a_throttled_call_is_a_real_throttling_exception_and_is_recorded() -> None:
    emulator = KendraEmulator(throttle_probability=1.0, seed=1)
    client = client_for(emulator)
    with pytest.raises(ClientError) as excinfo:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a")])
    assert error_code(excinfo) == "ThrottlingException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(excinfo.value, client.exceptions.ThrottlingException)
    assert emulator.calls == [
        {"operation": "BatchPutDocument", "documentIds": ["a"], "bytes": 5, "outcome": "throttled"}
    ]
    assert emulator.counts()["throttled"] == 1 and emulator.counts()["BatchPutDocument"] == 1
    assert emulator.index_snapshot()["documents"] == {}


def test_the_token_bucket_holds_each_operation_to_tps(clock: FakeClock) -> None:
    tps, duration, attempts_per_second = 4.0, 25.0, 40
    emulator = KendraEmulator(tps=tps, clock=clock)
    client = client_for(emulator)
    accepted = 0
    for _ in range(int(duration * attempts_per_second)):
        try:
            client.batch_get_document_status(
                IndexId=emulator.index_id, DocumentInfoList=[{"DocumentId": "a"}]
            )
            accepted += 1
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ThrottlingException"
        clock.advance(1 / attempts_per_second)
    rate = accepted / duration
    assert tps * 0.95 <= rate <= tps + max(1.0, tps) / duration + 0.05
    # The bucket is per operation: another operation still has its full burst.
    client.describe_index(Id=emulator.index_id)
    assert emulator.counts()["throttled"] == int(duration * attempts_per_second) - accepted


def test_standard_retries_ride_out_the_token_bucket(fake_sleep: FakeClock) -> None:
    emulator = KendraEmulator(tps=1.0, clock=fake_sleep)
    client = client_for(emulator, attempts=10)
    first = client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a")])
    second = client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("b")])
    assert first["ResponseMetadata"]["RetryAttempts"] == 0
    assert second["ResponseMetadata"]["RetryAttempts"] >= 1
    outcomes = [call["outcome"] for call in emulator.calls]
    assert outcomes[0] == "ok" and outcomes[-1] == "ok" and set(outcomes[1:-1]) == {"throttled"}
    assert set(emulator.index_snapshot()["documents"]) == {"a", "b"}


def throttle_outcomes(seed: int, threads: int = 1) -> dict[str, str]:
    emulator = KendraEmulator(throttle_probability=0.3, seed=seed)
    client = client_for(emulator)

    def put(doc_id: str) -> tuple[str, str]:
        try:
            client.batch_put_document(IndexId=emulator.index_id, Documents=[doc(doc_id)])
            return doc_id, "ok"
        except ClientError as error:
            return doc_id, error.response["Error"]["Code"]

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(put, [f"d{i}" for i in range(60)]))


def test_probability_throttling_is_reproducible_with_a_seed_even_across_threads() -> None:
    first = throttle_outcomes(seed=7)
    assert first == throttle_outcomes(seed=7)
    assert first == throttle_outcomes(seed=7, threads=8)
    assert first != throttle_outcomes(seed=8)
    throttled = sum(outcome == "ThrottlingException" for outcome in first.values())
    assert 6 <= throttled <= 30  # p = 0.3 of 60


def test_internal_error_injection_fails_documents_with_a_retryable_code() -> None:
    emulator = KendraEmulator(internal_error_probability=1.0, seed=3)
    client = client_for(emulator)
    response = client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a"), doc("b")])
    assert [(f["Id"], f["ErrorCode"]) for f in response["FailedDocuments"]] == [
        ("a", "InternalError"),
        ("b", "InternalError"),
    ]
    assert emulator.index_snapshot()["documents"] == {}
    assert emulator.calls[-1]["outcome"] == "ok"  # the call itself succeeded


def test_internal_errors_are_reproducible_and_a_retry_can_succeed() -> None:
    def failures(seed: int) -> list[list[str]]:
        emulator = KendraEmulator(internal_error_probability=0.5, seed=seed)
        client = client_for(emulator)
        rounds = []
        for _ in range(3):  # re-sending the same documents draws afresh each time
            response = client.batch_put_document(
                IndexId=emulator.index_id, Documents=[doc(f"d{i}") for i in range(10)]
            )
            rounds.append([failed["Id"] for failed in response["FailedDocuments"]])
        return rounds

    assert failures(11) == failures(11)
    assert failures(11) != failures(12)
    assert len({tuple(ids) for ids in failures(11)}) > 1


def test_injected_server_errors_are_http_500_and_retried_by_botocore(fake_sleep: FakeClock) -> None:
    emulator = KendraEmulator(server_error_probability=1.0, seed=1)
    client = client_for(emulator, attempts=3)
    with pytest.raises(ClientError) as excinfo:
        client.describe_index(Id=emulator.index_id)
    assert error_code(excinfo) == "InternalServerException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [call["outcome"] for call in emulator.calls] == ["error"] * 3


def test_an_unimplemented_operation_is_loud() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator, attempts=3)
    with pytest.raises(EmulatorNotImplementedError, match="ListFaqs"):
        client.list_faqs(IndexId=emulator.index_id)
    assert emulator.calls == [{"operation": "ListFaqs", "documentIds": [], "bytes": 0, "outcome": "error"}]


def test_concurrent_calls_from_many_threads_are_all_recorded() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    batches = [[doc(f"t{t}-{i}") for i in range(10)] for t in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda batch: client.batch_put_document(IndexId=emulator.index_id, Documents=batch), batches
            )
        )
    assert len(emulator.index_snapshot()["documents"]) == 400
    assert emulator.counts()["BatchPutDocument"] == 40
    assert sum(call["bytes"] for call in emulator.calls) == 400 * 5


# --- installation into every client ---------------------------------------------------------------


def canned_answer(client: Any) -> list[str]:
    """Give ``client`` a fallback answer (after any emulator), so a call never reaches the network."""
    seen: list[str] = []

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        seen.append(kwargs["event_name"])
        body = json.dumps({"__type": "AccessDeniedException", "message": "not the emulator"}).encode()
        return AWSResponse(request.url, 400, {}, types.SimpleNamespace(stream=lambda **_: iter([body])))

    client.meta.events.register("before-send.kendra", answer)
    return seen


def test_installed_serves_clients_created_in_any_way_and_any_thread() -> None:
    emulator = KendraEmulator()
    config = SINGLE_ATTEMPT
    made_in_thread: list[Any] = []
    with emulator.installed():
        clients = [
            boto3.client("kendra", region_name="us-east-1"),
            boto3.Session().client("kendra", region_name="us-east-1", config=config),
            botocore.session.get_session().create_client("kendra", region_name="us-east-1"),
        ]
        thread = threading.Thread(target=lambda: made_in_thread.append(boto3.Session().client("kendra")))
        thread.start()
        thread.join()
        clients += made_in_thread
        for client in clients:
            assert client.describe_index(Id=emulator.index_id)["Id"] == emulator.index_id
        used_in_thread: list[Any] = []
        thread = threading.Thread(
            target=lambda: used_in_thread.append(clients[0].describe_index(Id=emulator.index_id)["Status"])
        )
        thread.start()
        thread.join()
        assert used_in_thread == ["ACTIVE"]
    assert emulator.counts()["DescribeIndex"] == 5


def test_installed_is_removed_on_exit() -> None:
    original = botocore.client.ClientCreator.create_client
    emulator = KendraEmulator()
    with emulator.installed():
        inside = boto3.client("kendra", region_name="us-east-1")
        assert botocore.client.ClientCreator.create_client is not original
    assert botocore.client.ClientCreator.create_client is original

    after = boto3.client("kendra", region_name="us-east-1", config=SINGLE_ATTEMPT)
    seen = canned_answer(after)
    with pytest.raises(ClientError) as excinfo:
        after.describe_index(Id=emulator.index_id)
    assert error_code(excinfo) == "AccessDeniedException" and seen  # answered by the fallback
    with pytest.raises(NoEmulatorInstalledError):
        inside.describe_index(Id=emulator.index_id)
    assert emulator.calls == []


def test_clients_follow_the_innermost_installed_emulator() -> None:
    outer, inner = KendraEmulator(), KendraEmulator()
    with outer.installed():
        client = boto3.client("kendra", region_name="us-east-1")
        with inner.installed():
            client.describe_index(Id=inner.index_id)
        client.describe_index(Id=outer.index_id)
    assert (len(inner.calls), len(outer.calls)) == (1, 1)


def test_the_emulator_answers_before_moto() -> None:
    from moto import mock_aws

    emulator = KendraEmulator()
    with mock_aws(), emulator.installed():
        client = boto3.client("kendra", region_name="us-east-1")
        assert client.describe_index(Id=emulator.index_id)["Status"] == "ACTIVE"
        assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []


# --- the emulator against botocore's service model ------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.batch_put_document(Documents=[{"Id": "a", "Blob": b"x"}]),  # IndexId missing
        lambda c: c.batch_put_document(IndexId="short", Documents=[{"Id": "a"}]),  # IndexId under 36 chars
        lambda c: c.batch_put_document(IndexId="e" * 36, Documents="not a list"),
        lambda c: c.batch_put_document(
            IndexId="e" * 36,
            Documents=[{"Id": "a", "Attributes": [{"Key": "n", "Value": {"LongValue": "x"}}]}],
        ),
        lambda c: c.batch_put_document(IndexId="e" * 36, Documents=[]),  # under the minimum of 1
        lambda c: c.batch_delete_document(IndexId="e" * 36),
        lambda c: c.describe_index(),
        lambda c: c.start_data_source_sync_job(Id="ds1", IndexId="e" * 36, Extra=1),
    ],
)
def test_requests_botocore_rejects_never_reach_the_emulator(call: Callable[[Any], Any]) -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ParamValidationError):
        call(client)
    assert emulator.calls == []


def conformance_problems(shape: Shape | None, value: Any, path: str = "$") -> Iterator[str]:
    """Where a parsed response strays from the model: unknown or missing members, bad enums, types."""
    if shape is None:
        if value:
            yield f"{path}: output where the model has none"
        return
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            yield f"{path}: expected an object"
            return
        for key in value.keys() - shape.members.keys():
            yield f"{path}.{key}: not a member of {shape.name}"
        for key in set(shape.required_members) - value.keys():
            yield f"{path}.{key}: required member of {shape.name} missing"
        for key, item in value.items():
            if key in shape.members:
                yield from conformance_problems(shape.members[key], item, f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            yield f"{path}: expected a list"
            return
        for position, item in enumerate(value):
            yield from conformance_problems(shape.member, item, f"{path}[{position}]")
    elif kind == "string":
        if not isinstance(value, str):
            yield f"{path}: expected a string"
        elif shape.enum and value not in shape.enum:
            yield f"{path}: {value!r} not in the enum of {shape.name}"
    elif kind in ("integer", "long") and not isinstance(value, int):
        yield f"{path}: expected an integer"
    elif kind == "boolean" and not isinstance(value, bool):
        yield f"{path}: expected a boolean"
    elif kind == "timestamp" and not hasattr(value, "tzinfo"):
        yield f"{path}: expected a datetime"


def test_every_response_parses_with_the_model_output_shape(clock: FakeClock) -> None:
    emulator = KendraEmulator(
        index_fields=FIELDS, data_source_ids={"ds1"}, indexing_delay_seconds=1, clock=clock, seed=5
    )
    client = client_for(emulator)
    index_id = emulator.index_id
    responses: dict[str, list[dict[str, Any]]] = {operation: [] for operation in IMPLEMENTED_OPERATIONS}

    def keep(operation: str, response: dict[str, Any]) -> None:
        response.pop("ResponseMetadata")
        responses[operation].append(response)

    execution_id = client.start_data_source_sync_job(Id="ds1", IndexId=index_id)["ExecutionId"]
    keep("StartDataSourceSyncJob", {"ExecutionId": execution_id, "ResponseMetadata": {}})
    keep(
        "BatchPutDocument",
        client.batch_put_document(
            IndexId=index_id,
            Documents=[
                doc("ok", Attributes=sync_attributes("ds1", execution_id)),
                doc("bad-utf8", b"\xff", Attributes=sync_attributes("ds1", execution_id)),
                doc(
                    "undeclared",
                    Attributes=[attr("colour", StringValue="red"), *sync_attributes("ds1", execution_id)],
                ),
            ],
        ),
    )
    keep(
        "BatchGetDocumentStatus",
        client.batch_get_document_status(IndexId=index_id, DocumentInfoList=[{"DocumentId": "ok"}]),
    )
    clock.advance(1)
    keep(
        "BatchGetDocumentStatus",
        client.batch_get_document_status(
            IndexId=index_id, DocumentInfoList=[{"DocumentId": name} for name in ("ok", "bad-utf8", "ghost")]
        ),
    )
    keep(
        "BatchDeleteDocument", client.batch_delete_document(IndexId=index_id, DocumentIdList=["ok", "ghost"])
    )
    keep("DescribeIndex", client.describe_index(Id=index_id))
    keep("ListDataSourceSyncJobs", client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id))
    keep("StopDataSourceSyncJob", client.stop_data_source_sync_job(Id="ds1", IndexId=index_id))
    clock.advance(1)
    keep(
        "ListDataSourceSyncJobs", client.list_data_source_sync_jobs(Id="ds1", IndexId=index_id, MaxResults=1)
    )

    assert responses["BatchPutDocument"][0]["FailedDocuments"]
    assert any("FailureReason" in s for s in responses["BatchGetDocumentStatus"][1]["DocumentStatusList"])
    assert "EndTime" in responses["ListDataSourceSyncJobs"][1]["History"][0]
    for operation, parsed in responses.items():
        assert parsed, f"{operation} was not exercised"
        output_shape = MODEL.operation_model(operation).output_shape
        for response in parsed:
            assert list(conformance_problems(output_shape, response)) == [], operation


def minimal_params(operation: str, index_id: str) -> dict[str, Any]:
    return {
        "BatchPutDocument": {"IndexId": index_id, "Documents": [{"Id": "a"}]},
        "BatchDeleteDocument": {"IndexId": index_id, "DocumentIdList": ["a"]},
        "BatchGetDocumentStatus": {"IndexId": index_id, "DocumentInfoList": [{"DocumentId": "a"}]},
        "DescribeIndex": {"Id": index_id},
        "StartDataSourceSyncJob": {"Id": "ds1", "IndexId": index_id},
        "StopDataSourceSyncJob": {"Id": "ds1", "IndexId": index_id},
        "ListDataSourceSyncJobs": {"Id": "ds1", "IndexId": index_id},
    }[operation]


def test_every_error_the_emulator_sends_is_a_modeled_exception_of_its_operation(
    fake_sleep: FakeClock,
) -> None:
    emulator = KendraEmulator(data_source_ids={"ds1", "ds2"})
    client = client_for(emulator)
    index_id, wrong_index = emulator.index_id, "f" * 36
    client.start_data_source_sync_job(Id="ds1", IndexId=index_id)
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("BatchPutDocument", lambda: client.batch_put_document(IndexId=wrong_index, Documents=[doc("a")])),
        (
            "BatchDeleteDocument",
            lambda: client.batch_delete_document(IndexId=wrong_index, DocumentIdList=["a"]),
        ),
        ("BatchGetDocumentStatus", lambda: statuses(client, emulator, *[f"d{i}" for i in range(11)])),
        ("DescribeIndex", lambda: client.describe_index(Id=wrong_index)),
        ("StartDataSourceSyncJob", lambda: client.start_data_source_sync_job(Id="ds9", IndexId=index_id)),
        ("StartDataSourceSyncJob", lambda: client.start_data_source_sync_job(Id="ds1", IndexId=index_id)),
        ("StopDataSourceSyncJob", lambda: client.stop_data_source_sync_job(Id="ds2", IndexId=index_id)),
        ("ListDataSourceSyncJobs", lambda: client.list_data_source_sync_jobs(Id="ds9", IndexId=index_id)),
    ]
    throttled = KendraEmulator(throttle_probability=1.0)
    failing = KendraEmulator(server_error_probability=1.0)
    for refusing in (throttled, failing):
        refusing_client = client_for(refusing)
        for operation in IMPLEMENTED_OPERATIONS:
            method = getattr(refusing_client, botocore.xform_name(operation))
            params = minimal_params(operation, refusing.index_id)
            cases.append((operation, lambda method=method, params=params: method(**params)))

    codes = set()
    for operation, call in cases:
        modeled = {shape.name for shape in MODEL.operation_model(operation).error_shapes}
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) in modeled, operation
        assert excinfo.value.response["Error"]["Message"], operation
        codes.add(error_code(excinfo))
    assert codes == {
        "ValidationException",
        "ResourceNotFoundException",
        "ResourceInUseException",
        "ThrottlingException",
        "InternalServerException",
    }


def test_a_reput_of_an_indexed_document_is_updated_and_the_snapshot_shows_its_hierarchical_acl() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    levels = [{"PrincipalList": [{"Name": "hr", "Type": "GROUP", "Access": "ALLOW"}]}]
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a", HierarchicalAccessControlList=levels)])
    assert statuses(client, emulator, "a")["a"]["DocumentStatus"] == "INDEXED"
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a"), doc("b")])
    assert {k: s["DocumentStatus"] for k, s in statuses(client, emulator, "a", "b").items()} == {
        "a": "UPDATED", "b": "INDEXED"}
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("c", HierarchicalAccessControlList=levels)])
    snapshot = emulator.index_snapshot()["documents"]
    assert snapshot["c"]["hierarchicalAcl"] == levels and snapshot["b"]["hierarchicalAcl"] is None
    assert snapshot["a"]["status"] == "UPDATED" and "acl" in snapshot["a"]


def test_a_full_index_refuses_puts_that_add_documents(clock: FakeClock) -> None:
    emulator = KendraEmulator(index_capacity=3, clock=clock)
    client = client_for(emulator)
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a"), doc("b")])
    with pytest.raises(ClientError) as refused:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("c"), doc("d")])
    assert error_code(refused) == "ServiceQuotaExceededException"
    assert "capacity is 3" in refused.value.response["Error"]["Message"]
    assert set(emulator.index_snapshot()["documents"]) == {"a", "b"}, "a refused call adds nothing"
    # Re-putting held documents adds none; one more new document still fits.
    client.batch_put_document(IndexId=emulator.index_id, Documents=[doc("a"), doc("b"), doc("c")])
    assert [c["outcome"] for c in emulator.calls] == ["ok", "error", "ok"]
    with pytest.raises(ValueError, match="index_capacity"):
        KendraEmulator(index_capacity=-1)


def test_kendra_limits_outside_the_model_fail_their_document() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    principals = [{"Name": f"u{i}", "Type": "USER", "Access": "ALLOW"} for i in range(201)]
    response = client.batch_put_document(IndexId=emulator.index_id, Documents=[
        doc("acl-200", AccessControlList=principals[:200]),
        doc("acl-201", AccessControlList=principals),
        doc("list-10", Attributes=[attr("tags", StringListValue=[str(i) for i in range(10)])]),
        doc("list-11", Attributes=[attr("tags", StringListValue=[str(i) for i in range(11)])]),
    ])
    failed = {f["Id"]: f for f in response["FailedDocuments"]}
    assert set(failed) == {"acl-201", "list-11"}
    assert all(f["ErrorCode"] == "InvalidRequest" for f in failed.values())
    assert "at most 200" in failed["acl-201"]["ErrorMessage"] and "at most 10" in failed["list-11"]["ErrorMessage"]
    assert set(emulator.index_snapshot()["documents"]) == {"acl-200", "list-10"}


def test_string_values_over_the_model_limit_fail_the_call() -> None:
    emulator = KendraEmulator()
    client = client_for(emulator)
    with pytest.raises(ClientError) as caught:
        client.batch_put_document(IndexId=emulator.index_id, Documents=[
            doc("long", Attributes=[attr("tags", StringListValue=["x" * 2049])])])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
