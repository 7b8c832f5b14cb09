"""Listing a job's objects: the first step of the data path, and the only one here that does I/O.

Example::

    for obj in list_objects(boto3.client("s3"), "ingestion-bucket", "teams/hr/batches/"):
        print(obj.key, obj.size)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kendra_ingest.models import SourceObject


def list_objects(
    s3_client: Any, bucket: str, prefix: str, *, page_size: int | None = None
) -> Iterator[SourceObject]:
    """Every object under ``prefix``, in S3 listing order (ascending UTF-8 bytes of the key).

    A generator over ``list_objects_v2`` pages: one page (at most 1,000 keys) is in memory at a time,
    and the next page is requested only when the caller has consumed this one. ETag quotes are stripped.
    """
    pagination = {"PageSize": page_size} if page_size else {}
    pages = s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig=pagination
    )
    for page in pages:
        for obj in page.get("Contents", ()):
            yield SourceObject(key=obj["Key"], etag=obj["ETag"].strip('"'), size=obj["Size"])
