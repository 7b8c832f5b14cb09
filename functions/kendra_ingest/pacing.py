"""Sharing a Kendra TPS quota among every concurrent worker (``kendraTps``).

Each worker (a Map iteration, a queue consumer) retries throttled calls on its own, but N workers that
each back off independently still hit the quota N times over. With the quota configured, every
BatchPutDocument / BatchDeleteDocument first takes a slot from a DynamoDB counter per operation and
time window (in the lock table), and waits for its slot's place in the window, so the calls are spread
evenly at the quota's rate across all workers, whatever their number.

Example::

    pacer = QuotaPacer("lock-table", rate=5.0)
    if pacer.acquire("BatchPutDocument", deadline):
        client.batch_put_document(...)
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from kendra_ingest import aws
from kendra_ingest.deadline import Deadline

#: Window counters expire long after their window (TTL attribute of the lock table).
WINDOW_TTL_SECONDS = 3600


class QuotaPacer:
    """A fixed-window rate limiter shared through DynamoDB; calls within a window are spread evenly."""

    def __init__(
        self,
        table_name: str,
        rate: float,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive (got {rate})")
        self.table_name = table_name
        # At least one call per window: rates under 1/s get windows of several seconds.
        self.window_seconds = 1.0 if rate >= 1 else float(math.ceil(1 / rate))
        self.slots = max(1, math.floor(rate * self.window_seconds))
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def acquire(self, operation: str, deadline: Deadline) -> bool:
        """Wait for a slot of ``operation``; False when none can be had before ``deadline``."""
        while True:
            now = self._clock()
            window = math.floor(now / self.window_seconds) * self.window_seconds
            slot = self._take(operation, window)
            if slot is not None:
                # Slot k of n starts k/n of the way into the window: an even spread, no bursts.
                start = window + (slot - 1) * self.window_seconds / self.slots
                delay = max(0.0, start - self._clock())
                if delay and not deadline.allows(delay):
                    return False
                if delay:
                    self._sleep(delay)
                return True
            delay = window + self.window_seconds - self._clock() + self._rng.uniform(0, 0.01)
            if not deadline.allows(max(0.0, delay)):
                return False
            self._sleep(max(0.0, delay))

    def _take(self, operation: str, window: float) -> int | None:
        """The slot number taken in ``window`` (1-based), or None when the window is full."""
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"quota#{operation}#{window:.3f}"}},
                UpdateExpression="ADD used :one SET expiresAt = :expires",
                ConditionExpression="attribute_not_exists(used) OR used < :slots",
                ExpressionAttributeValues={
                    ":one": {"N": "1"}, ":slots": {"N": str(self.slots)},
                    ":expires": {"N": str(int(window + WINDOW_TTL_SECONDS))},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return int(response["Attributes"]["used"]["N"])
