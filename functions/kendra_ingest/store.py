"""Small S3 helpers shared by the steps: read (None when missing), write, JSON, copy-then-delete."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kendra_ingest import aws
from kendra_ingest.listing import list_objects


class Replaced(RuntimeError):
    """The object is no longer the version the caller expected (its ETag changed)."""


def read(bucket: str, key: str, *, if_match: str | None = None) -> bytes | None:
    """The object's bytes, or None when it does not exist.

    With ``if_match`` (an ETag), raises :class:`Replaced` when the object has another version now.
    """
    s3 = aws.client("s3")
    extra = {"IfMatch": if_match} if if_match else {}
    try:
        return s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    except s3.exceptions.ClientError as exc:
        if aws.is_error(exc, "PreconditionFailed"):
            raise Replaced(f"s3://{bucket}/{key} was replaced (ETag is no longer {if_match})") from exc
        raise


def write(bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def read_json(bucket: str, key: str) -> Any | None:
    raw = read(bucket, key)
    return None if raw is None else json.loads(raw)


def write_json(bucket: str, key: str, value: Any) -> None:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    write(bucket, key, body, "application/json")


#: Small JSON objects read at once by :func:`read_json_many` (S3 GETs are latency-bound).
PARALLEL_READS = 32


def read_json_many(bucket: str, keys: Iterable[str]) -> Iterator[Any | None]:
    """:func:`read_json` of every key, in order, :data:`PARALLEL_READS` at a time (bounded memory: the
    keys are consumed as the results are)."""
    with ThreadPoolExecutor(PARALLEL_READS) as pool:
        pending: deque[Future[Any | None]] = deque()
        for key in keys:
            pending.append(pool.submit(read_json, bucket, key))
            if len(pending) >= 2 * PARALLEL_READS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def keys(bucket: str, prefix: str) -> Iterator[str]:
    """Keys under ``prefix`` in listing order (paginated)."""
    return (obj.key for obj in list_objects(aws.client("s3"), bucket, prefix))


def move(source_bucket: str, source_key: str, target_bucket: str, target_key: str, *,
         if_match: str | None = None) -> bool:
    """Copy then delete (S3 has no move); False when the source is already gone, or (with ``if_match``)
    replaced by another version, which is then left alone."""
    try:
        body = read(source_bucket, source_key, if_match=if_match)
    except Replaced:
        return False
    if body is None:
        return False
    write(target_bucket, target_key, body, "application/json")
    aws.client("s3").delete_object(Bucket=source_bucket, Key=source_key)
    return True
