"""aws.client: one client per service, shared by threads, with its exception classes built once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from kendra_ingest import aws
from moto import mock_aws

TABLE = "t"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        yield
    aws.reset_clients()


def test_exception_classes_exist_before_any_thread_sees_the_client(moto: None) -> None:
    client = aws.client("dynamodb")
    # botocore keeps the built classes in ``_exceptions``; None would mean "built on first touch",
    # which races between threads.
    assert client._exceptions is not None


def test_threads_sharing_a_new_client_catch_the_class_that_was_raised(moto: None) -> None:
    """The race of the issue: many threads touch a fresh client's exceptions at once (25 rounds)."""
    for round_ in range(25):
        aws.reset_clients()
        ddb = aws.client("dynamodb")
        if round_ == 0:
            ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
            ddb.put_item(TableName=TABLE, Item={"pk": {"S": "x"}})
        aws.reset_clients()
        workers = 8
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def worker(barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait()
                client = aws.client("dynamodb")
                try:
                    client.put_item(TableName=TABLE, Item={"pk": {"S": "x"}},
                                    ConditionExpression="attribute_not_exists(pk)")
                except client.exceptions.ConditionalCheckFailedException:
                    return
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_}: {errors!r}"


def test_error_code_reads_client_errors_only() -> None:
    error = ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}, "PutItem")
    assert aws.error_code(error) == "ConditionalCheckFailedException"
    assert aws.is_error(error, "Other", "ConditionalCheckFailedException")
    assert aws.error_code(ValueError("x")) is None
    assert not aws.is_error(ValueError("x"), "ConditionalCheckFailedException")
