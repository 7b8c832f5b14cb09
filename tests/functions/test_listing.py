import boto3
from kendra_ingest.listing import list_objects
from kendra_ingest.models import SourceObject
from moto import mock_aws


class FakeS3:
    """Serves pages on demand and records how many were requested."""

    def __init__(self, pages):
        self.pages, self.served, self.calls = pages, 0, []

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, **kwargs):
        self.calls.append(kwargs)
        for page in self.pages:
            self.served += 1
            yield page


def test_streams_page_by_page_and_strips_etag_quotes():
    s3 = FakeS3([
        {"Contents": [{"Key": "P/batches/a.pdf", "ETag": '"abc"', "Size": 3}]},
        {},  # an empty page has no Contents
        {"Contents": [{"Key": "P/batches/b.pdf", "ETag": '"def-2"', "Size": 0}]},
    ])
    objects = list_objects(s3, "bucket", "P/batches/")
    assert next(objects) == SourceObject(key="P/batches/a.pdf", etag="abc", size=3)
    assert s3.served == 1  # the next page is not fetched before it is needed
    assert list(objects) == [SourceObject(key="P/batches/b.pdf", etag="def-2", size=0)]
    assert s3.calls == [{"Bucket": "bucket", "Prefix": "P/batches/", "PaginationConfig": {}}]


def test_lists_a_real_bucket_across_pages_in_key_order():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ingest")
        keys = [f"P/batches/{name}" for name in ("b.pdf", "a.pdf", "a.pdf.metadata.json", "é.txt", "a-1.txt")]
        for key in [*keys, "P/_control/manifest.json"]:
            s3.put_object(Bucket="ingest", Key=key, Body=b"xy")
        listed = list(list_objects(s3, "ingest", "P/batches/", page_size=2))
    assert [o.key for o in listed] == sorted(keys, key=lambda k: k.encode())
    assert all(o.size == 2 and '"' not in o.etag and len(o.etag) == 32 for o in listed)
