"""kendra_ingest.store against moto S3: parallel reads keep their order and report missing keys."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from kendra_ingest import aws, store
from moto import mock_aws


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="reports")
        yield "reports"
    aws.reset_clients()


def test_read_json_many_keeps_the_order_of_its_keys_and_gives_none_for_missing_ones(bucket: str) -> None:
    for i in range(0, 150, 2):
        store.write_json(bucket, f"k/{i:03d}.json", {"n": i})
    keys = (f"k/{i:03d}.json" for i in range(150))  # a generator: consumed as results are read
    got = list(store.read_json_many(bucket, keys))
    assert got == [{"n": i} if i % 2 == 0 else None for i in range(150)]
    assert list(store.read_json_many(bucket, [])) == []
