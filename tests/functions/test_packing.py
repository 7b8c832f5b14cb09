import math
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kendra_ingest.packing import TooLarge, min_requests, pack

MB = 1024 * 1024


def run(sizes: list[int], **limits) -> tuple[list[list[int]], list[int]]:
    """Pack item indexes; returns (requests as index lists, too-large indexes)."""
    requests, too_large = [], []
    for out in pack(range(len(sizes)), size=sizes.__getitem__, **limits):
        if isinstance(out, TooLarge):
            too_large.append(out.item)
        else:
            requests.append(out)
    return requests, too_large


limits = st.fixed_dictionaries({
    "max_docs": st.integers(1, 10),
    "max_document_bytes": st.integers(1, 120),
    "max_request_bytes": st.integers(1, 300),
    "window": st.integers(1, 40),
})


@settings(max_examples=300)
@given(st.lists(st.integers(0, 150), max_size=120), limits)
def test_every_item_lands_once_and_limits_hold(sizes, lim):
    requests, too_large = run(sizes, **lim)
    placed = [i for request in requests for i in request]
    assert sorted(placed + too_large) == list(range(len(sizes)))
    limit = min(lim["max_document_bytes"], lim["max_request_bytes"])
    assert too_large == [i for i, s in enumerate(sizes) if s > limit]
    for request in requests:
        assert 1 <= len(request) <= lim["max_docs"]
        assert sum(sizes[i] for i in request) <= lim["max_request_bytes"]
    assert run(sizes, **lim) == (requests, too_large)  # deterministic


@settings(max_examples=300)
@given(st.integers(0, 300), st.integers(1, 120), limits)
def test_equal_sizes_reach_the_minimum(count, size, lim):
    requests, too_large = run([size] * count, **lim)
    if size > min(lim["max_document_bytes"], lim["max_request_bytes"]):
        assert requests == [] and len(too_large) == count
        return
    per_request = min(lim["max_docs"], lim["max_request_bytes"] // size)
    assert len(requests) == math.ceil(count / per_request)


@given(st.lists(st.integers(0, 5 * MB), max_size=200), st.integers(1, 50))
def test_default_limits_reach_the_minimum_for_any_mix(sizes, window):
    requests, too_large = run(sizes, max_document_bytes=5 * MB, max_request_bytes=50 * MB, window=window)
    assert too_large == [] and len(requests) == math.ceil(len(sizes) / 10)
    assert len(requests) == min_requests(sizes, max_request_bytes=50 * MB)


def test_fills_requests_by_bytes_when_bytes_bind():
    # 4 + 6 fit one 10-byte request, 7 + 3 another, 5 + 5 a third: the minimum.
    requests, _ = run([4, 7, 5, 6, 3, 5], max_docs=10, max_document_bytes=10, max_request_bytes=10)
    assert len(requests) == 3 == min_requests([4, 7, 5, 6, 3, 5], max_request_bytes=10)


def test_too_large_reason_names_the_limit():
    [marker] = [out for out in pack([6 * MB], size=int, max_document_bytes=5 * MB, max_request_bytes=50 * MB)]
    assert isinstance(marker, TooLarge)
    assert marker.reason == "document is 6,291,456 bytes, over the limit of 5,242,880 bytes per document"


def test_item_over_the_request_limit_alone_is_too_large():
    requests, too_large = run([3, 11], max_document_bytes=100, max_request_bytes=10)
    assert (requests, too_large) == ([[0]], [1])


def test_streaming_memory_is_bounded_by_the_window():
    window, max_docs = 100, 10
    consumed = emitted = 0
    most_held = 0

    def items() -> Iterator[int]:
        nonlocal consumed, most_held
        for i in range(20_000):
            consumed += 1
            most_held = max(most_held, consumed - emitted)
            yield i

    for out in pack(items(), size=lambda i: 1 + (i * 7919) % 97, max_docs=max_docs,
                    max_document_bytes=100, max_request_bytes=300, window=window):
        emitted += len(out)
    assert emitted == 20_000
    assert most_held <= 2 * window + 1


@pytest.mark.parametrize("name", ["max_docs", "max_document_bytes", "max_request_bytes", "window"])
def test_limits_must_be_positive(name):
    kwargs = {"max_docs": 10, "max_document_bytes": 5, "max_request_bytes": 50, "window": 10, name: 0}
    with pytest.raises(ValueError, match=name):
        list(pack([1], size=int, **kwargs))


def test_min_requests():
    assert min_requests([], max_request_bytes=10) == 0
    assert min_requests([1] * 11, max_request_bytes=100) == 2
    assert min_requests([9, 9, 9], max_request_bytes=10) == 3
