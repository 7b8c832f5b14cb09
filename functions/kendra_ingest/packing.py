"""Packing documents into as few Kendra requests as the limits allow (DESIGN section 5).

A request holds at most ``max_docs`` documents whose sizes sum to at most ``max_request_bytes``.
Sizes are raw document bytes, before the base64 encoding of ``Blob`` on the wire, and so is
``max_request_bytes`` (the configured limit is on raw bytes; configure it with the ~1.33x base64
overhead in mind if the wire size matters). In ``s3`` mode the caller passes sizes of 0 for the
request bound, since Kendra fetches the bytes itself.

The algorithm is best-fit decreasing over a bounded window, streaming:

1. Items are read in order; an item larger than ``min(max_document_bytes, max_request_bytes)`` can
   never be sent and is yielded at once as :class:`TooLarge`.
2. Every ``window`` items are sorted by size, largest first (ties: input order), and each goes into
   the open request with the least room that still fits it (ties: the oldest request); a new request
   is opened only when none fits. A request is yielded as soon as it holds ``max_docs`` documents.
3. At the end of a window, requests that cannot take even the window's smallest item are yielded,
   and of the rest at most ``window // max_docs`` of the roomiest are carried into the next window
   (the others are yielded). At the end of the input everything left is yielded.

Memory is bounded by the window: at most ``window`` items being placed plus fewer than ``window``
carried ones. The output is a function of the input alone (no hashing, ties broken by position).

Optimality: for documents of equal size ``s`` the result is the minimum, ``ceil(n / m)`` requests with
``m = min(max_docs, max_request_bytes // s)``: a request is opened only when every earlier one holds
``m`` documents, and the one partly filled request is carried across windows. With the default
limits (10 x 5 MB per document = 50 MB per request) the byte bound can never bind, so every size mix
also gets the minimum, ``ceil(n / 10)``. Otherwise, for the byte bound alone and within one window,
best fit decreasing needs at most 11/9 x OPT + 6/9 requests; the count bound and the window boundary
carry no such guarantee, which is why the benchmarks measure against :func:`min_requests`.

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
from collections.abc import Callable, Iterable, Iterator
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
    requests = _OpenRequests(max_docs, max_request_bytes, carry=max(1, window // max_docs))
    chunk: list[tuple[int, int, T]] = []
    for position, item in enumerate(items):
        item_size = size(item)
        if item_size > limit:
            yield TooLarge(item, item_size, limit)
            continue
        chunk.append((item_size, position, item))
        if len(chunk) == window:
            yield from requests.place(chunk)
            chunk = []
    yield from requests.place(chunk)
    yield from requests.flush()


def min_requests(sizes: Iterable[int], *, max_docs: int = 10, max_request_bytes: int) -> int:
    """A lower bound on the requests any packing needs: ``max(ceil(n / max_docs), ceil(sum / max_bytes))``."""
    count = total = 0
    for item_size in sizes:
        count += 1
        total += item_size
    return max(math.ceil(count / max_docs), math.ceil(total / max_request_bytes))


class _OpenRequests(Generic[T]):
    """Requests still accepting documents, ordered by the room they have left."""

    def __init__(self, max_docs: int, capacity: int, carry: int) -> None:
        self._max_docs = max_docs
        self._capacity = capacity
        self._carry = carry
        self._by_room: list[tuple[int, int]] = []  # sorted (bytes left, request number)
        self._items: dict[int, list[T]] = {}  # request number -> its items
        self._next_number = 0

    def place(self, chunk: list[tuple[int, int, T]]) -> Iterator[list[T]]:
        """Best-fit the chunk, largest first; yield requests as they fill, then trim the carry."""
        if not chunk:
            return
        chunk.sort(key=lambda entry: (-entry[0], entry[1]))
        for item_size, _, item in chunk:
            # (size, -1) sorts before every (size, n): the first request with at least `size` bytes left.
            index = bisect.bisect_left(self._by_room, (item_size, -1))
            if index < len(self._by_room):
                room, number = self._by_room.pop(index)
            else:
                room, number = self._capacity, self._next_number
                self._next_number += 1
                self._items[number] = []
            request = self._items[number]
            request.append(item)
            if len(request) == self._max_docs:
                yield self._items.pop(number)
            else:
                bisect.insort(self._by_room, (room - item_size, number))
        smallest = chunk[-1][0]
        cut = max(bisect.bisect_left(self._by_room, (smallest, -1)), len(self._by_room) - self._carry)
        released, self._by_room = self._by_room[:cut], self._by_room[cut:]
        for _, number in sorted(released, key=lambda entry: entry[1]):
            yield self._items.pop(number)

    def flush(self) -> Iterator[list[T]]:
        """Yield every request still open, oldest first."""
        for number in sorted(self._items):
            yield self._items.pop(number)
        self._by_room = []
