"""Packing documents into as few Kendra requests as the limits allow (docs/design.md, "Limits").

A request holds at most ``max_docs`` documents whose sizes sum to at most ``max_request_bytes``.
Sizes are raw document bytes, before the base64 encoding of ``Blob`` on the wire, and so is
``max_request_bytes`` (the configured limit is on raw bytes; configure it with the ~1.33x base64
overhead in mind if the wire size matters). In ``s3`` mode the caller passes sizes of 0 for the
request bound, since Kendra fetches the bytes itself.

The algorithm is first-fit decreasing with a reservation for small documents, over a bounded
window, streaming:

1. Items are read in order; an item larger than ``min(max_document_bytes, max_request_bytes)`` can
   never be sent and is yielded at once as :class:`TooLarge`.
2. Every ``window`` items are sorted by size, largest first (ties: input order), and requests are built
   one at a time. A request starts with the largest item left, then repeatedly takes the largest item
   that fits while still leaving room for the smallest items left to fill its other free slots; when no
   item allows that, it takes the largest item that fits at all. It is yielded when it holds
   ``max_docs`` items or nothing else fits.
3. The window's last request, if it holds fewer than ``max_docs`` items, is not yielded: its items
   join the next window. At the end of the input everything is yielded.

Without the reservation, step 2 is exactly first-fit decreasing (each request receives, largest first,
every item that still fits it). The reservation matters when the count bound binds: it pairs large
documents with small ones instead of filling a request's bytes with two or three medium documents
and leaving the small ones to need requests of their own.

Memory is bounded by the window (plus fewer than ``max_docs`` carried items). The output is a function
of the input alone: no hashing, ties broken by position.

Optimality: for documents of equal size ``s`` the result is the minimum, ``ceil(n / m)`` requests with
``m = min(max_docs, max_request_bytes // s)``: every request but a window's last holds ``m``, and that
one's items are carried. With the default limits (10 x 5 MB per document = 50 MB per request) the
byte bound can never bind, so any mix of sizes also gets the minimum, ``ceil(n / 10)``. When bytes
do bind, no efficient algorithm is exact; measured against :func:`min_requests` (a lower bound, not
always reachable) it stayed within 1.6% on log-normal and uniform size mixes at 6-10 MB per request.

Example::

    for request in pack(docs, size=lambda d: d.size, max_document_bytes=5 << 20, max_request_bytes=50 << 20):
        if isinstance(request, TooLarge):
            report(request.item, request.reason)
        else:
            send(request)   # 1-10 documents
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TooLarge(Generic[T]):
    """An item no request can carry; the caller reports it as ``DocumentTooLarge``."""

    item: T
    size: int
    limit: int

    @property
    def reason(self) -> str:
        return f"document is {self.size:,} bytes, over the limit of {self.limit:,} bytes per document"


def pack(
    items: Iterable[T],
    *,
    size: Callable[[T], int],
    max_docs: int = 10,
    max_document_bytes: int,
    max_request_bytes: int,
    window: int = 10_000,
) -> Iterator[list[T] | TooLarge[T]]:
    """Yield requests (non-empty lists within the limits) and :class:`TooLarge` markers.

    Every item appears exactly once in the output. See the module docstring for the algorithm.
    """
    for name, value in (("max_docs", max_docs), ("max_document_bytes", max_document_bytes),
                        ("max_request_bytes", max_request_bytes), ("window", window)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1 (got {value})")
    limit = min(max_document_bytes, max_request_bytes)
    chunk: list[_Entry[T]] = []
    for position, item in enumerate(items):
        item_size = size(item)
        if item_size > limit:
            yield TooLarge(item, item_size, limit)
            continue
        chunk.append((item_size, position, item))
        if len(chunk) >= window:
            chunk = yield from _pack_window(chunk, max_docs, max_request_bytes, final=False)
    yield from _pack_window(chunk, max_docs, max_request_bytes, final=True)


def min_requests(sizes: Iterable[int], *, max_docs: int = 10, max_request_bytes: int) -> int:
    """A lower bound on the requests any packing needs: ``max(ceil(n / max_docs), ceil(sum / max_bytes))``."""
    count = total = 0
    for item_size in sizes:
        count += 1
        total += item_size
    return max(math.ceil(count / max_docs), math.ceil(total / max_request_bytes))


_Entry = tuple[int, int, T]  # (size, input position, item)


def _pack_window(
    chunk: list[_Entry[T]], max_docs: int, capacity: int, *, final: bool
) -> Generator[list[T], None, list[_Entry[T]]]:
    """Yield the window's requests; return the entries carried into the next window."""
    chunk.sort(key=lambda entry: (-entry[0], entry[1]))
    # Negated sizes ascend, so bisect finds "the largest item of at most n bytes"; small items sit at
    # the end, where most pops happen and are cheap.
    negated = [-entry[0] for entry in chunk]
    while chunk:
        negated.pop(0)
        request = [chunk.pop(0)]
        room = capacity - request[0][0]
        while len(request) < max_docs and chunk:
            free_after = max_docs - len(request) - 1
            reserve = -sum(negated[max(0, len(negated) - free_after):]) if free_after else 0
            index = bisect.bisect_left(negated, reserve - room)
            if index == len(negated):
                index = bisect.bisect_left(negated, -room)
                if index == len(negated):
                    break
            room += negated.pop(index)
            request.append(chunk.pop(index))
        if not chunk and not final and len(request) < max_docs:
            return request
        yield [entry[2] for entry in request]
    return []
