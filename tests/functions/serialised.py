"""A test double shared by the concurrency tests."""

from __future__ import annotations

import threading
from typing import Any


class Serialised:
    """A DynamoDB client whose requests never overlap.

    Real DynamoDB makes each request (a conditional write, a transaction) atomic; moto does not (its
    transactions snapshot and restore whole tables), so concurrent requests are serialised here to
    emulate the service, while the threads still interleave freely between requests.
    """

    _gate = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            with self._gate:
                return method(**kwargs)
        return call
